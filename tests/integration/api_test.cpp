// Every endpoint, rule and error code of docs/api.md against the real server.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>

#include <atomic>
#include <thread>

#include "base/time.hpp"
#include "tests/integration/client.hpp"

namespace paycore::it {
namespace {

class Api : public ::testing::Test {
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
  void SetUp() override {
    ASSERT_NE(fixture_, nullptr);
    client_ = std::make_unique<Client>(fixture_->server->port(), fixture_->keys);
  }

  Signer op() const { return client_->operator_signer(); }
  Signer m1() const { return client_->merchant("m_001"); }
  Signer m2() const { return client_->merchant("m_002"); }

  // A fresh id per call so tests do not collide on the shared server.
  static std::string unique(const std::string& prefix) {
    static std::atomic<int> counter{0};
    return prefix + "-" + std::to_string(counter.fetch_add(1));
  }

  HttpResponse open_account(const std::string& id, const std::string& kind = "customer",
                            const std::string& currency = "CNY") {
    return client_->call(op(), "POST", "/v1/accounts",
                         R"({"request_id":")" + unique("ra") + R"(","account_id":")" + id +
                             R"(","currency":")" + currency + R"(","kind":")" + kind + R"("})");
  }
  HttpResponse deposit(const std::string& id, std::int64_t amount, const std::string& currency = "CNY") {
    return client_->call(op(), "POST", "/v1/accounts/" + id + "/deposits",
                         R"({"request_id":")" + unique("rd") + R"(","amount":)" + std::to_string(amount) +
                             R"(,"currency":")" + currency + R"("})");
  }
  // Makes sure the merchant's own account exists (idempotent across tests).
  void ensure_merchant_accounts() {
    for (const char* m : {"m_001", "m_002"}) {
      const HttpResponse r = open_account(m, "merchant");
      ASSERT_TRUE(r.status == 201 || r.status == 409) << r.body;
    }
  }
  // A customer account with `balance`, under a mandate for each of `merchants`.
  std::string customer_with(std::int64_t balance, const std::vector<std::string>& merchants = {"m_001"}) {
    const std::string id = unique("cust");
    EXPECT_EQ(open_account(id).status, 201);
    if (balance > 0) {
      EXPECT_EQ(deposit(id, balance).status, 200);
    }
    for (const std::string& merchant : merchants) {
      const HttpResponse r = grant_mandate(*client_, id, merchant);
      EXPECT_EQ(r.status, 201) << r.body;
    }
    return id;
  }
  static std::string payment_body(const std::string& request_id, const std::string& order_id, std::int64_t amount,
                                  const std::string& channel, const std::string& payer = {},
                                  const std::string& currency = "CNY") {
    std::string body = R"({"request_id":")" + request_id + R"(","order_id":")" + order_id +
                       R"(","amount":)" + std::to_string(amount) + R"(,"currency":")" + currency +
                       R"(","channel":")" + channel + '"';
    if (!payer.empty()) body += R"(,"payer_account_id":")" + payer + '"';
    return body + "}";
  }
  std::int64_t balance_of(const std::string& id) {
    const HttpResponse r = client_->call(op(), "GET", "/v1/accounts/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_int(r.body, "/balance").value_or(-1);
  }
  HttpResponse notify(const std::string& channel, const std::string& body, bool corrupt = false) {
    return client_->raw(notification_request(channel, fixture_->private_key(channel), body, corrupt));
  }
  static std::string notification_body(const std::string& txn, const std::string& order, std::int64_t amount,
                                       const std::string& status, const std::string& currency = "CNY") {
    return R"({"channel_txn_id":")" + txn + R"(","merchant_id":"m_001","order_id":")" + order +
           R"(","amount":)" + std::to_string(amount) + R"(,"currency":")" + currency + R"(","status":")" +
           status + R"(","paid_at":"2026-11-26T08:00:01Z"})";
  }

  static Fixture* fixture_;
  std::unique_ptr<Client> client_;
};
Fixture* Api::fixture_ = nullptr;

TEST_F(Api, HealthAndReadinessNeedNoSignature) {
  EXPECT_EQ(client_->get("/healthz").status, 200);
  EXPECT_EQ(client_->get("/readyz").status, 200);
}

