// A cluster member that starts with an empty data directory (issue 14; docs/replication.md
// "Bootstrap"), with real `paycore serve` processes on a real nats-server: the primary
// publishes its snapshot to JetStream; the log stream is purged below it, as its retention
// would; a new member starts from the published snapshot, follows the stream after it and
// answers reads with what the primary acknowledged.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "auth/keys.hpp"
#include "client.hpp"
#include "core/snapshot_store.hpp"
#include "repl/nats_link.hpp"
#include "repl/stream_format.hpp"
#include "tests/support/nats_cluster.hpp"

namespace paycore::it {
namespace {
using paycore::testing::NatsCluster;
using Clock = std::chrono::steady_clock;

class Bootstrap : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = make_temp_dir("bootstrap");
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
    keys_path_ = dir_ + "/keys.json";
  }
  void TearDown() override {
    for (auto& s : servers_) {
      if (s.running()) s.kill_hard();
    }
    remove_tree(dir_);
  }

  std::vector<std::string> args(const std::string& cluster = "bt") const {
    std::vector<std::string> a = {"--nats-url", nats_.urls(), "--cluster-name", cluster,
                                  "--log-stream-replicas", "1", "--archive=false",
                                  "--lease-timeout-ms", "1000", "--lease-heartbeat-ms", "100",
                                  "--snapshot-publish-interval-ms", "100"};
    if (events_) a.emplace_back("--events=true");
    return a;
  }
  std::string data_dir(int i) const { return dir_ + "/node" + std::to_string(i); }
  bool start(int i, const std::string& cluster = "bt") {
    const bool up =
        servers_[static_cast<std::size_t>(i)].start(data_dir(i), keys_path_, args(cluster));
    if (up && keys_ == nullptr) {
      StatusOr<std::shared_ptr<const auth::Keys>> loaded = auth::keys_load(keys_path_);
      if (loaded.is_ok()) keys_ = *loaded;
    }
    return up;
  }
  ServerProcess& server(int i) { return servers_[static_cast<std::size_t>(i)]; }
  HttpResponse call(int i, const std::string& method, const std::string& target,
                    const std::string& body = {}) {
    Client client(server(i).port(), keys_);
    return client.call(client.operator_signer(), method, target, body);
  }
  // Opens `account` on process i once it is primary (it takes the lease within seconds).
  void open_account_on(int i, const std::string& account, const std::string& kind = "customer") {
    const std::string body = R"({"request_id":"open-)" + account + R"(","account_id":")" +
                             account + R"(","currency":"CNY","kind":")" + kind + R"("})";
    HttpResponse r = call(i, "POST", "/v1/accounts", body);
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    while (r.status != 201 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      r = call(i, "POST", "/v1/accounts", body);
    }
    ASSERT_EQ(r.status, 201) << r.body << server(i).log();
  }
  std::int64_t metric_of(int i, const std::string& name) {
    Client client(server(i).port(), keys_);
    return metric(client.get("/metrics").body, name);
  }

  // Purges the log stream's messages that hold only records at or below `lsn`, as its
  // retention would have: what follows the snapshot stays. Returns how many went.
  std::uint64_t purge_log_through(std::uint64_t lsn) {
    repl::LinkConfig link;
    link.urls = nats_.urls();
    StatusOr<std::unique_ptr<repl::NatsLink>> connected = repl::NatsLink::connect(link);
    EXPECT_TRUE(connected.is_ok()) << connected.status().to_string();
    if (!connected.is_ok()) return 0;
    jsCtx* js = (*connected)->js();
    const std::string stream = repl::log_stream_name("bt");
    StatusOr<repl::StreamPosition> position = repl::read_position(js, stream);
    EXPECT_TRUE(position.is_ok());
    std::uint64_t keep_from = position->first_sequence;
    while (keep_from <= position->last_sequence) {
      StatusOr<repl::StoredMessage> m = repl::read_message(js, stream, keep_from);
      EXPECT_TRUE(m.is_ok()) << m.status().to_string();
      if (!m.is_ok() || m->last_lsn > lsn) break;
      ++keep_from;
    }
    jsOptions options;
    jsOptions_Init(&options);
    options.Stream.Purge.Sequence = keep_from;
    jsErrCode error{};
    EXPECT_EQ(js_PurgeStream(js, stream.c_str(), &options, &error), NATS_OK) << error;
    return keep_from - position->first_sequence;
  }

  // Snapshots process 0 and waits until it has published the snapshot: its LSN.
  std::int64_t snapshot_published() {
    const HttpResponse snapshot = call(0, "POST", "/v1/admin/snapshot");
    EXPECT_EQ(snapshot.status, 200) << snapshot.body;
    const std::int64_t snapshot_lsn = json_int(snapshot.body, "/lsn").value_or(0);
    EXPECT_GT(snapshot_lsn, 0);
    const auto published_by = Clock::now() + std::chrono::seconds(15);
    while (metric_of(0, "paycore_snapshot_published_lsn") < snapshot_lsn &&
           Clock::now() < published_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GE(metric_of(0, "paycore_snapshot_published_lsn"), snapshot_lsn) << server(0).log();
    return snapshot_lsn;
  }

  bool events_ = false;  // --events=true
  std::string dir_;
  std::string keys_path_;
  NatsCluster nats_;
  std::shared_ptr<const auth::Keys> keys_;
  std::vector<ServerProcess> servers_ = std::vector<ServerProcess>(3);
};

