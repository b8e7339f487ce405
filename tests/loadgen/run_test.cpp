// Whole runs of the load generator against the fake server of fake_server.hpp.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bench/loadgen/loadgen.hpp"
#include "tests/loadgen/fake_server.hpp"

namespace paycore::loadgen {
namespace {

using testing::dev_keys_path;
using testing::FakeBehaviour;
using testing::FakeServer;

std::shared_ptr<const auth::Keys> keys() {
  static const std::shared_ptr<const auth::Keys> loaded = *auth::keys_load(dev_keys_path());
  return loaded;
}

Options options_for(const FakeServer& server) {
  Options o;
  o.url = server.url();
  o.keys_path = dev_keys_path();
  o.payers = 50;
  o.connections = 4;
  o.seed = 1234;
  o.timeout_s = 5;
  return o;
}

std::uint64_t op(const RunStats& s, Op which, std::uint64_t OpStats::*field) {
  return s.ops[static_cast<std::size_t>(which)].*field;
}

TEST(LoadgenRun, ClosedLoopMixRunsCleanAgainstAFakeServer) {
  FakeBehaviour strict;
  strict.require_mandates = true;
  FakeServer server(keys(), strict);
  Options o = options_for(server);
  o.mix = "pay=60,ext=5,get=10,refund=10,notify=10,batch=5";
  o.requests = 2000;
  o.threads = 2;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.steps.size(), 1u);
  const RunStats& s = r.steps[0].stats;
  EXPECT_EQ(s.sent, 2000u);
  EXPECT_EQ(s.completed, 2000u);
  EXPECT_EQ(s.errors_total(), 0u);
  EXPECT_EQ(s.violations_total(), 0u);
  EXPECT_EQ(server.auth_failures(), 0u);  // every signature (HMAC and RSA) checked out
  for (Op each : {Op::pay, Op::ext, Op::get, Op::refund, Op::notify, Op::batch}) {
    EXPECT_GT(op(s, each, &OpStats::ok), 0u) << op_name(each);
  }
  EXPECT_EQ(s.latency.count(), 2000u);
  // Set-up: the four merchants' accounts and 50 payers, then 50 deposits, then a mandate per
  // payer and merchant (without them the fake server refuses every balance payment).
  EXPECT_EQ(op(r.setup, Op::open_account, &OpStats::ok), 54u);
  EXPECT_EQ(op(r.setup, Op::deposit, &OpStats::ok), 50u);
  EXPECT_EQ(op(r.setup, Op::mandate, &OpStats::ok), 200u);
  const auto routes = server.routes();
  EXPECT_EQ(routes.at("POST /v1/accounts"), 54u);
  EXPECT_EQ(routes.at("POST /v1/accounts/deposits"), 50u);
  EXPECT_EQ(routes.at("POST /v1/mandates"), 200u);
  EXPECT_EQ(exit_status_of(o, r), 0);
}

TEST(LoadgenRun, SecondSetupFindsTheMandatesMade) {
  FakeBehaviour strict;
  strict.require_mandates = true;
  FakeServer server(keys(), strict);
  Options o = options_for(server);
  o.mix = "pay=9,batch=1";
  o.requests = 200;
  ASSERT_TRUE(run_loadgen(o).error.empty());
  o.seed = 4321;  // another run id: fresh request ids, the same mandate ids
  const Result second = run_loadgen(o);
  ASSERT_TRUE(second.error.empty()) << second.error;
  EXPECT_EQ(op(second.setup, Op::mandate, &OpStats::refused), 200u);  // 409 mandate_exists
  EXPECT_EQ(second.setup.errors_total(), 0u);
  const RunStats& s = second.steps[0].stats;
  EXPECT_EQ(s.errors_total(), 0u);
  EXPECT_EQ(s.violations_total(), 0u);
  EXPECT_GT(op(s, Op::pay, &OpStats::ok), 0u);
}

TEST(LoadgenRun, RunIsBoundedByDuration) {
  FakeServer server(keys(), {});
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 1'000'000'000;
  o.duration_s = 0.3;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_GT(s.completed, 0u);
  EXPECT_LT(s.sent, o.requests);
  EXPECT_LT(s.elapsed_ns, 2'000'000'000);
}

TEST(LoadgenRun, OpenLoopCountsAStallFromTheIntendedSendTime) {
  FakeBehaviour stall;
  stall.stall_at_request = 100;  // about 0.2 s into the run
  stall.stall_ms = 300;
  FakeServer server(keys(), stall);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.rate = 500;
  o.duration_s = 1.0;
  o.connections = 2;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_EQ(s.scheduled, 500u);
  EXPECT_EQ(s.completed, 500u);
  EXPECT_EQ(s.unsent, 0u);
  // About 150 requests were due during the stall; a third of the run waited > 100 ms for it
  // to end, counted from when each should have been sent.
  EXPECT_GT(s.latency.percentile(90), 100'000'000u);
  EXPECT_GT(s.latency.max(), 250'000'000u);
  // Measured from the actual send, only the two requests in flight saw the stall.
  EXPECT_LT(s.service.percentile(99), 100'000'000u);
  EXPECT_GT(s.service.max(), 250'000'000u);
}

TEST(LoadgenRun, ClosedLoopHidesTheStallThatTheOpenLoopShows) {
  FakeBehaviour stall;
  stall.stall_at_request = 100;
  stall.stall_ms = 300;
  FakeServer server(keys(), stall);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 500;
  o.connections = 2;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  // The closed loop stops sending while it waits: one slow answer per connection.
  EXPECT_LT(s.latency.percentile(99), 100'000'000u);
  EXPECT_GT(s.latency.max(), 250'000'000u);
}

TEST(LoadgenRun, WrongAmountFromTheServerIsAViolation) {
  FakeBehaviour wrong;
  wrong.wrong_amount = true;
  FakeServer server(keys(), wrong);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 50;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_EQ(s.violations_total(), 50u);
  EXPECT_EQ(s.violations.at("payment with the wrong amount"), 50u);
  EXPECT_EQ(exit_status_of(o, r), 1);
}

TEST(LoadgenRun, ServerErrorsAreCountedAsViolations) {
  FakeBehaviour failing;
  failing.fail_every = 10;
  FakeServer server(keys(), failing);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 100;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_EQ(s.violations_total(), 10u);
  EXPECT_EQ(s.statuses.at("500 internal"), 10u);
  EXPECT_EQ(s.statuses.at("201"), 90u);
}

TEST(LoadgenRun, MalformedAnswersAreViolations) {
  FakeBehaviour garbage;
  garbage.garbage = true;
  FakeServer server(keys(), garbage);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 20;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_EQ(s.violations_total(), 20u);
  EXPECT_EQ(s.violations.at("malformed status line"), 20u);
}

TEST(LoadgenRun, SetupFailureStopsTheRun) {
  FakeBehaviour failing;
  failing.fail_every = 1;
  FakeServer server(keys(), failing);
  Options o = options_for(server);
  const Result r = run_loadgen(o);
  EXPECT_NE(r.error.find("set-up failed"), std::string::npos) << r.error;
  EXPECT_TRUE(r.steps.empty());
  EXPECT_EQ(exit_status_of(o, r), 2);
}

TEST(LoadgenRun, UnreachableServerEndsInTransportErrorsNotAHang) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t bytes = sizeof address;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &bytes), 0);
  ::close(fd);  // nothing listens there now
  Options o;
  o.url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  o.keys_path = dev_keys_path();
  o.setup = false;
  o.mix = "pay=1";
  o.duration_s = 0.3;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const RunStats& s = r.steps[0].stats;
  EXPECT_GT(s.transport_errors, 0u);
  EXPECT_EQ(s.completed, 0u);
  EXPECT_LT(s.elapsed_ns, 2'000'000'000);
}