TEST_F(Api, MetricsExposeRoutesWalAndState) {
  ASSERT_EQ(client_->get("/healthz").status, 200);
  const HttpResponse r = client_->get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("text/plain"), std::string::npos);
  for (const char* name : {"paycore_http_requests_total{route=\"healthz\",status=\"200\"}",
                           "paycore_http_request_duration_seconds_bucket", "paycore_wal_appends_total",
                           "paycore_wal_fsyncs_total", "paycore_wal_fsync_duration_microseconds_bucket",
                           "paycore_wal_batch_records_bucket", "paycore_engine_queue_depth", "paycore_accounts",
                           "paycore_payments", "paycore_snapshot_lsn", "paycore_snapshot_age_seconds"}) {
    EXPECT_NE(r.body.find(name), std::string::npos) << name;
  }
}

// Every single-command answer passed every stage of the server (core/pipeline.hpp), so each
// stage counts as many answers as the whole way does.
TEST_F(Api, MetricsShowWhereEachRequestsTimeWent) {
  const std::string id = unique("c_stages");
  ASSERT_EQ(open_account(id).status, 201);
  ASSERT_EQ(deposit(id, 100).status, 200);
  const HttpResponse r = client_->get("/metrics");
  ASSERT_EQ(r.status, 200);
  const auto count_of = [&r](const std::string& stage) -> long {
    const std::string name =
        "paycore_request_stage_duration_microseconds_count{stage=\"" + stage + "\"} ";
    const std::size_t at = r.body.find(name);
    if (at == std::string::npos) return -1;
    return std::stol(r.body.substr(at + name.size()));
  };
  const long total = count_of("total");
  EXPECT_GE(total, 2);
  for (const char* stage : {"parse", "ring_wait", "apply", "batch_wait", "write_fsync", "release",
                            "wakeup", "respond"}) {
    EXPECT_EQ(count_of(stage), total) << stage;
  }
  for (const char* name : {"paycore_core_stalls_total{cause=\"snapshot\"}",
                           "paycore_core_stall_microseconds_total{cause=\"preempted\"}",
                           "paycore_core_stall_microseconds_max"}) {
    EXPECT_NE(r.body.find(name), std::string::npos) << name;
  }
}

// Paycore-Min-Lsn (docs/api.md "Replication"): a read waits for that position, up to
// min_lsn_wait_ms (1 s by default), then is 503 unavailable; a malformed one is 400.
TEST_F(Api, AReadCarryingPaycoreMinLsnWaitsForItOrIsRefused) {
  const std::string id = unique("minlsn");
  const HttpResponse opened = open_account(id);
  ASSERT_EQ(opened.status, 201) << opened.body;
  const std::string written = opened.header("paycore-lsn");
  ASSERT_FALSE(written.empty());
  const auto read_at = [&](const std::string& min_lsn) {
    return client_->raw(Client::signed_request(op(), "GET", "/v1/accounts/" + id, "", 0, {},
                                               "Paycore-Min-Lsn: " + min_lsn + "\r\n"));
  };
  const HttpResponse reached = read_at(written);
  EXPECT_EQ(reached.status, 200) << reached.body;
  EXPECT_GE(std::stoull(reached.header("paycore-lsn")), std::stoull(written));
  const auto started = std::chrono::steady_clock::now();
  const HttpResponse ahead = read_at(std::to_string(std::stoull(written) + 1'000'000));
  EXPECT_EQ(ahead.status, 503) << ahead.body;
  EXPECT_NE(ahead.body.find(R"("code":"unavailable")"), std::string::npos) << ahead.body;
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
  for (const char* bad : {"x", "-1", "", "12345678901234567890", "1 2"}) {
    const HttpResponse refused = read_at(bad);
    EXPECT_EQ(refused.status, 400) << bad << ": " << refused.body;
    EXPECT_NE(refused.body.find("Paycore-Min-Lsn"), std::string::npos) << refused.body;
  }
}

