#pragma once
// The delivery store's on-disk format (issue 15, docs/webhooks.md): the keys of its one RocksDB
// keyspace and the bytes of every value. This header is the format; webhooks/delivery_store.cpp
// only moves these bytes in and out of RocksDB.
//
// ---- Keys -----------------------------------------------------------------------------------
//
// The first byte names the table. An id inside a key is its u8 length and its bytes (1..64), so
// that one id is never a prefix of another's; times are big-endian so that bytewise order is
// time order.
//
//   'E' · u8 len · event_id                                      → event value
//   'D' · u8 len · event_id · u8 len · endpoint_id               → delivery value
//   'T' · u8 len · endpoint_id · be64(next_attempt_at_us) · u8 len · event_id   → ""
//   'F' · be64(finished_at_us) · u8 len · event_id · u8 len · endpoint_id       → ""
//   'X' · u8 len · endpoint_id                                   → ""  (endpoint disabled)
//   'M' · "format"                                               → the 9 common bytes
//   'M' · "handed_over"                                          → the 9 common bytes, u64
//                                                  position (how far the caller handed over)
//   'M' · "changes_applied"                                      → the same: the sequence of
//                                                  the cluster's changes stream applied so far
//
// 'D' holds a delivery (one event to one endpoint); an event's deliveries are one prefix (GET
// /v1/events/{id}/deliveries). 'T' exists exactly while a delivery is PENDING: per endpoint, in
// the order they are due, so the dispatcher takes each endpoint's due work with one seek and a
// dead endpoint's backlog is never in the way of another's. 'F' exists exactly while a delivery
// is DELIVERED or FAILED, in the order they finished: retention deletes from its front. 'E' is
// the event as it was enqueued (the body every attempt sends), deleted with its last delivery.
//
// ---- Values (integers little-endian) ---------------------------------------------------------
//
// Every value starts with the same 9 bytes; the checksum covers every byte after itself.
//
//   offset size  field
//        0    8  checksum: XXH3-64 of bytes [8, size)
//        8    1  format version (delivery_format_version)
//
// Event value:
//        9    8  created_at_us (i64, unix microseconds)
//       17    .  merchant_id (u8 len 1..64 + bytes), type (u8 len 1..64 + bytes),
//                body (u32 len 0..event_body_bytes_max + bytes)
//
// Delivery value:
//        9    1  state: 1 PENDING, 2 DELIVERED, 3 FAILED
//       10    8  event_created_at_us (i64): the horizon of the retries counts from it
//       18    8  next_attempt_at_us (i64): PENDING: when the next attempt is due; else 0
//       26    8  finished_at_us (i64): DELIVERED/FAILED: when; else 0
//       34    4  attempts_count (u32): every attempt ever made
//       38    .  url (u16 len 1..url_bytes_max + bytes), secret (u16 len 1..256 + bytes),
//                last_error (u8 len 0..attempt_error_bytes_max + bytes: why it was given up
//                without an attempt, e.g. "endpoint disabled")
//        .    1  attempts kept (u8, 0..attempts_kept_max): the latest ones, oldest first; each
//                started_at_us (i64), duration_ms (i32), http_status (i32; 0: no answer),
//                error (u8 len 0..attempt_error_bytes_max + bytes)
//   No bytes follow the last attempt.
//
// Content rules (checked when written and when read back): ids 1..64 bytes, the state one of
// the three, next_attempt_at_us set exactly when PENDING, finished_at_us exactly when not.
//
// ---- The changes message (a cluster's stream of delivery changes, cdc/webhook_sync.hpp) -----
//
// Not stored here but sent between members: a sequence of entries, each
//   u8 len · event_id · u8 len · endpoint_id · u32 len · delivery value · u32 len · event value
// (lengths little-endian): the delivery as stored and, for a PENDING one, its event (length 0:
// none), each value as above with its own checksum. No bytes after the last entry.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace paycore::webhooks {

inline constexpr std::uint8_t delivery_format_version = 1;
inline constexpr std::size_t value_checksum_bytes = 8;
inline constexpr std::size_t value_header_bytes = 9;  // checksum + version
inline constexpr std::size_t delivery_fixed_bytes = 38;
static_assert(value_header_bytes == value_checksum_bytes + 1);
static_assert(delivery_fixed_bytes == value_header_bytes + 1 + 8 + 8 + 8 + 4);

inline constexpr std::size_t id_bytes_max = 64;
inline constexpr std::size_t event_body_bytes_max = std::size_t{256} << 10;
inline constexpr std::size_t attempt_error_bytes_max = 200;
/// A delivery keeps its latest attempts up to this many (attempts_count counts them all).
inline constexpr std::size_t attempts_kept_max = 32;
static_assert(attempts_kept_max <= 255 && attempt_error_bytes_max <= 255);

