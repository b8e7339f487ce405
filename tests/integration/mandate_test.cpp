// Mandates over HTTP against the real server (docs/api.md "Mandates"): their lifecycle, the
// refusals of payments under them and their precedence, idempotent creation, and that they
// survive restarts.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "tests/integration/server_suite.hpp"

namespace paycore::it {
namespace {

class Mandates : public ServerSuite {};

TEST_F(Mandates, CreatedMandateIsReturnedWithEveryField) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  const HttpResponse r = create_mandate(id, payer, "m_001", 5000);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/mandate_id"), id);
  EXPECT_EQ(json_string(r.body, "/payer_account_id"), payer);
  EXPECT_EQ(json_string(r.body, "/merchant_id"), "m_001");
  EXPECT_EQ(json_int(r.body, "/amount_max"), 5000);
  EXPECT_EQ(json_string(r.body, "/currency"), "CNY");
  EXPECT_TRUE(json_is_null(r.body, "/expires_at")) << r.body;
  EXPECT_NE(r.body.find(R"("single_use":false)"), std::string::npos) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "ACTIVE");
  EXPECT_EQ(json_string(r.body, "/created_at").value_or("").size(), 27u);
  EXPECT_EQ(json_string(r.body, "/updated_at").value_or("").size(), 27u);
}

TEST_F(Mandates, OperatorAndTheMandatesMerchantReadIt) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  const HttpResponse by_operator = client_->call(op(), "GET", "/v1/mandates/" + id);
  ASSERT_EQ(by_operator.status, 200) << by_operator.body;
  const HttpResponse by_merchant = client_->call(m1(), "GET", "/v1/mandates/" + id);
  ASSERT_EQ(by_merchant.status, 200) << by_merchant.body;
  EXPECT_EQ(by_merchant.body, by_operator.body);
}

TEST_F(Mandates, UnknownMandateIs404NotFound) {
  const HttpResponse r = client_->call(op(), "GET", "/v1/mandates/" + unique("nothing"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_code(r), "not_found");
}

TEST_F(Mandates, PaymentUnderAMandateCarriesItsId) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  const HttpResponse r = pay(m1(), payer, 300);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "PAID");
  EXPECT_EQ(json_string(r.body, "/mandate_id"), id);
  EXPECT_EQ(balance_of(payer), 700);
  const HttpResponse external =
      client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), unique("order"), 5, "alipay"));
  ASSERT_EQ(external.status, 201) << external.body;
  EXPECT_TRUE(json_is_null(external.body, "/mandate_id")) << external.body;
}

TEST_F(Mandates, PaymentWithoutAnyMandateIs404AccountNotFound) {
  const std::string payer = customer_with(1000);
  const HttpResponse r = pay(m1(), payer, 10);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(error_code(r), "account_not_found");
  EXPECT_EQ(error_field(r), "payer_account_id");
  EXPECT_EQ(balance_of(payer), 1000);
}

TEST_F(Mandates, RevokedMandateRefusesPaymentsWith403MandateInactive) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  ASSERT_EQ(pay(m1(), payer, 100).status, 201);
  const HttpResponse revoked = client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body());
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(json_string(revoked.body, "/status"), "REVOKED");
  const HttpResponse r = pay(m1(), payer, 100);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(error_code(r), "mandate_inactive");
  EXPECT_EQ(balance_of(payer), 900);
}

TEST_F(Mandates, RevokingAnInactiveMandateIs409InvalidState) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  ASSERT_EQ(client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body()).status, 200);
  const HttpResponse again = client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body());
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(error_code(again), "invalid_state");
  const HttpResponse unknown =
      client_->call(op(), "POST", "/v1/mandates/" + unique("nothing") + "/revoke", request_id_body());
  EXPECT_EQ(unknown.status, 404) << unknown.body;
}

