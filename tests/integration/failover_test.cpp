// Failover of real `paycore serve` processes sharing one log stream on a real nats-server
// (issue 14; docs/replication.md): the primary is SIGKILLed again and again while clients make
// deposits, payments and refunds; the standby (caught up) takes the lease and becomes the
// primary. A write whose answer was lost in a kill is sent again, same request_id and body,
// until some primary answers it. At the end every acknowledged write is there exactly once on
// the primary and on the standby, the balances (system accounts included) sum to zero, and
// acknowledged requests replay. The killed process comes back as a standby on its own data
// directory; one whose log holds records the cluster never acknowledged sets that log aside
// by itself and starts from the published snapshot (set_aside_unacknowledged). Events are on
// (issue 15): the change-data capture stream holds every acknowledged payment's and refund's
// events once, in log order, across the kills; and each merchant's webhook endpoint (created
// before the kills, on a receiver in this test) gets every acknowledged payment's payment.paid
// at least once, whichever primary sent it (docs/events.md "Webhooks in a cluster").
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>
#include <vector>

#include <simdjson.h>

#include "auth/keys.hpp"
#include "client.hpp"
#include "repl/nats_link.hpp"
#include "tests/support/nats_cluster.hpp"
#include "tests/webhooks/test_receiver.hpp"

namespace paycore::it {
namespace {
using paycore::testing::NatsCluster;
using Clock = std::chrono::steady_clock;

// PAYCORE_FAILOVER_KILLS overrides the number of kills (20 by default, as issue 14 asks of
// CI; the slow label runs 200).
int kills_wanted() {
  const char* text = std::getenv("PAYCORE_FAILOVER_KILLS");
  return text != nullptr ? std::atoi(text) : 20;
}

// The writes issue 14 names; the load mixes them.
enum class OpKind { deposit, payment, refund };

// One write, and what its definite answer said. Its request_id and body never change between
// attempts: a retry after a lost answer must be replayed by the cluster, not executed again.
struct Op {
  OpKind kind = OpKind::deposit;
  std::string merchant;  // who signs a payment or refund (a deposit: the operator)
  std::string account;   // a deposit: the account credited; a payment: the payer
  std::string order;     // a payment's order_id, or the refunded payment's
  std::string request_id;
  std::int64_t amount = 0;
  int epoch = 0;          // kills of the primary before its answer
  bool lost = false;      // an attempt got no answer: a process may have applied it and died
  bool replayed = false;  // its definite answer was Idempotent-Replayed
  std::string answer;     // the body of its definite answer

  std::string target() const {
    if (kind == OpKind::deposit) return "/v1/accounts/" + account + "/deposits";
    return kind == OpKind::payment ? "/v1/payments" : "/v1/payments/" + order + "/refunds";
  }
  std::string body() const {
    const std::string head = R"({"request_id":")" + request_id + R"(",)";
    const std::string amount_text = std::to_string(amount);
    if (kind == OpKind::deposit) {
      return head + R"("amount":)" + amount_text + R"(,"currency":"CNY"})";
    }
    if (kind == OpKind::refund) return head + R"("amount":)" + amount_text + "}";
    return head + R"("order_id":")" + order + R"(","amount":)" + amount_text +
           R"(,"currency":"CNY","channel":"balance","payer_account_id":")" + account + R"("})";
  }
  int status_ok() const { return kind == OpKind::deposit ? 200 : 201; }
  // The member of the answer that names what it changed (a refund answers with its payment).
  const char* name_pointer() const { return kind == OpKind::deposit ? "/account_id" : "/order_id"; }
  const std::string& name() const { return kind == OpKind::deposit ? account : order; }
};

Op alice_deposit(int n) {  // the deposits the test thread makes itself, between kills
  Op op;
  op.account = "alice";
  op.request_id = "dep-" + std::to_string(n);
  op.amount = n + 1;
  return op;
}

std::string deposit_body(int n) { return alice_deposit(n).body(); }

struct PaymentModel {
  std::string merchant;
  std::string payer;
  std::string request_id;
  std::int64_t amount = 0;
  std::int64_t refunded = 0;
  std::map<std::string, std::int64_t> refunds;  // refund request_id -> amount
};

// The system account deposits come from: not readable through the API, only in a snapshot
// export (core/snapshot_export.cpp), where all balances sum to zero with it.
constexpr const char* system_external = "external";

// What the clients were told, so what every process must hold at the end. Writers add to it
// concurrently; the test thread reads it once they have been joined.
class Ledger {
 public:
  void open(const std::string& account) {
    const std::lock_guard lock(mutex_);
    balances_[account] += 0;
  }
  void acknowledge(const Op& op) {
    const std::lock_guard lock(mutex_);
    if (op.kind == OpKind::deposit) {
      balances_[op.account] += op.amount;
      balances_[system_external] -= op.amount;
    } else if (op.kind == OpKind::payment) {
      payments_[op.order] = PaymentModel{op.merchant, op.account, op.request_id, op.amount, 0, {}};
      balances_[op.account] -= op.amount;
      balances_[op.merchant] += op.amount;
    } else {
      PaymentModel& p = payments_.at(op.order);
      p.refunded += op.amount;
      p.refunds[op.request_id] = op.amount;
      balances_[op.merchant] -= op.amount;
      balances_[p.payer] += op.amount;
    }
    history_.push_back(op);
  }
  void fail(const std::string& why) {
    const std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = why;
  }
  std::string failure() const {
    const std::lock_guard lock(mutex_);
    return failure_;
  }
  // After the writers are joined only.
  const std::map<std::string, std::int64_t>& balances() const { return balances_; }
  const std::map<std::string, PaymentModel>& payments() const { return payments_; }
  const std::vector<Op>& history() const { return history_; }
  std::size_t count(OpKind kind, bool lost_only = false) const {
    return static_cast<std::size_t>(
        std::count_if(history_.begin(), history_.end(),
                      [&](const Op& op) { return op.kind == kind && (op.lost || !lost_only); }));
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> balances_;  // account -> balance, system_external too
  std::map<std::string, PaymentModel> payments_;  // order_id (unique across writers) -> payment
  std::vector<Op> history_;                       // every acknowledged write, in answer order
  std::string failure_;                           // the first write that did not succeed
};

// What went wrong in a whole-state comparison, kept short: thousands of EXPECTs for one lost
// write would bury the first.
class Mismatches {
 public:
  void add(const std::string& what) {
    if (count_++ < 10) text_ += what + "\n";
  }
  bool empty() const { return count_ == 0; }
  std::string summary() const { return std::to_string(count_) + " mismatches, first:\n" + text_; }

