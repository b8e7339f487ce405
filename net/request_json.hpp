#pragma once
// JSON decoding of every request body of docs/api.md into plain structs of validated values:
// ids as paycore::Id, amounts as int64 minor units, currencies as paycore::Currency.
//
// Rules (docs/api.md "Conventions"):
// - the body must be one JSON object (anything else, or malformed JSON, or nesting deeper than
//   the limit: `invalid_json`); unknown fields are ignored;
// - a required field that is absent or null: `missing_field`; a field of the wrong type, a
//   malformed id (1-64 of [A-Za-z0-9_.:-]), an unknown currency or enum value, or a key that
//   appears twice (simdjson keeps both; we refuse to guess which one counts): `invalid_field`;
// - an amount must be a JSON integer 1..amount_max: fractional (1.0), exponent (1e3), string,
//   negative, zero, over the maximum or over int64: `invalid_amount`.
// Every error names the field at fault. Order (docs/api.md "Order of validation"): malformed
// JSON or not an object, then a duplicate key, then every required field's presence, then
// each field's format in the order of the struct below, then cross-field rules.
// (One exception: an integer amount beyond 64 bits makes simdjson refuse the whole document,
// so it is invalid_amount before any field is looked at.)
//
// The simdjson 3.0.1 DOM API is used: it validates the whole document (so a malformed value in
// an ignored field is still invalid_json), enforces a nesting limit without recursion in our
// code, and types numbers (int64 / uint64 / double) so fractions and exponents are told apart
// from integers. One JsonDecoder per thread, reused: its parser's buffers and its padded copy
// buffer are allocated once. A decoded struct owns its values (no views into the body).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/id.hpp"
#include "core/model.hpp"
#include "core/money.hpp"

namespace simdjson::dom {
class parser;
}

namespace paycore::net {

enum class RequestDecodeErrorCode : std::uint8_t { invalid_json, missing_field, invalid_field, invalid_amount };

// "invalid_json", "missing_field", "invalid_field", "invalid_amount" (all 400).
std::string_view decode_error_code(RequestDecodeErrorCode code);

struct RequestDecodeError {
  RequestDecodeErrorCode code = RequestDecodeErrorCode::invalid_json;
  std::string_view field;    // static text; empty when no single field is at fault
  std::string_view message;  // static text
  std::int32_t item_index = -1;  // batch: the payments[] item at fault, else -1
};

using RequestDecodeResult = std::optional<RequestDecodeError>;  // nullopt: decoded

struct DecodeLimits {
  Amount amount_max = amount_max_default;
  std::size_t batch_items_max = 1000;
  std::size_t depth_max = 16;
  std::size_t body_bytes_max = 1024 * 1024;
};

// Account kinds and notification statuses are the core's own enums (core/model.hpp): the
// decoder fills them directly, so there is one list of each.

// POST /v1/accounts
struct OpenAccountRequest {
  Id request_id;
  Id account_id;
  Currency currency;
  AccountKind kind = AccountKind::customer;
};

// POST /v1/accounts/{account_id}/deposits
struct DepositRequest {
  Id request_id;
  Amount amount = 0;
  Currency currency;
};

// POST /v1/payments (and each item of /v1/payments/batch)
struct CreatePaymentRequest {
  Id request_id;
  Id order_id;
  Amount amount = 0;
  Currency currency;
  Id channel;           // "balance" or an external channel's name (checked by the caller)
  // Required for "balance". Decoded (format checked) whenever present, whatever the channel:
  // the engine refuses it with an external channel, after it has checked that the channel
  // exists (unknown_channel is the more fundamental error). Empty when absent or null.
  Id payer_account_id;
};

// POST /v1/payments/{order_id}/cancel | ship | complete
struct RequestIdOnly {
  Id request_id;
};

// POST /v1/payments/{order_id}/refunds
struct RefundRequest {
  Id request_id;
  Amount amount = 0;
};

// POST /v1/notify/{channel}
struct NotificationRequest {
  Id channel_txn_id;
  Id merchant_id;
  Id order_id;
  Amount amount = 0;
  Currency currency;
  NotificationStatus status = NotificationStatus::failed;
  std::int64_t paid_at_us = 0;  // RFC 3339 "paid_at": required for SUCCESS, optional for FAILED
  bool has_paid_at = false;
};

// POST /v1/mandates (docs/api.md "Mandates"). `amount_max` follows the amount rules; `expires_at`
// is an RFC 3339 time or absent/null (never expires); `single_use` a JSON boolean, default
// false. An amount_max beyond 64 bits is invalid_json (only `amount` gets the big-integer
// fallback).
struct CreateMandateRequest {
  Id request_id;
  Id mandate_id;
  Id payer_account_id;
  Id merchant_id;
  Amount amount_max = 0;
  std::int64_t expires_at_us = 0;  // 0: never
  bool single_use = false;
};

// POST /v1/webhook_endpoints (docs/api.md "Events and webhooks"). `url`: a string of
// 1..webhook_url_bytes_max bytes (whether the server may send to it is the events service's
// policy, checked when the endpoint is made); `events`: 1..webhook_event_filters_max distinct
// event type names (events::event_type_from), or the one entry "*".
struct CreateWebhookEndpointRequest {
  Id request_id;
  std::string url;
  std::vector<std::string> events;
};

// One item of POST /v1/payments/batch: either decoded or refused on its own (the other items
// still go ahead; the response carries a 400 error for this one).
struct BatchItem {
  CreatePaymentRequest request;
  RequestDecodeResult error;
};

class JsonDecoder {
 public:
  explicit JsonDecoder(const DecodeLimits& limits = {});
  ~JsonDecoder();
  JsonDecoder(const JsonDecoder&) = delete;
  JsonDecoder& operator=(const JsonDecoder&) = delete;

