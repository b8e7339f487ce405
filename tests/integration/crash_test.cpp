// SIGKILL under load: every payment acknowledged before the kill is there after a restart,
// exactly once, and the money adds up.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/client.hpp"

namespace paycore::it {
namespace {

std::string payment_body(const std::string& id, const std::string& payer) {
  return R"({"request_id":")" + id + R"(","order_id":")" + id +
         R"(","amount":3,"currency":"CNY","channel":"balance","payer_account_id":")" + payer + R"("})";
}

TEST(Crash, AcknowledgedPaymentsSurviveSigkill) {
  Fixture fixture;
  ASSERT_TRUE(fixture.start({"--io-threads", "2"})) << (fixture.server ? fixture.server->log() : "");
  Client setup(fixture.server->port(), fixture.keys);
  const Signer op = setup.operator_signer();
  const Signer merchant = setup.merchant("m_001");
  ASSERT_EQ(setup.call(op, "POST", "/v1/accounts", R"({"request_id":"a1","account_id":"m_001","currency":"CNY","kind":"merchant"})").status, 201);
  ASSERT_EQ(setup.call(op, "POST", "/v1/accounts", R"({"request_id":"a2","account_id":"payer","currency":"CNY","kind":"customer"})").status, 201);
  constexpr std::int64_t deposit = 1'000'000'000;
  ASSERT_EQ(setup.call(op, "POST", "/v1/accounts/payer/deposits", R"({"request_id":"d1","amount":1000000000,"currency":"CNY"})").status, 200);
  ASSERT_EQ(grant_mandate(setup, "payer", "m_001").status, 201);

  constexpr int writers = 8;
  std::mutex mutex;
  std::set<std::string> attempted;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const std::uint16_t port = fixture.server->port();
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      // Pipelined pairs on one connection: more in flight at the moment of the kill.
      Connection c(port);
      for (int i = 0; !stop.load(); i += 2) {
        const std::string a = "k" + std::to_string(t) + "-" + std::to_string(i);
        const std::string b = "k" + std::to_string(t) + "-" + std::to_string(i + 1);
        {
          std::lock_guard lock(mutex);
          attempted.insert(a);
          attempted.insert(b);
        }
        if (!c.send_all(Client::signed_request(merchant, "POST", "/v1/payments", payment_body(a, "payer")) +
                        Client::signed_request(merchant, "POST", "/v1/payments", payment_body(b, "payer")))) {
          return;
        }
        for (const std::string* id : {&a, &b}) {
          const HttpResponse r = c.read_response(5000);
          if (r.status == 0) return;
          if (r.status == 201) {
            std::lock_guard lock(mutex);
            acknowledged.insert(*id);
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  fixture.server->kill_hard();
  stop = true;
  for (auto& thread : threads) thread.join();
  ASSERT_GT(acknowledged.size(), 50u) << "too little load to be a test";

  ASSERT_TRUE(fixture.restart()) << fixture.server->log();
  Client after(fixture.server->port(), fixture.keys);
  std::int64_t paid_total = 0;
  std::size_t present = 0;
  for (const std::string& id : attempted) {
    const HttpResponse r = after.call(merchant, "GET", "/v1/payments/" + id);
    if (acknowledged.contains(id)) {
      ASSERT_EQ(r.status, 200) << "acknowledged payment " << id << " lost";
    } else {
      ASSERT_TRUE(r.status == 200 || r.status == 404) << r.status;
    }
    if (r.status == 200) {
      ++present;
      paid_total += json_int(r.body, "/amount").value_or(0);
    }
  }
  // Exactly once: the money moved equals the payments present, each counted once.
  const HttpResponse payer = after.call(op, "GET", "/v1/accounts/payer");
  const HttpResponse m = after.call(op, "GET", "/v1/accounts/m_001");
  EXPECT_EQ(json_int(payer.body, "/balance"), deposit - paid_total);
  EXPECT_EQ(json_int(m.body, "/balance"), paid_total);
  EXPECT_GE(present, acknowledged.size());
  // A retry of an acknowledged request is a replay, not a second payment.
  const std::string first = *acknowledged.begin();
  const HttpResponse replay = after.call(merchant, "POST", "/v1/payments", payment_body(first, "payer"));
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  EXPECT_EQ(json_int(after.call(op, "GET", "/v1/accounts/payer").body, "/balance"), deposit - paid_total);
  fixture.destroy();
}

}  // namespace
}  // namespace paycore::it
