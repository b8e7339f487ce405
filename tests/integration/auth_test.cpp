// Authentication across restarts and per-principal rate limits, against the real server
// (docs/api.md "Replays across restarts", "Rate limits").
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "tests/integration/client.hpp"

namespace paycore::it {
namespace {

std::string error_code(const HttpResponse& r) { return json_string(r.body, "/error/code").value_or(""); }

std::int64_t now_s() { return static_cast<std::int64_t>(::time(nullptr)); }

void expect_refused_as_replay(const HttpResponse& r) {
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(error_code(r), "replayed_nonce") << r.body;
}

class NoncesAcrossRestarts : public ::testing::Test {
 protected:
  void TearDown() override { fixture_.destroy(); }

  // Signs a read, sends it once (200), stops the server with `signal_number`, starts it again
  // on the same data directory and sends the identical bytes again.
  HttpResponse replay_after_restart(int signal_number, const std::vector<std::string>& args = {}) {
    EXPECT_TRUE(fixture_.start(args)) << fixture_.server->log();
    Client client(fixture_.server->port(), fixture_.keys);
    const std::string request =
        Client::signed_request(client.operator_signer(), "GET", "/v1/accounts/nobody", "", now_s(), "replay-me-0001");
    const HttpResponse first = client.raw(request);
    EXPECT_EQ(first.status, 404) << first.body;  // authentic: it got past authentication
    (void)fixture_.server->stop(signal_number);
    EXPECT_TRUE(fixture_.restart(args)) << fixture_.server->log();
    Client again(fixture_.server->port(), fixture_.keys);
    return again.raw(request);
  }

  Fixture fixture_;
};

TEST_F(NoncesAcrossRestarts, ReplayAfterSigtermRestartIsRefused) {
  const HttpResponse replay = replay_after_restart(SIGTERM);
  expect_refused_as_replay(replay);
}

TEST_F(NoncesAcrossRestarts, ReplayAfterSigkillRestartIsRefused) {
  const HttpResponse replay = replay_after_restart(SIGKILL);
  expect_refused_as_replay(replay);
}

TEST_F(NoncesAcrossRestarts, ReplayedPaymentAfterSigkillIsRefused) {
  ASSERT_TRUE(fixture_.start());
  Client client(fixture_.server->port(), fixture_.keys);
  const std::string body =
      R"({"request_id":"r-replay","order_id":"o-replay","amount":100,"currency":"CNY","channel":"alipay"})";
  const std::string request =
      Client::signed_request(client.merchant("m_001"), "POST", "/v1/payments", body, now_s(), "replay-pay-0001");
  const HttpResponse first = client.raw(request);
  ASSERT_EQ(first.status, 201) << first.body;
  (void)fixture_.server->stop(SIGKILL);
  ASSERT_TRUE(fixture_.restart());
  const HttpResponse replay = Client(fixture_.server->port(), fixture_.keys).raw(request);
  expect_refused_as_replay(replay);
}

// A single write's nonce is made durable in its log record, not in the nonce journal: with
// the journal's files gone, recovery still refuses the replay, whether the record is replayed
// after the newest snapshot or read before it only for its nonce (docs/design.md "Who may
// move whose money").
class LoggedNonces : public NoncesAcrossRestarts {
 protected:
  std::string pay_request(const Client& client, const std::string& id) {
    const std::string body = R"({"request_id":")" + id + R"(","order_id":")" + id +
                             R"(","amount":100,"currency":"CNY","channel":"alipay"})";
    return Client::signed_request(client.merchant("m_001"), "POST", "/v1/payments", body, now_s(),
                                  "nonce-" + id);
  }
  // SIGKILL, the journal's files removed, restart; then the identical bytes again.
  HttpResponse replay_without_journal(const std::string& request) {
    (void)fixture_.server->stop(SIGKILL);
    remove_tree(fixture_.data_dir + "/nonces");
    EXPECT_TRUE(fixture_.restart()) << fixture_.server->log();
    return Client(fixture_.server->port(), fixture_.keys).raw(request);
  }
};

TEST_F(LoggedNonces, APaymentsNonceComesBackFromTheLog) {
  ASSERT_TRUE(fixture_.start());
  Client client(fixture_.server->port(), fixture_.keys);
  const std::string request = pay_request(client, "logged-0001");
  ASSERT_EQ(client.raw(request).status, 201);
  const std::string metrics = client.get("/metrics").body;
  EXPECT_EQ(metric(metrics, "paycore_nonces_logged_total"), 1) << metrics;
  EXPECT_EQ(metric(metrics, "paycore_nonces_journaled_total"), 0) << metrics;
  const HttpResponse replay = replay_without_journal(request);
  expect_refused_as_replay(replay);
}

TEST_F(LoggedNonces, ANonceBeforeTheNewestSnapshotComesBackFromTheLog) {
  ASSERT_TRUE(fixture_.start());
  Client client(fixture_.server->port(), fixture_.keys);
  const std::string request = pay_request(client, "logged-0002");
  ASSERT_EQ(client.raw(request).status, 201);
  ASSERT_EQ(client.call(client.operator_signer(), "POST", "/v1/admin/snapshot", "").status, 200);
  const HttpResponse replay = replay_without_journal(request);
  expect_refused_as_replay(replay);
  // The restart read the records before the snapshot for their nonces.
  const std::string log = fixture_.server->log();
  const std::string key = R"("nonce_scan_records":")";
  const std::size_t at = log.rfind(key);
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GE(std::stoll(log.substr(at + key.size())), 1) << log;
}

