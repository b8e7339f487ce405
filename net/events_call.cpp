#include "net/events_call.hpp"

#include <chrono>
#include <thread>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "net/list_query.hpp"
#include "net/render_events.hpp"

namespace paycore::net {
namespace {

const LocalError no_such_event{404, "not_found", "no such event", {}};
const LocalError no_such_endpoint{404, "not_found", "no such webhook endpoint", {}};
const LocalError no_query_here{400, "invalid_field", "this list takes no query parameter", "query"};

// An id in the path that no event can have is the same 404 as an event that is not there:
// event ids are opaque to clients.
std::optional<LocalError> event_in_path(std::string_view id, events::EventKey* out) {
  const std::optional<events::EventKey> key = events::parse_event_id(id);
  if (!key) return no_such_event;
  *out = *key;
  return std::nullopt;
}

std::optional<LocalError> request_id_body(std::string_view body, JsonDecoder& decoder, Id* out) {
  RequestIdOnly request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  *out = request.request_id;
  return std::nullopt;
}

std::optional<LocalError> create_endpoint_body(std::string_view body, JsonDecoder& decoder,
                                               EventsCall* out) {
  CreateWebhookEndpointRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->request_id = request.request_id;
  out->url = std::move(request.url);
  out->types = std::move(request.events);
  return std::nullopt;
}

// The calls on one event named by the path: the event, its deliveries, a redelivery.
std::optional<LocalError> decode_event_call(const RouteMatch& match, const HttpRequest& request,
                                            JsonDecoder& decoder, EventsCall* out) {
  out->kind = match.route == Route::event_get          ? EventsCallKind::get_event
              : match.route == Route::event_deliveries ? EventsCallKind::deliveries
                                                       : EventsCallKind::redeliver;
  if (auto error = event_in_path(match.param, &out->event)) return error;
  if (out->kind != EventsCallKind::redeliver) return std::nullopt;
  return request_id_body(request.body, decoder, &out->request_id);
}

}  // namespace

std::optional<LocalError> decode_events_call(const RouteMatch& match, const HttpRequest& request,
                                             const auth::Principal& principal,
                                             JsonDecoder& decoder, EventsCall* out) {
  const bool events_route = route_is_events(match.route);
  PAYCORE_ASSERT(events_route);
  *out = EventsCall{};
  if (principal.kind != auth::PrincipalKind::operator_) out->merchant_id = principal.id;
  switch (match.route) {
    case Route::event_list:
      out->kind = EventsCallKind::list_events;
      if (auto error = parse_event_list_query(request.query, &out->list)) return error;
      out->list.merchant_id = out->merchant_id;
      return std::nullopt;
    case Route::webhook_endpoint_create:
      out->kind = EventsCallKind::create_endpoint;
      return create_endpoint_body(request.body, decoder, out);
    case Route::webhook_endpoint_list:
      out->kind = EventsCallKind::list_endpoints;
      if (!request.query.empty()) return no_query_here;
      return std::nullopt;
    case Route::webhook_endpoint_disable:
      out->kind = EventsCallKind::disable_endpoint;
      if (!Id::from(match.param, &out->endpoint_id)) return no_such_endpoint;
      return request_id_body(request.body, decoder, &out->request_id);
    default:
      return decode_event_call(match, request, decoder, out);
  }
}

namespace {

// The field a kInvalidArgument message names before its first ':' ("url: ..."): a short
// lower-case name, or empty when the message names none.
std::string_view field_of(std::string_view message) {
  constexpr std::size_t field_bytes_max = 32;
  const std::size_t colon = message.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > field_bytes_max) return {};
  const std::string_view field = message.substr(0, colon);
  for (const char c : field) {
    if ((c < 'a' || c > 'z') && c != '_') return {};
  }
  return field;
}

EventsReply error_reply(int status, std::string_view code, std::string_view message,
                        std::string_view field = {}) {
  OutBuffer body(events_reply_bytes_max, 256);
  EventsReply reply;
  reply.status = status;
  if (!write_error_body(body, code, message.substr(0, 1024), field)) {
    reply.status = 500;  // 1 KiB of message and a short field always fit: cannot happen
  }
  reply.body = body.view();
  return reply;
}

EventsReply local_reply(const LocalError& error) {
  return error_reply(error.status, error.code, error.message, error.field);
}

EventsReply status_reply(const Status& status, const EventsCall& call) {
  switch (status.code()) {
    case StatusCode::kNotFound:
      if (call.kind == EventsCallKind::list_events && call.list.starting_after) {
        return error_reply(400, "invalid_field", "no event of this list has this id",
                           "starting_after");
      }
      if (call.kind == EventsCallKind::list_events) break;  // nothing else is missing there
      return local_reply(call.kind == EventsCallKind::disable_endpoint ? no_such_endpoint
                                                                       : no_such_event);
    case StatusCode::kInvalidArgument: {
      const std::string_view field = field_of(status.message());
      std::string_view message = status.message();
      if (!field.empty()) message.remove_prefix(field.size() + 1);
      while (message.starts_with(' ')) message.remove_prefix(1);
      return error_reply(400, "invalid_field", message, field);
    }
    case StatusCode::kConflict:
      return error_reply(422, "idempotency_key_reused",
                         "this request_id was used for a different request");
    case StatusCode::kFull:
      return error_reply(507, "capacity_exhausted",
                         "this merchant has as many enabled webhook endpoints as allowed (16)");
    case StatusCode::kUnavailable:
      if (status.message() == events::not_primary_message) {
        EventsReply reply = error_reply(503, "not_primary", "this process is not the primary: send writes to the primary");
        reply.not_primary = true;
        return reply;
      }
      break;
    default:
      break;
  }
  log_line(LogLevel::warn, "events service failed",
           {{"merchant_id", call.merchant_id.view()}, {"error", status.to_string()}});
  return error_reply(503, "unavailable", "events could not be read or written; retry");
}

// The reply with `status` once the body is whole; 500 when it did not fit.
EventsReply body_reply(int status, const OutBuffer& body, const JsonWriter& json) {
  if (!json.complete()) {
    return error_reply(500, "internal", "the response did not fit its buffer");
  }
  EventsReply reply;
  reply.status = status;
  reply.body = body.view();
  return reply;
}

EventsReply list_events_reply(events::EventsService& service, const EventsCall& call) {
  StatusOr<events::EventListPage> page = service.list_events(call.list);
  if (!page.is_ok()) return status_reply(page.status(), call);
  PAYCORE_ASSERT_LE(page->events.size(), std::size_t{call.list.limit});
  OutBuffer body(events_reply_bytes_max, 8192);
  JsonWriter json(body);
  json.begin_object().key("data").begin_array();
  for (const events::Event& event : page->events) write_event_json(json, event);
  json.end_array().key("has_more").boolean(page->has_more).end_object();
  return body_reply(200, body, json);
}

EventsReply event_reply(events::EventsService& service, const EventsCall& call) {
  StatusOr<events::Event> event = service.get_event(call.merchant_id, call.event);
  if (!event.is_ok()) return status_reply(event.status(), call);
  PAYCORE_ASSERT(event->lsn == call.event.lsn);
  OutBuffer body(events_reply_bytes_max, 2048);
  JsonWriter json(body);
  write_event_json(json, *event);
  return body_reply(200, body, json);
}

EventsReply deliveries_reply(events::EventsService& service, const EventsCall& call) {
  StatusOr<std::vector<events::DeliveryView>> deliveries =
      service.deliveries(call.merchant_id, call.event);
  if (!deliveries.is_ok()) return status_reply(deliveries.status(), call);
  OutBuffer body(events_reply_bytes_max, 2048);
  JsonWriter json(body);
  json.begin_object().key("data").begin_array();
  for (const events::DeliveryView& delivery : *deliveries) write_delivery_json(json, delivery);
  json.end_array().key("has_more").boolean(false).end_object();
  return body_reply(200, body, json);
}

EventsReply redeliver_reply(events::EventsService& service, const EventsCall& call) {
  const StatusOr<bool> replayed = service.redeliver(call.merchant_id, call.event, call.request_id);
  if (!replayed.is_ok()) return status_reply(replayed.status(), call);
  OutBuffer body(events_reply_bytes_max, 128);
  JsonWriter json(body);
  json.begin_object()
      .field("id", events::event_id(call.event.lsn, call.event.index))
      .field("status", "QUEUED")
      .end_object();
  EventsReply reply = body_reply(202, body, json);
  reply.replayed = *replayed;
  return reply;
}

// One endpoint: 201 for a creation (with its secret), 200 for a disable (without).
EventsReply endpoint_reply(const StatusOr<events::WebhookEndpoint>& endpoint,
                           const EventsCall& call, int status) {
  if (!endpoint.is_ok()) return status_reply(endpoint.status(), call);
  OutBuffer body(events_reply_bytes_max, 1024);
  JsonWriter json(body);
  write_webhook_endpoint_json(json, *endpoint, status == 201);
  EventsReply reply = body_reply(status, body, json);
  reply.replayed = status == 201 && endpoint->replayed;
  return reply;
}

EventsReply list_endpoints_reply(events::EventsService& service, const EventsCall& call) {
  StatusOr<std::vector<events::WebhookEndpoint>> endpoints = service.list_endpoints(call.merchant_id);
  if (!endpoints.is_ok()) return status_reply(endpoints.status(), call);
  OutBuffer body(events_reply_bytes_max, 2048);
  JsonWriter json(body);
  json.begin_object().key("data").begin_array();
  for (const events::WebhookEndpoint& endpoint : *endpoints) {
    write_webhook_endpoint_json(json, endpoint, false);
  }
  json.end_array().key("has_more").boolean(false).end_object();
  return body_reply(200, body, json);
}

}  // namespace

