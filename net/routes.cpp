#include "net/routes.hpp"

#include "base/assert.hpp"
#include "core/model.hpp"

namespace paycore::net {
namespace {

constexpr std::string_view v1_prefix = "/v1/";

// Splits "a/b/c" at the first '/': returns "a" and leaves "b/c" in *rest ("" if none).
std::string_view next_segment(std::string_view* rest) {
  const std::size_t slash = rest->find('/');
  std::string_view segment = rest->substr(0, slash);
  *rest = slash == std::string_view::npos ? std::string_view{} : rest->substr(slash + 1);
  return segment;
}

RouteMatch matched(HttpMethod method, HttpMethod wanted, Route route, std::string_view param = {}) {
  RouteMatch match;
  match.param = param;
  if (method != wanted) {
    match.status = MatchStatus::method_not_allowed;
    match.allow = wanted == HttpMethod::get ? "GET" : "POST";
    return match;
  }
  match.status = MatchStatus::ok;
  match.route = route;
  return match;
}

// A path that is a GET route and a POST route: any other method is 405 naming both.
RouteMatch matched_get_or_post(HttpMethod method, Route get, Route post, std::string_view param = {}) {
  if (method == HttpMethod::get) return matched(method, HttpMethod::get, get, param);
  RouteMatch match = matched(method, HttpMethod::post, post, param);
  if (match.status == MatchStatus::method_not_allowed) match.allow = "GET, HEAD, POST";
  return match;
}

// /v1/accounts[/{id}[/deposits]]
RouteMatch match_accounts(HttpMethod method, std::string_view rest, bool has_rest) {
  if (!has_rest) return matched(method, HttpMethod::post, Route::account_open);
  const std::string_view id = next_segment(&rest);
  if (id.empty()) return {};
  if (rest.empty()) {
    return matched(method, HttpMethod::get, Route::account_get, id);
  }
  if (rest == "deposits") return matched(method, HttpMethod::post, Route::account_deposit, id);
  return {};
}

// /v1/payments[/batch | /{order_id}[/cancel|ship|complete|refunds]]
RouteMatch match_payments(HttpMethod method, std::string_view rest, bool has_rest) {
  if (!has_rest) return matched_get_or_post(method, Route::payment_list, Route::payment_create);
  const std::string_view id = next_segment(&rest);
  if (id.empty()) return {};
  if (rest.empty()) {
    if (id == "batch" && method == HttpMethod::post) {
      return matched(method, HttpMethod::post, Route::payment_batch);
    }
    return matched(method, HttpMethod::get, Route::payment_get, id);
  }
  if (rest == "cancel") return matched(method, HttpMethod::post, Route::payment_cancel, id);
  if (rest == "ship") return matched(method, HttpMethod::post, Route::payment_ship, id);
  if (rest == "complete") return matched(method, HttpMethod::post, Route::payment_complete, id);
  if (rest == "refunds") {
    return matched_get_or_post(method, Route::payment_refunds, Route::payment_refund, id);
  }
  return {};
}

// /v1/mandates[/{mandate_id}[/revoke]]
RouteMatch match_mandates(HttpMethod method, std::string_view rest, bool has_rest) {
  if (!has_rest) return matched(method, HttpMethod::post, Route::mandate_create);
  const std::string_view id = next_segment(&rest);
  if (id.empty()) return {};
  if (rest.empty()) return matched(method, HttpMethod::get, Route::mandate_get, id);
  if (rest == "revoke") return matched(method, HttpMethod::post, Route::mandate_revoke, id);
  return {};
}

// /v1/events[/{id}[/deliveries | /redeliver]]
RouteMatch match_events(HttpMethod method, std::string_view rest, bool has_rest) {
  if (!has_rest) return matched(method, HttpMethod::get, Route::event_list);
  const std::string_view id = next_segment(&rest);
  if (id.empty()) return {};
  if (rest.empty()) return matched(method, HttpMethod::get, Route::event_get, id);
  if (rest == "deliveries") return matched(method, HttpMethod::get, Route::event_deliveries, id);
  if (rest == "redeliver") return matched(method, HttpMethod::post, Route::event_redeliver, id);
  return {};
}

// /v1/webhook_endpoints[/{id}/disable]
RouteMatch match_webhook_endpoints(HttpMethod method, std::string_view rest, bool has_rest) {
  if (!has_rest) {
    return matched_get_or_post(method, Route::webhook_endpoint_list, Route::webhook_endpoint_create);
  }
  const std::string_view id = next_segment(&rest);
  if (id.empty()) return {};
  if (rest == "disable") return matched(method, HttpMethod::post, Route::webhook_endpoint_disable, id);
  return {};
}

bool is_operator(const auth::Principal& principal) { return principal.kind == auth::PrincipalKind::operator_; }

std::optional<LocalError> path_id(std::string_view text, std::string_view field, Id* out) {
  if (Id::from(text, out)) return std::nullopt;
  return LocalError{400, "invalid_field", "the identifier in the path is not 1-64 characters of [A-Za-z0-9_.:-]",
                    field};
}

Command principal_command(CommandKind kind, const auth::Principal& principal) {
  Command command;
  command.kind = kind;
  command.principal = principal.id;
  if (is_operator(principal)) command.flags = command_flag_operator;
  return command;
}

// A read of one resource named by the path: the id into `field` of the command.
std::optional<LocalError> path_command(CommandKind kind, const auth::Principal& principal,
                                       std::string_view param, std::string_view name,
                                       Id Command::*field, Command* out) {
  *out = principal_command(kind, principal);
  return path_id(param, name, &(out->*field));
}

std::optional<LocalError> open_account_command(const auth::Principal& principal, std::string_view body,
                                               JsonDecoder& decoder, Command* out) {
  OpenAccountRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  *out = principal_command(CommandKind::open_account, principal);
  out->request_id = request.request_id;
  out->account = request.account_id;
  out->currency = request.currency;
  out->account_kind = request.kind;
  return std::nullopt;
}

std::optional<LocalError> deposit_command(const RouteMatch& match, const auth::Principal& principal,
                                          std::string_view body, JsonDecoder& decoder,
                                          Command* out) {
  *out = principal_command(CommandKind::deposit, principal);
  if (auto error = path_id(match.param, "account_id", &out->account)) return error;
  DepositRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->request_id = request.request_id;
  out->amount = request.amount;
  out->currency = request.currency;
  return std::nullopt;
}

std::optional<LocalError> create_mandate_command(const auth::Principal& principal,
                                                 std::string_view body, JsonDecoder& decoder,
                                                 Command* out) {
  CreateMandateRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  *out = principal_command(CommandKind::create_mandate, principal);
  out->request_id = request.request_id;
  out->mandate_id = request.mandate_id;
  out->account = request.payer_account_id;
  out->merchant_id = request.merchant_id;
  out->amount = request.amount_max;
  out->expires_at_us = request.expires_at_us;
  if (request.single_use) out->flags |= command_flag_single_use;
  return std::nullopt;
}

std::optional<LocalError> revoke_mandate_command(const RouteMatch& match,
                                                 const auth::Principal& principal,
                                                 std::string_view body, JsonDecoder& decoder,
                                                 Command* out) {
  *out = principal_command(CommandKind::revoke_mandate, principal);
  if (auto error = path_id(match.param, "mandate_id", &out->mandate_id)) return error;
  RequestIdOnly request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->request_id = request.request_id;
  return std::nullopt;
}

std::optional<LocalError> refund_command(const RouteMatch& match, const auth::Principal& principal,
                                         std::string_view body, JsonDecoder& decoder,
                                         Command* out) {
  *out = principal_command(CommandKind::refund_payment, principal);
  if (auto error = path_id(match.param, "order_id", &out->order_id)) return error;
  RefundRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->request_id = request.request_id;
  out->amount = request.amount;
  return std::nullopt;
}

std::optional<LocalError> order_transition(const RouteMatch& match, CommandKind kind,
                                           const auth::Principal& principal, std::string_view body,
                                           JsonDecoder& decoder, Command* out) {
  *out = principal_command(kind, principal);
  if (auto error = path_id(match.param, "order_id", &out->order_id)) return error;
  RequestIdOnly request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->request_id = request.request_id;
  return std::nullopt;
}

}  // namespace

std::string_view route_name(Route route) {
  switch (route) {
    case Route::unmatched: return "other";
    case Route::healthz: return "healthz";
    case Route::readyz: return "readyz";
    case Route::metrics: return "metrics";
    case Route::account_open: return "account_open";
    case Route::account_get: return "account_get";
    case Route::account_deposit: return "account_deposit";
    case Route::payment_create: return "payment_create";
    case Route::payment_batch: return "payment_batch";
    case Route::payment_get: return "payment_get";
    case Route::payment_cancel: return "payment_cancel";
    case Route::payment_ship: return "payment_ship";
    case Route::payment_complete: return "payment_complete";
    case Route::payment_refund: return "payment_refund";
    case Route::channel_notification: return "notify";
    case Route::admin_snapshot: return "admin_snapshot";
    case Route::mandate_create: return "mandate_create";
    case Route::mandate_get: return "mandate_get";
    case Route::mandate_revoke: return "mandate_revoke";
    case Route::payment_list: return "payment_list";
    case Route::payment_refunds: return "payment_refunds";
    case Route::event_list: return "event_list";
    case Route::event_get: return "event_get";
    case Route::event_deliveries: return "event_deliveries";
    case Route::event_redeliver: return "event_redeliver";
    case Route::webhook_endpoint_create: return "webhook_endpoint_create";
    case Route::webhook_endpoint_list: return "webhook_endpoint_list";
    case Route::webhook_endpoint_disable: return "webhook_endpoint_disable";
  }
  return "other";
}

RouteAccess route_access(Route route) {
  switch (route) {
    case Route::unmatched:
    case Route::healthz:
    case Route::readyz:
    case Route::metrics: return RouteAccess::open;
    case Route::account_open:
    case Route::account_deposit:
    case Route::admin_snapshot:
    case Route::mandate_create:
    case Route::mandate_revoke: return RouteAccess::operator_only;
    case Route::account_get:
    case Route::mandate_get:
    case Route::event_list:
    case Route::event_get: return RouteAccess::merchant_or_operator;
    case Route::channel_notification: return RouteAccess::channel;
    default: return RouteAccess::merchant_only;
  }
}

RouteMatch match_route(HttpMethod method, std::string_view path) {
  if (path == "/healthz") return matched(method, HttpMethod::get, Route::healthz);
  if (path == "/readyz") return matched(method, HttpMethod::get, Route::readyz);
  if (path == "/metrics") return matched(method, HttpMethod::get, Route::metrics);
  if (!path.starts_with(v1_prefix)) return {};
  // A trailing slash or an empty segment is never a route (and never an empty id).
  if (path.back() == '/' || path.find("//") != std::string_view::npos) return {};
  std::string_view rest = path.substr(v1_prefix.size());
  const bool has_rest = rest.find('/') != std::string_view::npos;
  const std::string_view collection = next_segment(&rest);
  if (collection == "accounts") return match_accounts(method, rest, has_rest);
  if (collection == "payments") return match_payments(method, rest, has_rest);
  if (collection == "mandates") return match_mandates(method, rest, has_rest);
  if (collection == "events") return match_events(method, rest, has_rest);
  if (collection == "webhook_endpoints") return match_webhook_endpoints(method, rest, has_rest);
  if (!has_rest) return {};
  if (collection == "notify") {
    const std::string_view channel = next_segment(&rest);
    if (channel.empty() || !rest.empty()) return {};
    return matched(method, HttpMethod::post, Route::channel_notification, channel);
  }
  if (collection == "admin" && rest == "snapshot") {
    return matched(method, HttpMethod::post, Route::admin_snapshot);
  }
  return {};
}

LocalError local_error_from(const RequestDecodeError& error) {
  return LocalError{400, decode_error_code(error.code), error.message, error.field};
}

LocalError local_error_not_found() { return LocalError{404, "not_found", "no such resource", {}}; }

bool principal_may_call(const auth::Principal& principal, Route route) {
  switch (route_access(route)) {
    case RouteAccess::open: return true;
    case RouteAccess::operator_only: return is_operator(principal);
    case RouteAccess::merchant_or_operator: return true;
    case RouteAccess::merchant_only: return !is_operator(principal);
    case RouteAccess::channel: return false;
  }
  return false;
}

Command payment_command(const auth::Principal& principal, const CreatePaymentRequest& request) {
  Command command = principal_command(CommandKind::create_payment, principal);
  command.request_id = request.request_id;
  command.order_id = request.order_id;
  command.amount = request.amount;
  command.currency = request.currency;
  command.channel = request.channel;
  command.account = request.payer_account_id;
  return command;
}

std::optional<LocalError> build_command(const RouteMatch& match, const auth::Principal& principal,
                                        std::string_view body, JsonDecoder& decoder, Command* out) {
  PAYCORE_ASSERT(match.status == MatchStatus::ok);
  switch (match.route) {
    case Route::account_open:
      return open_account_command(principal, body, decoder, out);
    case Route::account_get:
      // A merchant reads only its own account: anything else is 404 (the core decides).
      return path_command(CommandKind::get_account, principal, match.param, "account_id",
                          &Command::account, out);
    case Route::account_deposit:
      return deposit_command(match, principal, body, decoder, out);
    case Route::payment_create: {
      CreatePaymentRequest request;
      if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
      *out = payment_command(principal, request);
      return std::nullopt;
    }
    case Route::mandate_create:
      return create_mandate_command(principal, body, decoder, out);
    case Route::mandate_get:
      return path_command(CommandKind::get_mandate, principal, match.param, "mandate_id",
                          &Command::mandate_id, out);
    case Route::mandate_revoke:
      return revoke_mandate_command(match, principal, body, decoder, out);
    case Route::payment_get:
      return path_command(CommandKind::get_payment, principal, match.param, "order_id",
                          &Command::order_id, out);
    case Route::payment_cancel:
      return order_transition(match, CommandKind::cancel_payment, principal, body, decoder, out);
    case Route::payment_ship:
      return order_transition(match, CommandKind::ship_payment, principal, body, decoder, out);
    case Route::payment_complete:
      return order_transition(match, CommandKind::complete_payment, principal, body, decoder, out);
    case Route::payment_refund:
      return refund_command(match, principal, body, decoder, out);
    default:
      break;
  }
  PAYCORE_ASSERT(false && "route without a single command");
  return local_error_not_found();
}

std::optional<LocalError> build_channel_notification_command(std::string_view channel, std::string_view body,
                                               JsonDecoder& decoder, Command* out) {
  *out = Command{};
  out->kind = CommandKind::channel_notification;
  if (auto error = path_id(channel, "channel", &out->channel)) return error;
  NotificationRequest request;
  if (auto error = decoder.decode(body, &request)) return local_error_from(*error);
  out->channel_txn_id = request.channel_txn_id;
  out->principal = request.merchant_id;
  out->order_id = request.order_id;
  out->amount = request.amount;
  out->currency = request.currency;
  out->notification_status = request.status;
  out->paid_at_us = request.has_paid_at ? request.paid_at_us : 0;
  return std::nullopt;
}

}  // namespace paycore::net