// A repeat answered from its idempotency record changes nothing, so the log has no record of
// it: its nonce goes to the journal, and is refused after a crash like any other.
TEST_F(LoggedNonces, ARepeatsNonceIsJournaled) {
  ASSERT_TRUE(fixture_.start());
  Client client(fixture_.server->port(), fixture_.keys);
  ASSERT_EQ(client.raw(pay_request(client, "logged-0003")).status, 201);
  const std::string body =
      R"({"request_id":"logged-0003","order_id":"logged-0003","amount":100,"currency":"CNY","channel":"alipay"})";
  const std::string repeat = Client::signed_request(client.merchant("m_001"), "POST", "/v1/payments",
                                                    body, now_s(), "nonce-repeat-0003");
  const HttpResponse repeated = client.raw(repeat);
  ASSERT_EQ(repeated.status, 201) << repeated.body;
  EXPECT_EQ(repeated.header("idempotent-replayed"), "true");
  const std::string metrics = client.get("/metrics").body;
  EXPECT_EQ(metric(metrics, "paycore_nonces_journaled_total"), 1) << metrics;
  (void)fixture_.server->stop(SIGKILL);
  ASSERT_TRUE(fixture_.restart());
  const HttpResponse replay = Client(fixture_.server->port(), fixture_.keys).raw(repeat);
  expect_refused_as_replay(replay);
}

// What the journal is for: with it off, the same replay after a restart is accepted.
TEST_F(NoncesAcrossRestarts, WithoutTheJournalReplayAfterRestartIsAccepted) {
  const HttpResponse replay = replay_after_restart(SIGTERM, {"--nonce-journal=false"});
  EXPECT_EQ(replay.status, 404) << replay.body;
}

TEST_F(NoncesAcrossRestarts, HonestClientBehindTheServerClockIsAcceptedRightAfterRestart) {
  ASSERT_TRUE(fixture_.start());
  {
    Client client(fixture_.server->port(), fixture_.keys);
    ASSERT_EQ(client.call(client.operator_signer(), "GET", "/v1/accounts/nobody").status, 404);
  }
  (void)fixture_.server->stop(SIGKILL);
  ASSERT_TRUE(fixture_.restart());
  Client client(fixture_.server->port(), fixture_.keys);
  for (const std::int64_t behind_s : {5, 30, 120}) {
    const HttpResponse r = client.raw(Client::signed_request(client.operator_signer(), "GET", "/v1/accounts/nobody",
                                                             "", now_s() - behind_s));
    EXPECT_EQ(r.status, 404) << behind_s << " s behind: " << r.body;
  }
}

TEST_F(NoncesAcrossRestarts, JournalDirectoryThatCannotBeCreatedStopsTheStart) {
  fixture_.dir = make_temp_dir("paycore-it");
  fixture_.data_dir = fixture_.dir + "/data";
  fixture_.keys_path = fixture_.dir + "/keys.json";
  ASSERT_TRUE(fixture_.start());
  (void)fixture_.server->stop(SIGTERM);
  remove_tree(fixture_.data_dir + "/nonces");
  // A plain file where the directory should be.
  FILE* file = std::fopen((fixture_.data_dir + "/nonces").c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);
  EXPECT_FALSE(fixture_.restart());
  EXPECT_NE(fixture_.server->log().find("nonces"), std::string::npos) << fixture_.server->log();
}

// ---- rate limits

class RateLimits : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start({"--rate-limit-read-per-s", "2", "--rate-limit-read-burst", "5"}))
        << fixture_->server->log();
  }
  static void TearDownTestSuite() {
    fixture_->destroy();
    delete fixture_;
  }
  static HttpResponse read_as(const std::string& merchant) {
    Client client(fixture_->server->port(), fixture_->keys);
    return client.call(client.merchant(merchant), "GET", "/v1/payments/none");
  }
  static Fixture* fixture_;
};
Fixture* RateLimits::fixture_ = nullptr;

TEST_F(RateLimits, OverTheLimitIs429WithRetryAfter) {
  int refused = 0;
  HttpResponse last;
  for (int i = 0; i < 10; ++i) {
    const HttpResponse r = read_as("m_003");
    if (r.status == 429) {
      ++refused;
      last = r;
    } else {
      EXPECT_EQ(r.status, 404) << r.body;
    }
  }
  EXPECT_GE(refused, 4);  // a burst of 5, refilled at 2/s: at most 6 of 10 in a few ms pass
  EXPECT_EQ(error_code(last), "rate_limited") << last.body;
  EXPECT_GE(std::atoi(last.header("retry-after").c_str()), 1) << last.header("retry-after");
}

TEST_F(RateLimits, OtherPrincipalUnaffected) {
  for (int i = 0; i < 10; ++i) (void)read_as("m_004");
  ASSERT_EQ(read_as("m_004").status, 429);
  EXPECT_EQ(read_as("m_002").status, 404);
}

TEST_F(RateLimits, OtherRouteClassUnaffected) {
  for (int i = 0; i < 10; ++i) (void)read_as("m_001");
  ASSERT_EQ(read_as("m_001").status, 429);
  Client client(fixture_->server->port(), fixture_->keys);
  const HttpResponse write = client.call(client.merchant("m_001"), "POST", "/v1/payments/none/cancel",
                                         R"({"request_id":"rl-cancel"})");
  EXPECT_NE(write.status, 429) << write.body;
}

TEST_F(RateLimits, BucketRefills) {
  for (int i = 0; i < 10; ++i) (void)read_as("m_002");
  const HttpResponse refused = read_as("m_002");
  ASSERT_EQ(refused.status, 429);
  const int wait_s = std::atoi(refused.header("retry-after").c_str());
  ASSERT_GE(wait_s, 1);
  std::this_thread::sleep_for(std::chrono::seconds(wait_s) + std::chrono::milliseconds(100));
  EXPECT_EQ(read_as("m_002").status, 404);
}

}  // namespace
}  // namespace paycore::it