  [[nodiscard]] RequestDecodeResult decode(std::string_view body, OpenAccountRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, DepositRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, CreatePaymentRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, RequestIdOnly* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, RefundRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, NotificationRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, CreateMandateRequest* out);
  [[nodiscard]] RequestDecodeResult decode(std::string_view body, CreateWebhookEndpointRequest* out);
  // `{"payments": [...]}`, 1..batch_items_max items. `out` is cleared and refilled (its
  // capacity is kept between calls). An error here refuses the whole batch; errors of single
  // items are in their BatchItem.
  [[nodiscard]] RequestDecodeResult decode_batch(std::string_view body, std::vector<BatchItem>* out);

  const DecodeLimits& limits() const { return limits_; }

 private:
  struct Document;
  RequestDecodeResult parse(std::string_view body, Document* document);
  // parse(), but a refused integer amount beyond 64 bits is invalid_amount, not invalid_json.
  RequestDecodeResult parse_with_amount(std::string_view body, Document* document, bool batch = false);

  DecodeLimits limits_;
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::unique_ptr<char[]> padded_;  // body_bytes_max + SIMDJSON_PADDING
};

// The decoder of the calling thread, made on first use with default limits.
JsonDecoder& thread_json_decoder();

// ---- X-Request-Id: the trace id (not the idempotency key `request_id`) ----

inline constexpr std::size_t trace_id_bytes_max = 128;

struct TraceId {
  char bytes[trace_id_bytes_max] = {};
  std::uint8_t size = 0;
  std::string_view view() const { return {bytes, size}; }
};

// A client's X-Request-Id is echoed when it is 1-128 characters of visible ASCII other than
// '"' and '\\' (safe in a header, a log line and JSON); otherwise (absent or unsafe) one is
// generated. Generated ids are "<16 hex, random per generator>-<16 hex counter>"; one
// generator per thread.
bool trace_id_is_acceptable(std::string_view text);

class TraceIdGenerator {
 public:
  TraceIdGenerator();  // seeds its prefix from RAND_bytes
  TraceId next();
  // The id to use for a request whose X-Request-Id header is `header` (nullopt if absent).
  TraceId for_request(std::optional<std::string_view> header);

 private:
  char prefix_[16] = {};
  std::uint64_t counter_ = 0;
};

}  // namespace paycore::net
