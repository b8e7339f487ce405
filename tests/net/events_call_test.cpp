// The events and webhook routes at the edge, without a server (net/events_call.hpp,
// net/render_events.hpp, net/list_query.hpp, the decision step): routes, each refusal with its
// field, the service's errors as answers, and the JSON of each kind of event byte for byte.
#include "net/events_call.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/decide.hpp"
#include "net/list_query.hpp"
#include "net/render_events.hpp"
#include "tests/net/fake_events_service.hpp"

namespace paycore::net {
namespace {

using events::EventType;
using testing::FakeEventsService;
using testing::sample_event;

const auth::Keys& keys() {
  static const std::shared_ptr<const auth::Keys> parsed = [] {
    const StatusOr<std::shared_ptr<const auth::Keys>> result = auth::keys_parse(
        R"({"operator": {"id": "operator", "secret": "op-secret"},
            "merchants": {"m_001": "secret-1", "m_002": "secret-2"}})");
    EXPECT_TRUE(result.is_ok()) << result.status().to_string();
    return result.is_ok() ? *result : std::shared_ptr<const auth::Keys>();
  }();
  return *parsed;
}

// ---- The JSON of each kind of event (API.md: id, type, created_at, lsn, data) ----

constexpr std::string_view paid_payment =
    R"({"merchant_id":"m_001","order_id":"o-1","request_id":"r-1","channel":"alipay",)"
    R"("payer_account_id":null,"amount":1234,"currency":"CNY","status":"PAID",)"
    R"("refunded_amount":0,"channel_txn_id":"ch-1","mandate_id":null,)"
    R"("created_at":"2026-11-26T05:19:14.123456Z","updated_at":"2026-11-26T05:19:15.000001Z"})";
constexpr std::string_view anomaly_notice =
    R"({"channel":"alipay","channel_txn_id":"ch-2","order_id":"o-1","amount":999,)"
    R"("currency":"CNY","status":"SUCCESS","reason":"amount_mismatch"})";

std::string event_head(std::string_view type) {
  return R"({"id":"evt_42_0","type":")" + std::string(type) +
         R"(","created_at":"2026-11-26T05:19:15.000001Z","lsn":42,"data":)";
}

TEST(EventJson, APaymentEventCarriesThePaymentAsItsObject) {
  EXPECT_EQ(render_event_json(sample_event(EventType::payment_paid, 42)),
            event_head("payment.paid") + R"({"object":)" + std::string(paid_payment) + "}}");
}

TEST(EventJson, ARefundEventAddsTheRefundBesideTheObject) {
  std::string payment(paid_payment);
  payment.replace(payment.find(R"("refunded_amount":0)"), 19, R"("refunded_amount":200)");
  EXPECT_EQ(render_event_json(sample_event(EventType::payment_refunded, 42)),
            event_head("payment.refunded") + R"({"object":)" + payment +
                R"(,"refund":{"request_id":"rf-1","amount":200,)"
                R"("created_at":"2026-11-26T05:19:16.000000Z"}}})");
}

TEST(EventJson, AnAnomalyOfAPaymentAddsTheNoticeBesideThePayment) {
  EXPECT_EQ(render_event_json(sample_event(EventType::payment_anomaly, 42)),
            event_head("payment.anomaly") + R"({"object":)" + std::string(paid_payment) +
                R"(,"anomaly":)" + std::string(anomaly_notice) + "}}");
}

TEST(EventJson, AnAnomalyOfNoPaymentHasTheNoticeAsItsObject) {
  events::Event e = sample_event(EventType::payment_anomaly, 42);
  e.resource = ResourceKind::none;
  EXPECT_EQ(render_event_json(e), event_head("payment.anomaly") + R"({"object":)" +
                                      std::string(anomaly_notice) + R"(,"anomaly":)" +
                                      std::string(anomaly_notice) + "}}");
}

TEST(EventJson, AMandateEventCarriesTheMandate) {
  EXPECT_EQ(render_event_json(sample_event(EventType::mandate_revoked, 42)),
            event_head("mandate.revoked") +
                R"({"object":{"mandate_id":"md-1","payer_account_id":"alice","merchant_id":"m_001",)"
                R"("amount_max":50000,"currency":"CNY","expires_at":null,"single_use":false,)"
                R"("status":"REVOKED","created_at":"2026-11-26T05:13:20.000000Z",)"
                R"("updated_at":"2026-11-26T05:19:15.000001Z"}}})");
}

