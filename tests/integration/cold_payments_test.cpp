// Payments older than the hot window, against the real `paycore serve` (issue 12; docs/api.md
// "Payments that left memory"): a short hot window and idempotency retention make every final
// payment leave memory within a second or two; the answers must be those of a hot payment.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/server_suite.hpp"

namespace paycore::it {
namespace {

// Settings of app/serve_command.cpp: payments and idempotency records go cold this fast.
const std::vector<std::string> cold_args = {"--hot-window-ms", "300",
                                            "--idempotency-retention-ms", "300"};
constexpr int cold_wait_ms_max = 30'000;  // the archiver's and the tick's pace, with margin

class ColdPayments : public ServerSuite {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start(cold_args)) << (fixture_->server ? fixture_->server->log() : "");
    Client client(fixture_->server->port(), fixture_->keys);
    const HttpResponse r = client.call(client.operator_signer(), "POST", "/v1/accounts",
                                       R"({"request_id":"open-m_001","account_id":"m_001",)"
                                       R"("currency":"CNY","kind":"merchant"})");
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // A PAID balance payment of `amount` by m_001 from a fresh payer holding 1000.
  struct Paid {
    std::string payer;
    std::string order_id;
    std::string hot_body;  // GET /v1/payments/{order_id} while in memory
  };
  Paid paid(std::int64_t amount) {
    Paid p;
    p.payer = customer_with(1000);
    EXPECT_EQ(grant_mandate(*client_, p.payer, "m_001").status, 201);
    p.order_id = unique("cold-order");
    const HttpResponse created = client_->call(
        m1(), "POST", "/v1/payments", payment_body(unique("r"), p.order_id, amount, "balance", p.payer));
    EXPECT_EQ(created.status, 201) << created.body;
    const HttpResponse hot = client_->call(m1(), "GET", "/v1/payments/" + p.order_id);
    EXPECT_EQ(hot.status, 200) << hot.body;
    p.hot_body = hot.body;
    return p;
  }

  // Waits (bounded) until no payment is left in memory: every payment of this suite is final,
  // so all of them leave once older than the hot window and the idempotency retention.
  void wait_all_cold() {
    for (int waited_ms = 0; waited_ms < cold_wait_ms_max; waited_ms += 50) {
      const std::string m = client_->get("/metrics").body;
      if (metric(m, "paycore_payments") == 0 && metric(m, "paycore_payments_archived") > 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "payments still in memory after " << cold_wait_ms_max << " ms";
  }

  HttpResponse get_payment(const std::string& order_id) {
    return client_->call(m1(), "GET", "/v1/payments/" + order_id);
  }
};

// The same cases run in process against the real Engine + ArchiveStore + Server in
// tests/net/cold_server_test.cpp.

TEST_F(ColdPayments, GetOfAColdPaymentAnswersAsWhenItWasHot) {
  const Paid p = paid(25);
  wait_all_cold();
  const HttpResponse cold = get_payment(p.order_id);
  ASSERT_EQ(cold.status, 200) << cold.body;
  EXPECT_EQ(cold.body, p.hot_body);
  const std::string m = client_->get("/metrics").body;
  EXPECT_GT(metric(m, R"(paycore_archive_lookups_total{outcome="found"})"), 0) << m;
}

TEST_F(ColdPayments, CreateWithAnArchivedOrderIdIsDuplicateOrder) {
  const Paid p = paid(10);
  wait_all_cold();
  const HttpResponse again = client_->call(
      m1(), "POST", "/v1/payments", payment_body(unique("r"), p.order_id, 10, "balance", p.payer));
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(error_code(again), "duplicate_order");
}

TEST_F(ColdPayments, RefundOfAColdPaymentMovesTheMoneyBack) {
  const Paid p = paid(40);
  wait_all_cold();
  const std::int64_t payer_before = balance_of(p.payer);
  const std::int64_t merchant_before = balance_of("m_001");
  const HttpResponse refund =
      client_->call(m1(), "POST", "/v1/payments/" + p.order_id + "/refunds",
                    R"({"request_id":")" + unique("rf") + R"(","amount":40})");
  ASSERT_EQ(refund.status, 201) << refund.body;
  EXPECT_EQ(json_string(refund.body, "/status"), "REFUNDED");
  EXPECT_EQ(json_int(refund.body, "/refunded_amount"), 40);
  EXPECT_EQ(balance_of(p.payer), payer_before + 40);
  EXPECT_EQ(balance_of("m_001"), merchant_before - 40);
  EXPECT_EQ(json_string(get_payment(p.order_id).body, "/status"), "REFUNDED");
}

TEST_F(ColdPayments, ShipOfAColdPaidPaymentShips) {
  const Paid p = paid(15);
  wait_all_cold();
  const HttpResponse ship =
      client_->call(m1(), "POST", "/v1/payments/" + p.order_id + "/ship", request_id_body());
  ASSERT_EQ(ship.status, 200) << ship.body;
  EXPECT_EQ(json_string(ship.body, "/status"), "SHIPPED");
  EXPECT_EQ(json_string(ship.body, "/created_at"), json_string(p.hot_body, "/created_at"));
}

TEST_F(ColdPayments, OrderThatNeverExistedIsNotFound) {
  (void)paid(5);
  wait_all_cold();
  const std::string never = unique("never-order");
  const HttpResponse get = get_payment(never);
  EXPECT_EQ(get.status, 404) << get.body;
  EXPECT_EQ(error_code(get), "payment_not_found");
  const HttpResponse refund = client_->call(m1(), "POST", "/v1/payments/" + never + "/refunds",
                                            R"({"request_id":")" + unique("rf") + R"(","amount":1})");
  EXPECT_EQ(refund.status, 404) << refund.body;
  EXPECT_EQ(error_code(refund), "payment_not_found");
}

TEST_F(ColdPayments, BatchItemWithAnArchivedOrderIdIsDuplicateOrder) {
  const Paid p = paid(10);
  wait_all_cold();
  const std::string body = R"({"payments":[)" +
                           payment_body(unique("r"), p.order_id, 10, "balance", p.payer) + "," +
                           payment_body(unique("r"), unique("o"), 10, "balance", p.payer) + "]}";
  const HttpResponse r = client_->call(m1(), "POST", "/v1/payments/batch", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_int(r.body, "/results/0/status"), 409) << r.body;
  EXPECT_EQ(json_string(r.body, "/results/0/error/code"), "duplicate_order");
  EXPECT_EQ(json_int(r.body, "/results/1/status"), 201) << r.body;
}

}  // namespace
}  // namespace paycore::it
