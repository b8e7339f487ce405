#include "command.hpp"

#include <array>
#include <cstring>

#include <xxhash.h>

#include "base/assert.hpp"
#include "byte_codec.hpp"

namespace paycore {

std::string_view to_string(CommandKind kind) {
  switch (kind) {
    case CommandKind::open_account: return "open_account";
    case CommandKind::deposit: return "deposit";
    case CommandKind::create_payment: return "create_payment";
    case CommandKind::cancel_payment: return "cancel_payment";
    case CommandKind::ship_payment: return "ship_payment";
    case CommandKind::complete_payment: return "complete_payment";
    case CommandKind::refund_payment: return "refund_payment";
    case CommandKind::channel_notification: return "notify";
    case CommandKind::tick: return "tick";
    case CommandKind::add_channel: return "add_channel";
    case CommandKind::get_account: return "get_account";
    case CommandKind::get_payment: return "get_payment";
    case CommandKind::create_mandate: return "create_mandate";
    case CommandKind::revoke_mandate: return "revoke_mandate";
    case CommandKind::get_mandate: return "get_mandate";
    case CommandKind::archive_payments: return "archive_payments";
    case CommandKind::list_payments: return "list_payments";
  }
  return "unknown";
}

std::string_view to_string(CommandDecodeError error) {
  switch (error) {
    case CommandDecodeError::ok: return "ok";
    case CommandDecodeError::truncated: return "truncated command";
    case CommandDecodeError::unknown_version: return "unknown command encoding version";
    case CommandDecodeError::unknown_kind: return "unknown command kind";
    case CommandDecodeError::bad_enum: return "enumeration value out of range";
    case CommandDecodeError::bad_currency: return "unknown currency";
    case CommandDecodeError::bad_id: return "invalid identifier";
    case CommandDecodeError::trailing_bytes: return "trailing bytes after command";
  }
  return "unknown decode error";
}

using detail::Reader;
using detail::Writer;

namespace {

// The ids in their encoded order; the first command_ids_v1 are those of version 1. One list
// for reading (Command) and writing (const Command).
template <class C>
auto ids_of(C& c) {
  using Pointer = decltype(&c.principal);
  return std::array<Pointer, command_ids>{&c.principal, &c.request_id, &c.account, &c.order_id,
                                          &c.channel,   &c.channel_txn_id, &c.mandate_id, &c.merchant_id};
}

// The encoding's i64 at offset 28 (command_encoding_time_field_offset): a tick's pending
// lifetime, any other command's paid_at (which only a channel notification sets).
std::int64_t time_field_us(const Command& command) {
  if (command.kind == CommandKind::tick) return command.pending_lifetime_us;
  if (command.kind == CommandKind::archive_payments) return command.archive_as_of_us;
  return command.paid_at_us;
}
void set_time_field_us(Command* command, std::int64_t value) {
  if (command->kind == CommandKind::tick) {
    command->pending_lifetime_us = value;
  } else if (command->kind == CommandKind::archive_payments) {
    command->archive_as_of_us = value;
  } else {
    command->paid_at_us = value;
  }
}

// The u32 at offset 8: a tick's expire_max, archive_payments' rows end.
std::uint32_t count_field(const Command& command) {
  if (command.kind == CommandKind::archive_payments) return command.archive_rows_end;
  return command.expire_max;
}
void set_count_field(Command* command, std::uint32_t value) {
  if (command->kind == CommandKind::archive_payments) {
    command->archive_rows_end = value;
  } else {
    command->expire_max = value;
  }
}

// The trailing i64 of version 2: a tick's idempotency retention, any other command's
// expires_at (which only create_mandate sets).
std::int64_t tail_field_us(const Command& command) {
  if (command.kind == CommandKind::tick) return command.idempotency_retention_us;
  return command.expires_at_us;
}
void set_tail_field_us(Command* command, std::int64_t value) {
  if (command->kind == CommandKind::tick) {
    command->idempotency_retention_us = value;
  } else {
    command->expires_at_us = value;
  }
}

std::size_t encode_as(const Command& command, std::uint8_t version, std::span<std::byte> out) {
  PAYCORE_ASSERT(out.size() >= command_encoded_bytes_max);
  const bool kind_valid = command_kind_is_valid(static_cast<std::uint8_t>(command.kind));
  PAYCORE_ASSERT(kind_valid);
  Writer w(out);
  w.u8(version);
  w.u8(static_cast<std::uint8_t>(command.kind));
  w.u8(static_cast<std::uint8_t>(command.account_kind));
  w.u8(static_cast<std::uint8_t>(command.notification_status));
  w.u8(command.flags);
  char code[3] = {0, 0, 0};
  if (command.currency.valid()) std::memcpy(code, currency_code(command.currency).data(), 3);
  w.put(code, 3);
  w.le(count_field(command));
  w.le(command.timestamp_us);
  w.le(command.amount);
  PAYCORE_DEBUG_ASSERT(w.used() == command_encoding_time_field_offset);
  w.le(time_field_us(command));
  PAYCORE_DEBUG_ASSERT(w.used() == command_encoded_fixed_bytes);
  const std::size_t ids = version == command_encoding_version_v1 ? command_ids_v1 : command_ids;
  const auto all = ids_of(command);
  for (std::size_t i = 0; i < ids; ++i) w.id(*all[i]);
  if (version != command_encoding_version_v1) w.le(tail_field_us(command));
  if (version == command_encoding_version_v3) {
    const ArchivedPaymentFields& a = command.archived;
    w.u8(static_cast<std::uint8_t>(a.status));
    w.le(a.amount);
    w.le(a.refunded_amount);
    w.le(a.created_at_us);
    w.le(a.updated_at_us);
    w.id(a.request_id);
  }
  if (version != command_encoding_version_v1 && command.carries_nonce()) {
    w.le(command.nonce_timestamp_s);
    w.id(command.nonce);
  }
  return w.used();
}

// Whether version 1 holds every field of the command (no mandate fields, no new flags).
bool fits_v1(const Command& command) {
  return command.mandate_id.empty() && command.merchant_id.empty() && tail_field_us(command) == 0 &&
         (command.flags & ~command_flag_operator) == 0;
}

}  // namespace

std::size_t encode_command(const Command& command, std::span<std::byte> out) {
  return encode_as(command,
                   command.carries_archived_payment() ? command_encoding_version_v3
                                                      : command_encoding_version,
                   out);
}

namespace {

CommandDecodeError decode_archived(Reader& r, ArchivedPaymentFields* a) {
  std::uint8_t status = 0;
  if (!r.u8(&status) || !r.le(&a->amount) || !r.le(&a->refunded_amount) ||
      !r.le(&a->created_at_us) || !r.le(&a->updated_at_us)) {
    return CommandDecodeError::truncated;
  }
  if (!payment_status_is_valid(status)) return CommandDecodeError::bad_enum;
  a->status = static_cast<PaymentStatus>(status);
  return r.id(&a->request_id);
}

}  // namespace

CommandDecodeError decode_command(std::span<const std::byte> in, Command* out) {
  *out = Command{};
  Reader r(in);
  std::uint8_t version = 0, kind = 0, account_kind = 0, notification_status = 0;
  if (!r.u8(&version)) return CommandDecodeError::truncated;
  if (version != command_encoding_version && version != command_encoding_version_v1 &&
      version != command_encoding_version_v3) {
    return CommandDecodeError::unknown_version;
  }
  if (!r.u8(&kind) || !r.u8(&account_kind) || !r.u8(&notification_status) || !r.u8(&out->flags)) {
    return CommandDecodeError::truncated;
  }
  if (!command_kind_is_valid(kind)) return CommandDecodeError::unknown_kind;
  if (account_kind != 0 && !account_kind_is_valid(account_kind)) return CommandDecodeError::bad_enum;
  if (notification_status != 0 && !notification_status_is_valid(notification_status)) return CommandDecodeError::bad_enum;
  const std::uint8_t flags_known =
      version == command_encoding_version_v1 ? command_flag_operator : command_flags_known;
  if (out->flags & ~flags_known) return CommandDecodeError::bad_enum;
  out->kind = static_cast<CommandKind>(kind);
  out->account_kind = static_cast<AccountKind>(account_kind);
  out->notification_status = static_cast<NotificationStatus>(notification_status);
  char code[3];
  if (!r.get(code, 3)) return CommandDecodeError::truncated;
  if (code[0] != 0 || code[1] != 0 || code[2] != 0) {
    const auto currency = currency_from_code(std::string_view(code, 3));
    if (!currency) return CommandDecodeError::bad_currency;
    out->currency = *currency;
  }
  std::int64_t time_field = 0;
  std::uint32_t count = 0;
  if (!r.le(&count) || !r.le(&out->timestamp_us) || !r.le(&out->amount) || !r.le(&time_field)) {
    return CommandDecodeError::truncated;
  }
  set_count_field(out, count);
  set_time_field_us(out, time_field);
  const std::size_t ids = version == command_encoding_version_v1 ? command_ids_v1 : command_ids;
  const auto all = ids_of(*out);
  for (std::size_t i = 0; i < ids; ++i) {
    if (const CommandDecodeError e = r.id(all[i]); e != CommandDecodeError::ok) return e;
  }
  std::int64_t tail = 0;
  if (version != command_encoding_version_v1 && !r.le(&tail)) return CommandDecodeError::truncated;
  set_tail_field_us(out, tail);
  // Version 3 exactly when the command carries an archived payment.
  if ((version == command_encoding_version_v3) != out->carries_archived_payment()) {
    return CommandDecodeError::bad_enum;
  }
  if (version == command_encoding_version_v3) {
    if (const CommandDecodeError e = decode_archived(r, &out->archived); e != CommandDecodeError::ok)
      return e;
  }
  if (out->carries_nonce()) {
    if (!r.le(&out->nonce_timestamp_s)) return CommandDecodeError::truncated;
    if (const CommandDecodeError e = r.id(&out->nonce); e != CommandDecodeError::ok) return e;
    if (out->nonce.empty()) return CommandDecodeError::bad_id;  // the flag promises one
  }
  return r.at_end() ? CommandDecodeError::ok : CommandDecodeError::trailing_bytes;
}

std::uint64_t command_fingerprint(const Command& command) {
  // Canonical form: the encoding with the fields that are not the client's choice zeroed.
  Command canonical = command;
  canonical.timestamp_us = 0;
  canonical.flags = static_cast<std::uint8_t>(command.flags & ~command_flags_of_engine);
  canonical.expire_max = 0;
  canonical.request_id = Id{};
  canonical.nonce = Id{};
  canonical.nonce_timestamp_s = 0;
  // What the edge adds to a command on a cold payment (the payment as the archive holds it)
  // is not the client's: the same request replays whether the payment was hot or cold.
  if (canonical.kind >= CommandKind::cancel_payment && canonical.kind <= CommandKind::refund_payment) {
    canonical.currency = Currency{};
    canonical.channel = Id{};
    canonical.account = Id{};
    canonical.channel_txn_id = Id{};
    canonical.mandate_id = Id{};
    canonical.archived = ArchivedPaymentFields{};
  }
  std::byte buffer[command_encoded_bytes_max];
  const std::uint8_t version = fits_v1(canonical) ? command_encoding_version_v1 : command_encoding_version;
  const std::size_t size = encode_as(canonical, version, buffer);
  return XXH3_64bits(buffer, size);
}

}  // namespace paycore