TEST_F(Api, UnknownRouteIsNotFound) {
  const HttpResponse r = client_->call(m1(), "GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json_string(r.body, "/error/code"), "not_found");
}

TEST_F(Api, WrongMethodIsMethodNotAllowed) {
  const HttpResponse r = client_->call(m1(), "GET", "/v1/accounts");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(json_string(r.body, "/error/code"), "method_not_allowed");
  EXPECT_EQ(r.header("allow"), "POST");
  const HttpResponse both = client_->call(m1(), "DELETE", "/v1/payments");
  EXPECT_EQ(both.status, 405);
  EXPECT_EQ(both.header("allow"), "GET, HEAD, POST");
}

TEST_F(Api, RequestIdIsEchoedOrGenerated) {
  const HttpResponse echoed = client_->raw("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n");
  EXPECT_EQ(echoed.header("x-request-id"), "abc-123");
  const HttpResponse generated = client_->get("/healthz");
  EXPECT_FALSE(generated.header("x-request-id").empty());
}

TEST_F(Api, MissingSignatureIsUnauthenticated) {
  const HttpResponse r = client_->raw("GET /v1/payments/x HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "unauthenticated");
}

TEST_F(Api, UnknownPrincipalIsUnauthenticated) {
  const HttpResponse r = client_->raw(Client::signed_request(Signer{"m_999", "secret"}, "GET", "/v1/payments/x", ""));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "unauthenticated");
}

TEST_F(Api, BadSignatureIsRefused) {
  Signer wrong = m1();
  wrong.secret += "x";
  const HttpResponse r = client_->raw(Client::signed_request(wrong, "GET", "/v1/payments/x", ""));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "bad_signature");
}

TEST_F(Api, StaleTimestampIsOutOfWindow) {
  const HttpResponse r =
      client_->raw(Client::signed_request(m1(), "GET", "/v1/payments/x", "", ::time(nullptr) - 301));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "timestamp_out_of_window");
}

TEST_F(Api, ReplayedNonceIsRefusedOnAnyConnection) {
  const std::string request = Client::signed_request(m1(), "GET", "/v1/payments/x", "", 0, "replay-nonce-1");
  EXPECT_EQ(client_->raw(request).status, 404);  // payment_not_found: authenticated
  const HttpResponse again = client_->raw(request);
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(json_string(again.body, "/error/code"), "replayed_nonce");
}

TEST_F(Api, AccountsOpenDepositReadAndRefusals) {
  const std::string id = unique("acc");
  HttpResponse r = open_account(id);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/account_id"), id);
  EXPECT_EQ(json_string(r.body, "/kind"), "customer");
  EXPECT_EQ(json_string(r.body, "/currency"), "CNY");
  EXPECT_EQ(json_int(r.body, "/balance"), 0);
  EXPECT_EQ(json_string(r.body, "/created_at")->size(), 27u);
  EXPECT_EQ(open_account(id).status, 409);
  EXPECT_EQ(json_string(open_account(id).body, "/error/code"), "account_exists");

  r = deposit(id, 1234);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_int(r.body, "/balance"), 1234);
  r = deposit(id, 5, "USD");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json_string(r.body, "/error/code"), "currency_mismatch");
  r = deposit(unique("nobody"), 5);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json_string(r.body, "/error/code"), "account_not_found");
  r = client_->call(op(), "GET", "/v1/accounts/" + id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json_int(r.body, "/balance"), 1234);
}

TEST_F(Api, MerchantCannotCallOperatorEndpoints) {
  HttpResponse r = client_->call(m1(), "POST", "/v1/accounts",
                                 R"({"request_id":"x1","account_id":"zz","currency":"CNY","kind":"customer"})");
  EXPECT_EQ(r.status, 404);
  r = client_->call(m1(), "POST", "/v1/accounts/m_001/deposits", R"({"request_id":"x2","amount":5,"currency":"CNY"})");
  EXPECT_EQ(r.status, 404);
  r = client_->call(m1(), "POST", "/v1/admin/snapshot", "");
  EXPECT_EQ(r.status, 404);
}

TEST_F(Api, MerchantReadsOnlyItsOwnAccount) {
  ensure_merchant_accounts();
  EXPECT_EQ(client_->call(m1(), "GET", "/v1/accounts/m_001").status, 200);
  const HttpResponse r = client_->call(m1(), "GET", "/v1/accounts/m_002");
  EXPECT_EQ(r.status, 404);
}