TEST(EventJson, TheGetAnswerIsTheWebhookBodyByteForByte) {
  FakeEventsService service;
  service.events.push_back(sample_event(EventType::payment_refunded, 42));
  EventsCall call;
  call.kind = EventsCallKind::get_event;
  call.merchant_id = Id::trusted("m_001");
  call.event = events::EventKey{42, 0};
  const EventsReply reply = answer_events_call(service, call);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, render_event_json(service.events[0]));
}

// ---- Routes ----

TEST(EventsRoutes, EveryPathAndMethod) {
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/events").route, Route::event_list);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/events/evt_1_0").route, Route::event_get);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/events/evt_1_0/deliveries").route,
            Route::event_deliveries);
  EXPECT_EQ(match_route(HttpMethod::post, "/v1/events/evt_1_0/redeliver").route,
            Route::event_redeliver);
  EXPECT_EQ(match_route(HttpMethod::post, "/v1/webhook_endpoints").route,
            Route::webhook_endpoint_create);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/webhook_endpoints").route,
            Route::webhook_endpoint_list);
  EXPECT_EQ(match_route(HttpMethod::post, "/v1/webhook_endpoints/we_1/disable").route,
            Route::webhook_endpoint_disable);
  EXPECT_EQ(match_route(HttpMethod::post, "/v1/events").status, MatchStatus::method_not_allowed);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/events/evt_1_0/redeliver").allow, "POST");
  EXPECT_EQ(match_route(HttpMethod::put, "/v1/webhook_endpoints").allow, "GET, HEAD, POST");
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/webhook_endpoints/we_1").status,
            MatchStatus::not_found);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/events/evt_1_0/other").status,
            MatchStatus::not_found);
  EXPECT_EQ(route_name(Route::event_list), "event_list");
  EXPECT_EQ(route_name(Route::webhook_endpoint_disable), "webhook_endpoint_disable");
}

// ---- The decision: access, events off, each refusal ----

class EventsDecideTest : public ::testing::Test {
 protected:
  Decision decide_as(std::string_view principal_id, HttpMethod method, std::string_view target,
                     std::string_view body = {}, bool events_on = true) {
    target_ = target;
    const std::size_t q = target_.find('?');
    request_.method_kind = method;
    request_.path = std::string_view(target_).substr(0, q);
    request_.query = q == std::string::npos ? std::string_view{} : std::string_view(target_).substr(q + 1);
    request_.body = body;
    const RequestContext context{keys(), keys().find_principal(principal_id), decoder_, &items_,
                                 events_on};
    return decide(match_route(method, request_.path), request_, context);
  }
  // The 400 (or 404) that `target` and `body` get from merchant m_001.
  LocalError refusal(HttpMethod method, std::string_view target, std::string_view body = {}) {
    const Decision d = decide_as("m_001", method, target, body);
    EXPECT_EQ(d.kind, DecisionKind::local_answer) << target << " " << body;
    EXPECT_EQ(d.admission, Admission::before_answer);
    return d.answer;
  }
  void expect_invalid(std::string_view target, std::string_view field) {
    const LocalError error = refusal(HttpMethod::get, target);
    EXPECT_EQ(error.status, 400) << target;
    EXPECT_EQ(error.code, "invalid_field") << target;
    EXPECT_EQ(error.field, field) << target;
  }
  void expect_body_refused(std::string_view body, std::string_view code, std::string_view field) {
    const LocalError error = refusal(HttpMethod::post, "/v1/webhook_endpoints", body);
    EXPECT_EQ(error.status, 400) << body;
    EXPECT_EQ(error.code, code) << body;
    EXPECT_EQ(error.field, field) << body;
  }

  std::string target_;
  JsonDecoder decoder_;
  std::vector<BatchItem> items_;
  HttpRequest request_;
};

TEST_F(EventsDecideTest, AMerchantListsItsOwnEvents) {
  const Decision d =
      decide_as("m_001", HttpMethod::get, "/v1/events?limit=5&starting_after=evt_7_1&type=payment.paid");
  ASSERT_EQ(d.kind, DecisionKind::events);
  EXPECT_EQ(d.events.kind, EventsCallKind::list_events);
  EXPECT_EQ(d.events.list.merchant_id.view(), "m_001");
  EXPECT_EQ(d.events.list.limit, 5u);
  ASSERT_TRUE(d.events.list.starting_after.has_value());
  EXPECT_EQ(d.events.list.starting_after->lsn, 7u);
  EXPECT_EQ(d.events.list.starting_after->index, 1u);
  EXPECT_EQ(d.events.list.type, EventType::payment_paid);
}

