// The events and webhook routes through a real Server in process (net/io_thread_events.cpp):
// signed requests over sockets, a fake events service behind the events pool, the engine
// idle. Every route's success, an idempotent replay's header, another merchant's event, a
// full queue of calls, events off, and the routes' labels in /metrics.

#include <gtest/gtest.h>

#include <functional>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "engine_harness.hpp"
#include "net/render_events.hpp"
#include "net/server.hpp"
#include "tests/integration/client.hpp"
#include "tests/net/fake_events_service.hpp"
#include "tests/net/test_keys.hpp"

namespace paycore::net {
namespace {

using events::EventType;

class EventsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = paycore::testing::make_temp_dir();
    engine_ = paycore::testing::open_engine(paycore::testing::test_config(dir_));
    ASSERT_NE(engine_, nullptr);
    keys_ = std::make_unique<auth::KeysHolder>(testing::dev_keys().keys);
    service_.events.push_back(testing::sample_event(EventType::payment_created, 41));
    service_.events.push_back(testing::sample_event(EventType::payment_paid, 42));
    service_.events.push_back(testing::sample_event(EventType::payment_paid, 43, "m_002"));
  }
  void TearDown() override {
    service_.open_gate();
    if (server_) server_->stop();
    server_.reset();
    engine_.reset();
    paycore::testing::remove_tree(dir_);
  }
  void start(bool events_on = true, std::uint32_t threads = 2, std::uint32_t queued_max = 64) {
    ServerConfig config;
    config.port = 0;
    config.io_threads = 1;
    config.shutdown_grace_ms = 200;
    config.events = events_on ? &service_ : nullptr;
    config.events_threads = threads;
    config.events_calls_queued_max = queued_max;
    config.primary_url = primary_url_;
    StatusOr<std::unique_ptr<Server>> created = Server::create(config, *engine_, *keys_);
    ASSERT_TRUE(created.is_ok()) << created.status().to_string();
    server_ = std::move(*created);
    server_->start();
    client_ = std::make_unique<it::Client>(server_->port(), testing::dev_keys().keys);
  }
  it::HttpResponse call(const std::string& who, const std::string& method,
                        const std::string& target, const std::string& body = {}) {
    const it::Signer signer = who == "operator" ? client_->operator_signer() : client_->merchant(who);
    return client_->call(signer, method, target, body);
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<auth::KeysHolder> keys_;
  testing::FakeEventsService service_;
  std::function<std::string()> primary_url_;  // a cluster member's idea of the primary
  std::unique_ptr<Server> server_;
  std::unique_ptr<it::Client> client_;
};

// Paycore-Min-Lsn on an events route waits for the events to be derived that far (here at
// once), else 503 after min_lsn_wait_ms.
TEST_F(EventsServerTest, AMinLsnIsWaitedForOnTheEventsRoutes) {
  start();
  service_.derived_lsn_value = 5;
  const auto ask = [this](const std::string& min_lsn) {
    return client_->raw(it::Client::signed_request(client_->merchant("m_001"), "GET", "/v1/events/evt_42_0",
                                                   "", 0, {}, "Paycore-Min-Lsn: " + min_lsn + "\r\n"));
  };
  EXPECT_EQ(ask("5").status, 200);
  const it::HttpResponse refused = ask("6");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("Paycore-Min-Lsn"), std::string::npos) << refused.body;
}

TEST_F(EventsServerTest, EventsAreListedAndReadWithASignedQuery) {
  start();
  it::HttpResponse r = call("m_001", "GET", "/v1/events?limit=1&type=payment.paid");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"data":[)" + render_event_json(service_.events[1]) + R"(],"has_more":false})");
  r = call("m_001", "GET", "/v1/events?limit=1");
  EXPECT_EQ(r.body, R"({"data":[)" + render_event_json(service_.events[1]) + R"(],"has_more":true})");
  r = call("m_001", "GET", "/v1/events?starting_after=evt_42_0");
  EXPECT_EQ(r.body, R"({"data":[)" + render_event_json(service_.events[0]) + R"(],"has_more":false})");
  r = call("m_001", "GET", "/v1/events/evt_42_0");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, render_event_json(service_.events[1]));
  r = call("m_001", "GET", "/v1/events?limit=0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(*it::json_string(r.body, "/error/field"), "limit");
}