TEST(LoadgenRun, SweepStopsAtTheFirstRateThatBreaksTheTarget) {
  FakeBehaviour slow;
  slow.delay_us = 2000;  // one answer every 2 ms at best: about 500/s
  FakeServer server(keys(), slow);
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.connections = 8;
  o.sweep = true;
  // Far apart, so that a loaded machine (sanitizers, a build beside it) cannot blur them: 8/s
  // and 80/s are a small part of what the server can answer; 800/s is 1.6x it, so the queue
  // grows by 300 requests a second and its waits pass 200 ms within the step. (100, 300, 900
  // with a 50 ms target once failed at 300/s under ASan on a busy machine.)
  o.rate_start = 8;
  o.rate_factor = 10;
  o.duration_s = 1.0;
  o.p99_ms = 200;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_TRUE(r.steps[0].held) << r.steps[0].reason;
  EXPECT_TRUE(r.steps[1].held) << r.steps[1].reason;
  EXPECT_FALSE(r.steps[2].held);
  ASSERT_TRUE(r.highest_rate_held.has_value());
  EXPECT_EQ(*r.highest_rate_held, 80.0);
}

TEST(LoadgenRun, JsonReportIsWritten) {
  FakeServer server(keys(), {});
  Options o = options_for(server);
  o.setup = false;
  o.mix = "pay=1";
  o.requests = 10;
  const Result r = run_loadgen(o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  const std::string path = dev_keys_path() + ".report.json";
  std::string error;
  ASSERT_TRUE(write_result_json(path, o, r, &error)) << error;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.load(path).get(root), simdjson::SUCCESS);
  std::int64_t answered = 0;
  ASSERT_EQ(root["steps"].at(0)["answered"].get(answered), simdjson::SUCCESS);
  EXPECT_EQ(answered, 10);
  double p99 = -1;
  EXPECT_EQ(root["steps"].at(0)["latency_ms"]["p99"].get(p99), simdjson::SUCCESS);
  EXPECT_GE(p99, 0.0);
}

TEST(LoadgenRun, BadUsageIsReportedWithoutRunning) {
  Options o;
  o.url = "ftp://example.com:21";  // https:// is accepted since loadgen speaks TLS
  o.keys_path = dev_keys_path();
  EXPECT_NE(run_loadgen(o).error.find("http://"), std::string::npos);
  o.url = "http://127.0.0.1:1";
  o.mix = "pay=1,fly=2";
  EXPECT_NE(run_loadgen(o).error.find("fly"), std::string::npos);
  o.mix = "pay=1";
  o.keys_path = "/nonexistent/keys.json";
  EXPECT_FALSE(run_loadgen(o).error.empty());
}

}  // namespace
}  // namespace paycore::loadgen