std::string deposit_body(int n) {
  return R"({"request_id":"dep-)" + std::to_string(n) + R"(","amount":)" + std::to_string(n + 1) +
         R"(,"currency":"CNY"})";
}

TEST_F(Bootstrap, AMemberStartedEmptyBeginsFromThePublishedSnapshotAndCatchesUp) {
  ASSERT_TRUE(start(0)) << server(0).log();
  ASSERT_NO_FATAL_FAILURE(open_account_on(0, "alice"));  // process 0 is alone: the primary
  std::int64_t expected = 0;  // deposit n is n + 1
  for (int n = 0; n < 50; ++n) {
    ASSERT_EQ(call(0, "POST", "/v1/accounts/alice/deposits", deposit_body(n)).status, 200);
    expected += n + 1;
  }
  const std::int64_t snapshot_lsn = snapshot_published();
  ASSERT_FALSE(HasFailure());
  std::string last_lsn;
  for (int n = 50; n < 70; ++n) {
    const HttpResponse d = call(0, "POST", "/v1/accounts/alice/deposits", deposit_body(n));
    ASSERT_EQ(d.status, 200) << d.body;
    expected += n + 1;
    last_lsn = d.header("paycore-lsn");
  }
  ASSERT_GT(purge_log_through(static_cast<std::uint64_t>(snapshot_lsn)), 0u);

  ASSERT_TRUE(start(1)) << server(1).log();
  EXPECT_NE(server(1).log().find("bootstrap: installed the published snapshot"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(
      snapshot_path(data_dir(1) + "/snapshots", static_cast<std::uint64_t>(snapshot_lsn))));
  Client standby(server(1).port(), keys_);
  const HttpResponse read = standby.raw(Client::signed_request(
      standby.operator_signer(), "GET", "/v1/accounts/alice", "", 0, {},
      "Paycore-Min-Lsn: " + last_lsn + "\r\n"));
  ASSERT_EQ(read.status, 200) << read.body << server(1).log();
  EXPECT_EQ(json_int(read.body, "/balance").value_or(-1), expected);
  // The standby's log starts after the snapshot: it never had the purged records.
  for (const auto& entry : std::filesystem::directory_iterator(data_dir(1) + "/wal")) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".log")) {
      EXPECT_GE(std::stoull(name.substr(0, 20)), static_cast<std::uint64_t>(snapshot_lsn) + 1)
          << name;
    }
  }
  EXPECT_EQ(metric_of(1, "paycore_follow_failed"), 0);
}

// The event ids in a GET /v1/events answer, in its order (ids are "evt_…"; std::regex is
// avoided: GCC 12 warns inside it under the sanitizer builds' -Werror).
std::vector<std::string> event_ids(const HttpResponse& r) {
  std::vector<std::string> ids;
  const std::string key = R"("id":"evt_)";
  for (std::size_t at = r.body.find(key); at != std::string::npos; at = r.body.find(key, at)) {
    const std::size_t from = at + key.size() - 4;  // at "evt_"
    const std::size_t end = r.body.find('"', from);
    if (end == std::string::npos) break;
    ids.push_back(r.body.substr(from, end - from));
    at = end;
  }
  return ids;
}