TEST_F(EventsDecideTest, TheOperatorReadsEveryMerchantsEvents) {
  Decision d = decide_as("operator", HttpMethod::get, "/v1/events");
  ASSERT_EQ(d.kind, DecisionKind::events);
  EXPECT_TRUE(d.events.list.merchant_id.empty());
  EXPECT_EQ(d.events.list.limit, 10u);
  d = decide_as("operator", HttpMethod::get, "/v1/events/evt_3_0");
  ASSERT_EQ(d.kind, DecisionKind::events);
  EXPECT_TRUE(d.events.merchant_id.empty());
}

TEST_F(EventsDecideTest, WebhookRoutesAreNotFoundForTheOperatorAndNotAdmitted) {
  for (const auto& [method, target] :
       {std::pair{HttpMethod::get, "/v1/webhook_endpoints"},
        std::pair{HttpMethod::post, "/v1/webhook_endpoints"},
        std::pair{HttpMethod::post, "/v1/webhook_endpoints/we_1/disable"},
        std::pair{HttpMethod::get, "/v1/events/evt_1_0/deliveries"},
        std::pair{HttpMethod::post, "/v1/events/evt_1_0/redeliver"}}) {
    const Decision d = decide_as("operator", method, target, R"({"request_id":"r"})");
    ASSERT_EQ(d.kind, DecisionKind::local_answer) << target;
    EXPECT_EQ(d.answer.status, 404) << target;
    EXPECT_EQ(d.admission, Admission::none) << target;
  }
}

TEST_F(EventsDecideTest, EventsOffIsNotFoundSayingSo) {
  const Decision d = decide_as("m_001", HttpMethod::get, "/v1/events", {}, false);
  ASSERT_EQ(d.kind, DecisionKind::local_answer);
  EXPECT_EQ(d.answer.status, 404);
  EXPECT_EQ(d.answer.code, "not_found");
  EXPECT_EQ(d.answer.message, "events and webhooks are off on this server");
  EXPECT_EQ(d.admission, Admission::none);
}

TEST_F(EventsDecideTest, EachBadQueryParameterIsNamed) {
  expect_invalid("/v1/events?limit=0", "limit");
  expect_invalid("/v1/events?limit=101", "limit");
  expect_invalid("/v1/events?limit=ten", "limit");
  expect_invalid("/v1/events?limit=", "limit");
  expect_invalid("/v1/events?limit=1&limit=2", "limit");
  expect_invalid("/v1/events?starting_after=o-1", "starting_after");
  expect_invalid("/v1/events?starting_after=evt_1", "starting_after");
  expect_invalid("/v1/events?starting_after", "starting_after");
  expect_invalid("/v1/events?type=payment.lost", "type");
  expect_invalid("/v1/events?type=", "type");
  expect_invalid("/v1/events?type=payment.paid&type=payment.paid", "type");
  expect_invalid("/v1/events?ending_before=evt_1_0", "query");
  expect_invalid("/v1/events?status=PAID", "query");
  expect_invalid("/v1/webhook_endpoints?limit=1", "query");
}

TEST_F(EventsDecideTest, PercentEncodedValuesAreDecoded) {
  const Decision d = decide_as("m_001", HttpMethod::get, "/v1/events?type=payment%2Epaid&&");
  ASSERT_EQ(d.kind, DecisionKind::events);
  EXPECT_EQ(d.events.list.type, EventType::payment_paid);
}

TEST_F(EventsDecideTest, AnIdInThePathThatIsNoEventIsNotFound) {
  for (const std::string_view target :
       {"/v1/events/o-1", "/v1/events/evt_1_99999", "/v1/events/evt_x_0/deliveries"}) {
    const LocalError error = refusal(HttpMethod::get, target);
    EXPECT_EQ(error.status, 404) << target;
    EXPECT_EQ(error.code, "not_found") << target;
  }
  const LocalError endpoint =
      refusal(HttpMethod::post, "/v1/webhook_endpoints/we%20x/disable", R"({"request_id":"r"})");
  EXPECT_EQ(endpoint.status, 404);
}

