// Crash torture: the real `paycore serve` under load from concurrent clients is SIGKILLed at
// random moments and restarted, again and again. After every restart:
//  - requests that were in flight at the kill (sent, no answer) are retried with the SAME
//    request_id and body: each is then acknowledged, applied exactly once whether or not it
//    had been applied before the kill;
//  - retries of requests acknowledged earlier replay (Idempotent-Replayed: true), changing nothing;
//  - every acknowledged payment exists with its amount, and its refunded_amount is the sum of
//    its acknowledged refunds;
//  - every account's balance is what the acknowledged history says, and all balances
//    (payers, merchants, the system account `external`) sum to zero.
// PAYCORE_TORTURE_CYCLES sets the number of kill/restart cycles (default 10; 200 under `slow`);
// PAYCORE_TORTURE_IO_THREADS the server's --io-threads (default 2; 0 is run to completion).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/torture/support.hpp"

namespace paycore::torture {
namespace {

constexpr std::int64_t deposit_each = 1'000'000'000'000;
constexpr int payers_count = 8;
constexpr int writers_count = 6;

struct Op {
  bool refund = false;
  std::string merchant;
  std::string order;       // the payment's order_id (= its request_id)
  std::string request_id;  // the payment's or the refund's
  std::string payer;
  std::int64_t amount = 0;
  std::string target() const { return refund ? "/v1/payments/" + order + "/refunds" : "/v1/payments"; }
  std::string body() const {
    return refund ? refund_body(request_id, amount) : payment_body(request_id, payer, amount);
  }
};

struct PaymentModel {
  std::string merchant;
  std::string payer;
  std::int64_t amount = 0;
  std::int64_t refunded = 0;
};

// What the clients were told, and so what the server must hold.
class Ledger {
 public:
  void acknowledge(const Op& op) {
    std::lock_guard lock(mutex_);
    const std::string key = op.merchant + "/" + op.order;
    if (op.refund) {
      PaymentModel& p = payments_.at(key);
      p.refunded += op.amount;
      balances_[op.merchant] -= op.amount;
      balances_[p.payer] += op.amount;
      ++refunds_count_;
    } else {
      payments_[key] = PaymentModel{op.merchant, op.payer, op.amount, 0};
      balances_[op.payer] -= op.amount;
      balances_[op.merchant] += op.amount;
      ++payments_count_;
    }
    history_.push_back(op);
    touched_.push_back(key);
  }
  void set_balance(const std::string& account, std::int64_t value) {
    std::lock_guard lock(mutex_);
    balances_[account] = value;
  }

  std::mutex mutex_;
  std::map<std::string, PaymentModel> payments_;  // merchant/order
  std::map<std::string, std::int64_t> balances_;
  std::vector<Op> history_;                        // every acknowledged request
  std::vector<std::string> touched_;               // payments changed since the last check
  std::uint64_t payments_count_ = 0;
  std::uint64_t refunds_count_ = 0;
};

struct Counters {
  std::atomic<std::uint64_t> unexpected{0};
  std::mutex mutex;
  std::string first_unexpected;
  std::vector<Op> in_flight;  // sent without an answer: retried after the restart
};

// One writer: its own payments, so a refund is only ever chosen against what it knows.
void writer(std::uint16_t port, const auth::Keys& keys, int cycle, int t, std::atomic<bool>& stop,
            Ledger& ledger, Counters& counters,
            std::map<std::string, std::pair<std::string, std::int64_t>>& refundable /* order -> merchant, rest */) {
  std::mt19937_64 random(static_cast<std::uint64_t>(cycle) * 1000 + static_cast<std::uint64_t>(t));
  const std::string merchant = dev_merchants()[static_cast<std::size_t>(t) % dev_merchants().size()];
  const Signer who{merchant, keys.find_principal(merchant)->secret};
  Connection connection(port);
  for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    Op op;
    op.merchant = merchant;
    const std::string tag = "c" + std::to_string(cycle) + "w" + std::to_string(t) + "-" + std::to_string(i);
    if (!refundable.empty() && random() % 10 < 3) {
      auto it = refundable.begin();
      std::advance(it, static_cast<long>(random() % refundable.size()));
      op.refund = true;
      op.order = it->first;
      op.request_id = "r-" + tag;
      op.amount = 1 + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(it->second.second));
    } else {
      op.order = op.request_id = "p-" + tag;
      op.payer = "payer" + std::to_string(random() % payers_count);
      op.amount = 1 + static_cast<std::int64_t>(random() % 5000);
    }
    HttpResponse r;
    if (connection.ok() && connection.send_all(Client::signed_request(who, "POST", op.target(), op.body()))) {
      r = connection.read_response(5000);
    }
    if (r.status == 201) {
      if (op.refund) {
        auto it = refundable.find(op.order);
        it->second.second -= op.amount;
        if (it->second.second == 0) refundable.erase(it);
      } else {
        refundable[op.order] = {merchant, op.amount};
      }
      // Refunds need the payer: the ledger knows it from the payment.
      ledger.acknowledge(op);
      continue;
    }
    if (r.status == 0) {
      std::lock_guard lock(counters.mutex);
      counters.in_flight.push_back(op);
      return;  // the server is gone (or this connection is): this writer's cycle is over
    }
    if (counters.unexpected.fetch_add(1) == 0) {
      std::lock_guard lock(counters.mutex);
      counters.first_unexpected = std::to_string(r.status) + " " + r.body + " for " + op.body();
    }
  }
}

