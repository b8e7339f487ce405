#pragma once
// What a request means, decided without I/O (docs/style.md rule 11: deciding what a request
// means is a pure function, separate from moving its bytes). The I/O thread matches the route,
// authenticates the signer (the nonce cache is shared state, so that stays with the thread),
// then asks decide() what to do, and does it: answer locally, submit a command, a batch or a
// snapshot request to the engine.
//
// Route-level authorization -- which principal kinds may call a route at all
// (principal_may_call, net/routes.hpp) -- happens here, once. Whether a named payment,
// account or mandate belongs to the caller is not decided here: only the core knows owners,
// so core/apply.cpp checks data ownership (docs/design.md "Who may move whose money").

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/command.hpp"
#include "net/http_parser.hpp"
#include "net/credentials.hpp"
#include "net/events_call.hpp"
#include "net/list_query.hpp"
#include "net/request_json.hpp"
#include "net/routes.hpp"

namespace paycore::net {

enum class DecisionKind : std::uint8_t {
  local_answer,  // `answer` (+ `allow`): decided here, the engine is not involved
  server_page,   // GET /healthz, /readyz, /metrics: rendered from the server's state
  command,       // `command`: one command for the engine
  batch,         // the items in RequestContext::batch_items, each a payment for the engine
  snapshot,      // POST /v1/admin/snapshot: a snapshot request for the engine
  list,          // GET /v1/payments: `list`, served by the engine and the archive
  events,        // the events and webhook routes: `events`, served by the events service
};

/// Whether a signed request refused here is admitted -- charged to its principal's rate limit
/// and its nonce recorded (net/rate_limit.hpp, net/auth.hpp) -- before it gets its answer. A
/// request refused by authorization (a route its principal may not call) or by its batch body
/// is not: it costs nothing. One refused by its command body is: over the rate limit it gets
/// 429, replayed 401, before the body's 400 (the order the server has always checked in).
/// Every signed command, batch or snapshot decision is admitted before it is submitted (a batch
/// per item, by the I/O thread).
enum class Admission : std::uint8_t { none, before_answer };

/// The outcome of decide().
struct Decision {
  DecisionKind kind = DecisionKind::local_answer;
  LocalError answer;                               // local_answer
  std::string_view allow;                          // local_answer 405: the Allow header's methods
  Admission admission = Admission::before_answer;  // local_answer of a signed request
  Command command;                                 // command
  PaymentListRequest list;                         // list (merchant_id: the signer)
  EventsCall events;                               // events
};

/// What decide() reads besides the request. No clock: the signature's time window was checked
/// when the signer was authenticated.
struct RequestContext {
  const auth::Keys& keys;
  const auth::Principal* principal = nullptr;  // the authenticated signer; null for unsigned routes
  JsonDecoder& decoder;                  // the thread's reused parser (limits: amounts, items)
  std::vector<BatchItem>* batch_items = nullptr;  // out: a batch's decoded items
  // The server has an events service (ServerConfig::events); without one the events and
  // webhook routes answer 404 not_found ("events are off").
  bool events_enabled = false;
};

/// A route that did not match: 404 not_found, or 405 with the Allow header (HEAD is allowed
/// wherever GET is, RFC 9110 9.1). nullopt for a matched route.
std::optional<Decision> decide_unmatched(const RouteMatch& match);

/// Whether `route` needs an HMAC-signed request (merchants and the operator).
bool route_is_signed(Route route);

/// The answer that a matched route's header section decides without the body (the same one
/// the whole request would get): missing signature headers (401) or an unknown channel (404).
/// nullopt when the body is needed (`Expect: 100-continue` is then answered with 100).
std::optional<LocalError> decide_before_body(const RouteMatch& match, const HttpRequest& request,
                                             const auth::Keys& keys);

/// What the request on matched route `match` becomes. For a signed route `context.principal`
/// is the authenticated signer; refusals are local answers (404 for a route the principal may
/// not call, 400 for a body that does not decode, 401 for a channel's bad signature).
Decision decide(const RouteMatch& match, const HttpRequest& request, const RequestContext& context);

}  // namespace paycore::net