TEST_F(Mandates, ExpiredMandateReadsExpiredAndRefuses403) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  const HttpResponse created = create_mandate(id, payer, "m_001", 1000, rfc3339_in(2));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_FALSE(json_is_null(created.body, "/expires_at"));
  ASSERT_EQ(pay(m1(), payer, 10).status, 201);
  // Past expires_at (whole seconds, so up to 3 s away): read as EXPIRED at request time.
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  EXPECT_EQ(mandate_status(id), "EXPIRED");
  const HttpResponse r = pay(m1(), payer, 10);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(error_code(r), "mandate_inactive");
  const HttpResponse revoke = client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body());
  EXPECT_EQ(revoke.status, 409) << revoke.body;
  EXPECT_EQ(balance_of(payer), 990);
}

TEST_F(Mandates, ExpiresAtInThePastIs400InvalidField) {
  const std::string payer = customer_with(0);
  const HttpResponse r = create_mandate(unique("md"), payer, "m_001", 1000, "2020-01-01T00:00:00Z");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(error_code(r), "invalid_field");
  EXPECT_EQ(error_field(r), "expires_at");
}

TEST_F(Mandates, SingleUseMandateBecomesUsedWithItsPayment) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  const HttpResponse created = create_mandate(id, payer, "m_001", 1000, {}, /*single_use=*/true);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_NE(created.body.find(R"("single_use":true)"), std::string::npos) << created.body;
  ASSERT_EQ(pay(m1(), payer, 100).status, 201);
  EXPECT_EQ(mandate_status(id), "USED");
  const HttpResponse second = pay(m1(), payer, 100);
  EXPECT_EQ(second.status, 403) << second.body;
  EXPECT_EQ(error_code(second), "mandate_inactive");
  EXPECT_EQ(balance_of(payer), 900);
}

TEST_F(Mandates, SingleUseMandateRefusedPaymentDoesNotUseIt) {
  const std::string payer = customer_with(50);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001", 1000, {}, /*single_use=*/true).status, 201);
  EXPECT_EQ(pay(m1(), payer, 100).status, 402);  // insufficient_funds
  EXPECT_EQ(mandate_status(id), "ACTIVE");
  EXPECT_EQ(pay(m1(), payer, 50).status, 201);
  EXPECT_EQ(mandate_status(id), "USED");
}

TEST_F(Mandates, AmountOverAmountMaxIs402MandateLimitExceeded) {
  const std::string payer = customer_with(10'000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001", 500).status, 201);
  const HttpResponse over = pay(m1(), payer, 501);
  EXPECT_EQ(over.status, 402) << over.body;
  EXPECT_EQ(error_code(over), "mandate_limit_exceeded");
  EXPECT_EQ(error_field(over), "amount");
  EXPECT_EQ(pay(m1(), payer, 500).status, 201);
  EXPECT_EQ(balance_of(payer), 9500);
}

TEST_F(Mandates, InactiveComesBeforeLimitBeforeFunds) {
  const std::string payer = customer_with(10);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001", 100).status, 201);
  // Over amount_max and over the balance: the mandate's limit is named.
  EXPECT_EQ(error_code(pay(m1(), payer, 101)), "mandate_limit_exceeded");
  // Within amount_max, over the balance: the funds.
  EXPECT_EQ(error_code(pay(m1(), payer, 50)), "insufficient_funds");
  ASSERT_EQ(client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body()).status, 200);
  // Revoked, over amount_max and over the balance: the mandate's state is named.
  EXPECT_EQ(error_code(pay(m1(), payer, 101)), "mandate_inactive");
}

TEST_F(Mandates, CurrencyOtherThanThePayersIs422CurrencyMismatch) {
  const std::string payer = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001").status, 201);
  const HttpResponse r = client_->call(
      m1(), "POST", "/v1/payments", payment_body(unique("r"), unique("order"), 10, "balance", payer, "USD"));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(error_code(r), "currency_mismatch");
}

