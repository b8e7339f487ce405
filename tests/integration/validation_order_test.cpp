// docs/api.md "Order of validation": when several things are wrong with a request, the most
// fundamental error wins. One test per step boundary, each with a request that is wrong at
// both steps and must get the earlier step's answer.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/client.hpp"

namespace paycore::it {
namespace {

class ValidationOrder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start()) << (fixture_->server ? fixture_->server->log() : "");
  }
  static void TearDownTestSuite() {
    fixture_->destroy();
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override { client_ = std::make_unique<Client>(fixture_->server->port(), fixture_->keys); }

  Signer m1() const { return client_->merchant("m_001"); }
  HttpResponse pay(const std::string& body) { return client_->call(m1(), "POST", "/v1/payments", body); }
  static std::string code(const HttpResponse& r) { return json_string(r.body, "/error/code").value_or(""); }
  static std::string field(const HttpResponse& r) { return json_string(r.body, "/error/field").value_or(""); }

  static Fixture* fixture_;
  std::unique_ptr<Client> client_;
};
Fixture* ValidationOrder::fixture_ = nullptr;

TEST_F(ValidationOrder, FramingWinsOverRoute) {
  HttpResponse r = client_->raw("POST /v1/nothing HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(r.status, 411);
  r = client_->raw("GET /v1/nothing HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "bad_request");
}

TEST_F(ValidationOrder, RouteWinsOverAuthentication) {
  HttpResponse r = client_->raw("GET /v1/nothing HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code(r), "not_found");
  r = client_->raw("PUT /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(r.status, 405);
}

TEST_F(ValidationOrder, AuthenticationWinsOverBody) {
  const HttpResponse r =
      client_->raw("POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n{");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(code(r), "unauthenticated");
}

TEST_F(ValidationOrder, AuthenticationWinsOverAuthorization) {
  // A merchant (not allowed on operator routes: 404) whose signature does not verify: 401.
  const HttpResponse r = client_->call(Signer{"m_001", "not-the-secret"}, "POST", "/v1/accounts", "{}");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(code(r), "bad_signature");
}

TEST_F(ValidationOrder, AuthorizationWinsOverPathParameter) {
  // The operator may not call merchant routes: 404, even with a malformed order_id in the path.
  const HttpResponse r = client_->call(client_->operator_signer(), "POST",
                                       "/v1/payments/" + std::string(65, 'o') + "/cancel", "{}");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ValidationOrder, AuthorizationWinsOverBody) {
  // The operator may not create payments: 404, whatever the body.
  const HttpResponse r = client_->call(client_->operator_signer(), "POST", "/v1/payments", "{");
  EXPECT_EQ(r.status, 404);
}

TEST_F(ValidationOrder, PathParameterWinsOverBody) {
  const HttpResponse r = client_->call(m1(), "POST", "/v1/payments/" + std::string(65, 'o') + "/cancel", "{");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_field");
  EXPECT_EQ(field(r), "order_id");
}

TEST_F(ValidationOrder, SyntaxWinsOverFields) {
  const HttpResponse r = pay(R"({"request_id":"bad id","amount":0,)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_json");
}

TEST_F(ValidationOrder, MissingFieldWinsOverFieldFormat) {
  const HttpResponse r = pay(R"({"request_id":"bad id","amount":0,"currency":"XXX","channel":"alipay"})");
  EXPECT_EQ(code(r), "missing_field");
  EXPECT_EQ(field(r), "order_id");
}

TEST_F(ValidationOrder, FieldFormatWinsOverUnknownChannel) {
  const HttpResponse r = pay(R"({"request_id":"vo-1","order_id":"vo-1","amount":0,"currency":"CNY","channel":"nochannel"})");
  EXPECT_EQ(code(r), "invalid_amount");
}

// The reported fault: the decoder refused the payer before anyone knew the channel did not exist.
TEST_F(ValidationOrder, UnknownChannelWinsOverPayerWithExternalChannel) {
  const HttpResponse r = pay(R"({"request_id":"vo-2","order_id":"vo-2","amount":5,"currency":"CNY",)"
                             R"("channel":"nochannel","payer_account_id":"c_1"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "unknown_channel");
  EXPECT_EQ(field(r), "channel");
}

TEST_F(ValidationOrder, CrossFieldRuleWinsOverBusinessAndIsNotKept) {
  ASSERT_EQ(pay(R"({"request_id":"vo-3","order_id":"vo-3","amount":5,"currency":"CNY","channel":"alipay"})").status, 201);
  // Same order again (duplicate_order, a business rule) with a payer on an external channel.
  const std::string with_payer = R"({"request_id":"vo-4","order_id":"vo-3","amount":5,"currency":"CNY",)"
                                 R"("channel":"alipay","payer_account_id":"c_1"})";
  HttpResponse r = pay(with_payer);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_field");
  EXPECT_EQ(field(r), "payer_account_id");
  // Cross-field before idempotency: vo-3's request_id with another body would be
  // idempotency_key_reused, but the body breaks a cross-field rule first.
  r = pay(R"({"request_id":"vo-3","order_id":"vo-3","amount":5,"currency":"CNY",)"
          R"("channel":"alipay","payer_account_id":"c_1"})");
  EXPECT_EQ(code(r), "invalid_field");
  EXPECT_EQ(field(r), "payer_account_id");
  // A 400 is not kept under the request_id: the corrected request is executed.
  r = pay(R"({"request_id":"vo-4","order_id":"vo-4","amount":5,"currency":"CNY","channel":"alipay"})");
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(ValidationOrder, IdempotencyWinsOverBusiness) {
  const std::string body = R"({"request_id":"vo-5","order_id":"vo-5","amount":5,"currency":"CNY","channel":"alipay"})";
  ASSERT_EQ(pay(body).status, 201);
  // The order exists now (duplicate_order), but the same request is a replay.
  const HttpResponse r = pay(body);
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("idempotent-replayed"), "true");
}

}  // namespace
}  // namespace paycore::it
