// The audit "every id taken from a body or a path is checked against the caller", one test per
// route, against the real server: a merchant cannot act on what is not its own, and the answer
// tells it nothing about what exists (docs/api.md "Authentication": anything else is 404;
// "Mandates": no existence leaks across merchants). Channels are held to their own payments.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "tests/integration/server_suite.hpp"

namespace paycore::it {
namespace {

class Ownership : public ServerSuite {
 protected:
  // A payment of m_002 in the given state: "PENDING" (alipay), "PAID" or "SHIPPED" (balance,
  // from a customer under a mandate for m_002).
  std::string theirs(const std::string& status) {
    const std::string order = unique("theirs");
    if (status == "PENDING") {
      EXPECT_EQ(client_->call(m2(), "POST", "/v1/payments", payment_body(unique("r"), order, 50, "alipay")).status, 201);
      return order;
    }
    const std::string payer = customer_with(1000);
    EXPECT_EQ(create_mandate(unique("md"), payer, "m_002").status, 201);
    EXPECT_EQ(client_->call(m2(), "POST", "/v1/payments", payment_body(unique("r"), order, 50, "balance", payer)).status,
              201);
    if (status == "SHIPPED") {
      EXPECT_EQ(client_->call(m2(), "POST", "/v1/payments/" + order + "/ship", request_id_body()).status, 200);
    }
    return order;
  }
  // What the owner sees of its payment: status and refunded amount.
  std::string owner_view(const std::string& order) {
    const HttpResponse r = client_->call(m2(), "GET", "/v1/payments/" + order);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_string(r.body, "/status").value_or("") + "/" +
           std::to_string(json_int(r.body, "/refunded_amount").value_or(-1));
  }
  // m_001 calls `target` on m_002's order: 404 payment_not_found, and the payment is as it was.
  // `body` makes a body with a fresh request_id for each call.
  void expect_foreign_order_refused(const std::string& order, const std::string& method, const std::string& action,
                                    const std::function<std::string()>& body) {
    const std::string before = owner_view(order);
    const HttpResponse r = client_->call(m1(), method, "/v1/payments/" + order + action, body());
    EXPECT_EQ(r.status, 404) << method << " " << action << ": " << r.body;
    EXPECT_EQ(error_code(r), "payment_not_found");
    // The same answer as for an order that exists nowhere.
    const HttpResponse nowhere = client_->call(m1(), method, "/v1/payments/" + unique("nowhere") + action, body());
    EXPECT_EQ(r.body, nowhere.body);
    EXPECT_EQ(owner_view(order), before);
  }
  std::string snapshot_export_csv() {
    const HttpResponse snap = client_->call(op(), "POST", "/v1/admin/snapshot", "");
    EXPECT_EQ(snap.status, 200) << snap.body;
    const std::string command =
        std::string(PAYCORE_BINARY) + " snapshot export --format csv '" + json_string(snap.body, "/path").value_or("") + "'";
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return out;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    EXPECT_EQ(::pclose(pipe), 0) << command;
    return out;
  }
};

// ---- POST /v1/payments: payer_account_id

TEST_F(Ownership, PaymentCannotDebitAnotherMerchantsAccount) {
  ASSERT_EQ(deposit("m_002", 1000).status, 200);
  const std::int64_t before = balance_of("m_002");
  const HttpResponse r = pay(m1(), "m_002", 10);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(error_code(r), "account_not_found");
  EXPECT_EQ(error_field(r), "payer_account_id");
  EXPECT_EQ(balance_of("m_002"), before);
}

// Before mandates this was 400 invalid_field; a merchant account is never a payer now.
TEST_F(Ownership, PaymentCannotDebitTheMerchantsOwnAccount) {
  ASSERT_EQ(deposit("m_001", 1000).status, 200);
  const HttpResponse r = pay(m1(), "m_001", 10);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(error_code(r), "account_not_found");
}

// A customer that gave a mandate to m_002 only looks, to m_001, exactly like no account at
// all: same status, same body, byte for byte.
TEST_F(Ownership, PaymentFromCustomerMandatedToAnotherMerchantIsIndistinguishableFromNoAccount) {
  const std::string payer = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_002").status, 201);
  const HttpResponse theirs = pay(m1(), payer, 10);
  const HttpResponse nobody = pay(m1(), unique("nobody"), 10);
  const HttpResponse unmandated = pay(m1(), customer_with(1000), 10);
  EXPECT_EQ(theirs.status, 404) << theirs.body;
  EXPECT_EQ(error_code(theirs), "account_not_found");
  EXPECT_EQ(theirs.body, nobody.body);
  EXPECT_EQ(unmandated.body, nobody.body);
  EXPECT_EQ(balance_of(payer), 1000);
  EXPECT_EQ(pay(m2(), payer, 10).status, 201);  // its rightful merchant still can
}

// ---- POST /v1/payments/batch: each item's payer_account_id

TEST_F(Ownership, BatchItemsFromAccountsNotMineAreEach404) {
  const std::string mine = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), mine, "m_001").status, 201);
  const std::string theirs = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), theirs, "m_002").status, 201);
  const std::string body = R"({"payments":[)" + payment_body(unique("r"), unique("o"), 10, "balance", theirs) + "," +
                           payment_body(unique("r"), unique("o"), 10, "balance", "m_002") + "," +
                           payment_body(unique("r"), unique("o"), 10, "balance", mine) + "," +
                           payment_body(unique("r"), unique("o"), 10, "balance", unique("nobody")) + "]}";
  const HttpResponse r = client_->call(m1(), "POST", "/v1/payments/batch", body);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json_array_size(r.body, "/results"), 4u) << r.body;
  for (const int i : {0, 1, 3}) {
    const std::string at = "/results/" + std::to_string(i);
    EXPECT_EQ(json_int(r.body, at + "/status"), 404) << i << ": " << r.body;
    EXPECT_EQ(json_string(r.body, at + "/error/code"), "account_not_found") << i;
  }
  EXPECT_EQ(json_int(r.body, "/results/2/status"), 201) << r.body;
  EXPECT_EQ(balance_of(theirs), 1000);
  EXPECT_EQ(balance_of(mine), 990);
}

