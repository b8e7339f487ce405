// Failover of real `paycore serve` processes sharing one log stream on a real nats-server
// (issue 14; docs/replication.md): the primary is SIGKILLed while a client writes; a standby
// takes the lease and becomes the primary; every acknowledged deposit is there exactly once.
// The killed process comes back as a standby (with an empty data directory if its log held
// records the cluster never acknowledged, which it cannot yet rejoin with).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <thread>
#include <vector>

#include "auth/keys.hpp"
#include "client.hpp"
#include "tests/support/nats_cluster.hpp"

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
            "--replication-ack-timeout-ms", "1000", "--snapshot-every-records", "2000"};
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

  // Opens the customer account `id` (CNY) on the primary.
  void open_account(const std::string& id) {
    ASSERT_NE(call_primary("POST", "/v1/accounts",
                           R"({"request_id":"open-)" + id + R"(","account_id":")" + id +
                               R"(","currency":"CNY","kind":"customer"})",
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

  std::string dir_;
  std::string keys_path_;
  NatsCluster nats_;
  std::shared_ptr<const auth::Keys> keys_;
  std::mutex servers_mu_;  // servers_ and paused_: the background writer reads them
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  int paused_ = -1;  // a process stopped with SIGSTOP: not asked (it would not answer)
};

std::string deposit_body(int n) {
  return R"({"request_id":"dep-)" + std::to_string(n) + R"(","amount":)" + std::to_string(n + 1) +
         R"(,"currency":"CNY"})";
}

TEST_F(Failover, EveryAcknowledgedDepositSurvivesEachKillOfThePrimary) {
  ASSERT_NO_FATAL_FAILURE(start_pair());
  ASSERT_NO_FATAL_FAILURE(open_account("bob"));
  // A second writer, concurrently: its requests are in flight when the kills come. Each is
  // retried with its own request_id until acknowledged.
  std::atomic<std::int64_t> bob_sum{0};
  std::jthread writer([&](const std::stop_token& stop) {  // joined on every return
    for (int k = 0; !stop.stop_requested(); ++k) {
      const std::string body = R"({"request_id":"bob-)" + std::to_string(k) +
                               R"(","amount":)" + std::to_string(k % 7 + 1) + R"(,"currency":"CNY"})";
      if (call_primary("POST", "/v1/accounts/bob/deposits", body, 60'000) == 0) return;
      bob_sum += k % 7 + 1;
    }
  });
  std::int64_t acknowledged_sum = 0;
  int n = 0;
  std::vector<double> failover_ms;
  int restarted_empty = 0;
  for (int kill = 0; kill < kills_wanted(); ++kill) {
    int primary = -1;
    for (int k = 0; k < 20; ++k, ++n) {  // acknowledged before the kill
      ASSERT_NE(call_primary("POST", "/v1/accounts/alice/deposits", deposit_body(n), 20'000,
                             &primary),
                0);
      acknowledged_sum += n + 1;
    }
    kill_hard(primary);
    const auto killed_at = Clock::now();
    // The same request is retried until the new primary answers it: it settles once.
    ASSERT_NE(call_primary("POST", "/v1/accounts/alice/deposits", deposit_body(n), 30'000), 0)
        << "no primary after kill " << kill << "\n" << logs_tail();
    failover_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
    acknowledged_sum += n + 1;
    ++n;
    // The killed process rejoins as a standby; one whose log holds records the cluster never
    // acknowledged sets that log aside and starts from the published snapshot.
    ASSERT_TRUE(start(primary)) << server(primary).log();
    if (server(primary).log().find("never acknowledged: set aside") != std::string::npos) {
      ++restarted_empty;
    }
  }
  writer.request_stop();
  writer.join();
  int primary = -1;
  ASSERT_NE(call_primary("GET", "/v1/accounts/alice", "", 10'000, &primary), 0);
  EXPECT_EQ(balance_on(primary), acknowledged_sum);
  EXPECT_EQ(balance_on(primary, "bob"), bob_sum.load());
  EXPECT_GT(bob_sum.load(), 0);
  double max_ms = 0;
  for (double ms : failover_ms) max_ms = std::max(max_ms, ms);
  std::sort(failover_ms.begin(), failover_ms.end());
  std::printf("failover: %zu kills, p50 %.0f ms, max %.0f ms; %d killed primaries set their log aside\n",
              failover_ms.size(), failover_ms[failover_ms.size() / 2], max_ms, restarted_empty);
  // Both processes end with the same balance: the standby applied everything too.
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    if (static_cast<int>(i) == primary) continue;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    // Both accounts: bob's last deposit may have been acknowledged after alice's.
    while ((balance_on(static_cast<int>(i)) != acknowledged_sum ||
            balance_on(static_cast<int>(i), "bob") != bob_sum.load()) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(balance_on(static_cast<int>(i)), acknowledged_sum) << "standby " << i;
    EXPECT_EQ(balance_on(static_cast<int>(i), "bob"), bob_sum.load()) << "standby " << i;
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
