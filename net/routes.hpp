#pragma once
// The routes of docs/api.md and what each one turns into: a pure mapping from (method, path) to a
// Route with its path parameter, and from a Route plus a decoded body and an authenticated
// principal to the engine's Command. No I/O, no clock: the decision step (net/decide.cpp) calls these
// and the unit tests call them directly.
//
//   GET  /healthz  /readyz  /metrics                       no signature
//   POST /v1/accounts                                      operator
//   GET  /v1/accounts/{account_id}                         operator, or the merchant itself
//   POST /v1/accounts/{account_id}/deposits                operator
//   POST /v1/payments                                      merchant
//   POST /v1/payments/batch                                merchant
//   GET  /v1/payments/{order_id}                           merchant
//   POST /v1/payments/{order_id}/cancel|ship|complete      merchant
//   POST /v1/payments/{order_id}/refunds                   merchant
//   POST /v1/notify/{channel}                              channel (RSA)
//   POST /v1/admin/snapshot                                operator
//   POST /v1/mandates                                      operator
//   GET  /v1/mandates/{mandate_id}                         operator, or the mandate's merchant
//   POST /v1/mandates/{mandate_id}/revoke                  operator
//   GET  /v1/events, /v1/events/{id}                       merchant (its own), operator (all)
//   GET  /v1/events/{id}/deliveries                        merchant
//   POST /v1/events/{id}/redeliver                         merchant
//   POST /v1/webhook_endpoints, GET /v1/webhook_endpoints  merchant
//   POST /v1/webhook_endpoints/{id}/disable                merchant

#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http_parser.hpp"
#include "net/credentials.hpp"
#include "net/request_json.hpp"
#include "core/command.hpp"

namespace paycore::net {

enum class Route : std::uint8_t {
  unmatched = 0,  // 404 / 405: metrics label "other"
  healthz,
  readyz,
  metrics,
  account_open,
  account_get,
  account_deposit,
  payment_create,
  payment_batch,
  payment_get,
  payment_cancel,
  payment_ship,
  payment_complete,
  payment_refund,
  channel_notification,  // POST /v1/notify/{channel} (metrics label "notify")
  admin_snapshot,
  mandate_create,
  mandate_get,
  mandate_revoke,
  payment_list,     // GET /v1/payments
  payment_refunds,  // GET /v1/payments/{order_id}/refunds
  // Events and webhooks (net/events_call.hpp): served by the events service off the I/O thread.
  event_list,                // GET /v1/events
  event_get,                 // GET /v1/events/{id}
  event_deliveries,          // GET /v1/events/{id}/deliveries
  event_redeliver,           // POST /v1/events/{id}/redeliver
  webhook_endpoint_create,   // POST /v1/webhook_endpoints
  webhook_endpoint_list,     // GET /v1/webhook_endpoints
  webhook_endpoint_disable,  // POST /v1/webhook_endpoints/{id}/disable
};
inline constexpr std::size_t routes_count =
    static_cast<std::size_t>(Route::webhook_endpoint_disable) + 1;

/// Whether `route` is served by the events service (net/events_call.hpp).
constexpr bool route_is_events(Route route) {
  return route >= Route::event_list && route <= Route::webhook_endpoint_disable;
}

// Metrics label: "healthz", "account_open", ...; "other" for unmatched.
std::string_view route_name(Route route);

enum class RouteAccess : std::uint8_t { open, operator_only, merchant_or_operator, merchant_only, channel };
RouteAccess route_access(Route route);

enum class MatchStatus : std::uint8_t { ok, not_found, method_not_allowed };

struct RouteMatch {
  MatchStatus status = MatchStatus::not_found;
  Route route = Route::unmatched;
  std::string_view param;        // {account_id}, {order_id}, {mandate_id} or {channel}, as sent
  std::string_view allow;        // for 405: the "Allow" header value ("GET", "POST")
};

// Matches the path (without the query). Exact segments; a trailing slash or an empty segment
// does not match (404).
RouteMatch match_route(HttpMethod method, std::string_view path);

// An answer decided at the edge (before or instead of the engine): all views static.
struct LocalError {
  int status = 400;
  std::string_view code;
  std::string_view message;
  std::string_view field;
};

LocalError local_error_from(const RequestDecodeError& error);
LocalError local_error_not_found();

// Builds the command for a signed request on `match` (not a channel notification, batch or
// snapshot) by the authenticated `principal`, decoding `body` with `decoder`. A refusal (a body
// or path parameter that does not decode: 400) is returned instead. Whether the principal may
// call the route at all was decided before (principal_may_call, in net/decide.cpp).
[[nodiscard]] std::optional<LocalError> build_command(const RouteMatch& match,
                                                      const auth::Principal& principal,
                                                      std::string_view body, JsonDecoder& decoder,
                                                      Command* out);

// One item of a batch, decoded already.
Command payment_command(const auth::Principal& principal, const CreatePaymentRequest& request);

// The notification of `channel` (already verified) with `body`.
[[nodiscard]] std::optional<LocalError> build_channel_notification_command(std::string_view channel,
                                                             std::string_view body,
                                                             JsonDecoder& decoder, Command* out);

// Whether `principal` may call `route` at all; false answers 404 not_found (docs/api.md: a
// merchant sees only its own things, "anything else is 404").
bool principal_may_call(const auth::Principal& principal, Route route);

}  // namespace paycore::net
