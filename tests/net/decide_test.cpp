// The decision step (net/decide.hpp): what a request becomes, without a server. One test per
// outcome and per refusal, each naming whether the request is admitted (rate limit, nonce)
// before its answer.
#include "net/decide.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace paycore::net {
namespace {

constexpr std::string_view payment_body =
    R"({"request_id":"r-1","order_id":"o-1","amount":100,"currency":"CNY","channel":"alipay"})";
constexpr std::string_view mandate_body =
    R"({"request_id":"r1","mandate_id":"md-1","payer_account_id":"c1","merchant_id":"MERCHANT","amount_max":500,"expires_at":null})";

const auth::Keys& keys() {
  static const std::shared_ptr<const auth::Keys> parsed = [] {
    const StatusOr<std::shared_ptr<const auth::Keys>> result = auth::keys_parse(
        R"({"operator": {"id": "operator", "secret": "op-secret"},
            "merchants": {"m_001": "test-secret-m_001"}})");
    EXPECT_TRUE(result.is_ok()) << result.status().to_string();
    return result.is_ok() ? *result : std::shared_ptr<const auth::Keys>();
  }();
  return *parsed;
}

class DecideTest : public ::testing::Test {
 protected:
  Decision decide_as(std::string_view principal_id, HttpMethod method, std::string_view path,
                     std::string_view body) {
    request_.method_kind = method;
    request_.path = path;
    request_.body = body;
    const auth::Principal* principal =
        principal_id.empty() ? nullptr : keys().find_principal(principal_id);
    const RequestContext context{keys(), principal, decoder_, &items_};
    return decide(match_route(method, path), request_, context);
  }

  JsonDecoder decoder_;
  std::vector<BatchItem> items_;
  HttpRequest request_;
};

TEST_F(DecideTest, PaymentOfAMerchantIsACommand) {
  const Decision d = decide_as("m_001", HttpMethod::post, "/v1/payments", payment_body);
  ASSERT_EQ(d.kind, DecisionKind::command);
  EXPECT_EQ(d.command.kind, CommandKind::create_payment);
  EXPECT_EQ(d.command.principal.view(), "m_001");
}

TEST_F(DecideTest, OperatorRouteIsNotFoundForAMerchantAndNotAdmitted) {
  const Decision d = decide_as("m_001", HttpMethod::post, "/v1/accounts", "{}");
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 404);
  EXPECT_EQ(d.answer.code, "not_found");
  EXPECT_EQ(d.admission, Admission::none);
}

TEST_F(DecideTest, MerchantRouteIsNotFoundForTheOperator) {
  const Decision d = decide_as("operator", HttpMethod::post, "/v1/payments", payment_body);
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 404);
  EXPECT_EQ(d.admission, Admission::none);
}

TEST_F(DecideTest, BadCommandBodyIsAdmittedBeforeItsAnswer) {
  const Decision d = decide_as("m_001", HttpMethod::post, "/v1/payments", "{not json");
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 400);
  EXPECT_EQ(d.admission, Admission::before_answer);
}

TEST_F(DecideTest, BadBatchBodyIsNotAdmitted) {
  const Decision d =
      decide_as("m_001", HttpMethod::post, "/v1/payments/batch", R"({"payments":5})");
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 400);
  EXPECT_EQ(d.admission, Admission::none);
}

TEST_F(DecideTest, BatchItemsAreDecodedIntoTheContext) {
  const std::string body = "{\"payments\":[" + std::string(payment_body) + ",{\"amount\":1}]}";
  const Decision d = decide_as("m_001", HttpMethod::post, "/v1/payments/batch", body);
  ASSERT_EQ(d.kind, DecisionKind::batch);
  ASSERT_EQ(items_.size(), 2u);
  EXPECT_FALSE(items_[0].error);
  EXPECT_TRUE(items_[1].error);
}

TEST_F(DecideTest, SnapshotOfTheOperatorIsASnapshotRequest) {
  const Decision d = decide_as("operator", HttpMethod::post, "/v1/admin/snapshot", "");
  EXPECT_EQ(d.kind, DecisionKind::snapshot);
}

TEST_F(DecideTest, MandateForAMerchantNotInTheKeysFileIsInvalidField) {
  std::string body(mandate_body);
  body.replace(body.find("MERCHANT"), 8, "m_999");
  const Decision d = decide_as("operator", HttpMethod::post, "/v1/mandates", body);
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 400);
  EXPECT_EQ(d.answer.code, "invalid_field");
  EXPECT_EQ(d.answer.field, "merchant_id");
  EXPECT_EQ(d.admission, Admission::before_answer);
}

TEST_F(DecideTest, MandateForAKnownMerchantIsACommand) {
  std::string body(mandate_body);
  body.replace(body.find("MERCHANT"), 8, "m_001");
  const Decision d = decide_as("operator", HttpMethod::post, "/v1/mandates", body);
  ASSERT_EQ(d.kind, DecisionKind::command);
  EXPECT_EQ(d.command.kind, CommandKind::create_mandate);
}

TEST_F(DecideTest, HealthPagesAreServerPages) {
  EXPECT_EQ(decide_as("", HttpMethod::get, "/healthz", "").kind, DecisionKind::server_page);
  EXPECT_EQ(decide_as("", HttpMethod::get, "/readyz", "").kind, DecisionKind::server_page);
  EXPECT_EQ(decide_as("", HttpMethod::get, "/metrics", "").kind, DecisionKind::server_page);
}

TEST_F(DecideTest, NotificationOfAnUnknownChannelIsNotFound) {
  const Decision d = decide_as("", HttpMethod::post, "/v1/notify/nochannel", "{}");
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 404);
}

TEST(Decide, WrongMethodIsNotAllowedAndOffersHeadWithGet) {
  const auto d = decide_unmatched(match_route(HttpMethod::post, "/v1/payments/o-1"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->answer.status, 405);
  EXPECT_EQ(d->allow, "GET, HEAD");
}

TEST(Decide, UnknownPathIsNotFound) {
  const auto d = decide_unmatched(match_route(HttpMethod::get, "/v2/nothing"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->answer.status, 404);
  EXPECT_FALSE(decide_unmatched(match_route(HttpMethod::get, "/healthz")));
}

TEST(Decide, MissingSignatureHeadersAreRefusedBeforeTheBody) {
  HttpRequest request;
  request.method_kind = HttpMethod::post;
  request.path = "/v1/payments";
  const auto refusal =
      decide_before_body(match_route(request.method_kind, request.path), request, keys());
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 401);
  EXPECT_EQ(refusal->code, "unauthenticated");
  EXPECT_FALSE(decide_before_body(match_route(HttpMethod::get, "/healthz"), request, keys()));
}

}  // namespace
}  // namespace paycore::net
