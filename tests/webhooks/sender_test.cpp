// One POST to a real receiver on 127.0.0.1 (webhooks/sender.hpp): what is sent, and each way
// an attempt fails.
#include "webhooks/sender.hpp"

#include <gtest/gtest.h>

#include "base/time.hpp"
#include "tests/webhooks/test_receiver.hpp"
#include "webhooks/signature.hpp"

namespace paycore::webhooks {
namespace {

using test::Reply;
using test::TestReceiver;

SenderConfig loopback_config() {
  SenderConfig config;
  config.policy.http_hosts_allowed = {"127.0.0.1", "localhost"};
  config.policy.addresses_allowed = {*parse_ip_network("127.0.0.0/8"), *parse_ip_network("::1")};
  config.timeout_ms = 2'000;
  return config;
}

SendRequest request_to(const std::string& url, std::string body = R"({"id":"evt_1"})") {
  SendRequest request;
  request.tag = 7;
  request.url = url;
  request.signature = signature_header_value("whsec_test", 1'700'000'000, body);
  request.body = std::move(body);
  request.event_id = "evt_1";
  return request;
}

TEST(Sender, A200IsDeliveredWithTheContractsHeaders) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  const SendResult result = send_one(loopback_config(), request_to(receiver.url()));
  EXPECT_TRUE(result.delivered()) << result.error;
  EXPECT_EQ(result.tag, 7U);
  EXPECT_EQ(result.http_status, 200);
  ASSERT_EQ(receiver.count(), 1U);
  test::ReceivedRequest got = receiver.requests()[0];
  EXPECT_EQ(got.method, "POST");
  EXPECT_EQ(got.target, "/hook");
  EXPECT_EQ(got.body, R"({"id":"evt_1"})");
  EXPECT_EQ(got.headers["content-type"], "application/json");
  EXPECT_EQ(got.headers["paycore-event-id"], "evt_1");
  EXPECT_EQ(got.headers["user-agent"], user_agent());
  EXPECT_EQ(user_agent().rfind("paycore/", 0), 0U);
  EXPECT_EQ(verify_signature(got.headers["paycore-signature"], "whsec_test", got.body,
                             1'700'000'000),
            SignatureCheck::kValid);
}

TEST(Sender, A500IsAFailedAttempt) {
  TestReceiver receiver([](std::size_t) { return Reply::kServerError; });
  const SendResult result = send_one(loopback_config(), request_to(receiver.url()));
  EXPECT_FALSE(result.delivered());
  EXPECT_EQ(result.http_status, 500);
  EXPECT_TRUE(result.error.empty());
}

TEST(Sender, ARedirectIsNotFollowed) {
  TestReceiver target([](std::size_t) { return Reply::kOk; });
  TestReceiver receiver([](std::size_t) { return Reply::kRedirect; }, 0, target.url());
  const SendResult result = send_one(loopback_config(), request_to(receiver.url()));
  EXPECT_FALSE(result.delivered());
  EXPECT_EQ(result.http_status, 302);
  EXPECT_FALSE(target.wait_for_count(1, 200));
}

TEST(Sender, AnEndpointThatNeverAnswersTimesOut) {
  TestReceiver receiver([](std::size_t) { return Reply::kHang; });
  SenderConfig config = loopback_config();
  config.timeout_ms = 300;
  const std::int64_t started_ms = monotonic_ms();
  const SendResult result = send_one(config, request_to(receiver.url()));
  const std::int64_t took_ms = monotonic_ms() - started_ms;
  EXPECT_FALSE(result.delivered());
  EXPECT_EQ(result.http_status, 0);
  EXPECT_NE(result.error.find("timed out"), std::string::npos) << result.error;
  EXPECT_GE(took_ms, 290);
  EXPECT_LT(took_ms, 2'000);
  EXPECT_EQ(receiver.count(), 1U);
}

TEST(Sender, ARefusedConnectionIsAFailedAttempt) {
  const SendResult result =
      send_one(loopback_config(), request_to("http://127.0.0.1:" + std::to_string(test::unused_port()) + "/"));
  EXPECT_FALSE(result.delivered());
  EXPECT_EQ(result.http_status, 0);
  EXPECT_FALSE(result.error.empty());
}

TEST(Sender, AnAllowListThatExcludesTheResolvedAddressBlocksTheSend) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  SenderConfig config = loopback_config();
  config.policy.addresses_allowed = {*parse_ip_network("10.0.0.0/8")};
  // "localhost" passes the URL check; the address it resolves to does not pass the guard.
  const std::string url = "http://localhost:" + std::to_string(receiver.port()) + "/hook";
  const SendResult result = send_one(config, request_to(url));
  EXPECT_FALSE(result.delivered());
  EXPECT_NE(result.error.find("address_not_allowed"), std::string::npos) << result.error;
  EXPECT_FALSE(receiver.wait_for_count(1, 200));
}

TEST(Sender, WithoutAllowListLoopbackIsRefused) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  SenderConfig config = loopback_config();
  config.policy.addresses_allowed.clear();
  const SendResult result = send_one(config, request_to(receiver.url()));
  EXPECT_NE(result.error.find("address_not_allowed"), std::string::npos) << result.error;
  EXPECT_FALSE(receiver.wait_for_count(1, 200));
}

TEST(Sender, AHugeResponseIsCutAndJudgedByItsStatus) {
  // The receiver's body is 2 bytes; a 1-byte cap cuts it.
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  SenderConfig config = loopback_config();
  config.response_bytes_max = 1;
  const SendResult result = send_one(config, request_to(receiver.url()));
  EXPECT_TRUE(result.delivered()) << result.error;
}

}  // namespace
}  // namespace paycore::webhooks
