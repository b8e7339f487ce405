#pragma once
// Events (issue 15; docs/api.md "Events and webhooks", docs/events.md): every committed change a
// merchant cares about, numbered in log order. An event is derived from one command record of
// the log (events/derive.hpp) and is identified by that record's LSN and its place among the
// record's events, so the same log yields the same events with the same ids on every restart,
// replay and cluster member.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "core/model.hpp"
#include "core/result.hpp"

namespace paycore::events {

/// The event types of docs/api.md. Stored as numbers: never renumber. payment.authorized and
/// payment.captured join when holds (manual capture) exist.
enum class EventType : std::uint8_t {
  payment_created = 1,
  payment_paid = 2,
  payment_failed = 3,
  payment_cancelled = 4,  // by the merchant, or the automatic expiry of a PENDING payment
  payment_shipped = 5,
  payment_completed = 6,
  payment_refunded = 7,   // one per refund
  payment_anomaly = 8,    // a channel notification kept as an anomaly
  mandate_revoked = 9,
};
inline constexpr std::uint8_t event_type_max = 9;

/// "payment.created", ... as in docs/api.md.
std::string_view to_string(EventType type);
/// The type named `text` (exactly as to_string writes it), or nullopt.
std::optional<EventType> event_type_from(std::string_view text);

/// What a channel said in a notification kept as an anomaly (payment.anomaly).
struct AnomalyNotice {
  Id channel;
  Id channel_txn_id;
  Id order_id;
  Amount amount = 0;
  Currency currency{};
  NotificationStatus status{};
  AnomalyReason reason{};
  friend bool operator==(const AnomalyNotice&, const AnomalyNotice&) = default;
};

/// One event. `resource` says which view is its data.object: the payment (payment.* events;
/// none for an anomaly whose order is unknown, whose object is then the notice) or the mandate.
struct Event {
  std::uint64_t lsn = 0;       // of the log record it comes from
  std::uint16_t index = 0;     // its place among that record's events (0, 1, ...)
  EventType type{};
  std::int64_t created_at_us = 0;  // the record's time; an expiry: when the payment expired
  Id merchant_id;              // whose event it is (GET /v1/events, webhooks)
  ResourceKind resource = ResourceKind::none;
  PaymentView payment;         // the payment after the change
  MandateView mandate;         // mandate.revoked: the mandate after it
  RefundView refund;           // payment.refunded: the refund this event is for
  AnomalyNotice anomaly;       // payment.anomaly
  friend bool operator==(const Event&, const Event&) = default;
};

/// Events per log record at most (a tick that expires many payments is the largest source:
/// EngineConfig::tick_expire_max, 4,096 by default, must not exceed it).
inline constexpr std::uint32_t events_per_record_max = 65'535;

/// "evt_<lsn>_<index>" (decimal): stable across restarts, replays and cluster members.
std::string event_id(std::uint64_t lsn, std::uint16_t index);
/// The (lsn, index) of an id event_id wrote; nullopt for anything else.
struct EventKey {
  std::uint64_t lsn = 0;
  std::uint16_t index = 0;
  friend auto operator<=>(const EventKey&, const EventKey&) = default;
};
std::optional<EventKey> parse_event_id(std::string_view id);

// ---- Binary encoding of an event (the value the event store keeps) ------------------------
//
//   u8 version (event_encoding_version), u8 type, i64 created_at_us, merchant_id (u8 length +
//   bytes), u8 resource, then: a payment view (core/command_record.hpp's layout, after a u16
//   length) or a mandate view (likewise) or nothing; payment.refunded: the refund's request_id,
//   i64 amount, i64 created_at_us; payment.anomaly: the notice's channel, channel_txn_id,
//   order_id, i64 amount, currency (3 letters), u8 status, u8 reason.
// The lsn and index are the store's key, not part of the value.
inline constexpr std::uint8_t event_encoding_version = 1;

std::string encode_event(const Event& event);
/// Decodes `bytes` into *event (lsn and index left as they are). Errors: kCorruption naming
/// what is wrong (the caller adds where it read the bytes).
Status decode_event(std::span<const std::byte> bytes, Event* event);

}  // namespace paycore::events
