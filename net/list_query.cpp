#include "net/list_query.hpp"

#include <algorithm>
#include <charconv>
#include <span>
#include <string>

#include "base/assert.hpp"
#include "base/time.hpp"
#include "core/model.hpp"

namespace paycore::net {
namespace {

// Decoded values are short: ids (<= id_bytes_max) and times; anything longer is refused.
constexpr std::size_t list_value_bytes_max = 128;

LocalError bad(std::string_view field, std::string_view message) {
  return LocalError{400, "invalid_field", message, field};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 2.1 percent-decoding; false on a '%' not followed by two hex digits, or when the
// decoded text is longer than list_value_bytes_max.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
    } else {
      if (i + 2 >= in.size()) return false;
      const int high = hex_digit(in[i + 1]);
      const int low = hex_digit(in[i + 2]);
      if (high < 0 || low < 0) return false;
      out->push_back(static_cast<char>(high * 16 + low));
      i += 2;
    }
    if (out->size() > list_value_bytes_max) return false;
  }
  return true;
}

std::optional<LocalError> parse_limit(std::string_view value, PaymentListQuery* q) {
  std::uint32_t limit = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), limit);
  if (error != std::errc{} || end != value.data() + value.size() || limit < 1 ||
      limit > payment_list_limit_max) {
    return bad("limit", "limit must be an integer from 1 to 100");
  }
  q->limit = limit;
  return std::nullopt;
}

std::optional<LocalError> parse_cursor(std::string_view name, std::string_view value,
                                       PaymentListRequest* out) {
  if (out->query.cursor != PaymentListCursor::none) {
    return bad(name, "starting_after and ending_before cannot be used together");
  }
  if (!Id::from(value, &out->cursor_order_id) || value.empty()) {
    return bad(name, "the cursor must be an order_id");
  }
  out->query.cursor = name == "starting_after" ? PaymentListCursor::starting_after
                                               : PaymentListCursor::ending_before;
  return std::nullopt;
}

// Whether the time's fraction has a nonzero digit past the microsecond (parse_rfc3339_us drops
// them).
bool finer_than_a_microsecond(std::string_view rfc3339) {
  const std::size_t dot = rfc3339.find('.');
  if (dot == std::string_view::npos) return false;
  for (std::size_t i = dot + 7; i < rfc3339.size(); ++i) {
    if (rfc3339[i] < '0' || rfc3339[i] > '9') return false;
    if (rfc3339[i] != '0') return true;
  }
  return false;
}

// A bound in microseconds, rounded up when the time is finer: created_at_us >= t and
// created_at_us < t, with created_at_us whole microseconds, hold exactly for the rounded-up t.
std::optional<LocalError> parse_created(std::string_view name, std::string_view value,
                                        std::optional<std::int64_t>* out) {
  std::int64_t unix_us = 0;
  if (!parse_rfc3339_us(value, &unix_us)) return bad(name, "the time must be RFC 3339");
  *out = finer_than_a_microsecond(value) ? unix_us + 1 : unix_us;
  return std::nullopt;
}

std::optional<LocalError> parse_parameter(std::string_view name, std::string_view value,
                                          PaymentListRequest* out) {
  PaymentListQuery& q = out->query;
  if (name == "limit") return parse_limit(value, &q);
  if (name == "starting_after" || name == "ending_before") return parse_cursor(name, value, out);
  if (name == "status") {
    q.status = payment_status_from(value);
    if (!q.status) return bad("status", "status must be a payment status, e.g. PAID");
    return std::nullopt;
  }
  if (name == "channel") {
    Id channel;
    if (value.empty() || !Id::from(value, &channel)) return bad("channel", "channel must be an id");
    q.channel = std::string(value);
    return std::nullopt;
  }
  if (name == "created_gte") return parse_created("created_gte", value, &q.created_gte_us);
  if (name == "created_lt") return parse_created("created_lt", value, &q.created_lt_us);
  return bad("query", "unknown query parameter");
}

constexpr std::string_view parameter_names[] = {"limit",   "starting_after", "ending_before",
                                                 "status",  "channel",        "created_gte",
                                                 "created_lt"};

// Walks the `name=value` pairs of `query`: each name must be one of `names` (a static string,
// so that errors outlive the request's buffer), at most once, with a non-empty value; calls
// `parameter(name, value)` with the decoded value for each, and stops at its first refusal.
template <class Parameter>
std::optional<LocalError> for_each_parameter(std::string_view query,
                                             std::span<const std::string_view> names,
                                             Parameter&& parameter) {
  PAYCORE_ASSERT_LE(names.size(), 32u);
  std::uint32_t seen = 0;
  std::string name;
  std::string value;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a leading or trailing '&': nothing there
    const std::size_t eq = pair.find('=');
    if (!percent_decode(pair.substr(0, eq), &name)) {
      return bad("query", "malformed percent-encoding in a parameter name");
    }
    const auto known = std::find(names.begin(), names.end(), name);
    if (known == names.end()) return bad("query", "unknown query parameter");
    const std::string_view field = *known;
    const std::uint32_t bit = 1u << static_cast<std::uint32_t>(known - names.begin());
    if ((seen & bit) != 0) return bad(field, "a query parameter is repeated");
    seen |= bit;
    if (eq == std::string_view::npos) return bad(field, "the parameter needs a value");
    if (!percent_decode(pair.substr(eq + 1), &value)) {
      return bad(field, "malformed percent-encoding, or a value over 128 bytes");
    }
    if (value.empty()) return bad(field, "the parameter needs a value");
    if (auto error = parameter(field, std::string_view(value))) return error;
  }
  return std::nullopt;
}

constexpr std::string_view event_parameter_names[] = {"limit", "starting_after", "type"};

std::optional<LocalError> parse_event_parameter(std::string_view name, std::string_view value,
                                                events::EventListQuery* out) {
  if (name == "limit") {
    PaymentListQuery limit_only;
    if (auto error = parse_limit(value, &limit_only)) return error;
    out->limit = limit_only.limit;
    return std::nullopt;
  }
  if (name == "starting_after") {
    out->starting_after = events::parse_event_id(value);
    if (!out->starting_after) return bad(name, "the cursor must be an event id (evt_...)");
    return std::nullopt;
  }
  out->type = events::event_type_from(value);
  if (!out->type) return bad("type", "type must be an event type, e.g. payment.paid");
  return std::nullopt;
}

}  // namespace

std::optional<LocalError> parse_payment_list_query(std::string_view query,
                                                   PaymentListRequest* out) {
  *out = PaymentListRequest{};
  return for_each_parameter(query, parameter_names,
                            [out](std::string_view name, std::string_view value) {
                              return parse_parameter(name, value, out);
                            });
}

std::optional<LocalError> parse_event_list_query(std::string_view query,
                                                 events::EventListQuery* out) {
  *out = events::EventListQuery{};
  return for_each_parameter(query, event_parameter_names,
                            [out](std::string_view name, std::string_view value) {
                              return parse_event_parameter(name, value, out);
                            });
}

std::optional<LocalError> parse_refund_list_target(std::string_view order_id,
                                                   std::string_view query,
                                                   PaymentListRequest* out) {
  *out = PaymentListRequest{};
  out->kind = ListKind::refunds;
  if (!query.empty()) return bad("query", "this list takes no query parameter");
  if (order_id.empty() || !Id::from(order_id, &out->refunds_order_id)) {
    return bad("order_id", "the identifier in the path is not 1-64 characters of [A-Za-z0-9_.:-]");
  }
  return std::nullopt;
}

}  // namespace paycore::net