// ---- /v1/payments/{order_id}[/action]: the order is looked up among the caller's own

TEST_F(Ownership, GetOfAnotherMerchantsOrderIs404) {
  expect_foreign_order_refused(theirs("PAID"), "GET", "", [] { return std::string(); });
}

TEST_F(Ownership, CancelOfAnotherMerchantsOrderIs404) {
  expect_foreign_order_refused(theirs("PENDING"), "POST", "/cancel", request_id_body);
}

TEST_F(Ownership, ShipOfAnotherMerchantsOrderIs404) {
  expect_foreign_order_refused(theirs("PAID"), "POST", "/ship", request_id_body);
}

TEST_F(Ownership, CompleteOfAnotherMerchantsOrderIs404) {
  expect_foreign_order_refused(theirs("SHIPPED"), "POST", "/complete", request_id_body);
}

TEST_F(Ownership, RefundOfAnotherMerchantsOrderIs404) {
  expect_foreign_order_refused(theirs("PAID"), "POST", "/refunds",
                               [] { return R"({"request_id":")" + unique("r") + R"(","amount":10})"; });
}

// ---- /v1/accounts

TEST_F(Ownership, GetOfAnotherMerchantsAccountIs404) {
  const HttpResponse other = client_->call(m1(), "GET", "/v1/accounts/m_002");
  EXPECT_EQ(other.status, 404) << other.body;
  const HttpResponse customer = client_->call(m1(), "GET", "/v1/accounts/" + customer_with(10));
  EXPECT_EQ(customer.status, 404) << customer.body;
  const HttpResponse nobody = client_->call(m1(), "GET", "/v1/accounts/" + unique("nobody"));
  EXPECT_EQ(nobody.status, 404);
  EXPECT_EQ(client_->call(m1(), "GET", "/v1/accounts/m_001").status, 200);
}

TEST_F(Ownership, DepositAsMerchantIs404) {
  const std::int64_t before = balance_of("m_001");
  const HttpResponse r = client_->call(m1(), "POST", "/v1/accounts/m_001/deposits",
                                       R"({"request_id":")" + unique("r") + R"(","amount":10,"currency":"CNY"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(balance_of("m_001"), before);
}

TEST_F(Ownership, OpenAccountAsMerchantIs404) {
  const std::string id = unique("acc");
  const HttpResponse r = client_->call(m1(), "POST", "/v1/accounts",
                                       R"({"request_id":")" + unique("r") + R"(","account_id":")" + id +
                                           R"(","currency":"CNY","kind":"customer"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(client_->call(op(), "GET", "/v1/accounts/" + id).status, 404);
}

TEST_F(Ownership, AdminSnapshotAsMerchantIs404) {
  const HttpResponse r = client_->call(m1(), "POST", "/v1/admin/snapshot", "");
  EXPECT_EQ(r.status, 404) << r.body;
}

// ---- /v1/mandates

TEST_F(Ownership, MandateCreateAsMerchantIs404) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  const HttpResponse r = client_->call(m1(), "POST", "/v1/mandates", mandate_body(unique("rm"), id, payer, "m_001", 1000));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(client_->call(op(), "GET", "/v1/mandates/" + id).status, 404);
  EXPECT_EQ(pay(m1(), payer, 10).status, 404);
}

