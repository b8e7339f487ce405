// Events and webhooks end to end (issue 15; docs/api.md "Events and webhooks"): the real
// `paycore serve`, a real HTTP receiver on 127.0.0.1 (tests/webhooks/test_receiver.hpp), signed
// requests. Every event a payment makes reaches the merchant's endpoint, signed with its secret,
// byte for byte as GET /v1/events/{id} shows it; failures are retried; events whose delivery was
// pending when paycore was SIGKILLed, with the receiver down, arrive once both are back.

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "tests/integration/client.hpp"
#include "tests/webhooks/test_receiver.hpp"
#include "webhooks/signature.hpp"

namespace paycore::it {
namespace {

using webhooks::test::Reply;
using webhooks::test::TestReceiver;

const std::vector<std::string> webhook_args = {"--events=true", "--webhook-http-hosts", "127.0.0.1",
                                               "--webhook-allowed-networks", "127.0.0.0/8"};

class Webhooks : public ::testing::Test {
 protected:
  void TearDown() override {
    if (receiver) receiver->stop();
    fixture.destroy();
  }
  void start_paycore() {
    ASSERT_TRUE(fixture.start(webhook_args)) << (fixture.server ? fixture.server->log() : "");
    client = std::make_unique<Client>(fixture.server->port(), fixture.keys);
  }
  Signer m1() const { return client->merchant("m_001"); }
  // The operator opens m_001 and a customer holding 1,000,000 that m_001 may debit.
  void open_accounts() {
    const Signer op = client->operator_signer();
    ASSERT_EQ(client->call(op, "POST", "/v1/accounts", R"({"request_id":"o1","account_id":"m_001","currency":"CNY","kind":"merchant"})").status, 201);
    ASSERT_EQ(client->call(op, "POST", "/v1/accounts", R"({"request_id":"o2","account_id":"alice","currency":"CNY","kind":"customer"})").status, 201);
    ASSERT_EQ(client->call(op, "POST", "/v1/accounts/alice/deposits", R"({"request_id":"o3","amount":1000000,"currency":"CNY"})").status, 200);
    ASSERT_EQ(grant_mandate(*client, "alice", "m_001").status, 201);
  }
  void pay(int n) {
    const std::string id = std::to_string(n);
    const HttpResponse r = client->call(m1(), "POST", "/v1/payments",
                                        R"({"request_id":"r)" + id + R"(","order_id":"o-)" + id +
                                            R"(","amount":100,"currency":"CNY","channel":"balance","payer_account_id":"alice"})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // The distinct event ids the receiver answered 200 (all but its first `refused_first`
  // requests), each checked: its signature verifies with `secret` now, and the
  // Paycore-Event-Id header names the body's id.
  std::set<std::string> received_ids(const std::string& secret) {
    std::set<std::string> ids;
    const auto requests = receiver->requests();
    for (std::size_t i = refused_first; i < requests.size(); ++i) {
      const auto& request = requests[i];
      const std::string header = request.headers.count("paycore-signature") ? request.headers.at("paycore-signature") : "";
      EXPECT_EQ(webhooks::verify_signature(header, secret, request.body, std::time(nullptr)),
                webhooks::SignatureCheck::kValid) << request.body;
      const std::string id = json_string(request.body, "/id").value_or("");
      EXPECT_EQ(request.headers.count("paycore-event-id") ? request.headers.at("paycore-event-id") : "", id);
      ids.insert(id);
    }
    return ids;
  }
  bool wait_for_ids(const std::string& secret, std::size_t count, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (received_ids(secret).size() >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  Fixture fixture;
  std::unique_ptr<Client> client;
  std::unique_ptr<TestReceiver> receiver;
  std::size_t refused_first = 0;  // the receiver's first requests answered 500
};

TEST_F(Webhooks, EveryEventReachesTheMerchantSignedAtLeastOnceAcrossAKill) {
  refused_first = 2;
  receiver = std::make_unique<TestReceiver>([](std::size_t i) { return i < 2 ? Reply::kServerError : Reply::kOk; });
  start_paycore();
  open_accounts();
  const std::string endpoint_body = R"({"request_id":"we-1","url":")" + receiver->url() + R"(","events":["*"]})";
  const HttpResponse created = client->call(m1(), "POST", "/v1/webhook_endpoints", endpoint_body);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string secret = json_string(created.body, "/secret").value_or("");
  ASSERT_FALSE(secret.empty()) << created.body;
  const HttpResponse again = client->call(m1(), "POST", "/v1/webhook_endpoints", endpoint_body);
  EXPECT_EQ(again.header("idempotent-replayed"), "true") << again.status << " " << again.body;
  EXPECT_EQ(json_string(again.body, "/secret").value_or(""), secret);

  for (int n = 0; n < 5; ++n) pay(n);  // created + paid each: 10 events
  ASSERT_TRUE(wait_for_ids(secret, 10, 40'000)) << received_ids(secret).size() << "\n" << fixture.server->log();
  const std::set<std::string> first = received_ids(secret);
  EXPECT_GE(receiver->count(), 12U);  // the two 500s were retried
  // What was sent is what GET shows, byte for byte.
  for (const auto& request : receiver->requests()) {
    const std::string id = json_string(request.body, "/id").value_or("");
    const HttpResponse shown = client->call(m1(), "GET", "/v1/events/" + id);
    ASSERT_EQ(shown.status, 200) << shown.body;
    EXPECT_EQ(shown.body, request.body);
  }
  const HttpResponse list = client->call(m1(), "GET", "/v1/events?limit=100");
  ASSERT_EQ(list.status, 200) << list.body;
  for (const std::string& id : first) EXPECT_NE(list.body.find(id), std::string::npos) << id;

  // The receiver goes down; five more payments; paycore is SIGKILLed with their deliveries
  // pending; both come back: every event arrives.
  const std::uint16_t port = receiver->port();
  receiver->stop();
  for (int n = 5; n < 10; ++n) pay(n);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // derived and enqueued, not sent
  fixture.server->kill_hard();
  receiver = std::make_unique<TestReceiver>([](std::size_t) { return Reply::kOk; }, port);
  refused_first = 0;
  ASSERT_TRUE(fixture.restart(webhook_args)) << fixture.server->log();
  client = std::make_unique<Client>(fixture.server->port(), fixture.keys);
  std::set<std::string> all = first;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (all.size() < 20 && std::chrono::steady_clock::now() < deadline) {
    const std::set<std::string> now = received_ids(secret);
    all.insert(now.begin(), now.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(all.size(), 20U) << fixture.server->log();
  const HttpResponse deliveries = client->call(m1(), "GET", "/v1/events/" + *all.rbegin() + "/deliveries");
  EXPECT_EQ(deliveries.status, 200) << deliveries.body;
  EXPECT_NE(deliveries.body.find("DELIVERED"), std::string::npos) << deliveries.body;
}

}  // namespace
}  // namespace paycore::it
