#include "net/decide.hpp"

#include "base/assert.hpp"
#include "net/credentials.hpp"

namespace paycore::net {
namespace {

Decision local_answer(const LocalError& error, Admission admission) {
  Decision decision;
  decision.kind = DecisionKind::local_answer;
  decision.answer = error;
  decision.admission = admission;
  return decision;
}

Decision of_kind(DecisionKind kind) {
  Decision decision;
  decision.kind = kind;
  return decision;
}

// A mandate names a merchant the keys file knows: a typo would otherwise be a mandate that
// nobody can ever use (the core does not know the keys file).
std::optional<LocalError> unknown_mandate_merchant(const Command& command, const auth::Keys& keys) {
  if (command.kind != CommandKind::create_mandate) return std::nullopt;
  const auth::Principal* merchant = keys.find_principal(command.merchant_id.view());
  if (merchant != nullptr && merchant->kind == auth::PrincipalKind::merchant) return std::nullopt;
  return LocalError{400, "invalid_field", "no merchant with this merchant_id in the keys file",
                    "merchant_id"};
}

// A listing's channel filter names `balance` or a configured channel: a typo is a 400, not
// an empty page.
std::optional<LocalError> unknown_list_channel(std::string_view channel, const auth::Keys& keys) {
  if (channel.empty() || channel == channel_name_balance || keys.find_channel(channel) != nullptr) {
    return std::nullopt;
  }
  return LocalError{400, "invalid_field", "channel is not balance nor a configured channel",
                    "channel"};
}

// The listing a GET /v1/payments or GET /v1/payments/{order_id}/refunds asks for.
std::optional<LocalError> decode_list(const RouteMatch& match, const HttpRequest& request,
                                      const auth::Keys& keys, PaymentListRequest* out) {
  if (match.route == Route::payment_refunds) {
    return parse_refund_list_target(match.param, request.query, out);
  }
  if (auto refusal = parse_payment_list_query(request.query, out)) return refusal;
  return unknown_list_channel(out->query.channel, keys);
}

const LocalError events_off{404, "not_found",
                            "events and webhooks are off on this server", {}};

// An events or webhook route: refused as a route that is not there when events are off
// (nothing admitted, as for a route the principal may not call), else the call decoded.
Decision decide_events(const RouteMatch& match, const HttpRequest& request,
                       const RequestContext& context) {
  if (!context.events_enabled) return local_answer(events_off, Admission::none);
  Decision decision = of_kind(DecisionKind::events);
  if (auto refusal = decode_events_call(match, request, *context.principal, context.decoder,
                                        &decision.events)) {
    return local_answer(*refusal, Admission::before_answer);
  }
  return decision;
}

Decision decide_signed(const RouteMatch& match, const HttpRequest& request,
                       const RequestContext& context) {
  PAYCORE_ASSERT(context.principal != nullptr);
  const auth::Principal& principal = *context.principal;
  if (!principal_may_call(principal, match.route)) {
    return local_answer(local_error_not_found(), Admission::none);
  }
  if (match.route == Route::payment_batch) {
    PAYCORE_ASSERT(context.batch_items != nullptr);
    if (auto error = context.decoder.decode_batch(request.body, context.batch_items)) {
      return local_answer(local_error_from(*error), Admission::none);
    }
    return of_kind(DecisionKind::batch);
  }
  if (match.route == Route::admin_snapshot) return of_kind(DecisionKind::snapshot);
  if (route_is_events(match.route)) return decide_events(match, request, context);
  if (match.route == Route::payment_list || match.route == Route::payment_refunds) {
    Decision decision = of_kind(DecisionKind::list);
    if (auto refusal = decode_list(match, request, context.keys, &decision.list)) {
      return local_answer(*refusal, Admission::before_answer);
    }
    decision.list.query.merchant_id = std::string(principal.id.view());
    return decision;
  }
  Decision decision = of_kind(DecisionKind::command);
  if (auto refusal =
          build_command(match, principal, request.body, context.decoder, &decision.command)) {
    return local_answer(*refusal, Admission::before_answer);
  }
  if (auto refusal = unknown_mandate_merchant(decision.command, context.keys)) {
    return local_answer(*refusal, Admission::before_answer);
  }
  return decision;
}

Decision decide_channel_notification(const RouteMatch& match, const HttpRequest& request,
                                     const RequestContext& context) {
  const auth::ChannelKey* channel = context.keys.find_channel(match.param);
  if (channel == nullptr) return local_answer(local_error_not_found(), Admission::none);
  const auth::AuthStatus status = auth::verify_notification(channel->public_key.get(),
                                                notification_credentials(request), request.body);
  if (status != auth::AuthStatus::ok) {
    return local_answer(
        LocalError{401, auth::auth_status_code(status), "the notification's signature was refused", {}},
        Admission::none);
  }
  Decision decision = of_kind(DecisionKind::command);
  if (auto refusal = build_channel_notification_command(match.param, request.body, context.decoder,
                                                        &decision.command)) {
    return local_answer(*refusal, Admission::none);
  }
  return decision;
}

}  // namespace

std::optional<Decision> decide_unmatched(const RouteMatch& match) {
  if (match.status == MatchStatus::not_found) {
    return local_answer(local_error_not_found(), Admission::none);
  }
  if (match.status == MatchStatus::method_not_allowed) {
    Decision decision =
        local_answer(LocalError{405, "method_not_allowed", "this method is not allowed here", {}},
                     Admission::none);
    // HEAD is served wherever GET is (RFC 9110 9.1: both are to be supported).
    decision.allow = match.allow == "GET" ? std::string_view("GET, HEAD") : match.allow;
    return decision;
  }
  return std::nullopt;
}

bool route_is_signed(Route route) {
  const RouteAccess access = route_access(route);
  return access != RouteAccess::open && access != RouteAccess::channel;
}

// The signature covers the body, so only missing signature headers (401) and an unknown channel
// (404) are decided from the header section.
std::optional<LocalError> decide_before_body(const RouteMatch& match, const HttpRequest& request,
                                             const auth::Keys& keys) {
  switch (route_access(match.route)) {
    case RouteAccess::open: return std::nullopt;
    case RouteAccess::channel:
      if (keys.find_channel(match.param) == nullptr) return local_error_not_found();
      return std::nullopt;
    default: {
      const auth::RequestCredentials credentials = request_credentials(request);
      if (!credentials.principal_id.empty() && !credentials.timestamp.empty() &&
          !credentials.nonce.empty() && !credentials.signature.empty()) {
        return std::nullopt;
      }
      return LocalError{auth::auth_status_http(auth::AuthStatus::unauthenticated),
                        auth::auth_status_code(auth::AuthStatus::unauthenticated),
                        "the request's signature headers were refused",
                        {}};
    }
  }
}

Decision decide(const RouteMatch& match, const HttpRequest& request,
                const RequestContext& context) {
  PAYCORE_ASSERT(match.status == MatchStatus::ok);
  switch (match.route) {
    case Route::healthz:
    case Route::readyz:
    case Route::metrics: return of_kind(DecisionKind::server_page);
    case Route::channel_notification: return decide_channel_notification(match, request, context);
    default: return decide_signed(match, request, context);
  }
}

}  // namespace paycore::net
