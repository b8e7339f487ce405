// The server with the RocksDB archive, in process (issue 12): the real Engine, ArchiveStore,
// Archiver and net::Server wired as `paycore serve` wires them, both threading modes, over
// loopback HTTP. Short windows make every final payment leave memory in a fraction of a second;
// then GET, create, refund, ship and batch must answer as for a payment in memory.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <string>
#include <thread>

#include "archive/archiver.hpp"
#include "archive/store.hpp"
#include "engine_harness.hpp"
#include "net/server.hpp"
#include "tests/integration/client.hpp"
#include "tests/net/test_keys.hpp"

namespace paycore::net {
namespace {

using it::Client;
using it::HttpResponse;
using it::json_int;
using it::json_string;

constexpr int cold_wait_ms_max = 30'000;

// Payments leave memory once their idempotency record is gone (500 ms: long enough to read a
// payment while it is hot) and the archive holds them.
EngineConfig tiered_config(const std::string& dir) {
  EngineConfig config = paycore::testing::test_config(dir);
  config.tick_interval_us = 5'000;
  config.hot_window_us = 1;
  config.idempotency_retention_us = 500'000;
  return config;
}

// The server's view of the archive: the store, or a read error, or reads held until released.
class TestReader : public ArchiveReader {
 public:
  const ArchiveReader* store = nullptr;
  std::atomic<bool> failing{false};

  StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view merchant_id,
                                                       std::string_view order_id) const override {
    {
      std::unique_lock lock(mutex_);
      ++entered_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return !holding_; });
    }
    if (failing.load()) return Status::io_error("archive: injected read error");
    return store->get_payment(merchant_id, order_id);
  }
  StatusOr<std::vector<RefundView>> list_refunds(std::string_view merchant_id,
                                                 std::string_view order_id) const override {
    if (failing.load()) return Status::io_error("archive: injected read error");
    return store->list_refunds(merchant_id, order_id);
  }
  StatusOr<PaymentPage> list_payments(const PaymentListQuery& query) const override {
    if (failing.load()) return Status::io_error("archive: injected read error");
    return store->list_payments(query);
  }
  void hold() {
    const std::lock_guard lock(mutex_);
    holding_ = true;
  }
  void release() {
    const std::lock_guard lock(mutex_);
    holding_ = false;
    changed_.notify_all();
  }
  void wait_entered(int reads) const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return entered_ >= reads; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable int entered_ = 0;
  bool holding_ = false;
};

class ColdServer : public ::testing::TestWithParam<bool> {  // param: run to completion
 protected:
  void SetUp() override {
    dir_ = paycore::testing::make_temp_dir();
    ArchiveOptions options;
    options.dir = dir_ + "/archive";
    options.block_cache_bytes = 8 << 20;
    StatusOr<std::unique_ptr<ArchiveStore>> opened = ArchiveStore::open(options);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
    reader_.store = store_.get();
    engine_ = paycore::testing::open_engine(tiered_config(dir_));
    ASSERT_NE(engine_, nullptr);
    archiver_ = std::make_unique<Archiver>(store_.get(), &engine_->metrics().durable_lsn);
    engine_->attach_archive(archiver_.get());
    if (!GetParam()) engine_->start();
    start_server();
    open_accounts();
  }
  void start_server(std::uint32_t read_threads = 2, std::uint32_t queued_max = 4096) {
    keys_ = std::make_unique<auth::KeysHolder>(testing::dev_keys().keys);
    ServerConfig config;
    config.port = 0;
    config.io_threads = 1;
    config.drive_engine = GetParam();
    config.archive = &reader_;
    config.archive_read_threads = read_threads;
    config.archive_lookups_queued_max = queued_max;
    StatusOr<std::unique_ptr<Server>> server = Server::create(config, *engine_, *keys_);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    server_ = std::move(*server);
    server_->start();
    client_ = std::make_unique<Client>(server_->port(), testing::dev_keys().keys);
  }
  void open_accounts() {
    ASSERT_EQ(call_op("/v1/accounts", R"({"request_id":"o1","account_id":"m_001","currency":"CNY","kind":"merchant"})").status, 201);
    ASSERT_EQ(call_op("/v1/accounts", R"({"request_id":"o2","account_id":"alice","currency":"CNY","kind":"customer"})").status, 201);
    ASSERT_EQ(call_op("/v1/accounts/alice/deposits", R"({"request_id":"o3","amount":100000,"currency":"CNY"})").status, 200);
    ASSERT_EQ(call_op("/v1/mandates", it::mandate_body("o4", "md-alice", "alice", "m_001",
                                                       it::mandate_amount_max_default)).status, 201);
  }
  void TearDown() override {
    reader_.release();
    if (server_) server_->stop();
    if (engine_) engine_->stop();
    if (archiver_) archiver_->stop();
    server_.reset();
    engine_.reset();
    archiver_.reset();
    store_.reset();
    paycore::testing::remove_tree(dir_);
  }