TEST_F(Ownership, MandateRevokeAsMerchantIs404) {
  const std::string payer = customer_with(1000);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_001").status, 201);
  // Not even the mandate's own merchant: the customer's consent is withdrawn through the operator.
  const HttpResponse r = client_->call(m1(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body());
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(client_->call(m2(), "POST", "/v1/mandates/" + id + "/revoke", request_id_body()).status, 404);
  EXPECT_EQ(mandate_status(id), "ACTIVE");
}

TEST_F(Ownership, GetOfAnotherMerchantsMandateIs404NotFound) {
  const std::string payer = customer_with(0);
  const std::string id = unique("md");
  ASSERT_EQ(create_mandate(id, payer, "m_002").status, 201);
  const HttpResponse r = client_->call(m1(), "GET", "/v1/mandates/" + id);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(error_code(r), "not_found");
  const HttpResponse nowhere = client_->call(m1(), "GET", "/v1/mandates/" + unique("nowhere"));
  EXPECT_EQ(r.body, nowhere.body);
  EXPECT_EQ(client_->call(m2(), "GET", "/v1/mandates/" + id).status, 200);
}

// ---- POST /v1/notify/{channel}: a channel settles only payments made through it

TEST_F(Ownership, NotificationFromAnotherChannelIsAnAnomaly) {
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 300, "alipay")).status, 201);
  const std::int64_t before = balance_of("m_001");
  const std::string txn = unique("txn");
  const std::string body = R"({"channel_txn_id":")" + txn + R"(","merchant_id":"m_001","order_id":")" + order +
                           R"(","amount":300,"currency":"CNY","status":"SUCCESS","paid_at":"2026-11-26T08:00:01Z"})";
  const HttpResponse r = client_->raw(notification_request("wechat", fixture_->private_key("wechat"), body));
  EXPECT_EQ(r.status, 200) << r.body;  // acknowledged (durable), but not applied
  const HttpResponse payment = client_->call(m1(), "GET", "/v1/payments/" + order);
  EXPECT_EQ(json_string(payment.body, "/status"), "PENDING");
  EXPECT_TRUE(json_is_null(payment.body, "/channel_txn_id"));
  EXPECT_EQ(balance_of("m_001"), before);
  const std::string csv = snapshot_export_csv();
  const std::size_t at = csv.find("anomaly,wechat," + txn + ",");
  ASSERT_NE(at, std::string::npos) << "no anomaly kept for " << txn;
  EXPECT_NE(csv.substr(at, csv.find('\n', at) - at).find(",channel_mismatch,"), std::string::npos)
      << csv.substr(at, csv.find('\n', at) - at);
}

TEST_F(Ownership, NotificationCannotSettleABalancePayment) {
  const std::string payer = customer_with(1000);
  ASSERT_EQ(create_mandate(unique("md"), payer, "m_001").status, 201);
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 300, "balance", payer)).status,
            201);
  const std::int64_t before = balance_of("m_001");
  const std::string body = R"({"channel_txn_id":")" + unique("txn") + R"(","merchant_id":"m_001","order_id":")" +
                           order + R"(","amount":300,"currency":"CNY","status":"SUCCESS","paid_at":"2026-11-26T08:00:01Z"})";
  EXPECT_EQ(client_->raw(notification_request("alipay", fixture_->private_key("alipay"), body)).status, 200);
  EXPECT_EQ(balance_of("m_001"), before);
  EXPECT_TRUE(json_is_null(client_->call(m1(), "GET", "/v1/payments/" + order).body, "/channel_txn_id"));
}

TEST_F(Ownership, MerchantSignatureIsNotAcceptedOnNotify) {
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 300, "alipay")).status, 201);
  const std::string body = R"({"channel_txn_id":")" + unique("txn") + R"(","merchant_id":"m_001","order_id":")" +
                           order + R"(","amount":300,"currency":"CNY","status":"SUCCESS","paid_at":"2026-11-26T08:00:01Z"})";
  // The merchant's own HMAC headers, correct for its secret: not a channel's signature.
  const HttpResponse r = client_->raw(Client::signed_request(m1(), "POST", "/v1/notify/alipay", body));
  EXPECT_EQ(r.status, 401) << r.body;
  const HttpResponse op_signed = client_->raw(Client::signed_request(op(), "POST", "/v1/notify/alipay", body));
  EXPECT_EQ(op_signed.status, 401) << op_signed.body;
  EXPECT_EQ(json_string(client_->call(m1(), "GET", "/v1/payments/" + order).body, "/status"), "PENDING");
}

}  // namespace
}  // namespace paycore::it