TEST_F(EventsDecideTest, EachBadEndpointFieldIsNamed) {
  expect_body_refused("[]", "invalid_json", "");
  expect_body_refused(R"({"url":"https://a","events":["*"]})", "missing_field", "request_id");
  expect_body_refused(R"({"request_id":"r","events":["*"]})", "missing_field", "url");
  expect_body_refused(R"({"request_id":"r","url":"https://a"})", "missing_field", "events");
  expect_body_refused(R"({"request_id":"r r","url":"https://a","events":["*"]})", "invalid_field",
                      "request_id");
  expect_body_refused(R"({"request_id":"r","url":7,"events":["*"]})", "invalid_field", "url");
  expect_body_refused(R"({"request_id":"r","url":"","events":["*"]})", "invalid_field", "url");
  const std::string long_url = "https://a/" + std::string(2048, 'x');
  expect_body_refused(R"({"request_id":"r","url":")" + long_url + R"(","events":["*"]})",
                      "invalid_field", "url");
  expect_body_refused(R"({"request_id":"r","url":"https://a","events":"*"})", "invalid_field",
                      "events");
  expect_body_refused(R"({"request_id":"r","url":"https://a","events":[]})", "invalid_field",
                      "events");
  expect_body_refused(R"({"request_id":"r","url":"https://a","events":["payment.lost"]})",
                      "invalid_field", "events");
  expect_body_refused(R"({"request_id":"r","url":"https://a","events":[1]})", "invalid_field",
                      "events");
  expect_body_refused(
      R"({"request_id":"r","url":"https://a","events":["payment.paid","payment.paid"]})",
      "invalid_field", "events");
  expect_body_refused(R"({"request_id":"r","url":"https://a","events":["*","payment.paid"]})",
                      "invalid_field", "events");
  std::string seventeen = R"({"request_id":"r","url":"https://a","events":[)";
  for (int i = 0; i < 17; ++i) seventeen += std::string(i == 0 ? "" : ",") + R"("payment.paid")";
  expect_body_refused(seventeen + "]}", "invalid_field", "events");
}

TEST_F(EventsDecideTest, AnEndpointIsDecoded) {
  const Decision d = decide_as("m_001", HttpMethod::post, "/v1/webhook_endpoints",
                               R"({"request_id":"r-9","url":"https://h/x","events":["payment.paid","mandate.revoked"]})");
  ASSERT_EQ(d.kind, DecisionKind::events);
  EXPECT_EQ(d.events.kind, EventsCallKind::create_endpoint);
  EXPECT_EQ(d.events.request_id.view(), "r-9");
  EXPECT_EQ(d.events.url, "https://h/x");
  EXPECT_EQ(d.events.types, (std::vector<std::string>{"payment.paid", "mandate.revoked"}));
}

TEST_F(EventsDecideTest, DisableAndRedeliverNeedARequestId) {
  for (const std::string_view target :
       {"/v1/webhook_endpoints/we_1/disable", "/v1/events/evt_1_0/redeliver"}) {
    LocalError error = refusal(HttpMethod::post, target, "{}");
    EXPECT_EQ(error.code, "missing_field") << target;
    EXPECT_EQ(error.field, "request_id") << target;
    error = refusal(HttpMethod::post, target, "not json");
    EXPECT_EQ(error.code, "invalid_json") << target;
  }
}

// ---- The service's answers and errors ----

class EventsAnswerTest : public ::testing::Test {
 protected:
  EventsAnswerTest() {
    service_.events.push_back(sample_event(EventType::payment_created, 40));
    service_.events.push_back(sample_event(EventType::payment_paid, 41, "m_002"));
    service_.events.push_back(sample_event(EventType::payment_paid, 42));
  }
  EventsCall call(EventsCallKind kind, std::string_view merchant = "m_001") {
    EventsCall c;
    c.kind = kind;
    c.merchant_id = Id::trusted(merchant);
    c.list.merchant_id = c.merchant_id;
    c.event = events::EventKey{42, 0};
    c.request_id = Id::trusted("r-1");
    c.url = "https://example.com/hook";
    c.types = {"*"};
    return c;
  }

  FakeEventsService service_;
};

TEST_F(EventsAnswerTest, AListIsAPageOfEventsNewestFirst) {
  EventsCall c = call(EventsCallKind::list_events);
  c.list.limit = 1;
  const EventsReply reply = answer_events_call(service_, c);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"data":[)" + render_event_json(service_.events[2]) +
                            R"(],"has_more":true})");
}

TEST_F(EventsAnswerTest, ACursorNotInTheListIsInvalidStartingAfter) {
  EventsCall c = call(EventsCallKind::list_events);
  c.list.starting_after = events::EventKey{41, 0};  // m_002's
  const EventsReply reply = answer_events_call(service_, c);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body,
            R"({"error":{"code":"invalid_field","message":"no event of this list has this id",)"
            R"("field":"starting_after"}})");
}

TEST_F(EventsAnswerTest, AnotherMerchantsEventIsNotFound) {
  EventsCall c = call(EventsCallKind::get_event, "m_002");
  for (const EventsCallKind kind :
       {EventsCallKind::get_event, EventsCallKind::deliveries, EventsCallKind::redeliver}) {
    c.kind = kind;
    const EventsReply reply = answer_events_call(service_, c);
    EXPECT_EQ(reply.status, 404);
    EXPECT_EQ(reply.body, R"({"error":{"code":"not_found","message":"no such event"}})");
  }
  EXPECT_TRUE(service_.redelivered.empty());
}

TEST_F(EventsAnswerTest, DeliveriesShowEachAttempt) {
  events::DeliveryView pending;
  pending.endpoint_id = "we_1";
  pending.status = "PENDING";
  pending.attempts_count = 2;
  pending.next_attempt_at_us = 1'795'670'400'000'000;
  pending.attempts = {{1'795'670'356'000'000, 10'000, 0, "timeout"},
                      {1'795'670'366'000'000, 12, 500, ""}};
  events::DeliveryView delivered;
  delivered.endpoint_id = "we_2";
  delivered.status = "DELIVERED";
  delivered.attempts_count = 1;
  delivered.next_attempt_at_us = 1;  // not PENDING: shown as null
  delivered.attempts = {{1'795'670'356'000'000, 3, 200, ""}};
  service_.deliveries_of["evt_42_0"] = {pending, delivered};
  const EventsReply reply = answer_events_call(service_, call(EventsCallKind::deliveries));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body,
            R"({"data":[{"endpoint_id":"we_1","status":"PENDING","attempts_count":2,)"
            R"("next_attempt_at":"2026-11-26T05:20:00.000000Z","attempts":[)"
            R"({"started_at":"2026-11-26T05:19:16.000000Z","duration_ms":10000,"http_status":null,"error":"timeout"},)"
            R"({"started_at":"2026-11-26T05:19:26.000000Z","duration_ms":12,"http_status":500,"error":null}]},)"
            R"({"endpoint_id":"we_2","status":"DELIVERED","attempts_count":1,"next_attempt_at":null,)"
            R"("attempts":[{"started_at":"2026-11-26T05:19:16.000000Z","duration_ms":3,"http_status":200,"error":null}]}],)"
            R"("has_more":false})");
}

TEST_F(EventsAnswerTest, RedeliverIsAcceptedAndQueued) {
  const EventsReply reply = answer_events_call(service_, call(EventsCallKind::redeliver));
  EXPECT_EQ(reply.status, 202);
  EXPECT_EQ(reply.body, R"({"id":"evt_42_0","status":"QUEUED"})");
  EXPECT_EQ(service_.redelivered, std::vector<std::string>{"evt_42_0"});
}

// Paycore-Min-Lsn: answered once the events are derived that far, or 503 after the wait.
TEST_F(EventsAnswerTest, AMinLsnIsWaitedForThenRefused) {
  service_.derived_lsn_value = 10;
  EventsCall waits = call(EventsCallKind::get_event);
  waits.min_lsn = 12;
  waits.min_lsn_wait_ms = 5'000;
  std::thread deriver([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    service_.derived_lsn_value = 12;
  });
  const EventsReply answered = answer_events_call(service_, waits);
  deriver.join();
  EXPECT_EQ(answered.status, 200);
  EventsCall too_far = call(EventsCallKind::list_events);
  too_far.min_lsn = 13;
  too_far.min_lsn_wait_ms = 30;
  const EventsReply refused = answer_events_call(service_, too_far);
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("Paycore-Min-Lsn"), std::string::npos) << refused.body;
}

// The same request_id again queues nothing more and says so; for another event it is refused.
TEST_F(EventsAnswerTest, ARedeliveryIsQueuedOncePerRequestId) {
  EXPECT_FALSE(answer_events_call(service_, call(EventsCallKind::redeliver)).replayed);
  const EventsReply again = answer_events_call(service_, call(EventsCallKind::redeliver));
  EXPECT_EQ(again.status, 202);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.body, R"({"id":"evt_42_0","status":"QUEUED"})");
  EXPECT_EQ(service_.redelivered, std::vector<std::string>{"evt_42_0"});
  EventsCall other = call(EventsCallKind::redeliver);
  other.event = events::EventKey{40, 0};
  const EventsReply refused = answer_events_call(service_, other);
  EXPECT_EQ(refused.status, 422);
  EXPECT_NE(refused.body.find("idempotency_key_reused"), std::string::npos) << refused.body;
  EXPECT_EQ(service_.redelivered.size(), 1U);
}

TEST_F(EventsAnswerTest, AnEndpointIsCreatedWithItsSecretAndReplayedTheSame) {
  const EventsReply first = answer_events_call(service_, call(EventsCallKind::create_endpoint));
  EXPECT_EQ(first.status, 201);
  EXPECT_FALSE(first.replayed);
  EXPECT_EQ(first.body, R"({"id":"we_000000000000000000000001","url":"https://example.com/hook",)"
                        R"("events":["*"],"secret":"whsec_)" + std::string(64, 'a') +
                            R"(","status":"ENABLED","created_at":"2026-11-26T05:20:00.000000Z"})");
  const EventsReply again = answer_events_call(service_, call(EventsCallKind::create_endpoint));
  EXPECT_EQ(again.status, 201);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.body, first.body);
}