// A member started from the published snapshot derives the events of the records before it
// from the log stream, since its own log starts after the snapshot: it lists the same events
// as the primary, and so holds the same webhook deliveries (docs/events.md "Gaps"). Without
// it, a member that set its log aside and became primary never sent those payments' webhooks.
TEST_F(Bootstrap, AMemberStartedFromTheSnapshotDerivesTheEventsBeforeItFromTheStream) {
  events_ = true;
  ASSERT_TRUE(start(0)) << server(0).log();
  ASSERT_NO_FATAL_FAILURE(open_account_on(0, "alice"));
  ASSERT_NO_FATAL_FAILURE(open_account_on(0, "m_001", "merchant"));
  ASSERT_EQ(call(0, "POST", "/v1/accounts/alice/deposits", deposit_body(1'000'000)).status, 200);
  Client primary(server(0).port(), keys_);
  ASSERT_EQ(grant_mandate(primary, "alice", "m_001").status, 201);
  const auto pay = [&](int n) {
    const std::string order = "o-" + std::to_string(n);
    const std::string body = R"({"request_id":"rp-)" + order + R"(","order_id":")" + order +
                             R"(","amount":100,"currency":"CNY","channel":"balance","payer_account_id":"alice"})";
    const HttpResponse r = primary.call(primary.merchant("m_001"), "POST", "/v1/payments", body);
    ASSERT_EQ(r.status, 201) << r.body;
  };
  for (int n = 0; n < 10; ++n) ASSERT_NO_FATAL_FAILURE(pay(n));
  ASSERT_GT(snapshot_published(), 0);
  ASSERT_FALSE(HasFailure());
  for (int n = 10; n < 15; ++n) ASSERT_NO_FATAL_FAILURE(pay(n));

  ASSERT_TRUE(start(1)) << server(1).log();
  EXPECT_NE(server(1).log().find("bootstrap: installed the published snapshot"), std::string::npos);
  const auto listed = [&](int i) {
    Client client(server(i).port(), keys_);
    return event_ids(client.call(client.merchant("m_001"), "GET", "/v1/events?limit=100"));
  };
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  std::vector<std::string> on_primary = listed(0);
  while (on_primary.size() < 30 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    on_primary = listed(0);
  }
  ASSERT_EQ(on_primary.size(), 30U) << "payment.created and payment.paid of each";
  while (listed(1) != on_primary && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(listed(1), on_primary) << server(1).log();
  EXPECT_GT(metric_of(1, "paycore_events_shared_log_records_total"), 0) << server(1).log();
  EXPECT_EQ(server(1).log().find("the log no longer holds records"), std::string::npos) << server(1).log();
}

// A member whose log is another cluster's history is refused and its log left where it is: only
// records the stream's own history never acknowledged are ever set aside by themselves.
TEST_F(Bootstrap, ALogOfAnotherHistoryIsNeverSetAside) {
  ASSERT_TRUE(start(0)) << server(0).log();
  ASSERT_NO_FATAL_FAILURE(open_account_on(0, "alice"));
  for (int n = 0; n < 5; ++n) {
    ASSERT_EQ(call(0, "POST", "/v1/accounts/alice/deposits", deposit_body(n)).status, 200);
  }
  // Process 1 writes a history of its own as the primary of cluster "other".
  ASSERT_TRUE(start(1, "other")) << server(1).log();
  ASSERT_NO_FATAL_FAILURE(open_account_on(1, "carol"));
  for (int n = 0; n < 10; ++n) {
    ASSERT_EQ(call(1, "POST", "/v1/accounts/carol/deposits", deposit_body(n)).status, 200);
  }
  EXPECT_EQ(server(1).stop(SIGTERM), 0);
  // Pointed at cluster "bt", its log goes past that stream's end: it cannot join, and it is
  // not that stream's history.
  EXPECT_FALSE(start(1)) << server(1).log();
  EXPECT_NE(server(1).log().find("is not the log stream's history"), std::string::npos)
      << server(1).log();
  EXPECT_FALSE(std::filesystem::exists(data_dir(1) + "/set-aside"));
  EXPECT_TRUE(std::filesystem::exists(data_dir(1) + "/wal"));
}

}  // namespace
}  // namespace paycore::it