// Every account: as the ledger says; all of them plus `external` sum to zero.
void check_balances(Client& client, Ledger& ledger, int cycle) {
  const Signer op = client.operator_signer();
  std::int64_t sum = 0;
  std::lock_guard lock(ledger.mutex_);
  for (const auto& [account, expected] : ledger.balances_) {
    if (account == "external") {  // not readable: the deposits made at setup say what it is
      sum += expected;
      continue;
    }
    const HttpResponse r = client.call(op, "GET", "/v1/accounts/" + account);
    ASSERT_EQ(r.status, 200) << "cycle " << cycle << " account " << account << ": " << r.body;
    const std::int64_t balance = it::json_int(r.body, "/balance").value_or(-1);
    EXPECT_EQ(balance, expected) << "cycle " << cycle << " account " << account;
    sum += balance;
  }
  EXPECT_EQ(sum, 0) << "cycle " << cycle << ": balances do not sum to zero";
}

void check_payment(Client& client, const auth::Keys& keys, const std::string& key, const PaymentModel& p,
                   int cycle) {
  const std::string order = key.substr(key.find('/') + 1);
  const Signer who{p.merchant, keys.find_principal(p.merchant)->secret};
  const HttpResponse r = client.call(who, "GET", "/v1/payments/" + order);
  ASSERT_EQ(r.status, 200) << "cycle " << cycle << ": acknowledged payment " << key << " lost: " << r.body;
  EXPECT_EQ(it::json_int(r.body, "/amount"), p.amount) << key;
  EXPECT_EQ(it::json_int(r.body, "/refunded_amount"), p.refunded) << "cycle " << cycle << " " << key;
  EXPECT_EQ(it::json_string(r.body, "/status"), p.refunded == p.amount ? "REFUNDED" : "PAID") << key;
}

// The operator's whole view: a snapshot now, exported; its accounts are exactly the ledger's
// (no account the clients never made) and their balances are the ledger's.
void check_snapshot_export(Client& client, Ledger& ledger) {
  const HttpResponse r = client.call(client.operator_signer(), "POST", "/v1/admin/snapshot", "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string path = it::json_string(r.body, "/path").value_or("");
  const std::string command = std::string(PAYCORE_BINARY) + " snapshot export --format csv '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string csv;
  char chunk[65536];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) csv.append(chunk, n);
  ASSERT_EQ(::pclose(pipe), 0) << command;
  std::map<std::string, std::int64_t> exported;
  std::size_t at = 0;
  while ((at = csv.find("\naccount,", at)) != std::string::npos) {
    at += 9;
    const std::size_t end = csv.find('\n', at);
    std::vector<std::string> fields;
    std::string line = csv.substr(at, end - at);
    for (std::size_t from = 0, comma; from <= line.size(); from = comma + 1) {
      comma = std::min(line.find(',', from), line.size());
      fields.push_back(line.substr(from, comma - from));
    }
    ASSERT_GE(fields.size(), 4u) << line;
    exported[fields[0]] = std::stoll(fields[3]);
  }
  std::lock_guard lock(ledger.mutex_);
  std::int64_t sum = ledger.balances_.at("external");
  for (const auto& [account, expected] : ledger.balances_) {
    if (account == "external") continue;
    EXPECT_EQ(exported.count(account), 1u) << account << " missing from the snapshot";
    EXPECT_EQ(exported[account], expected) << account << " in the snapshot";
  }
  for (const auto& [account, balance] : exported) {
    EXPECT_EQ(ledger.balances_.count(account), 1u) << "an account nobody opened: " << account;
    sum += balance;
  }
  EXPECT_EQ(sum, 0) << "snapshot balances do not sum to zero";
  std::printf("torture: snapshot %s exported: %zu accounts, balances sum to zero with external = %lld\n",
              path.c_str(), exported.size(), static_cast<long long>(ledger.balances_.at("external")));
}