TEST_F(EventsAnswerTest, ListedAndDisabledEndpointsShowNoSecret) {
  (void)answer_events_call(service_, call(EventsCallKind::create_endpoint));
  const EventsReply listed = answer_events_call(service_, call(EventsCallKind::list_endpoints));
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, R"({"data":[{"id":"we_000000000000000000000001","url":"https://example.com/hook",)"
                         R"("events":["*"],"status":"ENABLED","created_at":"2026-11-26T05:20:00.000000Z"}],)"
                         R"("has_more":false})");
  EventsCall disable = call(EventsCallKind::disable_endpoint);
  disable.endpoint_id = Id::trusted("we_000000000000000000000001");
  const EventsReply disabled = answer_events_call(service_, disable);
  EXPECT_EQ(disabled.status, 200);
  EXPECT_FALSE(disabled.replayed);
  EXPECT_EQ(disabled.body, R"({"id":"we_000000000000000000000001","url":"https://example.com/hook",)"
                           R"("events":["*"],"status":"DISABLED","created_at":"2026-11-26T05:20:00.000000Z"})");
  disable.merchant_id = Id::trusted("m_002");
  EXPECT_EQ(answer_events_call(service_, disable).body,
            R"({"error":{"code":"not_found","message":"no such webhook endpoint"}})");
}

