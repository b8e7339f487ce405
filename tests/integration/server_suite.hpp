#pragma once
// A googletest base for suites that share one real `paycore serve` (started in
// SetUpTestSuite, stopped in TearDownTestSuite), with the requests the mandate and ownership
// suites make over and over. Suites run one after another, so one static fixture serves them
// all in turn.

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/client.hpp"

namespace paycore::it {

class ServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start()) << (fixture_->server ? fixture_->server->log() : "");
    Client client(fixture_->server->port(), fixture_->keys);
    for (const char* m : {"m_001", "m_002"}) {
      const HttpResponse r = client.call(client.operator_signer(), "POST", "/v1/accounts",
                                         R"({"request_id":"open-)" + std::string(m) + R"(","account_id":")" + m +
                                             R"(","currency":"CNY","kind":"merchant"})");
      ASSERT_EQ(r.status, 201) << r.body;
    }
  }
  static void TearDownTestSuite() {
    if (fixture_ != nullptr) fixture_->destroy();
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

  // A fresh id per call so that tests do not collide on the shared server.
  static std::string unique(const std::string& prefix) {
    static std::atomic<int> counter{0};
    return prefix + "-" + std::to_string(counter.fetch_add(1));
  }
  static std::string request_id_body() { return R"({"request_id":")" + unique("r") + R"("})"; }

  HttpResponse open_account(const std::string& id, const std::string& kind = "customer") {
    return client_->call(op(), "POST", "/v1/accounts",
                         R"({"request_id":")" + unique("ra") + R"(","account_id":")" + id +
                             R"(","currency":"CNY","kind":")" + kind + R"("})");
  }
  HttpResponse deposit(const std::string& id, std::int64_t amount) {
    return client_->call(op(), "POST", "/v1/accounts/" + id + "/deposits",
                         R"({"request_id":")" + unique("rd") + R"(","amount":)" + std::to_string(amount) +
                             R"(,"currency":"CNY"})");
  }
  // A customer account holding `balance`, without any mandate.
  std::string customer_with(std::int64_t balance) {
    const std::string id = unique("cust");
    EXPECT_EQ(open_account(id).status, 201);
    if (balance > 0) {
      EXPECT_EQ(deposit(id, balance).status, 200);
    }
    return id;
  }
  // POST /v1/mandates as the operator with a fresh request_id.
  HttpResponse create_mandate(const std::string& mandate_id, const std::string& payer, const std::string& merchant,
                              std::int64_t amount_max = mandate_amount_max_default,
                              const std::string& expires_at = {}, bool single_use = false) {
    return client_->call(op(), "POST", "/v1/mandates",
                         mandate_body(unique("rm"), mandate_id, payer, merchant, amount_max, expires_at, single_use));
  }
  std::string mandate_status(const std::string& mandate_id) {
    const HttpResponse r = client_->call(op(), "GET", "/v1/mandates/" + mandate_id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_string(r.body, "/status").value_or("");
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
  // A balance payment of `amount` from `payer` by `merchant`, fresh ids.
  HttpResponse pay(const Signer& merchant, const std::string& payer, std::int64_t amount) {
    return client_->call(merchant, "POST", "/v1/payments",
                         payment_body(unique("r"), unique("order"), amount, "balance", payer));
  }
  std::int64_t balance_of(const std::string& id) {
    const HttpResponse r = client_->call(op(), "GET", "/v1/accounts/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_int(r.body, "/balance").value_or(-1);
  }
  // RFC 3339 UTC time `seconds` from now (whole seconds).
  static std::string rfc3339_in(std::int64_t seconds) {
    const std::time_t at = std::time(nullptr) + seconds;
    std::tm tm{};
    gmtime_r(&at, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
  }
  static std::string error_code(const HttpResponse& r) { return json_string(r.body, "/error/code").value_or(""); }
  static std::string error_field(const HttpResponse& r) { return json_string(r.body, "/error/field").value_or(""); }

  inline static Fixture* fixture_ = nullptr;
  std::unique_ptr<Client> client_;
};

}  // namespace paycore::it