TEST_F(Api, ValidationErrorsNameTheField) {
  ensure_merchant_accounts();
  struct Case {
    std::string body;
    int status;
    std::string code;
    std::string field;
  } cases[] = {
      {"{not json", 400, "invalid_json", ""},
      {R"({"order_id":"o","amount":1,"currency":"CNY","channel":"alipay"})", 400, "missing_field", "request_id"},
      {R"({"request_id":"r","order_id":"o o","amount":1,"currency":"CNY","channel":"alipay"})", 400, "invalid_field", "order_id"},
      {R"({"request_id":"r","order_id":"o","amount":1.5,"currency":"CNY","channel":"alipay"})", 400, "invalid_amount", "amount"},
      {R"({"request_id":"r","order_id":"o","amount":"1","currency":"CNY","channel":"alipay"})", 400, "invalid_amount", "amount"},
      {R"({"request_id":"r","order_id":"o","amount":0,"currency":"CNY","channel":"alipay"})", 400, "invalid_amount", "amount"},
      {R"({"request_id":"r","order_id":"o","amount":-1,"currency":"CNY","channel":"alipay"})", 400, "invalid_amount", "amount"},
      {R"({"request_id":"r","order_id":"o","amount":1e3,"currency":"CNY","channel":"alipay"})", 400, "invalid_amount", "amount"},
      {R"({"request_id":"r","order_id":"o","amount":1,"currency":"XXX1","channel":"alipay"})", 400, "invalid_field", "currency"},
      {R"({"request_id":"r","order_id":"o","amount":1,"currency":"CNY","channel":"paypal"})", 400, "unknown_channel", "channel"},
  };
  for (const Case& c : cases) {
    const HttpResponse r = client_->call(m1(), "POST", "/v1/payments", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_EQ(json_string(r.body, "/error/code").value_or(""), c.code) << c.body;
    if (!c.field.empty()) {
      EXPECT_EQ(json_string(r.body, "/error/field").value_or(""), c.field) << c.body;
    }
  }
}

TEST_F(Api, BalancePaymentLifecycleWithRefunds) {
  ensure_merchant_accounts();
  const std::string payer = customer_with(10'000);
  const std::string order = unique("order");
  HttpResponse r = client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 3000, "balance", payer));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "PAID");
  EXPECT_EQ(json_string(r.body, "/payer_account_id"), payer);
  EXPECT_TRUE(json_is_null(r.body, "/channel_txn_id"));
  EXPECT_EQ(balance_of(payer), 7000);

  r = client_->call(m1(), "GET", "/v1/payments/" + order);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json_int(r.body, "/amount"), 3000);
  EXPECT_EQ(json_string(r.body, "/merchant_id"), "m_001");

  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/complete", R"({"request_id":")" + unique("r") + "\"}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json_string(r.body, "/error/code"), "invalid_state");
  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/ship", R"({"request_id":")" + unique("r") + "\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "SHIPPED");
  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/complete", R"({"request_id":")" + unique("r") + "\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "COMPLETED");

  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/refunds", R"({"request_id":")" + unique("r") + R"(","amount":1000})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_int(r.body, "/refunded_amount"), 1000);
  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/refunds", R"({"request_id":")" + unique("r") + R"(","amount":2001})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json_string(r.body, "/error/code"), "refund_exceeds_payment");
  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/refunds", R"({"request_id":")" + unique("r") + R"(","amount":2000})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "REFUNDED");
  EXPECT_EQ(balance_of(payer), 10'000);

  r = client_->call(m1(), "POST", "/v1/payments/" + order + "/cancel", R"({"request_id":")" + unique("r") + "\"}");
  EXPECT_EQ(r.status, 409);
  r = client_->call(m1(), "GET", "/v1/payments/" + unique("missing"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json_string(r.body, "/error/code"), "payment_not_found");
}

TEST_F(Api, InsufficientFundsIsKeptAndReplayed) {
  ensure_merchant_accounts();
  const std::string payer = customer_with(100);
  const std::string body = payment_body(unique("r"), unique("order"), 101, "balance", payer);
  HttpResponse r = client_->call(m1(), "POST", "/v1/payments", body);
  ASSERT_EQ(r.status, 402) << r.body;
  EXPECT_EQ(json_string(r.body, "/error/code"), "insufficient_funds");
  EXPECT_TRUE(r.header("idempotent-replayed").empty());
  ASSERT_EQ(deposit(payer, 1).status, 200);
  r = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(r.status, 402);
  EXPECT_EQ(r.header("idempotent-replayed"), "true");
  EXPECT_EQ(balance_of(payer), 101);
}

TEST_F(Api, IdempotentReplayAndKeyReuse) {
  ensure_merchant_accounts();
  const std::string payer = customer_with(1000);
  const std::string request_id = unique("r");
  const std::string order = unique("order");
  const std::string body = payment_body(request_id, order, 10, "balance", payer);
  HttpResponse first = client_->call(m1(), "POST", "/v1/payments", body);
  ASSERT_EQ(first.status, 201);
  HttpResponse again = client_->call(m1(), "POST", "/v1/payments", body);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(json_string(again.body, "/order_id"), order);
  EXPECT_EQ(balance_of(payer), 990);
  const HttpResponse reused = client_->call(m1(), "POST", "/v1/payments", payment_body(request_id, order, 11, "balance", payer));
  EXPECT_EQ(reused.status, 422);
  EXPECT_EQ(json_string(reused.body, "/error/code"), "idempotency_key_reused");
  const HttpResponse duplicate = client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 10, "balance", payer));
  EXPECT_EQ(duplicate.status, 409);
  EXPECT_EQ(json_string(duplicate.body, "/error/code"), "duplicate_order");
  // The same request_id is another merchant's own: no clash.
  const HttpResponse other = client_->call(m2(), "POST", "/v1/payments", payment_body(request_id, order, 10, "alipay"));
  EXPECT_EQ(other.status, 201) << other.body;
}

TEST_F(Api, MerchantsAreIsolated) {
  ensure_merchant_accounts();
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 10, "alipay")).status, 201);
  EXPECT_EQ(client_->call(m2(), "GET", "/v1/payments/" + order).status, 404);
  EXPECT_EQ(client_->call(m2(), "POST", "/v1/payments/" + order + "/cancel", R"({"request_id":")" + unique("r") + "\"}").status, 404);
  EXPECT_EQ(client_->call(m1(), "GET", "/v1/payments/" + order).status, 200);
}

