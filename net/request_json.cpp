#include "net/request_json.hpp"

#include <openssl/rand.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "net/response.hpp"
#include "base/hex.hpp"
#include "base/assert.hpp"
#include "events/event.hpp"
#include "events/service.hpp"

namespace paycore::net {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

struct JsonDecoder::Document {
  element root;
  std::size_t padded_bytes = 0;  // body bytes in padded_ (for the big-integer fallback)
  bool number_error = false;     // simdjson refused a number (possibly a > 64-bit integer)
};

namespace {

RequestDecodeError make_error(RequestDecodeErrorCode code, std::string_view field, std::string_view message) {
  return RequestDecodeError{code, field, message, -1};
}

RequestDecodeError invalid_json(std::string_view message) {
  return make_error(RequestDecodeErrorCode::invalid_json, {}, message);
}

// The members of one object that a request type knows, found in one pass. Bit i of `present`
// is set when names[i] was seen. N is small (at most 7), so a linear name match is fastest.
template <std::size_t N>
struct Members {
  const std::array<std::string_view, N>& names;
  std::array<element, N> values{};
  std::uint32_t present = 0;

  bool has(std::size_t i) const {
    return ((present >> i) & 1u) != 0 && values[i].type() != element_type::NULL_VALUE;
  }
};

template <std::size_t N>
RequestDecodeResult collect(object members, Members<N>* out) {
  static_assert(N <= 32);
  for (auto member : members) {
    for (std::size_t i = 0; i < N; ++i) {
      if (member.key != out->names[i]) continue;
      if ((out->present >> i) & 1u) {
        return make_error(RequestDecodeErrorCode::invalid_field, out->names[i], "duplicate key");
      }
      out->present |= 1u << i;
      out->values[i] = member.value;
      break;
    }
  }
  return std::nullopt;
}

// docs/api.md "Order of validation": the presence of every required field (names[0..count))
// is checked before the format of any, so a body that lacks a field is missing_field
// whatever else is wrong with it.
template <std::size_t N>
RequestDecodeResult require(const Members<N>& members, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!members.has(i)) return make_error(RequestDecodeErrorCode::missing_field, members.names[i], "required");
  }
  return std::nullopt;
}

template <std::size_t N>
RequestDecodeResult get_id(const Members<N>& members, std::size_t i, Id* out) {
  if (!members.has(i)) return make_error(RequestDecodeErrorCode::missing_field, members.names[i], "required");
  std::string_view text;
  if (members.values[i].get_string().get(text)) {
    return make_error(RequestDecodeErrorCode::invalid_field, members.names[i], "must be a string");
  }
  if (!Id::from(text, out)) {
    return make_error(RequestDecodeErrorCode::invalid_field, members.names[i],
                      "must be 1-64 characters of [A-Za-z0-9_.:-]");
  }
  return std::nullopt;
}

template <std::size_t N>
RequestDecodeResult get_amount(const Members<N>& members, std::size_t i, Amount amount_max, Amount* out) {
  if (!members.has(i)) return make_error(RequestDecodeErrorCode::missing_field, members.names[i], "required");
  const element value = members.values[i];
  constexpr std::string_view message =
      "must be a positive integer count of minor units, within the configured maximum";
  if (value.type() != element_type::INT64) {
    // UINT64 (over int64), DOUBLE (fraction or exponent), strings and the rest.
    return make_error(RequestDecodeErrorCode::invalid_amount, members.names[i], message);
  }
  const std::int64_t amount = value.get_int64().value_unsafe();
  if (!amount_is_valid(amount, amount_max)) {
    return make_error(RequestDecodeErrorCode::invalid_amount, members.names[i], message);
  }
  *out = amount;
  return std::nullopt;
}

template <std::size_t N>
RequestDecodeResult get_string(const Members<N>& members, std::size_t i, std::string_view* out) {
  if (!members.has(i)) return make_error(RequestDecodeErrorCode::missing_field, members.names[i], "required");
  if (members.values[i].get_string().get(*out)) {
    return make_error(RequestDecodeErrorCode::invalid_field, members.names[i], "must be a string");
  }
  return std::nullopt;
}

template <std::size_t N>
RequestDecodeResult get_currency(const Members<N>& members, std::size_t i, Currency* out) {
  std::string_view code;
  if (RequestDecodeResult error = get_string(members, i, &code)) return error;
  const std::optional<Currency> currency = currency_from_code(code);
  if (!currency) {
    return make_error(RequestDecodeErrorCode::invalid_field, members.names[i],
                      "must be an ISO 4217 currency code such as CNY");
  }
  *out = *currency;
  return std::nullopt;
}