 private:
  int count_ = 0;
  std::string text_;
};

// A page of a list answer, parsed once (the final checks read thousands of payments): the
// members of the elements of its "data" array.
class ListPage {
 public:
  explicit ListPage(const std::string& body) {
    simdjson::dom::element data;
    if (parser_.parse(body).get(root_) == simdjson::SUCCESS &&
        root_.at_pointer("/data").get(data) == simdjson::SUCCESS) {
      simdjson::dom::array items;
      if (data.get_array().get(items) == simdjson::SUCCESS) size_ = items.size();
    }
  }
  std::size_t size() const { return size_; }
  std::string text(std::size_t k, const char* member) const {  // "" when absent
    std::string_view out;
    return at(k, member).get_string().get(out) == simdjson::SUCCESS ? std::string(out) : "";
  }
  std::int64_t number(std::size_t k, const char* member) const {  // -1 when absent
    std::int64_t out = -1;
    return at(k, member).get_int64().get(out) == simdjson::SUCCESS ? out : -1;
  }

 private:
  simdjson::simdjson_result<simdjson::dom::element> at(std::size_t k, const char* member) const {
    return root_.at_pointer("/data/" + std::to_string(k) + "/" + member);
  }
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  std::size_t size_ = 0;
};

// What the kills took.
struct KillStats {
  std::vector<double> failover_ms;  // from each kill to the first write the next primary took
  int set_aside_count = 0;          // killed primaries whose log held unacknowledged records
  double catch_up_wait_ms = 0;      // waiting, before kills, for the standby to catch up
};

// The mixed load: two writers, each a merchant with its own payments (so a refund is only ever
// chosen against what that writer was told), over four payers funded so that no payment is
// ever refused for funds.
constexpr int mixed_writers_count = 2;
constexpr int payers_count = 4;
constexpr std::int64_t payer_funding_minor = 1'000'000'000'000;
// Between a writer's writes: enough load that kills cut writes off (a dozen or more lost
// answers in a 20-kill run here), little enough that the final checks stay short (20 kills:
// about 11,000 writes).
constexpr int mixed_write_pause_ms = 5;
// A bound, not an expectation: a restarted standby follows the stream from its own log's end,
// or from the published snapshot after setting its log aside (about 1.3 s of waiting in all
// over a 20-kill debug run here).
constexpr int catch_up_wait_ms = 120'000;

std::string payer_id(std::uint64_t n) { return "payer" + std::to_string(n); }
std::string merchant_of(int writer) { return "m_00" + std::to_string(writer + 1); }

// The writer's k-th write: a refund of one of its acknowledged payments with something left
// to refund (3 in 10), a deposit to a payer (2 in 10), else a payment.
// `refundable`: order_id -> amount not refunded yet.
Op next_op(int writer, int k, std::mt19937_64& random,
           const std::map<std::string, std::int64_t>& refundable) {
  Op op;
  const std::string tag = "w" + std::to_string(writer) + "-" + std::to_string(k);
  const std::uint64_t dice = random() % 10;
  const auto uniform = [&](std::int64_t max) {  // 1..max
    return 1 + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(max));
  };
  if (dice < 3 && !refundable.empty()) {
    auto it = refundable.begin();
    std::advance(it, static_cast<long>(random() % refundable.size()));
    op.kind = OpKind::refund;
    op.merchant = merchant_of(writer);
    op.order = it->first;
    op.request_id = "r-" + tag;
    op.amount = uniform(it->second);
  } else if (dice < 5) {
    op.account = payer_id(random() % payers_count);
    op.request_id = "d-" + tag;
    op.amount = uniform(1000);
  } else {
    op.kind = OpKind::payment;
    op.merchant = merchant_of(writer);
    op.account = payer_id(random() % payers_count);
    op.order = op.request_id = "p-" + tag;
    op.amount = uniform(5000);
  }
  return op;
}

// What differs between `op`'s first answer and `replay`, in the members a replay must repeat
// ("" when nothing): a replay answers the first outcome with the resource's current
// representation (core/apply_support.cpp, replay_outcome), so a balance, a payment's status
// and its refunded amount may have moved since; what the resource is may not.
std::string replay_difference(const Op& op, const std::string& replay) {
  static constexpr const char* account_members[] = {"/account_id", "/kind", "/currency",
                                                    "/created_at"};
  static constexpr const char* payment_members[] = {"/merchant_id", "/order_id", "/request_id",
                                                    "/payer_account_id", "/currency",
                                                    "/created_at"};
  std::string out;
  const auto compare = [&](const char* pointer, const auto& first, const auto& again) {
    if (!first.has_value()) out += std::string(pointer) + " missing in the first answer; ";
    if (first != again) out += std::string(pointer) + " differs; ";
  };
  if (op.kind == OpKind::deposit) {
    for (const char* m : account_members) {
      compare(m, json_string(op.answer, m), json_string(replay, m));
    }
    return out;
  }
  for (const char* m : payment_members) {
    compare(m, json_string(op.answer, m), json_string(replay, m));
  }
  compare("/amount", json_int(op.answer, "/amount"), json_int(replay, "/amount"));
  return out;
}

class Failover : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = make_temp_dir("failover");
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
    keys_path_ = dir_ + "/keys.json";
  }
  void TearDown() override {
    for (auto& s : servers_) {
      if (s && s->running()) s->kill_hard();
    }
    remove_tree(dir_);
  }