TEST_F(Api, ExternalChannelSettledByNotification) {
  ensure_merchant_accounts();
  const std::int64_t merchant_before = balance_of("m_001");
  const std::string order = unique("order");
  HttpResponse r = client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 500, "alipay"));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "PENDING");
  EXPECT_TRUE(json_is_null(r.body, "/payer_account_id"));
  const std::string txn = unique("txn");
  r = notify("alipay", notification_body(txn, order, 500, "SUCCESS"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"code":"SUCCESS"})");
  r = client_->call(m1(), "GET", "/v1/payments/" + order);
  EXPECT_EQ(json_string(r.body, "/status"), "PAID");
  EXPECT_EQ(json_string(r.body, "/channel_txn_id"), txn);
  EXPECT_EQ(balance_of("m_001"), merchant_before + 500);
  // A channel retry changes nothing.
  EXPECT_EQ(notify("alipay", notification_body(txn, order, 500, "SUCCESS")).status, 200);
  EXPECT_EQ(balance_of("m_001"), merchant_before + 500);
}

TEST_F(Api, FailedNotificationFailsThePayment) {
  ensure_merchant_accounts();
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 70, "wechat")).status, 201);
  EXPECT_EQ(notify("wechat", notification_body(unique("txn"), order, 70, "FAILED")).status, 200);
  EXPECT_EQ(json_string(client_->call(m1(), "GET", "/v1/payments/" + order).body, "/status"), "FAILED");
}

