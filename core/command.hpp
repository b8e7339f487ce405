#pragma once
// Commands: the fixed-size, trivially copyable input of the state machine, one kind per
// operation of docs/api.md. The edge (net/) builds them from validated requests; the core stamps
// `timestamp_us`; the log stores them in the versioned binary encoding below, so that replay
// feeds `apply` exactly what it saw the first time (docs/design.md rule 2).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "id.hpp"
#include "model.hpp"
#include "money.hpp"

namespace paycore {

enum class CommandKind : std::uint8_t {
  open_account = 1,      // operator: account, currency, account_kind
  deposit = 2,           // operator: account, amount, currency
  create_payment = 3,    // merchant: order_id, amount, currency, channel, account (= payer)
  cancel_payment = 4,    // merchant: order_id
  ship_payment = 5,      // merchant: order_id
  complete_payment = 6,  // merchant: order_id
  refund_payment = 7,    // merchant: order_id, amount
  // channel: channel, channel_txn_id, principal (= merchant_id), order_id, amount, currency,
  // notification_status, paid_at_us
  channel_notification = 8,
  tick = 9,              // engine: pending_lifetime_us, expire_max
  add_channel = 10,      // engine: channel
  get_account = 11,      // merchant or operator: account
  get_payment = 12,      // merchant: order_id
  create_mandate = 13,   // operator: mandate_id, account (= payer), merchant_id,
                         //           amount (= amount_max), expires_at_us, flags: single_use
  revoke_mandate = 14,   // operator: mandate_id
  get_mandate = 15,      // operator or the mandate's merchant: mandate_id
  // engine: archive_rows_end, archive_as_of_us. Takes out of memory the payments the archive
  // now holds durably (docs/design.md "Hot and cold"); logged so that replay evicts the same.
  archive_payments = 16,
  // merchant: a step of a listing (core/payment_list.hpp); Command::list carries the work.
  // A read: never logged.
  list_payments = 17,
};
inline constexpr std::uint8_t command_kind_max = 17;

constexpr bool command_kind_is_valid(std::uint8_t v) { return v >= 1 && v <= command_kind_max; }
constexpr bool command_is_read(CommandKind kind) {
  return kind == CommandKind::get_account || kind == CommandKind::get_payment ||
         kind == CommandKind::get_mandate || kind == CommandKind::list_payments;
}
// Commands that carry a request_id and are idempotent on it (docs/api.md "Idempotency").
constexpr bool command_is_idempotent(CommandKind kind) {
  return (kind >= CommandKind::open_account && kind <= CommandKind::refund_payment) ||
         kind == CommandKind::create_mandate || kind == CommandKind::revoke_mandate;
}
std::string_view to_string(CommandKind kind);

inline constexpr std::uint8_t command_flag_operator = 1;     // principal authenticated as operator
inline constexpr std::uint8_t command_flag_single_use = 2;   // create_mandate: "single_use": true
// create_payment whose order id the core's filter sent to the archive (ResultCode::
// archive_check_needed): the edge looked, and (in_archive) found the order there.
inline constexpr std::uint8_t command_flag_archive_checked = 4;
inline constexpr std::uint8_t command_flag_in_archive = 8;
// cancel/ship/complete/refund of a payment that had left memory: the command carries the
// payment as the archive holds it (Command::archived), and apply brings it back into memory.
inline constexpr std::uint8_t command_flag_archived_payment = 16;
// The command carries its signer's nonce (Command::nonce, nonce_timestamp_s): the log keeps it,
// so that the request stays refused as a replay after a restart without a nonce journal record
// of its own (docs/design.md "Who may move whose money").
inline constexpr std::uint8_t command_flag_nonce = 32;
inline constexpr std::uint8_t command_flags_known =
    command_flag_operator | command_flag_single_use | command_flag_archive_checked |
    command_flag_in_archive | command_flag_archived_payment | command_flag_nonce;
// Flags that are the engine's or the transport's, not the client's: outside the request's
// fingerprint.
inline constexpr std::uint8_t command_flags_of_engine =
    command_flag_operator | command_flag_archive_checked | command_flag_in_archive |
    command_flag_archived_payment | command_flag_nonce;

// A payment as the archive holds it, carried by a command on a cold payment so that apply
// needs no I/O (docs/design.md "Hot and cold"). The payment's other fields travel in the
// command's own: merchant = principal, order_id, currency, channel, payer = account,
// channel_txn_id, mandate_id.
struct ArchivedPaymentFields {
  Id request_id;  // of the request that created it
  Amount amount = 0;
  Amount refunded_amount = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  PaymentStatus status{};
  friend bool operator==(const ArchivedPaymentFields&, const ArchivedPaymentFields&) = default;
};

struct PaymentListWork;  // core/payment_list.hpp

struct Command {
  CommandKind kind{};
  AccountKind account_kind{};    // open_account
  NotificationStatus notification_status{};  // channel_notification
  std::uint8_t flags = 0;        // command_flag_*
  Currency currency{};
  std::uint32_t expire_max = 0;  // tick: at most this many expirations (and drops) per tick
  std::uint32_t archive_rows_end = 0;  // archive_payments: rows below it are archived
  std::int64_t timestamp_us = 0; // stamped by the core: strictly increasing
  Amount amount = 0;
  // Two fields with one place in the encoding (offset 28, see below): a command uses at most one.
  std::int64_t paid_at_us = 0;           // channel_notification: the channel's paid_at (0: null)
  std::int64_t pending_lifetime_us = 0;  // tick: how long a PENDING payment lives
  std::int64_t archive_as_of_us = 0;     // archive_payments: when the archived copies were read
  std::int64_t expires_at_us = 0;  // create_mandate: when it expires (0: never)
  // tick: how long idempotency records are kept (0: forever). Shares the encoding's trailing
  // i64 with expires_at_us.
  std::int64_t idempotency_retention_us = 0;
  Id principal;                  // merchant or operator; channel_notification: the body's merchant_id
  Id request_id;
  Id account;                    // account_id; create_payment: payer_account_id
  Id order_id;
  Id channel;
  Id channel_txn_id;
  Id mandate_id;                 // mandate commands
  Id merchant_id;                // create_mandate: the merchant the mandate authorizes
  ArchivedPaymentFields archived;  // with command_flag_archived_payment
  // With command_flag_nonce: the signed request's X-Nonce and X-Timestamp (seconds), logged with
  // the command and handed back at recovery (EngineConfig::on_recovered_nonce). Transport, not
  // meaning: apply never reads them and the fingerprint leaves them out.
  Id nonce;
  std::int64_t nonce_timestamp_s = 0;
  // list_payments: the listing's work, lent by the edge until the result comes back (never
  // encoded; a decoded command has none, and apply refuses list_payments without it).
  PaymentListWork* list = nullptr;