TEST(Torture, SigkillCyclesKeepTheAcknowledgedHistoryExact) {
  const int cycles = static_cast<int>(env_int("PAYCORE_TORTURE_CYCLES", 10));
  ScopedFixture fixture;
  // A small segment size: rotation and preallocation are part of what gets killed.
  const std::vector<std::string> args = {"--io-threads", std::to_string(env_int("PAYCORE_TORTURE_IO_THREADS", 2)),
                                         "--wal-segment-bytes", "1048576"};
  ASSERT_TRUE(fixture.start(args)) << fixture.log();
  Ledger ledger;
  std::vector<std::string> payers;
  for (int i = 0; i < payers_count; ++i) payers.push_back("payer" + std::to_string(i));
  {
    Client setup(fixture.server->port(), fixture.keys);
    ASSERT_TRUE(open_accounts(setup, dev_merchants(), payers, deposit_each));
    // The system account `external` (the source of deposits) cannot be read through the API
    // or the snapshot export; only the setup deposits touch it, so its balance is known.
    ledger.set_balance("external", -deposit_each * payers_count);
    for (const std::string& p : payers) ledger.set_balance(p, deposit_each);
    for (const std::string& m : dev_merchants()) ledger.set_balance(m, 0);
  }

  std::mt19937_64 random(20261126);
  std::vector<std::map<std::string, std::pair<std::string, std::int64_t>>> refundable(writers_count);
  std::uint64_t retried = 0, retried_replayed = 0, replay_checks = 0;
  int survived = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    Counters counters;
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < writers_count; ++t) {
      threads.emplace_back(writer, fixture.server->port(), std::cref(*fixture.keys), cycle, t, std::ref(stop),
                           std::ref(ledger), std::ref(counters), std::ref(refundable[static_cast<std::size_t>(t)]));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 500));
    fixture.server->kill_hard();
    stop = true;
    for (std::thread& thread : threads) thread.join();
    ASSERT_EQ(counters.unexpected.load(), 0u) << counters.first_unexpected;

    ASSERT_TRUE(fixture.restart(args)) << "cycle " << cycle << ": " << fixture.log();
    Client client(fixture.server->port(), fixture.keys);
    // In flight at the kill: applied or not, the same request now makes it exactly once.
    for (const Op& op : counters.in_flight) {
      const Signer who = client.merchant(op.merchant);
      const HttpResponse r = client.call(who, "POST", op.target(), op.body());
      ASSERT_EQ(r.status, 201) << "cycle " << cycle << " retry of " << op.body() << ": " << r.body;
      ++retried;
      if (r.header("idempotent-replayed") == "true") ++retried_replayed;
      auto& mine = refundable[static_cast<std::size_t>(std::stoi(op.request_id.substr(op.request_id.find('w') + 1)))];
      if (op.refund) {
        auto it = mine.find(op.order);
        it->second.second -= op.amount;
        if (it->second.second == 0) mine.erase(it);
      } else {
        mine[op.order] = {op.merchant, op.amount};
      }
      ledger.acknowledge(op);
    }
    // Acknowledged earlier (any cycle): a replay, never a second execution.
    for (int k = 0; k < 8 && !ledger.history_.empty(); ++k) {
      const Op op = ledger.history_[random() % ledger.history_.size()];
      const HttpResponse r = client.call(client.merchant(op.merchant), "POST", op.target(), op.body());
      ASSERT_EQ(r.status, 201) << "replay of " << op.body() << ": " << r.body;
      ASSERT_EQ(r.header("idempotent-replayed"), "true") << "re-executed: " << op.body();
      ++replay_checks;
    }
    // Payments changed this cycle, a sample of the rest (all of them after the last cycle).
    std::vector<std::string> keys;
    keys.swap(ledger.touched_);
    const bool last = cycle + 1 == cycles;
    for (int k = 0; k < 20 && !ledger.payments_.empty() && !last; ++k) {
      auto it = ledger.payments_.begin();
      std::advance(it, static_cast<long>(random() % ledger.payments_.size()));
      keys.push_back(it->first);
    }
    if (last) {
      keys.clear();
      for (const auto& [key, p] : ledger.payments_) keys.push_back(key);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::string& key : keys) {
      check_payment(client, *fixture.keys, key, ledger.payments_.at(key), cycle);
      if (::testing::Test::HasFatalFailure()) return;
    }
    check_balances(client, ledger, cycle);
    if (last) check_snapshot_export(client, ledger);
    if (::testing::Test::HasFailure()) break;
    ++survived;
  }
  std::printf("torture: --io-threads %s: %d of %d SIGKILL cycles survived; %llu payments and %llu refunds acknowledged; "
              "%llu in-flight requests retried (%llu had been applied before the kill: replayed); "
              "%llu replays of acknowledged requests checked\n",
              args[1].c_str(), survived, cycles, static_cast<unsigned long long>(ledger.payments_count_),
              static_cast<unsigned long long>(ledger.refunds_count_), static_cast<unsigned long long>(retried),
              static_cast<unsigned long long>(retried_replayed), static_cast<unsigned long long>(replay_checks));
  EXPECT_EQ(survived, cycles);
  EXPECT_GT(ledger.payments_count_, static_cast<std::uint64_t>(cycles) * 10) << "too little load to be a test";
}

}  // namespace
}  // namespace paycore::torture