TEST_F(EventsAnswerTest, TheServicesErrorsMapToTheApisCodes) {
  struct Case {
    Status status;
    int http_status;
    std::string body;
  };
  const Case cases[] = {
      {Status::invalid_argument("url: url_scheme: must be https"), 400,
       R"({"error":{"code":"invalid_field","message":"url_scheme: must be https","field":"url"}})"},
      {Status::invalid_argument("Something Odd: x"), 400,
       R"({"error":{"code":"invalid_field","message":"Something Odd: x"}})"},
      {Status(StatusCode::kConflict, "x"), 422,
       R"({"error":{"code":"idempotency_key_reused","message":"this request_id was used for a different request"}})"},
      {Status(StatusCode::kFull, "x"), 507,
       R"j({"error":{"code":"capacity_exhausted","message":"this merchant has as many enabled webhook endpoints as allowed (16)"}})j"},
      {Status::io_error("rocksdb: disk on fire"), 503,
       R"({"error":{"code":"unavailable","message":"events could not be read or written; retry"}})"},
  };
  for (const Case& c : cases) {
    service_.fail_next(c.status);
    const EventsReply reply = answer_events_call(service_, call(EventsCallKind::create_endpoint));
    EXPECT_EQ(reply.status, c.http_status) << c.status.to_string();
    EXPECT_EQ(reply.body, c.body);
  }
  service_.fail_next(Status::not_found("x"));
  EXPECT_EQ(answer_events_call(service_, call(EventsCallKind::list_events)).status, 503);
}

}  // namespace
}  // namespace paycore::net