TEST_F(Api, NotificationAnomaliesAreAcknowledgedAndChangeNoBalance) {
  ensure_merchant_accounts();
  const std::string order = unique("order");
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments", payment_body(unique("r"), order, 300, "alipay")).status, 201);
  const std::int64_t before = balance_of("m_001");
  // unknown order, amount mismatch, currency mismatch
  EXPECT_EQ(notify("alipay", notification_body(unique("txn"), unique("ghost"), 300, "SUCCESS")).status, 200);
  EXPECT_EQ(notify("alipay", notification_body(unique("txn"), order, 301, "SUCCESS")).status, 200);
  EXPECT_EQ(notify("alipay", notification_body(unique("txn"), order, 300, "SUCCESS", "USD")).status, 200);
  EXPECT_EQ(json_string(client_->call(m1(), "GET", "/v1/payments/" + order).body, "/status"), "PENDING");
  // cancelled, then a late success: not pending
  ASSERT_EQ(client_->call(m1(), "POST", "/v1/payments/" + order + "/cancel", R"({"request_id":")" + unique("r") + "\"}").status, 200);
  EXPECT_EQ(notify("alipay", notification_body(unique("txn"), order, 300, "SUCCESS")).status, 200);
  EXPECT_EQ(json_string(client_->call(m1(), "GET", "/v1/payments/" + order).body, "/status"), "CANCELLED");
  EXPECT_EQ(balance_of("m_001"), before);
}

TEST_F(Api, NotificationSignatureAndBodyAreChecked) {
  const std::string body = notification_body("t-x", "o-x", 1, "SUCCESS");
  HttpResponse r = notify("alipay", body, /*corrupt=*/true);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "bad_signature");
  // Signed by wechat's key but sent to alipay.
  r = client_->raw(notification_request("alipay", fixture_->private_key("wechat"), body));
  EXPECT_EQ(r.status, 401);
  r = client_->raw("POST /v1/notify/alipay HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json_string(r.body, "/error/code"), "unauthenticated");
  r = notify("alipay", R"({"channel_txn_id":"t"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json_string(r.body, "/error/code"), "missing_field");
  r = client_->raw(notification_request("paypal", fixture_->private_key("alipay"), body));
  EXPECT_EQ(r.status, 404);
}

TEST_F(Api, BatchAnswersEveryItemInOrder) {
  ensure_merchant_accounts();
  const std::string payer = customer_with(100);
  const std::string body = R"({"payments":[)" + payment_body(unique("r"), unique("o"), 60, "balance", payer) + "," +
                           payment_body(unique("r"), unique("o"), 60, "balance", payer) + "," +
                           R"({"request_id":"r","order_id":"o","amount":1.5,"currency":"CNY","channel":"alipay"})" + "," +
                           payment_body(unique("r"), unique("o"), 5, "alipay") + "]}";
  const HttpResponse r = client_->call(m1(), "POST", "/v1/payments/batch", body);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json_array_size(r.body, "/results"), 4u) << r.body;
  EXPECT_EQ(json_int(r.body, "/results/0/status"), 201);
  EXPECT_EQ(json_string(r.body, "/results/0/payment/status"), "PAID");
  EXPECT_EQ(json_int(r.body, "/results/1/status"), 402);
  EXPECT_EQ(json_string(r.body, "/results/1/error/code"), "insufficient_funds");
  EXPECT_EQ(json_int(r.body, "/results/2/status"), 400);
  EXPECT_EQ(json_string(r.body, "/results/2/error/code"), "invalid_amount");
  EXPECT_EQ(json_int(r.body, "/results/3/status"), 201);
  EXPECT_EQ(json_string(r.body, "/results/3/payment/status"), "PENDING");
  EXPECT_EQ(client_->call(m1(), "POST", "/v1/payments/batch", "{\"payments\":5}").status, 400);
}

// GET /v1/payments on a server without an archive: 12,000 payments of one channel walked in
// pages of 100 both ways (the core's walk is cut into steps of 10,000 rows: a filter that
// skips the newest 12,000 crosses a cut), strictly newest first, each exactly once.
std::int64_t parse_time_us(const std::string& text) {
  std::int64_t us = 0;
  return parse_rfc3339_us(text, &us) ? us : 0;
}