  std::vector<std::string> args() const {
    return {"--nats-url", nats_.urls(), "--cluster-name", "it", "--log-stream-replicas", "1",
            "--archive=false", "--lease-timeout-ms", "1000", "--lease-heartbeat-ms", "100",
            "--replication-ack-timeout-ms", "1000", "--snapshot-every-records", "2000",
            "--events=true", "--webhook-http-hosts", "127.0.0.1",
            "--webhook-allowed-networks", "127.0.0.0/8"};
  }

  ServerProcess& server(int i) { return *servers_[static_cast<std::size_t>(i)]; }

  bool start(int i) {
    const auto at = static_cast<std::size_t>(i);
    auto process = std::make_unique<ServerProcess>();
    const bool up = process->start(data_dir(i), keys_path_, args());
    {
      const std::lock_guard lock(servers_mu_);
      if (servers_.size() <= at) servers_.resize(at + 1);
      servers_[at] = std::move(process);
    }
    if (up && keys_ == nullptr) {
      StatusOr<std::shared_ptr<const auth::Keys>> loaded = auth::keys_load(keys_path_);
      if (loaded.is_ok()) keys_ = *loaded;
    }
    return up;
  }
  std::string data_dir(int i) const { return dir_ + "/node" + std::to_string(i); }

  // A signed request to whichever process answers it as primary, retried with the same body
  // (so the same request_id) until it succeeds or `wait_ms` passes. 0 if it never did.
  int call_primary(const std::string& method, const std::string& target, const std::string& body,
                   int wait_ms, int* which = nullptr) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (Clock::now() < deadline) {
      for (const auto& [i, port] : live_ports()) {
        Client client(port, keys_);
        const HttpResponse r = client.call(client.operator_signer(), method, target, body);
        if (r.status == 200 || r.status == 201) {
          if (which != nullptr) *which = i;
          return r.status;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }

  // The last lines of every process's log, without the core's stall warnings.
  std::string logs_tail() {
    const std::lock_guard lock(servers_mu_);
    std::string out;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (!servers_[i]) continue;
      std::string kept;
      std::istringstream lines(servers_[i]->log());
      for (std::string line; std::getline(lines, line);) {
        if (line.find("core stall") == std::string::npos &&
            line.find("\"msg\":\"request\"") == std::string::npos) {
          kept += line + "\n";
        }
      }
      out += "--- process " + std::to_string(i) + "\n" +
             kept.substr(kept.size() > 3000 ? kept.size() - 3000 : 0);
      if (servers_[i]->running()) {
        Client client(servers_[i]->port(), keys_);
        const std::string m = client.get("/metrics").body;
        for (const char* name : {"paycore_wal_durable_lsn", "paycore_replicated_lsn",
                                 "paycore_replica_stalled", "paycore_replica_fenced",
                                 "paycore_following", "paycore_followed_sequence",
                                 "paycore_follow_failed", "paycore_promotions_total",
                                 "paycore_engine_awaiting_release", "paycore_engine_queue_depth"}) {
          out += std::string(name) + " " + std::to_string(metric(m, name)) + "\n";
        }
      }
    }
    return out;
  }

  // Opens the account `id` (CNY) on the primary.
  void open_account(const std::string& id, const std::string& kind = "customer") {
    ASSERT_NE(call_primary("POST", "/v1/accounts",
                           R"({"request_id":"open-)" + id + R"(","account_id":")" + id +
                               R"(","currency":"CNY","kind":")" + kind + R"("})",
                           15'000),
              0)
        << logs_tail();
  }

  // Process 0 (it becomes the primary, the first to take the lease), the account "alice",
  // then process 1 (a standby).
  void start_pair() {
    ASSERT_TRUE(start(0)) << server(0).log();
    ASSERT_NO_FATAL_FAILURE(open_account("alice"));
    ASSERT_TRUE(start(1)) << server(1).log();
  }

  // (index, port) of the processes running and not paused; any thread.
  std::vector<std::pair<int, std::uint16_t>> live_ports() {
    const std::lock_guard lock(servers_mu_);
    std::vector<std::pair<int, std::uint16_t>> out;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (!servers_[i] || !servers_[i]->running() || paused_ == static_cast<int>(i)) continue;
      out.emplace_back(static_cast<int>(i), servers_[i]->port());
    }
    return out;
  }

  void kill_hard(int i) {
    const std::lock_guard lock(servers_mu_);
    server(i).kill_hard();
  }

  std::int64_t balance_on(int i, const std::string& account = "alice") {
    Client client(server(i).port(), keys_);
    const HttpResponse r =
        client.call(client.operator_signer(), "GET", "/v1/accounts/" + account);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_int(r.body, "/balance").value_or(-1);
  }

  // ---- The mixed load (deposits, payments, refunds) and what it must leave behind ----

  Signer signer_of(const Op& op) const {
    const Client client(0, keys_);
    return op.kind == OpKind::deposit ? client.operator_signer() : client.merchant(op.merchant);
  }

  // Sends the same request to whichever process takes it as primary until one gives a
  // definite answer: anything but no answer (status 0) or 503 (a standby, or a primary not
  // taking writes: docs/api.md says retry). `*lost` is set when an attempt got no answer, as
  // when a kill cut it off: the process may have applied the write before it died. Status 0
  // if `wait_ms` passed.
  HttpResponse send_until_definite(const Signer& who, const std::string& target,
                                   const std::string& body, int wait_ms, bool* lost,
                                   int* which = nullptr) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (Clock::now() < deadline) {
      for (const auto& [i, port] : live_ports()) {
        Client client(port, keys_);
        HttpResponse r = client.call(who, "POST", target, body);
        if (r.status == 0) *lost = true;
        if (r.status == 0 || r.status == 503) continue;
        if (which != nullptr) *which = i;
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
  }

  // Settles `op` (above) and records it in the ledger. Any answer but success is a failure
  // (kept in the ledger): the load is built so that no write is refused.
  bool settle(Op& op, Ledger& ledger, int wait_ms, int* which = nullptr) {
    const HttpResponse r =
        send_until_definite(signer_of(op), op.target(), op.body(), wait_ms, &op.lost, which);
    if (r.status != op.status_ok() || json_string(r.body, op.name_pointer()) != op.name()) {
      ledger.fail("answer " + std::to_string(r.status) + " " + r.body + " to " + op.target() + " " +
                  op.body() + (op.lost ? " (an earlier attempt lost its answer)" : ""));
      return false;
    }
    op.replayed = r.header("idempotent-replayed") == "true";
    op.answer = r.body;
    op.epoch = kills_done_.load();
    ledger.acknowledge(op);
    return true;
  }

  // One writer of the mixed load, until `stop` or its first failure.
  void write_mixed(int writer, const std::stop_token& stop, Ledger& ledger) {
    std::mt19937_64 random(20261126 + static_cast<std::uint64_t>(writer));
    std::map<std::string, std::int64_t> refundable;  // order_id -> amount not refunded yet
    for (int k = 0; !stop.stop_requested(); ++k) {
      Op op = next_op(writer, k, random, refundable);
      if (!settle(op, ledger, 60'000)) return;
      if (op.kind == OpKind::payment) refundable[op.order] = op.amount;
      if (op.kind == OpKind::refund && (refundable[op.order] -= op.amount) == 0) {
        refundable.erase(op.order);
      }
      do {
        std::this_thread::sleep_for(std::chrono::milliseconds(mixed_write_pause_ms));
      } while (writers_held_.load() && !stop.stop_requested());
    }
  }

  // The writers' merchants; the payers, funded, with a mandate for each writer's merchant
  // (docs/api.md "Mandates": a balance payment needs one).
  void open_mixed_accounts(Ledger& ledger) {
    const Client client(0, keys_);
    for (int w = 0; w < mixed_writers_count; ++w) {
      ASSERT_NO_FATAL_FAILURE(open_account(merchant_of(w), "merchant"));
      ledger.open(merchant_of(w));
    }
    for (std::uint64_t p = 0; p < payers_count; ++p) {
      ASSERT_NO_FATAL_FAILURE(open_account(payer_id(p)));
      Op funding;
      funding.account = payer_id(p);
      funding.request_id = "fund-" + payer_id(p);
      funding.amount = payer_funding_minor;
      ASSERT_TRUE(settle(funding, ledger, 15'000)) << ledger.failure();
      for (int w = 0; w < mixed_writers_count; ++w) {
        const std::string pair = payer_id(p) + "-" + merchant_of(w);
        bool lost = false;
        const HttpResponse r =
            send_until_definite(client.operator_signer(), "/v1/mandates",
                                mandate_body("rm-" + pair, "mandate-" + pair, payer_id(p),
                                             merchant_of(w), mandate_amount_max_default),
                                15'000, &lost);
        ASSERT_EQ(r.status, 201) << r.body;
      }
    }
  }

  // Waits until the standby has applied what `primary` holds, the mixed writers held
  // meanwhile. A standby just restarted may still be replaying the stream: killed before it
  // caught up, the primary would have no successor until then, and what the test measured
  // would be that replay, not a failover. Held, the writers do not grow what it replays.
  void wait_standby_caught_up(int primary, KillStats* stats) {
    const auto waited_from = Clock::now();
    writers_held_ = true;
    wait_caught_up(1 - primary, lsn_of(primary), catch_up_wait_ms);
    writers_held_ = false;
    stats->catch_up_wait_ms +=
        std::chrono::duration<double, std::milli>(Clock::now() - waited_from).count();
  }

  // One kill of the primary (SIGKILL), once the standby has caught up and the primary then
  // acknowledged 19 more deposits of this thread's while the mixed writers ran; this thread's
  // next deposit waits for the new primary (the time that takes goes to `failover_ms`). The
  // killed process comes back as a standby on its own data directory; `set_aside_count`
  // counts those that set aside a log holding records the cluster never acknowledged.
  void kill_primary_once(int kill, int* n, Ledger& ledger, KillStats* stats) {
    int primary = -1;
    for (int k = 0; k < 20; ++k, ++*n) {
      Op op = alice_deposit(*n);
      ASSERT_TRUE(settle(op, ledger, 20'000, &primary)) << ledger.failure() << logs_tail();
      if (k == 0) {
        ASSERT_NO_FATAL_FAILURE(wait_standby_caught_up(primary, stats));
      }
    }
    kill_hard(primary);
    ++kills_done_;
    const auto killed_at = Clock::now();
    Op next = alice_deposit((*n)++);
    ASSERT_TRUE(settle(next, ledger, 30'000))
        << "no primary after kill " << kill << ": " << ledger.failure() << "\n"
        << logs_tail();
    stats->failover_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
    // Its own data directory, untouched: a log holding records the cluster never
    // acknowledged is set aside by the process itself, which then starts from the published
    // snapshot.
    ASSERT_TRUE(start(primary)) << server(primary).log() << logs_tail();
    if (server(primary).log().find("never acknowledged: set aside") != std::string::npos) {
      ++stats->set_aside_count;
    }
  }

  // Sends acknowledged writes again, same request_id and body, to the primary: every write
  // whose answer was once lost, and the first and the last of each kind in each epoch between
  // kills (idempotency records written by every primary in turn, the last ones just before it
  // was killed). Each must answer as the first time (status, what it names:
  // replay_difference), with `Idempotent-Replayed: true`; one executed again would also show
  // in the checks that follow. Returns how many were sent.
  int expect_replays(int primary, const Ledger& ledger) {
    const std::vector<Op>& history = ledger.history();
    std::map<std::pair<int, OpKind>, std::size_t> last_at;  // (epoch, kind) -> index
    for (std::size_t k = 0; k < history.size(); ++k) last_at[{history[k].epoch, history[k].kind}] = k;
    std::set<std::pair<int, OpKind>> first_seen;
    Client client(server(primary).port(), keys_);
    Mismatches wrong;
    int sent = 0;
    for (std::size_t k = 0; k < history.size(); ++k) {
      const Op& op = history[k];
      const bool first = first_seen.insert({op.epoch, op.kind}).second;
      if (!op.lost && !first && last_at[{op.epoch, op.kind}] != k) continue;
      const HttpResponse r = client.call(signer_of(op), "POST", op.target(), op.body());
      ++sent;
      const std::string difference = replay_difference(op, r.body);
      if (r.status != op.status_ok() || r.header("idempotent-replayed") != "true" ||
          !difference.empty()) {
        wrong.add("replay of " + op.target() + " " + op.body() + ": " + std::to_string(r.status) +
                  " replayed=" + r.header("idempotent-replayed") + " " + difference + r.body +
                  "; first answer " + op.answer);
      }
    }
    EXPECT_TRUE(wrong.empty()) << wrong.summary();
    return sent;
  }

  // The log position a read on process `i` reflects (Paycore-Lsn, docs/api.md "Headers").
  std::uint64_t lsn_of(int i) {
    Client client(server(i).port(), keys_);
    const HttpResponse r = client.call(client.operator_signer(), "GET", "/v1/accounts/alice");
    const std::string lsn = r.header("paycore-lsn");
    return r.status == 200 && !lsn.empty() ? std::stoull(lsn) : 0;
  }

  // Waits (up to `wait_ms`) until standby `i` has applied what the primary had at `lsn`.
  void wait_caught_up(int i, std::uint64_t lsn, int wait_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (lsn_of(i) < lsn && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GE(lsn_of(i), lsn) << "standby " << i << " did not catch up\n" << logs_tail();
  }

  // Every acknowledged payment of `merchant` listed exactly once on process `i`, as the ledger
  // says (amount, refunds, status, request_id), and no payment the ledger does not know.
  void expect_payments_listed(int i, const Ledger& ledger, const std::string& merchant) {
    Client client(server(i).port(), keys_);
    std::map<std::string, int> listed_count;  // order_id -> times listed
    Mismatches wrong;
    std::string query = "limit=100";
    for (bool more = true; more;) {
      const HttpResponse r = client.call(client.merchant(merchant), "GET", "/v1/payments?" + query);
      ASSERT_EQ(r.status, 200) << r.body;
      const ListPage page(r.body);
      std::string order;
      for (std::size_t k = 0; k < page.size(); ++k) {
        order = page.text(k, "order_id");
        ++listed_count[order];
        const auto it = ledger.payments().find(order);
        if (it == ledger.payments().end()) continue;  // reported below
        const PaymentModel& p = it->second;
        const char* status = p.refunded == p.amount ? "REFUNDED" : "PAID";
        if (page.number(k, "amount") != p.amount ||
            page.number(k, "refunded_amount") != p.refunded ||
            page.text(k, "request_id") != p.request_id || page.text(k, "status") != status) {
          wrong.add("payment " + order + " is not as acknowledged");
        }
      }
      more = page.size() > 0 && r.body.find("\"has_more\":true") != std::string::npos;
      query = "limit=100&starting_after=" + order;
    }
    for (const auto& [order, p] : ledger.payments()) {
      if (p.merchant != merchant) continue;
      if (listed_count[order] != 1) {
        wrong.add("payment " + order + " listed " + std::to_string(listed_count[order]) + " times");
      }
    }
    for (const auto& [order, times] : listed_count) {
      if (ledger.payments().count(order) == 0) wrong.add("a payment nobody was told of: " + order);
    }
    EXPECT_TRUE(wrong.empty()) << "process " << i << ", " << merchant << ": " << wrong.summary();
  }

  // Each acknowledged refund listed exactly once under its payment on process `i`, with its
  // amount, and no other refund. Thousands of payments: the reads are pipelined, 32 at a time
  // (the server's --pipeline-depth), on one connection.
  void expect_refunds_listed(int i, const Ledger& ledger) {
    std::vector<const std::pair<const std::string, PaymentModel>*> refunded;
    for (const auto& entry : ledger.payments()) {
      if (!entry.second.refunds.empty()) refunded.push_back(&entry);
    }
    Connection connection(server(i).port());
    const Client client(0, keys_);
    Mismatches wrong;
    for (std::size_t from = 0; from < refunded.size(); from += 32) {
      const std::size_t to = std::min(refunded.size(), from + 32);
      std::string requests;
      for (std::size_t k = from; k < to; ++k) {
        requests += Client::signed_request(client.merchant(refunded[k]->second.merchant), "GET",
                                           "/v1/payments/" + refunded[k]->first + "/refunds", "");
      }
      ASSERT_TRUE(connection.send_all(requests));
      for (std::size_t k = from; k < to; ++k) {
        const HttpResponse r = connection.read_response();
        ASSERT_NE(r.status, 0) << "process " << i << " closed the connection";
        const ListPage page(r.body);
        std::map<std::string, std::int64_t> listed;  // refund request_id -> amount
        for (std::size_t e = 0; e < page.size(); ++e) {
          listed[page.text(e, "request_id")] = page.number(e, "amount");
        }
        const PaymentModel& p = refunded[k]->second;
        if (r.status != 200 || page.size() != p.refunds.size() || listed != p.refunds) {
          wrong.add("refunds of " + refunded[k]->first + ": " + std::to_string(r.status) + " " +
                    r.body);
        }
      }
    }
    EXPECT_TRUE(wrong.empty()) << "process " << i << ": " << wrong.summary();
  }

  // Every account's balance on process `i` is what the acknowledged writes make it.
  void expect_balances(int i, const Ledger& ledger) {
    Client client(server(i).port(), keys_);
    Mismatches wrong;
    for (const auto& [account, expected] : ledger.balances()) {
      if (account == system_external) continue;
      const HttpResponse r =
          client.call(client.operator_signer(), "GET", "/v1/accounts/" + account);
      const std::int64_t balance = json_int(r.body, "/balance").value_or(-1);
      if (r.status != 200 || balance != expected) {
        wrong.add(account + ": " + std::to_string(balance) + ", acknowledged " +
                  std::to_string(expected));
      }
    }
    EXPECT_TRUE(wrong.empty()) << "process " << i << ": " << wrong.summary();
  }

  // Process `i`'s whole state, as a snapshot taken now and exported (`paycore snapshot
  // export`): all balances, system accounts included, sum to zero; `external` is minus the
  // acknowledged deposits (each counted once); accounts, payments and refunds are exactly as
  // many as were acknowledged.
  void expect_export_sums_to_zero(int i, const Ledger& ledger) {
    Client client(server(i).port(), keys_);
    const HttpResponse r = client.call(client.operator_signer(), "POST", "/v1/admin/snapshot");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string command = std::string(PAYCORE_BINARY) + " snapshot export --format csv '" +
                                json_string(r.body, "/path").value_or("") + "'";
    FILE* pipe = ::popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string csv;
    char chunk[65536];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) csv.append(chunk, n);
    ASSERT_EQ(::pclose(pipe), 0) << command;
    std::int64_t sum = 0;
    std::map<std::string, std::int64_t> balances;      // accounts and system accounts
    std::map<std::string, std::size_t> records_count;  // by the first column
    std::istringstream lines(csv);
    for (std::string line; std::getline(lines, line);) {
      std::vector<std::string> fields;
      std::istringstream cells(line);
      for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
      if (fields.empty() || fields[0] == "record") continue;
      ++records_count[fields[0]];
      // account,id,kind,currency,balance,...  system,id,currency,balance
      const std::size_t at = fields[0] == "account" ? 4 : fields[0] == "system" ? 3 : 0;
      if (at == 0 || fields.size() <= at) continue;
      balances[fields[1]] = std::stoll(fields[at]);
      sum += balances[fields[1]];
    }
    std::size_t refunds_count = 0;
    for (const auto& [order, p] : ledger.payments()) refunds_count += p.refunds.size();
    EXPECT_EQ(sum, 0) << "process " << i << ": balances do not sum to zero";
    EXPECT_EQ(balances, ledger.balances()) << "process " << i;
    EXPECT_EQ(records_count["account"], ledger.balances().size() - 1) << "process " << i;
    EXPECT_EQ(records_count["payment"], ledger.payments().size()) << "process " << i;
    EXPECT_EQ(records_count["refund"], refunds_count) << "process " << i;
  }

  // What the change-data capture stream PAYCORE_EVENTS_it holds (cdc/cdc_publisher.hpp), read
  // from sequence `from` on: each message's event key (from its id), merchant subject, type,
  // and the payment's order_id and refund's request_id from its JSON.
  struct CdcEvent {
    std::uint64_t lsn = 0;
    std::uint64_t index = 0;
    std::string subject, type, order, refund;
  };
  std::uint64_t read_cdc(std::uint64_t from, std::vector<CdcEvent>* out) {
    repl::LinkConfig l;
    l.urls = nats_.urls();
    l.timeout_ms = 2000;
    auto link = repl::NatsLink::connect(l);
    if (!link.is_ok()) return from;
    const std::string stream = "PAYCORE_EVENTS_it";
    auto position = repl::read_position((*link)->js(), stream);
    if (!position.is_ok()) return from;
    simdjson::dom::parser parser;
    for (; from <= position->last_sequence; ++from) {
      natsMsg* msg = nullptr;
      jsErrCode error{};
      if (js_GetMsg(&msg, (*link)->js(), stream.c_str(), from, nullptr, &error) != NATS_OK) break;
      CdcEvent e;
      e.subject = natsMsg_GetSubject(msg);
      const std::string body(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      natsMsg_Destroy(msg);
      simdjson::dom::element doc;
      if (parser.parse(body).get(doc) != simdjson::SUCCESS) continue;
      const auto text = [&](const char* pointer) {
        std::string_view v;
        return doc.at_pointer(pointer).get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
      };
      std::sscanf(text("/id").c_str(), "evt_%lu_%lu", &e.lsn, &e.index);
      e.type = text("/type");
      e.order = text("/data/object/order_id");
      e.refund = text("/data/refund/request_id");
      out->push_back(std::move(e));
    }
    return from;
  }

  // The stream holds, in log order and each once, a payment.created and a payment.paid for
  // every acknowledged payment and a payment.refunded for every acknowledged refund, on its
  // merchant's subject, and no other payment's or refund's (waiting up to 60 s for the
  // primary to publish what it derived).
  void expect_cdc_stream(const Ledger& ledger) {
    std::size_t refunds_count = 0;
    for (const auto& entry : ledger.payments()) refunds_count += entry.second.refunds.size();
    const std::size_t wanted = 2 * ledger.payments().size() + refunds_count;
    std::vector<CdcEvent> got;
    std::uint64_t next = 1;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (got.size() < wanted && Clock::now() < deadline) {
      next = read_cdc(next, &got);
      if (got.size() < wanted) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    Mismatches wrong;
    std::map<std::string, std::map<std::string, int>> by_order;  // order -> type -> count
    std::map<std::string, int> refunds_seen;
    for (std::size_t k = 0; k < got.size(); ++k) {
      const CdcEvent& e = got[k];
      if (k > 0 && std::pair(e.lsn, e.index) <= std::pair(got[k - 1].lsn, got[k - 1].index)) {
        wrong.add("out of order or twice: evt_" + std::to_string(e.lsn) + "_" + std::to_string(e.index));
      }
      const auto p = ledger.payments().find(e.order);
      if (p == ledger.payments().end()) {
        wrong.add("an event of a payment nobody was told of: " + e.order + " " + e.type);
        continue;
      }
      if (e.subject != "paycore.it.events." + p->second.merchant) wrong.add("subject " + e.subject + " for " + e.order);
      ++by_order[e.order][e.type];
      if (e.type == "payment.refunded") ++refunds_seen[e.refund];
    }
    for (const auto& [order, p] : ledger.payments()) {
      const auto& types = by_order[order];
      const auto count = [&](const char* t) { return types.count(t) ? types.at(t) : 0; };
      if (count("payment.created") != 1 || count("payment.paid") != 1) wrong.add("events of " + order);
      for (const auto& refund : p.refunds) {
        if (refunds_seen[refund.first] != 1) wrong.add("refund " + refund.first + " of " + order);
      }
    }
    EXPECT_EQ(got.size(), wanted);
    EXPECT_TRUE(wrong.empty()) << "the CDC stream: " << wrong.summary();
    std::printf("cdc: %zu events in the stream for %zu payments and %zu refunds\n", got.size(),
                ledger.payments().size(), refunds_count);
  }

  // An endpoint for each writer's merchant on `url`, wanting payment.paid, made on the primary
  // (a standby answers 503 not_primary).
  void create_endpoints(const std::string& url) {
    const Client client(0, keys_);
    for (int w = 0; w < mixed_writers_count; ++w) {
      const std::string body = R"({"request_id":"we-)" + std::to_string(w) + R"(","url":")" + url +
                               R"(","events":["payment.paid"]})";
      bool lost = false;
      const HttpResponse r = send_until_definite(client.merchant(merchant_of(w)), "/v1/webhook_endpoints",
                                                 body, 10'000, &lost);
      ASSERT_EQ(r.status, 201) << r.body << logs_tail();
    }
  }

  // The receiver got a payment.paid of every acknowledged payment, at least once (waiting up to
  // 60 s for the primary to send what it holds), and none of a payment nobody was told of.
  void expect_webhooks(const Ledger& ledger, const webhooks::test::TestReceiver& receiver) {
    std::map<std::string, int> paid;  // order -> times received
    const auto read = [&] {
      paid.clear();
      simdjson::dom::parser parser;
      for (const auto& request : receiver.requests()) {
        simdjson::dom::element doc;
        std::string_view type, order;
        if (parser.parse(request.body).get(doc) != simdjson::SUCCESS) continue;
        if (doc.at_pointer("/type").get(type) != simdjson::SUCCESS || type != "payment.paid") continue;
        if (doc.at_pointer("/data/object/order_id").get(order) == simdjson::SUCCESS) ++paid[std::string(order)];
      }
      return std::all_of(ledger.payments().begin(), ledger.payments().end(),
                         [&](const auto& p) { return paid.count(p.first) != 0; });
    };
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!read() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Mismatches wrong;
    std::size_t twice = 0;
    for (const auto& [order, p] : ledger.payments()) {
      if (paid.count(order) == 0) wrong.add("no payment.paid webhook for " + order);
    }
    for (const auto& [order, times] : paid) {
      if (ledger.payments().count(order) == 0) wrong.add("a webhook of a payment nobody was told of: " + order);
      twice += static_cast<std::size_t>(times - 1);
    }
    EXPECT_TRUE(wrong.empty()) << "webhooks: " << wrong.summary() << logs_tail();
    // A new primary sends again only what it had not heard was delivered (the changes stream):
    // without it, every kill would send every earlier payment's webhook again.
    EXPECT_LT(twice, ledger.payments().size() / 10) << "webhooks sent again by each new primary";
    std::printf("webhooks: %zu payment.paid deliveries for %zu payments, %zu of them again (a new "
                "primary sending what it had not heard was delivered)\n",
                receiver.requests().size(), ledger.payments().size(), twice);
  }

  // Everything the clients were told, on process `i` (the primary or a standby).
  void expect_acknowledged_state(int i, const Ledger& ledger) {
    for (int w = 0; w < mixed_writers_count; ++w) {
      ASSERT_NO_FATAL_FAILURE(expect_payments_listed(i, ledger, merchant_of(w)));
    }
    ASSERT_NO_FATAL_FAILURE(expect_refunds_listed(i, ledger));
    expect_balances(i, ledger);
    ASSERT_NO_FATAL_FAILURE(expect_export_sums_to_zero(i, ledger));
  }

  std::string dir_;
  std::string keys_path_;
  NatsCluster nats_;
  std::shared_ptr<const auth::Keys> keys_;
  std::mutex servers_mu_;  // servers_ and paused_: the background writers read them
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  int paused_ = -1;  // a process stopped with SIGSTOP: not asked (it would not answer)
  std::atomic<int> kills_done_{0};         // of the primary, so far: each write's epoch
  std::atomic<bool> writers_held_{false};  // the mixed writers wait (wait_standby_caught_up)
};

TEST_F(Failover, EveryAcknowledgedPaymentRefundAndDepositSurvivesEachKillOfThePrimary) {
  ASSERT_NO_FATAL_FAILURE(start_pair());
  Ledger ledger;
  ledger.open("alice");
  ASSERT_NO_FATAL_FAILURE(open_mixed_accounts(ledger));
  const webhooks::test::TestReceiver receiver([](std::size_t) { return webhooks::test::Reply::kOk; });
  ASSERT_NO_FATAL_FAILURE(create_endpoints(receiver.url()));
  // Concurrent writers: their requests are in flight when the kills come.
  std::vector<std::jthread> writers;  // joined on every return
  for (int w = 0; w < mixed_writers_count; ++w) {
    writers.emplace_back([&, w](const std::stop_token& stop) { write_mixed(w, stop, ledger); });
  }
  int n = 0;
  KillStats kills;
  for (int kill = 0; kill < kills_wanted(); ++kill) {
    ASSERT_NO_FATAL_FAILURE(kill_primary_once(kill, &n, ledger, &kills));
  }
  for (std::jthread& writer : writers) writer.request_stop();
  for (std::jthread& writer : writers) writer.join();
  ASSERT_EQ(ledger.failure(), "") << logs_tail();
  // One more write names the primary; the other process is the standby.
  int primary = -1;
  Op last = alice_deposit(n);
  ASSERT_TRUE(settle(last, ledger, 10'000, &primary)) << ledger.failure();
  const int standby = 1 - primary;
  // Every account on the standby too: it has applied all the primary holds.
  ASSERT_NO_FATAL_FAILURE(wait_caught_up(standby, lsn_of(primary), catch_up_wait_ms));
  // Before the replays: one of them executed as a new write would hide a missing write.
  ASSERT_NO_FATAL_FAILURE(expect_acknowledged_state(primary, ledger));
  ASSERT_NO_FATAL_FAILURE(expect_acknowledged_state(standby, ledger));
  const int replays_sent = expect_replays(primary, ledger);
  // The replays changed nothing: no money moved, no payment or refund was added.
  ASSERT_NO_FATAL_FAILURE(expect_export_sums_to_zero(primary, ledger));
  ASSERT_NO_FATAL_FAILURE(expect_cdc_stream(ledger));
  ASSERT_NO_FATAL_FAILURE(expect_webhooks(ledger, receiver));

  std::vector<double>& failover_ms = kills.failover_ms;
  std::sort(failover_ms.begin(), failover_ms.end());
  std::size_t lost_count = 0, lost_replayed_count = 0;
  for (const Op& op : ledger.history()) {
    lost_count += op.lost ? 1 : 0;
    lost_replayed_count += op.lost && op.replayed ? 1 : 0;
  }
  std::printf(
      "failover: %zu kills, p50 %.0f ms, max %.0f ms; %d killed primaries set their log aside; "
      "%.0f ms waiting for the standby to catch up before kills; "
      "acknowledged %zu deposits, %zu payments, %zu refunds; %zu lost an answer in a kill "
      "(%zu deposits, %zu payments, %zu refunds) and settled once on a retry, %zu of them "
      "replayed; %d acknowledged requests replayed at the end\n",
      failover_ms.size(), failover_ms[failover_ms.size() / 2], failover_ms.back(),
      kills.set_aside_count, kills.catch_up_wait_ms, ledger.count(OpKind::deposit),
      ledger.count(OpKind::payment), ledger.count(OpKind::refund), lost_count,
      ledger.count(OpKind::deposit, true), ledger.count(OpKind::payment, true),
      ledger.count(OpKind::refund, true), lost_replayed_count, replays_sent);
  EXPECT_GT(ledger.count(OpKind::refund), 0u) << "too little load to be a test";
  // With this many kills some write is always in flight at one of them (11 to 34 in 20-kill
  // runs here): none would leave the retry untested. Fewer kills (PAYCORE_FAILOVER_KILLS) may.
  if (kills_wanted() >= 10) {
    EXPECT_GT(lost_count, 0u) << "no write was in flight at any kill";
  }
}

TEST_F(Failover, APausedPrimaryIsReplacedAndAnswersNoSuccessAfterwards) {
  ASSERT_NO_FATAL_FAILURE(start_pair());
  // A standby refuses a write and names the primary (once it has read the lease).
  {
    const std::string expected = "http://127.0.0.1:" + std::to_string(server(0).port());
    Client standby(server(1).port(), keys_);
    HttpResponse refused;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    do {
      refused = standby.call(standby.operator_signer(), "POST", "/v1/accounts/alice/deposits",
                             deposit_body(500));
    } while (refused.headers["paycore-primary"] != expected && Clock::now() < deadline);
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(json_string(refused.body, "/error/code").value_or(""), "not_primary");
    EXPECT_EQ(refused.headers["paycore-primary"], expected);
    EXPECT_FALSE(refused.headers["paycore-lsn"].empty());
  }
  std::int64_t acknowledged_sum = 0;
  int n = 0;
  for (; n < 10; ++n) {
    ASSERT_NE(call_primary("POST", "/v1/accounts/alice/deposits", deposit_body(n), 10'000), 0);
    acknowledged_sum += n + 1;
  }
  // Past its lease: the standby takes over while the old primary sleeps.
  ASSERT_EQ(::kill(server(0).pid(), SIGSTOP), 0);
  paused_ = 0;
  int primary = -1;
  for (int k = 0; k < 5; ++k, ++n) {
    ASSERT_NE(call_primary("POST", "/v1/accounts/alice/deposits", deposit_body(n), 20'000,
                           &primary),
              0);
    acknowledged_sum += n + 1;
  }
  ASSERT_EQ(primary, 1);
  // Woken, the old primary finds its lease taken (or its next append refused): a write sent
  // to it now is never a success, and it stops.
  ASSERT_EQ(::kill(server(0).pid(), SIGCONT), 0);
  paused_ = -1;
  Client old(server(0).port(), keys_);
  const HttpResponse late = old.call(old.operator_signer(), "POST", "/v1/accounts/alice/deposits",
                                     deposit_body(1000));
  EXPECT_NE(late.status, 200) << late.body;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (server(0).log().find("another process is primary") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(server(0).log().find("another process is primary"), std::string::npos)
      << server(0).log();
  EXPECT_EQ(balance_on(1), acknowledged_sum);
}

}  // namespace
}  // namespace paycore::it