namespace {

// Whether the service has derived the events of the log up to `min_lsn` within `wait_ms`
// (polled each millisecond on the calling worker).
bool derived_up_to(const events::EventsService& service, std::uint64_t min_lsn, std::int64_t wait_ms) {
  const std::int64_t deadline_ms = monotonic_ms() + wait_ms;
  while (service.derived_lsn() < min_lsn) {
    if (monotonic_ms() >= deadline_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

EventsReply answer_events_call(events::EventsService& service, const EventsCall& call) {
  if (call.min_lsn != 0 && !derived_up_to(service, call.min_lsn, call.min_lsn_wait_ms)) {
    return error_reply(503, "unavailable",
                       "the events of the log up to Paycore-Min-Lsn are not derived yet: retry");
  }
  switch (call.kind) {
    case EventsCallKind::list_events: return list_events_reply(service, call);
    case EventsCallKind::get_event: return event_reply(service, call);
    case EventsCallKind::deliveries: return deliveries_reply(service, call);
    case EventsCallKind::redeliver: return redeliver_reply(service, call);
    case EventsCallKind::create_endpoint:
      return endpoint_reply(
          service.create_endpoint(call.merchant_id, call.request_id, call.url, call.types), call,
          201);
    case EventsCallKind::list_endpoints: return list_endpoints_reply(service, call);
    case EventsCallKind::disable_endpoint:
      return endpoint_reply(service.disable_endpoint(call.merchant_id, call.endpoint_id.view()),
                            call, 200);
  }
  PAYCORE_ASSERT(false && "an events call of no kind");
  return error_reply(500, "internal", "no such call");
}

}  // namespace paycore::net