TEST_F(Mandates, MerchantAccountAsPayerIs422InvalidPayer) {
  const HttpResponse r = create_mandate(unique("md"), "m_002", "m_001");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(error_code(r), "invalid_payer");
  EXPECT_EQ(error_field(r), "payer_account_id");
}

TEST_F(Mandates, MerchantNotInTheKeysFileIs400InvalidField) {
  const std::string payer = customer_with(0);
  for (const char* merchant : {"m_nobody", "operator"}) {
    const HttpResponse r = create_mandate(unique("md"), payer, merchant);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(error_code(r), "invalid_field");
    EXPECT_EQ(error_field(r), "merchant_id");
  }
}

TEST_F(Mandates, UnknownPayerIs404AccountNotFound) {
  const HttpResponse r = create_mandate(unique("md"), unique("nobody"), "m_001");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(error_code(r), "account_not_found");
}

TEST_F(Mandates, TakenMandateIdIs409MandateExists) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  const HttpResponse r = create_mandate(id, customer_with(0), "m_002");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(error_code(r), "mandate_exists");
  EXPECT_EQ(json_string(client_->call(op(), "GET", "/v1/mandates/" + id).body, "/merchant_id"), "m_001");
}

TEST_F(Mandates, CreateReplayIsIdempotentReplayed) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  const std::string body = mandate_body(unique("rm"), id, payer, "m_001", 700);
  const HttpResponse first = client_->call(op(), "POST", "/v1/mandates", body);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_TRUE(first.header("idempotent-replayed").empty());
  const HttpResponse again = client_->call(op(), "POST", "/v1/mandates", body);
  EXPECT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(json_string(again.body, "/mandate_id"), id);
  EXPECT_EQ(json_string(again.body, "/status"), "ACTIVE");
  const HttpResponse reused = client_->call(op(), "POST", "/v1/mandates",
                                            mandate_body(json_string(body, "/request_id").value_or(""), id, payer,
                                                         "m_001", 701));
  EXPECT_EQ(reused.status, 422) << reused.body;
  EXPECT_EQ(error_code(reused), "idempotency_key_reused");
}

TEST_F(Mandates, RevokeReplayIsIdempotentReplayed) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  const std::string body = request_id_body();
  ASSERT_EQ(client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", body).status, 200);
  const HttpResponse again = client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", body);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(json_string(again.body, "/status"), "REVOKED");
}

TEST_F(Mandates, NewerMandateForThePairRevokesTheOlder) {
  const std::string payer = customer_with(1000);
  const std::string older = unique("md");
  const std::string newer = unique("md");
  ASSERT_EQ(create_mandate(older, payer, "m_001", 100).status, 201);
  ASSERT_EQ(create_mandate(newer, payer, "m_001", 300).status, 201);
  EXPECT_EQ(mandate_status(older), "REVOKED");
  EXPECT_EQ(mandate_status(newer), "ACTIVE");
  // The newer one governs: its amount_max and its id.
  const HttpResponse r = pay(m1(), payer, 250);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/mandate_id"), newer);
}

TEST_F(Mandates, MandateForAnotherMerchantIsNotSuperseded) {
  const std::string payer = customer_with(1000);
  const std::string mine = unique("md");
  const std::string theirs = unique("md");
  ASSERT_EQ(create_mandate(mine, payer, "m_001").status, 201);
  ASSERT_EQ(create_mandate(theirs, payer, "m_002").status, 201);
  EXPECT_EQ(mandate_status(mine), "ACTIVE");
  EXPECT_EQ(pay(m1(), payer, 10).status, 201);
  EXPECT_EQ(pay(m2(), payer, 10).status, 201);
}

TEST_F(Mandates, RefundNeedsNoMandate) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 400, "balance", payer)).status,
            201);
  ASSERT_EQ(client_->call(op(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body()).status, 200);
  const HttpResponse refund = client_->call(m1(), "POST", "/v1/payments/" + order + "/refunds",
                                            R"({"request_id":")" + unique("r") + R"(","amount":400})");
  EXPECT_EQ(refund.status, 201) << refund.body;
  EXPECT_EQ(balance_of(payer), 1000);
}