constexpr std::array<std::string_view, 7> payment_fields = {
    "request_id", "order_id", "amount", "currency", "channel", "payer_account_id", "capture"};

// Presence, then formats, then the one cross-field rule that needs no engine state (balance
// needs a payer). Whether a channel exists, and a payer_account_id sent with an external
// channel, are the engine's (core/apply.cpp validate_create_payment): an unknown channel is
// unknown_channel even when it also carries a payer (docs/api.md "Order of validation").
RequestDecodeResult decode_payment(object members_object, Amount amount_max, CreatePaymentRequest* out) {
  Members<payment_fields.size()> members{payment_fields};
  if (RequestDecodeResult error = collect(members_object, &members)) return error;
  if (RequestDecodeResult error = require(members, 5)) return error;
  *out = CreatePaymentRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  if (RequestDecodeResult error = get_id(members, 1, &out->order_id)) return error;
  if (RequestDecodeResult error = get_amount(members, 2, amount_max, &out->amount)) return error;
  if (RequestDecodeResult error = get_currency(members, 3, &out->currency)) return error;
  if (RequestDecodeResult error = get_id(members, 4, &out->channel)) return error;
  if (members.has(5)) {
    if (RequestDecodeResult error = get_id(members, 5, &out->payer_account_id)) return error;
  } else if (out->channel.view() == "balance") {
    return make_error(RequestDecodeErrorCode::missing_field, payment_fields[5],
                      "required for channel \"balance\"");
  }
  // "capture": "manual" asks for a hold (docs/api.md); holds are not built yet, and taking the money
  // at once would do what the client asked us not to: refuse it instead of ignoring it.
  if (members.has(6)) {
    std::string_view capture;
    if (RequestDecodeResult error = get_string(members, 6, &capture)) return error;
    if (capture == "manual") {
      return make_error(RequestDecodeErrorCode::invalid_field, payment_fields[6],
                        "manual capture (a hold) is not supported by this server yet");
    }
    if (capture != "automatic") {
      return make_error(RequestDecodeErrorCode::invalid_field, payment_fields[6], "must be \"automatic\" or \"manual\"");
    }
  }
  PAYCORE_ASSERT(out->request_id.well_formed());
  PAYCORE_ASSERT(out->payer_account_id.well_formed());
  return std::nullopt;
}

// simdjson refuses integers beyond 64 bits as a malformed number. When the refused number is
// an integer amount (the only number we read), that is invalid_amount, not invalid_json. Only
// called on that error path, so it may be slow: walk the text again with On-Demand, which
// hands us raw number tokens.
// A number token that no int64 (integers) or double (the rest) can hold: below INT64_MIN,
// above UINT64_MAX, or an exponent like 1e400. Such an amount is out of range.
bool number_out_of_range(std::string_view token) {
  const std::string_view unsigned_part = token.starts_with('-') ? token.substr(1) : token;
  if (unsigned_part.empty() || unsigned_part.front() < '0' || unsigned_part.front() > '9') return false;
  const char* end = token.data() + token.size();
  if (unsigned_part.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t value = 0;
    return std::from_chars(token.data(), end, value).ec == std::errc::result_out_of_range;
  }
  double value = 0;
  return std::from_chars(token.data(), end, value).ec == std::errc::result_out_of_range;
}

bool is_big_integer_amount(simdjson::ondemand::object members) {
  for (auto member : members) {
    std::string_view key;
    if (member.unescaped_key().get(key)) return false;
    if (key != "amount") continue;
    simdjson::ondemand::value value;
    if (member.value().get(value)) return false;
    std::string_view token = value.raw_json_token();
    while (!token.empty() && (token.back() == ' ' || token.back() == '\n' ||
                              token.back() == '\r' || token.back() == '\t')) {
      token.remove_suffix(1);
    }
    return number_out_of_range(token);
  }
  return false;
}

// For a batch, also says which item.
bool find_big_integer_amount(const char* padded, std::size_t size, bool batch,
                             std::int32_t* item_index) {
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document document;
  if (parser.iterate(padded, size, size + simdjson::SIMDJSON_PADDING).get(document)) return false;
  simdjson::ondemand::object top;
  if (document.get_object().get(top)) return false;
  if (!batch) return is_big_integer_amount(top);
  simdjson::ondemand::array items;
  if (top["payments"].get_array().get(items)) return false;
  std::int32_t index = 0;
  for (auto item : items) {
    simdjson::ondemand::object members;
    if (item.get_object().get(members)) return false;
    if (is_big_integer_amount(members)) {
      *item_index = index;
      return true;
    }
    ++index;
  }
  return false;
}

}  // namespace

