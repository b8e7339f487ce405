#pragma once
// The events and webhook routes at the edge (issue 15; docs/api.md "Events and webhooks"):
// what a request asks of the events service -- an EventsCall, decided on the I/O thread
// without I/O (decode_events_call) -- and its answer, an EventsReply made on a worker of the
// events pool (answer_events_call: it calls events::EventsService, which may block on disk,
// and renders the whole body there). The I/O thread only hands the job over and copies the
// body out (net/io_thread_events.cpp).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/id.hpp"
#include "events/event_store.hpp"
#include "events/service.hpp"
#include "net/credentials.hpp"
#include "net/http_parser.hpp"
#include "net/request_json.hpp"
#include "net/routes.hpp"
#include "net/worker_pool.hpp"

namespace paycore::net {

enum class EventsCallKind : std::uint8_t {
  list_events,       // GET /v1/events
  get_event,         // GET /v1/events/{id}
  deliveries,        // GET /v1/events/{id}/deliveries
  redeliver,         // POST /v1/events/{id}/redeliver
  create_endpoint,   // POST /v1/webhook_endpoints
  list_endpoints,    // GET /v1/webhook_endpoints
  disable_endpoint,  // POST /v1/webhook_endpoints/{id}/disable
};

/// One call of the events service, with its arguments decoded and checked.
struct EventsCall {
  EventsCallKind kind = EventsCallKind::list_events;
  Id merchant_id;                    // the signer; empty for the operator (events only)
  events::EventListQuery list;       // list_events (list.merchant_id: as merchant_id)
  events::EventKey event;            // get_event, deliveries, redeliver
  Id request_id;                     // create_endpoint, disable_endpoint, redeliver
  std::string url;                   // create_endpoint
  std::vector<std::string> types;    // create_endpoint: type names, or "*"
  Id endpoint_id;                    // disable_endpoint
  std::uint64_t min_lsn = 0;         // Paycore-Min-Lsn (0: none): answered once derived that far
  std::int64_t min_lsn_wait_ms = 0;  // ... waiting at most this long, then 503 unavailable
};

/// A whole answer of the events routes: status, Idempotent-Replayed, JSON body.
struct EventsReply {
  int status = 503;
  bool replayed = false;
  bool not_primary = false;  // 503 not_primary: the response names the primary (Paycore-Primary)
  std::string body;
};

/// Decodes the request on an events route (`match.route`, route_is_events) by `principal`
/// (who may call the route: checked before) into *out; a refusal instead: 400 (a query
/// parameter, or a body field, naming it; docs/api.md "Order of validation"), 404 not_found
/// for an id in the path that is no event or endpoint id.
[[nodiscard]] std::optional<LocalError> decode_events_call(const RouteMatch& match,
                                                           const HttpRequest& request,
                                                           const auth::Principal& principal,
                                                           JsonDecoder& decoder, EventsCall* out);

/// Bytes of an events answer at most (a page of 100 events, an endpoint's deliveries); past it
/// the answer is 500 internal.
inline constexpr std::size_t events_reply_bytes_max = std::size_t{4} << 20;

/// Calls `service` as `call` says and renders the answer (status, body) with the service's
/// errors mapped as events/service.hpp says: kNotFound 404 not_found (400 invalid_field
/// "starting_after" for a listing's cursor), kInvalidArgument 400 invalid_field naming the
/// field before the message's first ':', kConflict 422 idempotency_key_reused, kFull 507
/// capacity_exhausted, anything else 503 unavailable (logged). Blocks on the service: call it
/// on a worker, never on an I/O thread.
EventsReply answer_events_call(events::EventsService& service, const EventsCall& call);

/// The events pool's jobs and answers (net/worker_pool.hpp): `token` is the request's
/// AnswerToken, packed.
struct EventsJob {
  std::uint64_t token = 0;
  EventsCall call;
};
struct EventsDone {
  std::uint64_t token = 0;
  EventsReply reply;
};
using EventsCalls = WorkerPool<EventsJob, EventsDone>;

}  // namespace paycore::net