TEST_F(Api, ListingWalksEveryPageBothWays) {
  ensure_merchant_accounts();
  std::int64_t first_created_us = 0;
  for (int b = 0; b < 12; ++b) {
    std::string body = R"({"payments":[)";
    for (int i = 0; i < 1000; ++i) {
      body += (i == 0 ? "" : ",") + payment_body(unique("rl"), unique("ol"), 7, "alipay");
    }
    const HttpResponse r = client_->call(m1(), "POST", "/v1/payments/batch", body + "]}");
    ASSERT_EQ(r.status, 200);
    if (b == 0) first_created_us = parse_time_us(json_string(r.body, "/results/0/payment/created_at").value_or(""));
  }
  ASSERT_GT(first_created_us, 0);
  const std::string filter = "channel=alipay&status=PENDING&created_gte=" + format_rfc3339_us(first_created_us);
  std::vector<std::string> forward;
  std::string query = filter + "&limit=100";
  for (int pages = 0; pages < 200; ++pages) {
    const HttpResponse r = client_->call(m1(), "GET", "/v1/payments?" + query);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::size_t n = json_array_size(r.body, "/data");
    for (std::size_t i = 0; i < n; ++i) {
      forward.push_back(json_string(r.body, "/data/" + std::to_string(i) + "/order_id").value_or(""));
    }
    if (r.body.find("\"has_more\":true") == std::string::npos) break;
    query = filter + "&limit=100&starting_after=" + forward.back();
  }
  ASSERT_EQ(forward.size(), 12'000u);
  EXPECT_EQ(std::set<std::string>(forward.begin(), forward.end()).size(), 12'000u);
  // Backwards from the oldest: the same payments, page by page.
  std::vector<std::string> backward;
  std::string cursor = forward.back();
  backward.push_back(cursor);
  for (int pages = 0; pages < 200; ++pages) {
    const HttpResponse r = client_->call(m1(), "GET", "/v1/payments?" + filter + "&limit=100&ending_before=" + cursor);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::size_t n = json_array_size(r.body, "/data");
    for (std::size_t i = n; i-- > 0;) {
      backward.push_back(json_string(r.body, "/data/" + std::to_string(i) + "/order_id").value_or(""));
    }
    if (n == 0 || r.body.find("\"has_more\":true") == std::string::npos) break;
    cursor = backward.back();
  }
  std::reverse(backward.begin(), backward.end());
  EXPECT_EQ(backward, forward);
  // Nothing of these 12,000 is older than the first: the walk past them all finds none.
  const HttpResponse older = client_->call(
      m1(), "GET", "/v1/payments?channel=alipay&status=PENDING&created_lt=" + format_rfc3339_us(first_created_us));
  ASSERT_EQ(older.status, 200) << older.body;
  EXPECT_EQ(older.body.find(forward.back()), std::string::npos);
}

TEST_F(Api, AdminSnapshotWritesOne) {
  const HttpResponse r = client_->call(op(), "POST", "/v1/admin/snapshot", "");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto path = json_string(r.body, "/path");
  ASSERT_TRUE(path);
  EXPECT_FALSE(read_file(*path).empty()) << *path;
  EXPECT_TRUE(json_int(r.body, "/lsn"));
  EXPECT_GE(json_int(r.body, "/accounts").value_or(-1), 0);
  EXPECT_GE(json_int(r.body, "/payments").value_or(-1), 0);
}

TEST_F(Api, ConcurrentPaymentsFromOneAccountNeverOverdraw) {
  ensure_merchant_accounts();
  constexpr int connections = 64;
  constexpr int attempts_each = 4;
  constexpr std::int64_t amount = 7;
  constexpr std::int64_t balance = 1000;  // floor(1000 / 7) = 142 of 256 attempts succeed
  const std::string payer = customer_with(balance);
  const std::int64_t merchant_before = balance_of("m_001");
  std::atomic<int> paid{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  const std::uint16_t port = fixture_->server->port();
  const Signer merchant = m1();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      Client client(port, fixture_->keys);
      for (int i = 0; i < attempts_each; ++i) {
        const std::string id = "c" + std::to_string(t) + "-" + std::to_string(i) + "-" + payer;
        const HttpResponse r = client.call(merchant, "POST", "/v1/payments", payment_body(id, id, amount, "balance", payer));
        if (r.status == 201) {
          ++paid;
        } else if (r.status == 402) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(paid.load(), balance / amount);
  EXPECT_EQ(paid.load() + refused.load(), connections * attempts_each);
  EXPECT_EQ(balance_of(payer), balance % amount);
  EXPECT_EQ(balance_of("m_001") - merchant_before, paid.load() * amount);
}

}  // namespace
}  // namespace paycore::it
