#pragma once
// The query string of `GET /v1/payments` (docs/api.md "Lists"): `limit` (1-100, default 10),
// `starting_after` or `ending_before` (an order_id; not both), `status` (a payment status as
// the API spells it), `channel`, `created_gte` and `created_lt` (RFC 3339 times; a bound finer
// than the microsecond is rounded up, which keeps ">=" and "<" exact on whole microseconds).
// Parameters are `name=value` pairs joined by '&' (RFC 3986 3.4; an empty piece is ignored);
// names and values are percent-decoded (RFC 3986 2.1), and '+' stands for itself (no value
// here holds a space). A parameter that is unknown, repeated, empty or out of its range is
// `400 invalid_field` naming it ("query" for an unknown name or a malformed name).

#include <optional>
#include <string_view>

#include "core/id.hpp"
#include "core/payment_list.hpp"
#include "events/event_store.hpp"
#include "net/routes.hpp"

namespace paycore::net {

/// Parses `query` (the request target after '?', possibly empty) into *out; a refusal instead
/// when a parameter is bad.
[[nodiscard]] std::optional<LocalError> parse_payment_list_query(std::string_view query,
                                                                 PaymentListRequest* out);

/// The query string of `GET /v1/events` (docs/api.md "Events and webhooks"): `limit` (1-100,
/// default 10), `starting_after` (an event id, events::parse_event_id), `type` (an event type
/// name, events::event_type_from), with the rules above; the merchant is left empty (the
/// caller sets it).
[[nodiscard]] std::optional<LocalError> parse_event_list_query(std::string_view query,
                                                               events::EventListQuery* out);

/// GET /v1/payments/{order_id}/refunds: `order_id` from the path; the query must be empty
/// (no parameter is defined: any is `400 invalid_field` "query").
[[nodiscard]] std::optional<LocalError> parse_refund_list_target(std::string_view order_id,
                                                                 std::string_view query,
                                                                 PaymentListRequest* out);

}  // namespace paycore::net
