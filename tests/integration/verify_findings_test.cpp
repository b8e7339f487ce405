// Failures found while verifying issue 10 against the real server. Each test is named after the
// failure mode and asserts what docs/api.md (or the issue) asks for; at the time of writing they FAIL
// on wip-verify (8b18efd). They are registered as their own CTest entry,
// integration.verify_findings, so that they do not hide the other suites' results.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/server_suite.hpp"

namespace paycore::it {
namespace {

class VerifyFindings : public ServerSuite {};

// docs/api.md "Payments": `"capture": "manual"` holds the amount on the payer (`held` grows,
// `balance` unchanged) and answers `201` with status AUTHORIZED. The server ignores the member
// and debits the customer at once (PAID): a merchant that asked only for an authorization
// moves the customer's money.
// Holds come with a later issue: until then a request for one is refused (400, field capture)
// rather than executed as an immediate payment, which would take the money the client asked
// us only to reserve.
TEST_F(VerifyFindings, ManualCapturePaymentIsNotPaidAtOnce) {
  const std::string payer = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001").status, 201);
  std::string body = payment_body(unique("r"), unique("order"), 300, "balance", payer);
  body.insert(body.size() - 1, R"(,"capture":"manual")");
  const HttpResponse r = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(error_code(r), "invalid_field");
  EXPECT_EQ(error_field(r), "capture");
  EXPECT_EQ(balance_of(payer), 1000);
}

// Revoking a mandate that is no longer ACTIVE is 409 invalid_state; the message must speak of
// the mandate, not of a payment ("the payment's status does not allow this").
TEST_F(VerifyFindings, RevokingAnInactiveMandateMessageNamesTheMandate) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  ASSERT_EQ(client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body()).status, 200);
  const HttpResponse again = client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body());
  ASSERT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(error_code(again), "invalid_state");
  const std::string message = json_string(again.body, "/error/message").value_or("");
  EXPECT_EQ(message.find("payment"), std::string::npos) << message;
}

// A mandate names the merchant that may debit the customer. docs/api.md lets merchant_id be
// a merchant not (yet) in the keys file, but the operator's own id, or an id that is already
// a customer account (so it can never be a merchant's account, whose id is its merchant_id),
// can never be used: they are accepted with 201 and sit ACTIVE. Judgment call, low severity.
TEST_F(VerifyFindings, MandateForSomethingThatIsNoMerchantIsRefused) {
  const std::string payer = customer_with(0);
  for (const std::string& merchant : {payer, std::string("operator")}) {
    const HttpResponse r = create_mandate(unique("md"), payer, merchant);
    EXPECT_GE(r.status, 400) << merchant << ": " << r.body;
    EXPECT_LT(r.status, 500) << merchant << ": " << r.body;
    EXPECT_EQ(error_field(r), "merchant_id") << merchant << ": " << r.body;
  }
}

// Per-principal write limit: a batch takes "at most the whole bucket" (docs/api.md), so with
// 5 writes/s and a bucket of 5 one batch creates up to 1000 payments. The limit is per
// payment for single requests; through a batch it is up to 200 times higher.
class VerifyRateLimitFindings : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start({"--rate-limit-write-per-s", "5", "--rate-limit-write-burst", "5"}))
        << fixture_->server->log();
  }
  static void TearDownTestSuite() {
    fixture_->destroy();
    delete fixture_;
    fixture_ = nullptr;
  }
  inline static Fixture* fixture_ = nullptr;
};

TEST_F(VerifyRateLimitFindings, BatchDoesNotBypassThePerPrincipalWriteLimit) {
  Client client(fixture_->server->port(), fixture_->keys);
  std::string body = R"({"payments":[)";
  constexpr int items = 200;
  for (int i = 0; i < items; ++i) {
    if (i > 0) body += ',';
    body += R"({"request_id":"vb-)" + std::to_string(i) + R"(","order_id":"vb-)" + std::to_string(i) +
            R"(","amount":1,"currency":"CNY","channel":"alipay"})";
  }
  body += "]}";
  const HttpResponse r = client.call(client.merchant("m_003"), "POST", "/v1/payments/batch", body);
  std::size_t created = 0;
  for (std::size_t at = r.body.find(R"("status":201)"); at != std::string::npos;
       at = r.body.find(R"("status":201)", at + 1)) {
    ++created;
  }
  // A bucket of 5 plus what refills during one request: far below 200.
  EXPECT_LE(created, 10u) << "status " << r.status << ", " << created << " payments created";
}

}  // namespace
}  // namespace paycore::it

namespace paycore::it {
namespace {

// The nonce table is one for all principals (`nonce_entries_max`, default 4194304) and a
// request's nonce is recorded before the rate limit is checked, so a merchant whose requests
// are all refused 429 still fills it; when it is full every principal gets 503 for up to the
// auth window. One merchant must not lock the others out (issue 10, part 3). With the default
// size ~14,000 signed requests/s from one merchant suffice (a Python client on loopback
// reached 14,840/s).
class VerifyNonceTableFindings : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start({"--rate-limit-read-per-s", "5", "--nonce-entries-max", "500"}))
        << fixture_->server->log();
  }
  static void TearDownTestSuite() {
    fixture_->destroy();
    delete fixture_;
    fixture_ = nullptr;
  }
  inline static Fixture* fixture_ = nullptr;
};

TEST_F(VerifyNonceTableFindings, OneMerchantFillingTheNonceTableDoesNotLockOutOthers) {
  Client client(fixture_->server->port(), fixture_->keys);
  const Signer flooder = client.merchant("m_001");
  Connection connection(fixture_->server->port());
  ASSERT_TRUE(connection.ok());
  constexpr int requests = 800;
  std::string pipelined;
  for (int i = 0; i < requests; ++i) pipelined += Client::signed_request(flooder, "GET", "/v1/accounts/m_001", "");
  ASSERT_TRUE(connection.send_all(pipelined));
  int answered = 0;
  for (; answered < requests; ++answered) {
    if (connection.read_response().status == 0) break;
  }
  ASSERT_EQ(answered, requests);
  const HttpResponse victim = client.call(client.merchant("m_002"), "GET", "/v1/accounts/m_002");
  EXPECT_NE(victim.status, 503) << victim.body;
  const HttpResponse operator_read = client.call(client.operator_signer(), "GET", "/v1/accounts/m_002");
  EXPECT_NE(operator_read.status, 503) << operator_read.body;
}

}  // namespace
}  // namespace paycore::it

namespace paycore::it {
namespace {

class VerifyHttpFindings : public ServerSuite {};

// RFC 9112 3.2: a server MUST answer 400 to a request whose Host field value is invalid
// (`uri-host [ ":" port ]`). A space, a slash or userinfo in it is accepted with 200.
TEST_F(VerifyHttpFindings, InvalidHostFieldValueIs400) {
  for (const char* host : {"a b", "a/b", "u@a"}) {
    const HttpResponse r = client_->raw(std::string("GET /healthz HTTP/1.1\r\nHost: ") + host + "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.status, 400) << "Host: " << host << " -> " << r.body;
  }
}

// RFC 9110 2.5: a message with a higher minor version of a major version the server
// implements (HTTP/1.2) SHOULD be processed as HTTP/1.1. It is answered 400.
TEST_F(VerifyHttpFindings, HigherMinorVersionIsServedAsHttp11) {
  const HttpResponse r = client_->raw("GET /healthz HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace paycore::it
