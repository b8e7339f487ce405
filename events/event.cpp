#include "events/event.hpp"

#include <charconv>
#include <vector>

#include "core/byte_codec.hpp"
#include "core/command_record.hpp"

namespace paycore::events {

using detail::Reader;
using detail::Writer;

namespace {

constexpr std::string_view type_names[] = {
    "",                   "payment.created",   "payment.paid",      "payment.failed",
    "payment.cancelled",  "payment.shipped",   "payment.completed", "payment.refunded",
    "payment.anomaly",    "mandate.revoked",
};
static_assert(std::size(type_names) == event_type_max + 1);

}  // namespace

std::string_view to_string(EventType type) {
  const auto n = static_cast<std::uint8_t>(type);
  return n >= 1 && n <= event_type_max ? type_names[n] : "unknown";
}

std::optional<EventType> event_type_from(std::string_view text) {
  for (std::uint8_t n = 1; n <= event_type_max; ++n) {
    if (type_names[n] == text) return static_cast<EventType>(n);
  }
  return std::nullopt;
}

std::string event_id(std::uint64_t lsn, std::uint16_t index) {
  return "evt_" + std::to_string(lsn) + "_" + std::to_string(index);
}

std::optional<EventKey> parse_event_id(std::string_view id) {
  if (!id.starts_with("evt_")) return std::nullopt;
  id.remove_prefix(4);
  const std::size_t sep = id.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 == id.size()) return std::nullopt;
  EventKey key;
  const std::string_view lsn = id.substr(0, sep);
  const std::string_view index = id.substr(sep + 1);
  // Canonical decimal only (no leading zeros, no sign): one id per event.
  const auto canonical = [](std::string_view digits) { return digits.size() == 1 || digits[0] != '0'; };
  const auto a = std::from_chars(lsn.data(), lsn.data() + lsn.size(), key.lsn);
  const auto b = std::from_chars(index.data(), index.data() + index.size(), key.index);
  if (a.ec != std::errc() || a.ptr != lsn.data() + lsn.size() || b.ec != std::errc() ||
      b.ptr != index.data() + index.size() || !canonical(lsn) || !canonical(index) || key.lsn == 0) {
    return std::nullopt;
  }
  return key;
}

namespace {

void put_currency(Writer& w, Currency currency) {
  char code[3] = {0, 0, 0};
  if (currency.valid()) std::memcpy(code, currency_code(currency).data(), 3);
  w.put(code, 3);
}

void put_view(Writer& w, const Event& e) {
  std::byte view[std::max(payment_view_bytes_max, mandate_view_bytes_max)];
  std::size_t size = 0;
  if (e.resource == ResourceKind::payment) size = encode_payment_view(e.payment, view);
  if (e.resource == ResourceKind::mandate) size = encode_mandate_view(e.mandate, view);
  if (e.resource == ResourceKind::none) return;
  w.le(static_cast<std::uint16_t>(size));
  w.put(view, size);
}

}  // namespace

std::string encode_event(const Event& e) {
  std::vector<std::byte> out(64 + payment_view_bytes_max + mandate_view_bytes_max + 4 * (1 + id_bytes_max));
  Writer w(out);
  w.u8(event_encoding_version);
  w.u8(static_cast<std::uint8_t>(e.type));
  w.le(e.created_at_us);
  w.id(e.merchant_id);
  w.u8(static_cast<std::uint8_t>(e.resource));
  put_view(w, e);
  if (e.type == EventType::payment_refunded) {
    w.id(e.refund.request_id);
    w.le(e.refund.amount);
    w.le(e.refund.created_at_us);
  }
  if (e.type == EventType::payment_anomaly) {
    w.id(e.anomaly.channel);
    w.id(e.anomaly.channel_txn_id);
    w.id(e.anomaly.order_id);
    w.le(e.anomaly.amount);
    put_currency(w, e.anomaly.currency);
    w.u8(static_cast<std::uint8_t>(e.anomaly.status));
    w.u8(static_cast<std::uint8_t>(e.anomaly.reason));
  }
  return {reinterpret_cast<const char*>(out.data()), w.used()};
}

namespace {

Status bad(std::string_view what) { return Status::corruption("event: " + std::string(what)); }

Status get_view(Reader& r, Event* e) {
  if (e->resource == ResourceKind::none) return Status::ok();
  std::uint16_t size = 0;
  std::byte view[std::max(payment_view_bytes_max, mandate_view_bytes_max)];
  if (!r.le(&size) || size > sizeof(view) || !r.get(view, size)) return bad("truncated view");
  const std::span<const std::byte> bytes(view, size);
  const CommandDecodeError error = e->resource == ResourceKind::payment
                                       ? decode_payment_view(bytes, &e->payment)
                                       : decode_mandate_view(bytes, &e->mandate);
  if (error != CommandDecodeError::ok) return bad(to_string(error));
  return Status::ok();
}

Status get_anomaly(Reader& r, AnomalyNotice* a) {
  char code[3];
  std::uint8_t status = 0, reason = 0;
  if (r.id(&a->channel) != CommandDecodeError::ok || r.id(&a->channel_txn_id) != CommandDecodeError::ok ||
      r.id(&a->order_id) != CommandDecodeError::ok || !r.le(&a->amount) || !r.get(code, 3) ||
      !r.u8(&status) || !r.u8(&reason)) {
    return bad("truncated anomaly");
  }
  if (code[0] != 0) {
    const auto currency = currency_from_code(std::string_view(code, 3));
    if (!currency) return bad("unknown currency");
    a->currency = *currency;
  }
  if (!notification_status_is_valid(status) || !anomaly_reason_is_valid(reason)) return bad("anomaly enum");
  a->status = static_cast<NotificationStatus>(status);
  a->reason = static_cast<AnomalyReason>(reason);
  return Status::ok();
}

}  // namespace

Status decode_event(std::span<const std::byte> bytes, Event* e) {
  Reader r(bytes);
  std::uint8_t version = 0, type = 0, resource = 0;
  if (!r.u8(&version) || version != event_encoding_version) return bad("unknown version");
  if (!r.u8(&type) || type < 1 || type > event_type_max) return bad("unknown type");
  e->type = static_cast<EventType>(type);
  if (!r.le(&e->created_at_us) || r.id(&e->merchant_id) != CommandDecodeError::ok ||
      !r.u8(&resource)) {
    return bad("truncated head");
  }
  if (resource > 3 || resource == static_cast<std::uint8_t>(ResourceKind::account)) {
    return bad("unknown resource");
  }
  e->resource = static_cast<ResourceKind>(resource);
  PAYCORE_RETURN_IF_ERROR(get_view(r, e));
  if (e->type == EventType::payment_refunded &&
      (r.id(&e->refund.request_id) != CommandDecodeError::ok || !r.le(&e->refund.amount) ||
       !r.le(&e->refund.created_at_us))) {
    return bad("truncated refund");
  }
  if (e->type == EventType::payment_anomaly) PAYCORE_RETURN_IF_ERROR(get_anomaly(r, &e->anomaly));
  return r.at_end() ? Status::ok() : bad("trailing bytes");
}

}  // namespace paycore::events