  bool is_operator() const { return (flags & command_flag_operator) != 0; }
  bool is_single_use() const { return (flags & command_flag_single_use) != 0; }
  bool carries_archived_payment() const { return (flags & command_flag_archived_payment) != 0; }
  bool carries_nonce() const { return (flags & command_flag_nonce) != 0; }
  friend bool operator==(const Command&, const Command&) = default;
};
static_assert(std::is_trivially_copyable_v<Command>);
static_assert(sizeof(Command) <= 792, "commands travel through rings by value");
static_assert(std::is_same_v<decltype(Command::paid_at_us), decltype(Command::pending_lifetime_us)>,
              "both share the encoding's i64 at offset 28");
static_assert(std::is_same_v<decltype(Command::paid_at_us), decltype(Command::archive_as_of_us)>,
              "both share the encoding's i64 at offset 28");
static_assert(std::is_same_v<decltype(Command::expire_max), decltype(Command::archive_rows_end)>,
              "both share the encoding's u32 at offset 8");

// ---- Binary encoding (the payload of a log record) ----------------------------------------
//
//   offset size  field
//        0    1  encoding version (command_encoding_version)
//        1    1  kind
//        2    1  account_kind (0 = none)
//        3    1  notification_status (0 = none)
//        4    1  flags
//        5    3  currency, ISO 4217 letters ("\0\0\0" = none): never the in-memory index
//        8    4  tick: expire_max; archive_payments: archive_rows_end (little-endian, as are
//                all integers)
//       12    8  timestamp_us
//       20    8  amount
//       28    8  tick: pending_lifetime_us; archive_payments: archive_as_of_us; every other
//                kind: paid_at_us (0 unless a channel_notification). One i64 with a meaning
//                per kind, as in version 1.
//       36    .  the ids in the order principal, request_id, account, order_id, channel,
//                channel_txn_id, then (version 2) mandate_id, merchant_id; each as u8 length
//                + that many bytes
//        .    8  (version 2) tick: idempotency_retention_us; every other kind: expires_at_us
//                (0 unless a create_mandate)
//        .       (version 3, only with command_flag_archived_payment) the archived payment:
//                u8 status, i64 amount, i64 refunded_amount, i64 created_at_us,
//                i64 updated_at_us, then its request_id as u8 length + bytes
//        .       (versions 2 and 3, only with command_flag_nonce) i64 nonce_timestamp_s, then
//                the nonce as u8 length + bytes. A build that predates the flag refuses such a
//                record (unknown flag) rather than misreading it.
//
// Version 3 is written only for commands that carry an archived payment: every other command
// is written as version 2, byte for byte as before.
//
// Version 1 (logs written before mandates) has the first six ids only; it is still read, as
// commands whose mandate_id and merchant_id are empty. Decoding checks every field (a fuzzer
// feeds it arbitrary bytes): unknown version or kind, enum values out of range, unknown
// currency, invalid id characters, trailing bytes.
inline constexpr std::uint8_t command_encoding_version = 2;     // without an archived payment
inline constexpr std::uint8_t command_encoding_version_v3 = 3;  // with one
inline constexpr std::uint8_t command_encoding_version_v1 = 1;
inline constexpr std::size_t command_encoded_fixed_bytes = 36;
inline constexpr std::size_t command_encoding_time_field_offset = 28;
inline constexpr std::size_t command_ids_v1 = 6;
inline constexpr std::size_t command_ids = 8;
inline constexpr std::size_t command_archived_block_bytes_max = 1 + 4 * 8 + 1 + id_bytes_max;
inline constexpr std::size_t command_nonce_block_bytes_max = 8 + 1 + id_bytes_max;
inline constexpr std::size_t command_encoded_bytes_max =
    command_encoded_fixed_bytes + command_ids * (1 + id_bytes_max) + sizeof(std::int64_t) +
    command_archived_block_bytes_max + command_nonce_block_bytes_max;

// Writes the encoding into `out` (at least command_encoded_bytes_max bytes); returns its size.
std::size_t encode_command(const Command& command, std::span<std::byte> out);

enum class CommandDecodeError : std::uint8_t {
  ok = 0,
  truncated,
  unknown_version,
  unknown_kind,
  bad_enum,
  bad_currency,
  bad_id,
  trailing_bytes,
};
std::string_view to_string(CommandDecodeError error);
[[nodiscard]] CommandDecodeError decode_command(std::span<const std::byte> in, Command* out);

// The request fingerprint of docs/api.md's idempotency: a hash of the command's meaning (kind and
// the fields the client chose), not of its timestamp or transport. It hashes the oldest
// encoding that can hold the command, so that fingerprints kept in snapshots before mandates
// existed still match the same request after an upgrade.
std::uint64_t command_fingerprint(const Command& command);

}  // namespace paycore