// A kept refusal is replayed as it was first answered, field included (docs/api.md "Idempotency").
TEST_F(Mandates, ReplayedInsufficientFundsKeepsItsField) {
  const std::string payer = customer_with(10);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001").status, 201);
  const std::string body = payment_body(unique("r"), unique("order"), 11, "balance", payer);
  const HttpResponse first = client_->call(m1(), "POST", "/v1/payments", body);
  ASSERT_EQ(first.status, 402) << first.body;
  EXPECT_EQ(error_code(first), "insufficient_funds");
  EXPECT_EQ(error_field(first), "amount");
  const HttpResponse again = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(again.status, 402) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(error_code(again), "insufficient_funds");
  EXPECT_EQ(error_field(again), "amount");
}

TEST_F(Mandates, ReplayedAccountNotFoundKeepsItsField) {
  const std::string body = payment_body(unique("r"), unique("order"), 11, "balance", unique("nobody"));
  const HttpResponse first = client_->call(m1(), "POST", "/v1/payments", body);
  ASSERT_EQ(first.status, 404) << first.body;
  EXPECT_EQ(error_field(first), "payer_account_id");
  const HttpResponse again = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(error_field(again), "payer_account_id");
}

TEST_F(Mandates, ReplayedMandateLimitKeepsItsField) {
  const std::string payer = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001", 10).status, 201);
  const std::string body = payment_body(unique("r"), unique("order"), 11, "balance", payer);
  const HttpResponse first = client_->call(m1(), "POST", "/v1/payments", body);
  ASSERT_EQ(first.status, 402) << first.body;
  const HttpResponse again = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(error_field(again), "amount");
}

TEST_F(Mandates, ReplayedInvalidPayerKeepsItsField) {
  const std::string body = mandate_body(unique("rm"), unique("md"), "m_002", "m_001", 10);
  const HttpResponse first = client_->call(op(), "POST", "/v1/mandates", body);
  ASSERT_EQ(first.status, 422) << first.body;
  const HttpResponse again = client_->call(op(), "POST", "/v1/mandates", body);
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.status, 422);
  EXPECT_EQ(error_code(again), "invalid_payer");
  EXPECT_EQ(error_field(again), "payer_account_id");
}

// ---- Restarts: the log replayed after a SIGKILL, and the snapshot written at a clean stop.

struct RestartedMandates {
  std::string active, used, revoked;
};

RestartedMandates make_mandates(Client& client) {
  const Signer op = client.operator_signer();
  const Signer m1 = client.merchant("m_001");
  EXPECT_EQ(client.call(op, "POST", "/v1/accounts", R"({"request_id":"a1","account_id":"m_001","currency":"CNY","kind":"merchant"})").status, 201);
  for (const char* payer : {"p1", "p2", "p3"}) {
    EXPECT_EQ(client.call(op, "POST", "/v1/accounts",
                          std::string(R"({"request_id":"open-)") + payer + R"(","account_id":")" + payer +
                              R"(","currency":"CNY","kind":"customer"})")
                  .status,
              201);
    EXPECT_EQ(client.call(op, "POST", std::string("/v1/accounts/") + payer + "/deposits",
                          std::string(R"({"request_id":"dep-)") + payer + R"(","amount":1000,"currency":"CNY"})")
                  .status,
              200);
  }
  EXPECT_EQ(client.call(op, "POST", "/v1/mandates", mandate_body("rm1", "md-active", "p1", "m_001", 500)).status, 201);
  EXPECT_EQ(client.call(op, "POST", "/v1/mandates", mandate_body("rm2", "md-used", "p2", "m_001", 500, {}, true)).status, 201);
  EXPECT_EQ(client.call(op, "POST", "/v1/mandates", mandate_body("rm3", "md-revoked", "p3", "m_001", 500)).status, 201);
  EXPECT_EQ(client.call(op, "POST", "/v1/mandates/md-revoked/revoke", R"({"request_id":"rv3"})").status, 200);
  EXPECT_EQ(client.call(m1, "POST", "/v1/payments",
                        R"({"request_id":"pay2","order_id":"pay2","amount":5,"currency":"CNY","channel":"balance","payer_account_id":"p2"})")
                .status,
            201);
  return {"md-active", "md-used", "md-revoked"};
}