TEST_F(EventsServerTest, AnotherMerchantsEventIsNotFoundButTheOperatorSeesIt) {
  start();
  it::HttpResponse r = call("m_001", "GET", "/v1/events/evt_43_0");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no such event"}})");
  EXPECT_EQ(call("m_001", "GET", "/v1/events/evt_43_0/deliveries").status, 404);
  EXPECT_EQ(call("m_001", "POST", "/v1/events/evt_43_0/redeliver", R"({"request_id":"rd"})").status, 404);
  EXPECT_EQ(call("m_001", "GET", "/v1/events?starting_after=evt_43_0").status, 400);
  r = call("operator", "GET", "/v1/events/evt_43_0");
  EXPECT_EQ(r.status, 200);
  r = call("operator", "GET", "/v1/events");
  EXPECT_EQ(it::json_array_size(r.body, "/data"), 3u);
}

TEST_F(EventsServerTest, AnEndpointIsCreatedReplayedListedAndDisabled) {
  start();
  const std::string body = R"({"request_id":"we-1","url":"https://example.com/h","events":["*"]})";
  const it::HttpResponse created = call("m_001", "POST", "/v1/webhook_endpoints", body);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("idempotent-replayed"), "");
  EXPECT_EQ(it::json_string(created.body, "/secret").value_or("").substr(0, 6), "whsec_");
  const it::HttpResponse replayed = call("m_001", "POST", "/v1/webhook_endpoints", body);
  EXPECT_EQ(replayed.status, 201);
  EXPECT_EQ(replayed.header("idempotent-replayed"), "true");
  EXPECT_EQ(replayed.body, created.body);
  const it::HttpResponse reused = call(
      "m_001", "POST", "/v1/webhook_endpoints",
      R"({"request_id":"we-1","url":"https://example.com/other","events":["*"]})");
  EXPECT_EQ(reused.status, 422);
  const it::HttpResponse listed = call("m_001", "GET", "/v1/webhook_endpoints");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(it::json_array_size(listed.body, "/data"), 1u);
  EXPECT_EQ(listed.body.find("secret"), std::string::npos);
  const std::string id = *it::json_string(created.body, "/id");
  EXPECT_EQ(call("m_002", "POST", "/v1/webhook_endpoints/" + id + "/disable", R"({"request_id":"d"})").status, 404);
  const it::HttpResponse disabled =
      call("m_001", "POST", "/v1/webhook_endpoints/" + id + "/disable", R"({"request_id":"d"})");
  EXPECT_EQ(disabled.status, 200);
  EXPECT_EQ(*it::json_string(disabled.body, "/status"), "DISABLED");
  const it::HttpResponse refused = call("m_001", "POST", "/v1/webhook_endpoints",
                                        R"({"request_id":"we-2","url":"http://x","events":["*"]})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(*it::json_string(refused.body, "/error/field"), "url");
}

TEST_F(EventsServerTest, AWebhookWriteOnAStandbyIsNotPrimaryAndNamesThePrimary) {
  primary_url_ = [] { return std::string("http://10.0.0.1:8080"); };
  start();
  service_.fail_next(Status(StatusCode::kUnavailable, std::string(events::not_primary_message)));
  const it::HttpResponse refused = call("m_001", "POST", "/v1/webhook_endpoints",
                                        R"({"request_id":"we-1","url":"https://example.com/h","events":["*"]})");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(it::json_string(refused.body, "/error/code").value_or(""), "not_primary");
  EXPECT_EQ(refused.header("paycore-primary"), "http://10.0.0.1:8080");
  // Any other unavailability is no redirection.
  service_.fail_next(Status(StatusCode::kUnavailable, "store busy"));
  const it::HttpResponse busy = call("m_001", "GET", "/v1/webhook_endpoints");
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(it::json_string(busy.body, "/error/code").value_or(""), "unavailable");
  EXPECT_EQ(busy.header("paycore-primary"), "");
}

TEST_F(EventsServerTest, DeliveriesAreShownAndARedeliveryIsQueued) {
  events::DeliveryView delivery;
  delivery.endpoint_id = "we_1";
  delivery.status = "FAILED";
  delivery.attempts_count = 1;
  delivery.attempts = {{1'795'670'356'000'000, 10'000, 0, "timeout"}};
  service_.deliveries_of["evt_42_0"] = {delivery};
  start();
  it::HttpResponse r = call("m_001", "GET", "/v1/events/evt_42_0/deliveries");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(*it::json_string(r.body, "/data/0/attempts/0/error"), "timeout");
  EXPECT_TRUE(it::json_is_null(r.body, "/data/0/next_attempt_at"));
  r = call("m_001", "POST", "/v1/events/evt_42_0/redeliver", R"({"request_id":"rd-1"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"id":"evt_42_0","status":"QUEUED"})");
  EXPECT_EQ(r.header("idempotent-replayed"), "");
  r = call("m_001", "POST", "/v1/events/evt_42_0/redeliver", R"({"request_id":"rd-1"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.header("idempotent-replayed"), "true");
  EXPECT_EQ(service_.redelivered, std::vector<std::string>{"evt_42_0"});
}

TEST_F(EventsServerTest, AFullQueueOfCallsIsUnavailable) {
  start(true, /*threads=*/1, /*queued_max=*/1);
  service_.close_gate();
  const std::string request = it::Client::signed_request(client_->merchant("m_001"), "GET",
                                                         "/v1/events/evt_42_0", {});
  it::Connection held(server_->port());  // taken by the one worker, held at the gate
  ASSERT_TRUE(held.send_all(request));
  for (int waited_ms = 0; service_.blocked() == 0 && waited_ms < 10'000; waited_ms += 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(service_.blocked(), 1u);
  it::Connection queued(server_->port());  // fills the queue of one
  ASSERT_TRUE(queued.send_all(it::Client::signed_request(client_->merchant("m_001"), "GET",
                                                         "/v1/events/evt_41_0", {})));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const it::HttpResponse refused = call("m_001", "GET", "/v1/events/evt_42_0");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(*it::json_string(refused.body, "/error/code"), "unavailable");
  service_.open_gate();
  EXPECT_EQ(held.read_response().status, 200);
  EXPECT_EQ(queued.read_response().status, 200);
}

TEST_F(EventsServerTest, EventsOffAnswerNotFoundSayingSo) {
  start(/*events_on=*/false);
  for (const auto& [method, target] :
       {std::pair{"GET", "/v1/events"}, std::pair{"GET", "/v1/events/evt_42_0"},
        std::pair{"POST", "/v1/webhook_endpoints"}}) {
    const it::HttpResponse r = call("m_001", method, target, "{}");
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"events and webhooks are off on this server"}})");
  }
  EXPECT_EQ(service_.calls, 0u);
}

TEST_F(EventsServerTest, TheRoutesHaveTheirMetricsLabels) {
  start();
  (void)call("m_001", "GET", "/v1/events");
  (void)call("m_001", "POST", "/v1/events/evt_42_0/redeliver", R"({"request_id":"rd-1"})");
  (void)call("m_001", "GET", "/v1/webhook_endpoints");
  const std::string exposition = client_->get("/metrics").body;
  EXPECT_EQ(it::metric(exposition, R"(paycore_http_requests_total{route="event_list",status="200"})"), 1);
  EXPECT_EQ(it::metric(exposition, R"(paycore_http_requests_total{route="event_redeliver",status="202"})"), 1);
  EXPECT_EQ(it::metric(exposition,
                       R"(paycore_http_requests_total{route="webhook_endpoint_list",status="200"})"),
            1);
  // The service's counters (the fake's fixed values).
  EXPECT_EQ(it::metric(exposition, "paycore_events_derived_lsn"), 42);
  EXPECT_EQ(it::metric(exposition, "paycore_events_derived_total"), 7);
  EXPECT_EQ(it::metric(exposition, "paycore_webhook_deliveries_delivered_total"), 5);
  EXPECT_EQ(it::metric(exposition, "paycore_webhook_delivery_lag_milliseconds_count"), 0);
}

}  // namespace
}  // namespace paycore::net
