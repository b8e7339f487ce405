#pragma once
// A command record: what the log holds for each command that changed the state. Since
// events and webhooks (issue 15, docs/events.md) it carries, after the command, its *outcome*:
// what `apply` decided and the representation of what it changed, so that a reader of the
// committed log (the event deriver, a change-data-capture consumer, `paycore wal dump`) learns
// what happened without a copy of the state, and so that every replay checks that this build's
// `apply` decides what the writer's did (docs/design.md rule 2, now verified record by record).
//
// The record types are in engine_records.hpp; the byte layouts here and in docs/wal-format.md.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "command.hpp"
#include "result.hpp"

namespace paycore {

/// What applying a logged command did: the part of its Result that a reader of the log needs.
/// `resource` names which view is meaningful (none, account, payment or mandate); the others
/// are zero. Views are as the answer rendered them (payment_view at the command's time).
struct CommandOutcome {
  ResultCode code = ResultCode::ok;  // ok, or a refusal that is kept (result_is_kept)
  NotificationOutcome notification = NotificationOutcome::none;
  AnomalyReason anomaly{};           // when notification == anomaly (0 otherwise)
  ResourceKind resource = ResourceKind::none;
  // tick: how many PENDING payments it expired. They are the oldest PENDING ones, in creation
  // order (core/apply.cpp expire_pending: everything before its cursor has left PENDING).
  std::uint32_t expired_count = 0;
  // tick: it stopped at its limit with work still due (Result::work_left); false means every
  // PENDING payment due at its time has expired.
  bool work_left = false;
  AccountView account;
  PaymentView payment;
  MandateView mandate;
  friend bool operator==(const CommandOutcome&, const CommandOutcome&) = default;
};

/// The outcome a Result records (the fields above, views only for its resource).
CommandOutcome outcome_of(const Result& result);

// ---- Binary layout of a record_type_command_outcome payload ---------------------------------
//
//   offset size  field
//        0    2  command_bytes: length of the command's encoding (little-endian)
//        2    .  the command, encoded as core/command.hpp describes (any of its versions)
//        .    1  outcome encoding version (command_outcome_version)
//        .    1  result code (ResultCode)
//        .    1  notification outcome (NotificationOutcome)
//        .    1  anomaly reason (0 = none)
//        .    1  resource kind (ResourceKind)
//        .    4  expired_count
//        .    1  flags: bit 0 work_left (a tick stopped at its limit); other bits 0
//        .    .  the view of the resource:
//                account: id, u8 kind, currency (3 letters), i64 balance, i64 created_at_us,
//                         i64 updated_at_us
//                payment: ids merchant_id, order_id, request_id, channel, payer_account_id,
//                         channel_txn_id, mandate_id; i64 amount, i64 refunded_amount,
//                         i64 created_at_us, i64 updated_at_us; currency (3 letters); u8 status
//                mandate: ids mandate_id, payer_account_id, merchant_id; i64 amount_max,
//                         i64 expires_at_us, i64 created_at_us, i64 updated_at_us;
//                         currency (3 letters); u8 status; u8 single_use (0 or 1)
//                (ids as u8 length + bytes; currency "\0\0\0" = none)
//
// Nothing may follow the view. Decoding checks every enumeration, id and currency and refuses
// trailing bytes (a fuzzer feeds it arbitrary bytes).
inline constexpr std::uint8_t command_outcome_version = 1;
inline constexpr std::size_t command_outcome_bytes_max =
    1 + 1 + 1 + 1 + 1 + 4 + 1 + 7 * (1 + id_bytes_max) + 4 * 8 + 3 + 1;
inline constexpr std::size_t command_record_bytes_max =
    2 + command_encoded_bytes_max + command_outcome_bytes_max;

/// Writes a record_type_command_outcome payload for `command` and its `outcome` into `out`
/// (at least command_record_bytes_max bytes); returns its size.
std::size_t encode_command_record(const Command& command, const CommandOutcome& outcome,
                                  std::span<std::byte> out);
/// The same record straight from apply's Result (what outcome_of(result) would write): the
/// core's path, which builds no CommandOutcome.
std::size_t encode_command_record(const Command& command, const Result& result,
                                  std::span<std::byte> out);

/// Decodes a log record of either command type (engine_records.hpp). For a
/// record_type_command (written before outcomes were logged) *has_outcome is false and
/// *outcome is left default. Errors as decode_command's; unknown_kind for another record type.
[[nodiscard]] CommandDecodeError decode_command_record(std::uint16_t type,
                                                       std::span<const std::byte> payload,
                                                       Command* command, CommandOutcome* outcome,
                                                       bool* has_outcome);

/// A payment's or a mandate's view alone, in the layouts above (for stores that keep views:
/// events/). encode_* write into `out` (at least *_view_bytes_max bytes) and return the size;
/// decode_* read exactly the whole span (errors as decode_command's; trailing_bytes for more).
inline constexpr std::size_t payment_view_bytes_max = 7 * (1 + id_bytes_max) + 4 * 8 + 3 + 1;
inline constexpr std::size_t mandate_view_bytes_max = 3 * (1 + id_bytes_max) + 4 * 8 + 3 + 2;
std::size_t encode_payment_view(const PaymentView& view, std::span<std::byte> out);
[[nodiscard]] CommandDecodeError decode_payment_view(std::span<const std::byte> in, PaymentView* view);
std::size_t encode_mandate_view(const MandateView& view, std::span<std::byte> out);
[[nodiscard]] CommandDecodeError decode_mandate_view(std::span<const std::byte> in, MandateView* view);

/// What differs between the outcome a record carries and the one `apply` gave here, for the
/// error of a replay that disagrees ("" when they are equal).
std::string describe_outcome_mismatch(const CommandOutcome& logged, const CommandOutcome& here);

}  // namespace paycore