void expect_mandates_kept(Client& client, int generation) {
  const Signer op = client.operator_signer();
  const Signer m1 = client.merchant("m_001");
  SCOPED_TRACE("restart " + std::to_string(generation));
  EXPECT_EQ(json_string(client.call(op, "GET", "/v1/mandates/md-active").body, "/status"), "ACTIVE");
  EXPECT_EQ(json_string(client.call(op, "GET", "/v1/mandates/md-used").body, "/status"), "USED");
  EXPECT_EQ(json_string(client.call(op, "GET", "/v1/mandates/md-revoked").body, "/status"), "REVOKED");
  EXPECT_EQ(json_int(client.call(m1, "GET", "/v1/mandates/md-active").body, "/amount_max"), 500);
  // Still enforced: the active one pays (within amount_max), the others refuse.
  const std::string n = std::to_string(generation);
  const HttpResponse paid = client.call(m1, "POST", "/v1/payments",
                                        R"({"request_id":"after)" + n + R"(","order_id":"after)" + n +
                                            R"(","amount":10,"currency":"CNY","channel":"balance","payer_account_id":"p1"})");
  EXPECT_EQ(paid.status, 201) << paid.body;
  EXPECT_EQ(json_string(paid.body, "/mandate_id"), "md-active");
  for (const char* payer : {"p2", "p3"}) {
    const HttpResponse r = client.call(m1, "POST", "/v1/payments",
                                       std::string(R"({"request_id":"refused-)") + payer + n +
                                           R"(","order_id":"refused-)" + payer + n +
                                           R"(","amount":1,"currency":"CNY","channel":"balance","payer_account_id":")" +
                                           payer + R"("})");
    EXPECT_EQ(r.status, 403) << payer << ": " << r.body;
  }
  const HttpResponse over = client.call(m1, "POST", "/v1/payments",
                                        R"({"request_id":"over)" + n + R"(","order_id":"over)" + n +
                                            R"(","amount":501,"currency":"CNY","channel":"balance","payer_account_id":"p1"})");
  EXPECT_EQ(over.status, 402) << over.body;
  // The creation's outcome is kept too: replayed, not made again.
  const HttpResponse replay = client.call(op, "POST", "/v1/mandates", mandate_body("rm1", "md-active", "p1", "m_001", 500));
  EXPECT_EQ(replay.status, 201) << replay.body;
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
}

TEST(MandateRestart, MandatesSurviveSigkillAndCleanRestart) {
  Fixture fixture;
  ASSERT_TRUE(fixture.start()) << (fixture.server ? fixture.server->log() : "");
  {
    Client client(fixture.server->port(), fixture.keys);
    make_mandates(client);
  }
  fixture.server->kill_hard();  // the log alone brings them back
  ASSERT_TRUE(fixture.restart()) << fixture.server->log();
  {
    Client client(fixture.server->port(), fixture.keys);
    expect_mandates_kept(client, 1);
  }
  ASSERT_EQ(fixture.server->stop(SIGTERM), 0);  // a clean stop: from the snapshot
  ASSERT_TRUE(fixture.restart()) << fixture.server->log();
  {
    Client client(fixture.server->port(), fixture.keys);
    expect_mandates_kept(client, 2);
  }
  fixture.destroy();
}

}  // namespace
}  // namespace paycore::it