std::string_view decode_error_code(RequestDecodeErrorCode code) {
  switch (code) {
    case RequestDecodeErrorCode::invalid_json: return "invalid_json";
    case RequestDecodeErrorCode::missing_field: return "missing_field";
    case RequestDecodeErrorCode::invalid_field: return "invalid_field";
    case RequestDecodeErrorCode::invalid_amount: return "invalid_amount";
  }
  return "invalid_json";
}

JsonDecoder::JsonDecoder(const DecodeLimits& limits)
    : limits_(limits),
      parser_(std::make_unique<simdjson::dom::parser>(limits.body_bytes_max)),
      padded_(new char[limits.body_bytes_max + simdjson::SIMDJSON_PADDING]) {
  PAYCORE_ASSERT(limits.depth_max >= 3);  // a batch: object, array, object
  PAYCORE_ASSERT(limits.amount_max > 0);
  // Sized once for the largest body: parsing never allocates afterwards.
  const auto error = parser_->allocate(limits.body_bytes_max, limits.depth_max);
  PAYCORE_ASSERT(error == simdjson::SUCCESS);
}

JsonDecoder::~JsonDecoder() = default;

RequestDecodeResult JsonDecoder::parse(std::string_view body, Document* document) {
  if (body.size() > limits_.body_bytes_max) return invalid_json("body too large");
  std::memcpy(padded_.get(), body.data(), body.size());
  std::memset(padded_.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
  document->padded_bytes = body.size();
  const auto error = parser_->parse(padded_.get(), body.size(), false).get(document->root);
  if (error == simdjson::DEPTH_ERROR) return invalid_json("JSON nested too deeply");
  if (error == simdjson::NUMBER_ERROR) {
    document->number_error = true;
    return invalid_json("malformed or out-of-range number");
  }
  if (error) return invalid_json("malformed JSON");
  if (document->root.type() != element_type::OBJECT) {
    return invalid_json("the body must be a JSON object");
  }
  return std::nullopt;
}

RequestDecodeResult JsonDecoder::parse_with_amount(std::string_view body, Document* document,
                                            bool batch) {
  RequestDecodeResult error = parse(body, document);
  if (!error || !document->number_error) return error;
  std::int32_t item_index = -1;
  if (find_big_integer_amount(padded_.get(), document->padded_bytes, batch, &item_index)) {
    error = make_error(RequestDecodeErrorCode::invalid_amount, "amount", "amount out of range");
    error->item_index = item_index;
  }
  return error;
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, OpenAccountRequest* out) {
  static constexpr std::array<std::string_view, 4> names = {"request_id", "account_id",
                                                             "currency", "kind"};
  Document document;
  if (RequestDecodeResult error = parse(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  if (RequestDecodeResult error = require(members, names.size())) return error;
  *out = OpenAccountRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  if (RequestDecodeResult error = get_id(members, 1, &out->account_id)) return error;
  if (RequestDecodeResult error = get_currency(members, 2, &out->currency)) return error;
  std::string_view kind;
  if (RequestDecodeResult error = get_string(members, 3, &kind)) return error;
  if (kind == "customer") {
    out->kind = AccountKind::customer;
  } else if (kind == "merchant") {
    out->kind = AccountKind::merchant;
  } else {
    return make_error(RequestDecodeErrorCode::invalid_field, names[3], "must be \"customer\" or \"merchant\"");
  }
  return std::nullopt;
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, DepositRequest* out) {
  static constexpr std::array<std::string_view, 3> names = {"request_id", "amount", "currency"};
  Document document;
  if (RequestDecodeResult error = parse_with_amount(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  if (RequestDecodeResult error = require(members, names.size())) return error;
  *out = DepositRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  if (RequestDecodeResult error = get_amount(members, 1, limits_.amount_max, &out->amount)) return error;
  if (RequestDecodeResult error = get_currency(members, 2, &out->currency)) return error;
  return std::nullopt;
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, CreatePaymentRequest* out) {
  Document document;
  if (RequestDecodeResult error = parse_with_amount(body, &document)) return error;
  return decode_payment(document.root.get_object().value_unsafe(), limits_.amount_max, out);
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, RequestIdOnly* out) {
  static constexpr std::array<std::string_view, 1> names = {"request_id"};
  Document document;
  if (RequestDecodeResult error = parse(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  *out = RequestIdOnly{};
  return get_id(members, 0, &out->request_id);
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, RefundRequest* out) {
  static constexpr std::array<std::string_view, 2> names = {"request_id", "amount"};
  Document document;
  if (RequestDecodeResult error = parse_with_amount(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  if (RequestDecodeResult error = require(members, names.size())) return error;
  *out = RefundRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  return get_amount(members, 1, limits_.amount_max, &out->amount);
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, NotificationRequest* out) {
  static constexpr std::array<std::string_view, 7> names = {
      "channel_txn_id", "merchant_id", "order_id", "amount", "currency", "status", "paid_at"};
  Document document;
  if (RequestDecodeResult error = parse_with_amount(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  // paid_at (names[6]) is required only with status SUCCESS: a cross-field rule, checked last.
  if (RequestDecodeResult error = require(members, 6)) return error;
  *out = NotificationRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->channel_txn_id)) return error;
  if (RequestDecodeResult error = get_id(members, 1, &out->merchant_id)) return error;
  if (RequestDecodeResult error = get_id(members, 2, &out->order_id)) return error;
  if (RequestDecodeResult error = get_amount(members, 3, limits_.amount_max, &out->amount)) return error;
  if (RequestDecodeResult error = get_currency(members, 4, &out->currency)) return error;
  std::string_view status;
  if (RequestDecodeResult error = get_string(members, 5, &status)) return error;
  if (status == "SUCCESS") {
    out->status = NotificationStatus::success;
  } else if (status == "FAILED") {
    out->status = NotificationStatus::failed;
  } else {
    return make_error(RequestDecodeErrorCode::invalid_field, names[5], "must be \"SUCCESS\" or \"FAILED\"");
  }
  if (members.has(6) || out->status == NotificationStatus::success) {
    std::string_view paid_at;
    if (RequestDecodeResult error = get_string(members, 6, &paid_at)) return error;
    if (!parse_rfc3339_us(paid_at, &out->paid_at_us)) {
      return make_error(RequestDecodeErrorCode::invalid_field, names[6],
                        "must be an RFC 3339 timestamp such as 2026-11-26T08:00:01Z");
    }
    out->has_paid_at = true;
  }
  return std::nullopt;
}

RequestDecodeResult JsonDecoder::decode(std::string_view body, CreateMandateRequest* out) {
  static constexpr std::array<std::string_view, 7> names = {
      "request_id", "mandate_id", "payer_account_id", "merchant_id", "amount_max", "expires_at",
      "single_use"};
  Document document;
  if (RequestDecodeResult error = parse(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  *out = CreateMandateRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  if (RequestDecodeResult error = get_id(members, 1, &out->mandate_id)) return error;
  if (RequestDecodeResult error = get_id(members, 2, &out->payer_account_id)) return error;
  if (RequestDecodeResult error = get_id(members, 3, &out->merchant_id)) return error;
  if (RequestDecodeResult error = get_amount(members, 4, limits_.amount_max, &out->amount_max)) return error;
  if (members.has(5)) {
    std::string_view expires_at;
    if (RequestDecodeResult error = get_string(members, 5, &expires_at)) return error;
    if (!parse_rfc3339_us(expires_at, &out->expires_at_us) || out->expires_at_us <= 0) {
      return make_error(RequestDecodeErrorCode::invalid_field, names[5],
                        "must be an RFC 3339 timestamp such as 2026-12-31T00:00:00Z, or null");
    }
  }
  if (members.has(6) && members.values[6].get_bool().get(out->single_use)) {
    return make_error(RequestDecodeErrorCode::invalid_field, names[6], "must be true or false");
  }
  return std::nullopt;
}

namespace {

// A webhook endpoint's event filter: 1..webhook_event_filters_max distinct type names, or "*"
// alone (every type).
RequestDecodeResult decode_event_filter(element value, std::vector<std::string>* out) {
  constexpr std::string_view field = "events";
  simdjson::dom::array items;
  if (value.get_array().get(items)) {
    return make_error(RequestDecodeErrorCode::invalid_field, field, "must be an array of event types");
  }
  if (items.size() == 0 || items.size() > events::webhook_event_filters_max) {
    return make_error(RequestDecodeErrorCode::invalid_field, field,
                      "must hold 1 to 16 event types, or [\"*\"]");
  }
  out->clear();
  for (element item : items) {
    std::string_view name;
    if (item.get_string().get(name)) {
      return make_error(RequestDecodeErrorCode::invalid_field, field, "each entry must be a string");
    }
    if (name != "*" && !events::event_type_from(name)) {
      return make_error(RequestDecodeErrorCode::invalid_field, field,
                        "each entry must be an event type such as payment.paid, or \"*\"");
    }
    for (const std::string& seen : *out) {
      if (seen == name) {
        return make_error(RequestDecodeErrorCode::invalid_field, field, "an event type is repeated");
      }
    }
    out->emplace_back(name);
  }
  if (out->size() > 1 && std::find(out->begin(), out->end(), "*") != out->end()) {
    return make_error(RequestDecodeErrorCode::invalid_field, field, "\"*\" must be the only entry");
  }
  PAYCORE_ASSERT(!out->empty());
  return std::nullopt;
}

}  // namespace

RequestDecodeResult JsonDecoder::decode(std::string_view body, CreateWebhookEndpointRequest* out) {
  static constexpr std::array<std::string_view, 3> names = {"request_id", "url", "events"};
  Document document;
  if (RequestDecodeResult error = parse(body, &document)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  if (RequestDecodeResult error = require(members, names.size())) return error;
  *out = CreateWebhookEndpointRequest{};
  if (RequestDecodeResult error = get_id(members, 0, &out->request_id)) return error;
  std::string_view url;
  if (RequestDecodeResult error = get_string(members, 1, &url)) return error;
  if (url.empty() || url.size() > events::webhook_url_bytes_max) {
    return make_error(RequestDecodeErrorCode::invalid_field, names[1],
                      "must be an https:// URL of at most 2048 bytes");
  }
  out->url = url;
  return decode_event_filter(members.values[2], &out->events);
}

RequestDecodeResult JsonDecoder::decode_batch(std::string_view body, std::vector<BatchItem>* out) {
  static constexpr std::array<std::string_view, 1> names = {"payments"};
  out->clear();
  Document document;
  if (RequestDecodeResult error = parse_with_amount(body, &document, true)) return error;
  Members<names.size()> members{names};
  if (RequestDecodeResult error = collect(document.root.get_object().value_unsafe(), &members)) return error;
  if (!members.has(0)) return make_error(RequestDecodeErrorCode::missing_field, names[0], "required");
  simdjson::dom::array items;
  if (members.values[0].get_array().get(items)) {
    return make_error(RequestDecodeErrorCode::invalid_field, names[0], "must be an array");
  }
  const std::size_t items_count = items.size();
  if (items_count == 0 || items_count > limits_.batch_items_max) {
    return make_error(RequestDecodeErrorCode::invalid_field, names[0],
                      "must hold between 1 and the configured maximum (1000) payments");
  }
  out->reserve(limits_.batch_items_max);
  std::int32_t index = 0;
  for (element item : items) {
    BatchItem& decoded = out->emplace_back();
    object item_members;
    if (item.get_object().get(item_members)) {
      decoded.error = make_error(RequestDecodeErrorCode::invalid_field, names[0],
                                 "each item must be a payment object");
    } else {
      decoded.error = decode_payment(item_members, limits_.amount_max, &decoded.request);
    }
    if (decoded.error) decoded.error->item_index = index;
    ++index;
  }
  PAYCORE_ASSERT(out->size() == items_count);
  return std::nullopt;
}

JsonDecoder& thread_json_decoder() {
  thread_local JsonDecoder decoder;
  return decoder;
}

// ---- X-Request-Id ----

bool trace_id_is_acceptable(std::string_view text) {
  if (text.empty() || text.size() > trace_id_bytes_max) return false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

TraceIdGenerator::TraceIdGenerator() {
  unsigned char random[8];
  const int random_ok = RAND_bytes(random, sizeof(random));
  PAYCORE_ASSERT(random_ok == 1);
  static_assert(sizeof(prefix_) == 2 * sizeof(random));
  hex_encode(std::span<const unsigned char>(random, sizeof(random)), prefix_);
}

TraceId TraceIdGenerator::next() {
  TraceId id;
  std::memcpy(id.bytes, prefix_, sizeof(prefix_));
  id.bytes[16] = '-';
  const std::uint64_t count = counter_++;
  for (int i = 0; i < 16; ++i) {
    id.bytes[17 + i] = hex_digits[(count >> (60 - 4 * i)) & 0xf];
  }
  id.size = 33;
  return id;
}

TraceId TraceIdGenerator::for_request(std::optional<std::string_view> header) {
  if (!header || !trace_id_is_acceptable(*header)) return next();
  TraceId id;
  std::memcpy(id.bytes, header->data(), header->size());
  id.size = static_cast<std::uint8_t>(header->size());
  return id;
}

}  // namespace paycore::net