enum class DeliveryState : std::uint8_t { kPending = 1, kDelivered = 2, kFailed = 3 };
std::string_view delivery_state_name(DeliveryState state);  // "PENDING", "DELIVERED", "FAILED"

/// One attempt: when it started, how long it took, the HTTP status (0: none) or the error.
struct Attempt {
  std::int64_t started_at_us = 0;
  std::int32_t duration_ms = 0;
  std::int32_t http_status = 0;
  std::string error;  // transport error or refusal text; empty when a status came back
};

/// An event as the dispatcher keeps it: what every attempt sends.
struct StoredEvent {
  std::string id;
  std::string merchant_id;
  std::string type;
  std::int64_t created_at_us = 0;
  std::string body;  // the event JSON, sent as is
};

/// One event to one endpoint.
struct Delivery {
  std::string event_id;
  std::string endpoint_id;
  DeliveryState state = DeliveryState::kPending;
  std::int64_t event_created_at_us = 0;
  std::int64_t next_attempt_at_us = 0;
  std::int64_t finished_at_us = 0;
  std::uint32_t attempts_count = 0;
  std::string url;
  std::string secret;
  std::string last_error;
  std::vector<Attempt> attempts;  // the latest attempts_kept_max, oldest first
};

/// A delivery as an attempt, a give-up or a redeliver left it, with its event while it is
/// PENDING: what another member of a cluster needs to send it, should it not hold it
/// (docs/events.md "Webhooks in a cluster"). An entry of the changes message.
struct DeliveryChange {
  Delivery delivery;
  std::optional<StoredEvent> event;  // set when delivery.state is PENDING
};

/// Appends `attempt` (error cut to attempt_error_bytes_max), drops the oldest beyond the cap,
/// counts it in attempts_count.
void add_attempt(Delivery& delivery, Attempt attempt);

/// Content rules of the header comment; kInvalidArgument naming the field.
Status check_delivery(const Delivery& delivery);
Status check_event(const StoredEvent& event);

namespace format {

std::string event_key(std::string_view event_id);
std::string delivery_key(std::string_view event_id, std::string_view endpoint_id);
/// Every delivery of an event: the prefix of its 'D' keys.
std::string delivery_prefix(std::string_view event_id);
std::string due_key(std::string_view endpoint_id, std::int64_t next_attempt_at_us,
                    std::string_view event_id);
/// Every due key of an endpoint: the prefix.
std::string due_prefix(std::string_view endpoint_id);
/// Where the endpoint's due keys from (`from_us` >= 0, `from_event_id`) on begin (the key
/// itself when it exists; "": the first at that time): a seek target that passes over the
/// deleted keys of earlier attempts instead of reading them (a queue in RocksDB).
std::string due_seek_key(std::string_view endpoint_id, std::int64_t from_us,
                         std::string_view from_event_id);
std::string finished_key(std::int64_t finished_at_us, std::string_view event_id,
                         std::string_view endpoint_id);
std::string disabled_key(std::string_view endpoint_id);
std::string format_key();
std::string handed_over_key();
std::string changes_applied_key();

struct DueKey {
  std::string endpoint_id;
  std::int64_t next_attempt_at_us = 0;
  std::string event_id;
};
struct FinishedKey {
  std::int64_t finished_at_us = 0;
  std::string event_id;
  std::string endpoint_id;
};
/// kCorruption when the bytes are not such a key.
StatusOr<DueKey> parse_due_key(std::string_view key);
StatusOr<FinishedKey> parse_finished_key(std::string_view key);
StatusOr<std::string> parse_disabled_key(std::string_view key);

std::string encode_event(const StoredEvent& event);        // asserts check_event
std::string encode_delivery(const Delivery& delivery);     // asserts check_delivery
std::string encode_format();
std::string encode_position(std::uint64_t position);  // the 'M' positions' value
/// kCorruption (checksum, version, truncation, trailing bytes, content rules) naming `what`.
Status decode_event(std::string_view value, std::string_view event_id, StoredEvent* event);
Status decode_delivery(std::string_view value, std::string_view event_id,
                       std::string_view endpoint_id, Delivery* delivery);
Status decode_format(std::string_view value);
StatusOr<std::uint64_t> decode_position(std::string_view value, std::string_view what);

/// One entry / a whole changes message (header comment). decode: kCorruption naming the entry
/// and, for a truncation, the byte offset.
std::string encode_change(const DeliveryChange& change);
std::string encode_changes(std::span<const DeliveryChange> changes);
Status decode_changes(std::string_view message, std::vector<DeliveryChange>* changes);

}  // namespace format
}  // namespace paycore::webhooks