  HttpResponse call_op(const std::string& target, const std::string& body) {
    return client_->call(client_->operator_signer(), "POST", target, body);
  }
  HttpResponse merchant(const std::string& method, const std::string& target,
                        const std::string& body = {}) {
    return client_->call(client_->merchant("m_001"), method, target, body);
  }
  static std::string payment_body(const std::string& request_id, const std::string& order_id,
                                  std::int64_t amount) {
    return R"({"request_id":")" + request_id + R"(","order_id":")" + order_id + R"(","amount":)" +
           std::to_string(amount) + R"(,"currency":"CNY","channel":"balance","payer_account_id":"alice"})";
  }
  // Creates a PAID payment and returns its GET body while in memory.
  std::string paid(const std::string& order_id, std::int64_t amount) {
    const HttpResponse created = merchant("POST", "/v1/payments", payment_body("r-" + order_id, order_id, amount));
    EXPECT_EQ(created.status, 201) << created.body;
    const HttpResponse hot = merchant("GET", "/v1/payments/" + order_id);
    EXPECT_EQ(hot.status, 200) << hot.body;
    return hot.body;
  }
  std::int64_t balance(const std::string& account) {
    const HttpResponse r = client_->call(client_->operator_signer(), "GET", "/v1/accounts/" + account);
    EXPECT_EQ(r.status, 200) << r.body;
    return json_int(r.body, "/balance").value_or(-1);
  }
  // Waits (bounded) until every payment has left memory.
  void wait_all_cold() {
    const EngineMetrics& m = engine_->metrics();
    for (int waited_ms = 0; waited_ms < cold_wait_ms_max; waited_ms += 10) {
      if (m.payments.load() == 0 && m.payments_archived.load() > 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "payments still in memory after " << cold_wait_ms_max << " ms";
  }

  std::string dir_;
  std::unique_ptr<ArchiveStore> store_;
  TestReader reader_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Archiver> archiver_;
  std::unique_ptr<auth::KeysHolder> keys_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_P(ColdServer, GetOfAColdPaymentIsTheHotAnswer) {
  const std::string hot = paid("o-get", 25);
  wait_all_cold();
  const HttpResponse cold = merchant("GET", "/v1/payments/o-get");
  ASSERT_EQ(cold.status, 200) << cold.body;
  EXPECT_EQ(cold.body, hot);
  const std::string metrics = client_->get("/metrics").body;
  EXPECT_NE(metrics.find("paycore_archive_lookups_total{outcome=\"found\"} 1\n"), std::string::npos)
      << metrics;
}

TEST_P(ColdServer, GetOfAnOrderNowhereIsNotFound) {
  (void)paid("o-some", 5);
  wait_all_cold();
  const HttpResponse r = merchant("GET", "/v1/payments/o-never");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(json_string(r.body, "/error/code"), "payment_not_found");
  const HttpResponse refund = merchant("POST", "/v1/payments/o-never/refunds", R"({"request_id":"f-never","amount":1})");
  EXPECT_EQ(refund.status, 404) << refund.body;
}

TEST_P(ColdServer, CreateWithAnArchivedOrderIdIsDuplicateOrder) {
  (void)paid("o-dup", 10);
  wait_all_cold();
  const HttpResponse r = merchant("POST", "/v1/payments", payment_body("r-dup-2", "o-dup", 10));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(json_string(r.body, "/error/code"), "duplicate_order");
}

TEST_P(ColdServer, RefundOfAColdPaymentMovesTheMoneyBack) {
  (void)paid("o-refund", 40);
  wait_all_cold();
  const std::int64_t alice_before = balance("alice");
  const HttpResponse r = merchant("POST", "/v1/payments/o-refund/refunds", R"({"request_id":"f1","amount":40})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "REFUNDED");
  EXPECT_EQ(balance("alice"), alice_before + 40);
}

TEST_P(ColdServer, ShipOfAColdPaidPaymentShips) {
  (void)paid("o-ship", 15);
  wait_all_cold();
  const HttpResponse r = merchant("POST", "/v1/payments/o-ship/ship", R"({"request_id":"s1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_string(r.body, "/status"), "SHIPPED");
}

TEST_P(ColdServer, BatchItemWithAnArchivedOrderIdIsDuplicateOrder) {
  (void)paid("o-batch", 10);
  wait_all_cold();
  const HttpResponse r = merchant("POST", "/v1/payments/batch",
                                  R"({"payments":[)" + payment_body("rb1", "o-batch", 10) + "," +
                                      payment_body("rb2", "o-batch-new", 10) + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_int(r.body, "/results/0/status"), 409) << r.body;
  EXPECT_EQ(json_string(r.body, "/results/0/error/code"), "duplicate_order");
  EXPECT_EQ(json_int(r.body, "/results/1/status"), 201) << r.body;
}

TEST_P(ColdServer, ArchiveReadErrorIsUnavailableNeverAGuess) {
  (void)paid("o-err", 10);
  wait_all_cold();
  reader_.failing = true;
  const HttpResponse get = merchant("GET", "/v1/payments/o-err");
  EXPECT_EQ(get.status, 503) << get.body;
  EXPECT_EQ(json_string(get.body, "/error/code"), "unavailable");
  const HttpResponse create = merchant("POST", "/v1/payments", payment_body("r-err-2", "o-err", 10));
  EXPECT_EQ(create.status, 503) << create.body;  // not a new payment under an archived order id
  const HttpResponse refund = merchant("POST", "/v1/payments/o-err/refunds", R"({"request_id":"f-err","amount":1})");
  EXPECT_EQ(refund.status, 503) << refund.body;
  reader_.failing = false;
  EXPECT_EQ(merchant("GET", "/v1/payments/o-err").status, 200);  // nothing was kept
  EXPECT_EQ(merchant("POST", "/v1/payments/o-err/refunds", R"({"request_id":"f-err","amount":1})").status, 201);
}

// With one reader and room for one queued lookup, a third lookup while the first is being read
// is refused at once (503), and the two others are answered once the read finishes.
TEST_P(ColdServer, FullLookupQueueIsUnavailableAtOnce) {
  (void)paid("o-q", 10);
  wait_all_cold();
  server_->stop();
  start_server(1, 1);
  reader_.hold();
  const it::Signer m1 = client_->merchant("m_001");
  it::Connection pipelined(server_->port());
  const std::string get = Client::signed_request(m1, "GET", "/v1/payments/o-q", "");
  ASSERT_TRUE(pipelined.send_all(get));
  reader_.wait_entered(1);  // the worker holds the first lookup: the queue is empty
  ASSERT_TRUE(pipelined.send_all(Client::signed_request(m1, "GET", "/v1/payments/o-q", "") +
                                 Client::signed_request(m1, "GET", "/v1/payments/o-q", "")));
  for (int polls = 0; polls < 1000; ++polls) {  // bounded: until the third is refused
    if (client_->get("/metrics").body.find("outcome=\"queue_full\"} 1\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  reader_.release();
  for (int i = 0; i < 2; ++i) {
    const HttpResponse read = pipelined.read_response();
    EXPECT_EQ(read.status, 200) << read.body;
  }
  const HttpResponse refused = pipelined.read_response();
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(json_string(refused.body, "/error/code"), "unavailable");
}

// The `field` of each item of a listing's data, comma-separated.
std::string listed(const std::string& body, const std::string& field) {
  std::string values;
  for (int i = 0; i < 100; ++i) {
    const auto value = json_string(body, "/data/" + std::to_string(i) + "/" + field);
    if (!value) break;
    values += (values.empty() ? "" : ",") + *value;
  }
  return values;
}

// The order ids of a listing's page, and " +more" when it says has_more.
std::string page_ids(const std::string& body) {
  return listed(body, "order_id") + (body.find("\"has_more\":true") != std::string::npos ? " +more" : "");
}

// GET /v1/payments over both tiers: archived payments, one back in memory after a refund, and
// new ones; every direction and a filter, the same pages wherever each payment is.
TEST_P(ColdServer, ListingMergesMemoryAndTheArchive) {
  for (int i = 1; i <= 6; ++i) (void)paid("o-l" + std::to_string(i), 10 + i);
  wait_all_cold();
  ASSERT_EQ(merchant("POST", "/v1/payments/o-l2/refunds", R"({"request_id":"f-l2","amount":12})").status, 201);
  (void)paid("o-l7", 17);
  (void)paid("o-l8", 18);

  HttpResponse r = merchant("GET", "/v1/payments?limit=3");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(page_ids(r.body), "o-l8,o-l7,o-l6 +more");
  EXPECT_EQ(json_int(r.body, "/data/2/amount"), 16);
  r = merchant("GET", "/v1/payments?starting_after=o-l6&limit=10");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(page_ids(r.body), "o-l5,o-l4,o-l3,o-l2,o-l1");
  EXPECT_EQ(json_string(r.body, "/data/3/status"), "REFUNDED");  // the version in memory
  r = merchant("GET", "/v1/payments?ending_before=o-l4&limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(page_ids(r.body), "o-l6,o-l5 +more");
  r = merchant("GET", "/v1/payments?status=REFUNDED");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(page_ids(r.body), "o-l2");
  r = merchant("GET", "/v1/payments?status=PAID&starting_after=o-l7");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(page_ids(r.body), "o-l6,o-l5,o-l4,o-l3,o-l1");
}

// The request_ids of a refunds listing, comma-separated.
std::string refund_ids(const std::string& body) { return listed(body, "request_id"); }

// A payment's refunds wherever they are: in memory, archived, or both once it came back.
TEST_P(ColdServer, RefundsListingFollowsThePaymentAcrossTiers) {
  (void)paid("o-rl", 100);
  ASSERT_EQ(merchant("POST", "/v1/payments/o-rl/refunds", R"({"request_id":"f-a","amount":30})").status, 201);
  ASSERT_EQ(merchant("POST", "/v1/payments/o-rl/refunds", R"({"request_id":"f-b","amount":20})").status, 201);
  HttpResponse r = merchant("GET", "/v1/payments/o-rl/refunds");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(refund_ids(r.body), "f-a,f-b");
  EXPECT_EQ(json_int(r.body, "/data/0/amount"), 30);
  EXPECT_NE(r.body.find("\"has_more\":false"), std::string::npos) << r.body;
  wait_all_cold();
  r = merchant("GET", "/v1/payments/o-rl/refunds");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(refund_ids(r.body), "f-a,f-b");
  ASSERT_EQ(merchant("POST", "/v1/payments/o-rl/refunds", R"({"request_id":"f-c","amount":10})").status, 201);
  r = merchant("GET", "/v1/payments/o-rl/refunds");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(refund_ids(r.body), "f-a,f-b,f-c");
  const HttpResponse nowhere = merchant("GET", "/v1/payments/o-nowhere/refunds");
  EXPECT_EQ(nowhere.status, 404) << nowhere.body;
  EXPECT_EQ(json_string(nowhere.body, "/error/code"), "payment_not_found");
  EXPECT_EQ(merchant("GET", "/v1/payments/o-rl/refunds?limit=5").status, 400);
}

// A refund's request_id reused after the idempotency retention on a cold payment is a new
// refund (docs/api.md): listed beside the first, and the payment is archived again (the
// black-box probe found it dropped from the list and every later archive write refused).
TEST_P(ColdServer, RefundReusingARequestIdAfterTheRetentionIsANewRefund) {
  (void)paid("o-reuse", 100);
  ASSERT_EQ(merchant("POST", "/v1/payments/o-reuse/refunds", R"({"request_id":"f-same","amount":30})").status, 201);
  wait_all_cold();  // the refund's idempotency record is gone too
  const HttpResponse again = merchant("POST", "/v1/payments/o-reuse/refunds", R"({"request_id":"f-same","amount":30})");
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "");
  EXPECT_EQ(json_int(again.body, "/refunded_amount"), 60);
  EXPECT_EQ(refund_ids(merchant("GET", "/v1/payments/o-reuse/refunds").body), "f-same,f-same");
  const std::uint64_t archived_before = engine_->metrics().payments_archived.load();
  for (int waited_ms = 0; waited_ms < cold_wait_ms_max; waited_ms += 10) {
    if (engine_->metrics().payments.load() == 0 &&
        engine_->metrics().payments_archived.load() > archived_before) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine_->metrics().payments.load(), 0u) << "the payment never left memory again";
  EXPECT_EQ(engine_->metrics().archive_failures.load(), 0u);
  const HttpResponse listed = merchant("GET", "/v1/payments/o-reuse/refunds");
  EXPECT_EQ(refund_ids(listed.body), "f-same,f-same") << listed.body;
}

TEST_P(ColdServer, ListingRefusesBadParametersNamingThem) {
  (void)paid("o-p1", 10);
  const auto field_of = [&](const std::string& query) {
    const HttpResponse r = merchant("GET", "/v1/payments?" + query);
    EXPECT_EQ(r.status, 400) << query << " " << r.body;
    EXPECT_EQ(json_string(r.body, "/error/code"), "invalid_field") << query;
    return json_string(r.body, "/error/field").value_or("");
  };
  EXPECT_EQ(field_of("limit=0"), "limit");
  EXPECT_EQ(field_of("limit=101"), "limit");
  EXPECT_EQ(field_of("limit=ten"), "limit");
  EXPECT_EQ(field_of("starting_after=o-nowhere"), "starting_after");
  EXPECT_EQ(field_of("ending_before=o-nowhere"), "ending_before");
  EXPECT_EQ(field_of("starting_after=o-p1&ending_before=o-p1"), "ending_before");
  EXPECT_EQ(field_of("status=LOST"), "status");
  EXPECT_EQ(field_of("created_gte=yesterday"), "created_gte");
  EXPECT_EQ(field_of("limit=1&limit=2"), "limit");
  EXPECT_EQ(field_of("colour=red"), "query");
  EXPECT_EQ(field_of("channel=alipy"), "channel");  // a typo is no empty page
  EXPECT_EQ(field_of("limit=%zz"), "limit");
  EXPECT_EQ(field_of("limit=1%"), "limit");
  EXPECT_EQ(field_of("%zzimit=1"), "query");
  for (const char* fine : {"&limit=1", "limit=1&&channel=balance", "%6Cimit=1", "limit=1&"}) {
    const HttpResponse r = merchant("GET", std::string("/v1/payments?") + fine);
    EXPECT_EQ(r.status, 200) << fine << " " << r.body;
    EXPECT_EQ(page_ids(r.body), "o-p1") << fine;
  }
  const HttpResponse encoded = merchant("GET", "/v1/payments?created_lt=2999-01-01T00%3A00%3A00Z");
  EXPECT_EQ(encoded.status, 200) << encoded.body;
  EXPECT_EQ(page_ids(encoded.body), "o-p1");
}

// Payments' times are whole microseconds: a bound with a finer fraction is rounded up, so that
// created_gte excludes a payment a nanosecond before it and created_lt includes it.
TEST_P(ColdServer, ListingBoundsFinerThanAMicrosecondRoundUp) {
  const std::string body = paid("o-ns", 10);
  const std::string created = json_string(body, "/created_at").value_or("");
  ASSERT_EQ(created.size(), 27u) << created;  // 2026-11-30T13:15:35.211130Z
  const std::string finer = created.substr(0, 26) + "001Z";  // 1 ns later
  EXPECT_EQ(page_ids(merchant("GET", "/v1/payments?created_gte=" + finer).body), "");
  EXPECT_EQ(page_ids(merchant("GET", "/v1/payments?created_lt=" + finer).body), "o-ns");
  EXPECT_EQ(page_ids(merchant("GET", "/v1/payments?created_gte=" + created).body), "o-ns");
  EXPECT_EQ(page_ids(merchant("GET", "/v1/payments?created_lt=" + created).body), "");
}

TEST_P(ColdServer, ListingWhenTheArchiveFailsIsUnavailable) {
  (void)paid("o-f1", 10);
  wait_all_cold();
  reader_.failing = true;
  const HttpResponse r = merchant("GET", "/v1/payments");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(json_string(r.body, "/error/code"), "unavailable");
  reader_.failing = false;
  const HttpResponse again = merchant("GET", "/v1/payments");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(page_ids(again.body), "o-f1");
}

INSTANTIATE_TEST_SUITE_P(Modes, ColdServer, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& mode) {
                           return mode.param ? "RunToCompletion" : "CoreThread";
                         });

}  // namespace
}  // namespace paycore::net
