#pragma once
// The archive's on-disk format (issue 12, docs/archive-store.md): the keys of the one RocksDB
// keyspace and the bytes of every value. This header is the format; archive/store.cpp only
// moves these bytes in and out of RocksDB.
//
// ---- Keys -----------------------------------------------------------------------------------
//
// The first byte names the table. Integers in keys are big-endian so that RocksDB's bytewise
// order is numeric order. A string inside a key is its u8 length and its bytes, so that one
// merchant id is never a prefix of another's; the order_id is the last component of every key
// and goes unprefixed (nothing follows it), so that keys that tie on everything before it sort
// by the order_id's bytes, ascending: the tie order the listing promises.
//
//   'P' · u8 len · merchant_id · order_id                          → payment record
//   'L' · u8 len · merchant_id · be64(~created_at_us) · order_id   → payment record
//   'D' · be64(created_at_us) · u8 len · merchant_id · order_id    → payment record
//   'M' · "format"                                                 → format value
//   'M' · "position"                                               → position value
//
// 'P' serves point reads (a cold payment, its refunds, a refund of it); 'L' lists a merchant's
// payments newest first (the complement of the time ascends as the time descends; the whole
// record is the value so that a page is one contiguous walk: the variant docs/archive-store.md
// measured); 'D' lists everything created in a time range across merchants, in time order
// (recon of a day). created_at_us is never negative (checked), so its u64 complement is exact.
//
// ---- Values (integers little-endian, as in core/command.hpp) -------------------------------
//
// Every value starts with the same 9 bytes; the checksum covers every byte after itself.
//
//   offset size  field
//        0    8  checksum: XXH3-64 of bytes [8, size)
//        8    1  format version (archive_format_version)
//
// Payment record (the value of 'P', 'L' and 'D'; every field of core's PaymentView):
//        9    1  status: PaymentStatus's stored number (core/model.hpp), 1..7
//       10    3  currency: ISO 4217 letters, never the in-memory index (core/money.hpp)
//       13    8  amount (i64, minor units, >= 1)
//       21    8  refunded_amount (i64, 0..amount, the sum of the refunds below)
//       29    8  created_at_us (i64, >= 0)
//       37    8  updated_at_us (i64, >= created_at_us)
//       45    .  ids, each u8 length + that many bytes (core/id.hpp's characters, <= 64 bytes):
//                merchant_id, order_id, request_id, channel (1..64 bytes each), then
//                payer_account_id, channel_txn_id, mandate_id (0..64 bytes: 0 is null)
//        .    2  refunds count (u16, <= archive_refunds_per_payment_max)
//        .    .  each refund, in the order they were made: request_id (u8 length 1..64 +
//                bytes), amount (i64, >= 1), created_at_us (i64, >= 0)
//   No bytes follow the last refund.
//
// Format value ('M' "format"): the 9 common bytes only; its version byte is the archive's.
// Position value ('M' "position"): the 9 common bytes, then
//        9    4  rows_end (u32)
//       13    8  lsn (u64)
//       21    8  as_of_us (i64)
//       29    8  jobs (u64)
//
// Content rules (checked when a payment is written and again when it is read back): the ids
// are valid (payer_account_id present exactly when the channel is "balance"; a mandate only on
// "balance"), the amounts and times as above, the refunds add up to refunded_amount, and the
// record's merchant_id, order_id and created_at_us are the ones its key names.
//
// Version 1 is the only version; a later one will keep this one readable (docs/style.md rule 1).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "core/archive_port.hpp"
#include "core/id.hpp"

namespace paycore::archive {

inline constexpr std::uint8_t archive_format_version = 1;

inline constexpr char table_payment = 'P';
inline constexpr char table_list = 'L';
inline constexpr char table_day = 'D';
inline constexpr char table_meta = 'M';
inline constexpr std::string_view meta_format_name = "format";
inline constexpr std::string_view meta_position_name = "position";

inline constexpr std::size_t value_checksum_offset = 0;
inline constexpr std::size_t value_version_offset = 8;
inline constexpr std::size_t value_header_bytes = 9;
inline constexpr std::size_t record_fixed_bytes = 45;  // through updated_at_us
inline constexpr std::size_t record_ids = 7;
inline constexpr std::size_t refund_fixed_bytes = 16;  // amount + created_at_us
inline constexpr std::size_t position_value_bytes = 37;
inline constexpr std::size_t format_value_bytes = value_header_bytes;

// A limit on everything: a payment with more refunds than its count field holds is refused
// when it is written (the core allows one refund per minor unit; none has come near this).
inline constexpr std::size_t archive_refunds_per_payment_max = 65'535;
inline constexpr std::size_t record_bytes_max =
    record_fixed_bytes + record_ids * (1 + id_bytes_max) + 2 +
    archive_refunds_per_payment_max * (1 + id_bytes_max + refund_fixed_bytes);
// 'L': table, length, merchant, time, order: the longest key.
inline constexpr std::size_t key_bytes_max = 1 + 1 + id_bytes_max + 8 + id_bytes_max;

static_assert(record_fixed_bytes == value_header_bytes + 1 + 3 + 4 * 8);
static_assert(position_value_bytes == value_header_bytes + 4 + 3 * 8);

/// 'P' key of (merchant_id, order_id). Both must be valid ids (asserted).
std::string payment_key(std::string_view merchant_id, std::string_view order_id);
/// 'L' key: a merchant's payments newest first. created_at_us >= 0 (asserted).
std::string list_key(std::string_view merchant_id, std::int64_t created_at_us,
                     std::string_view order_id);
/// The 'L' keys of one merchant all start with this, and are all below list_prefix_end.
std::string list_prefix(std::string_view merchant_id);
std::string list_prefix_end(std::string_view merchant_id);
/// The merchant's 'L' keys of payments created at or before `created_at_us` (>= 0) are above
/// this key, those of newer payments below it.
std::string list_time_key(std::string_view merchant_id, std::int64_t created_at_us);
/// 'D' key: every payment in time order. created_at_us >= 0 (asserted).
std::string day_key(std::int64_t created_at_us, std::string_view merchant_id,
                    std::string_view order_id);
/// 'D' keys of payments created at or after `created_at_us` (>= 0) are >= this.
std::string day_prefix(std::int64_t created_at_us);
std::string meta_key(std::string_view name);

/// A key as a person reads it, for error messages: "P/merchant_1/ord_7",
/// "L/merchant_1/created_at_us=1700000000000000/ord_7", "M/position"; a key that parses as
/// none of the tables is shown in hex ("0x50ff...").
std::string describe_key(std::string_view key);

/// The content rules above, for a payment about to be written. kInvalidArgument naming the
/// payment and the rule broken.
Status check_payment(const ArchivedPayment& payment);

/// The payment record of `payment`, which check_payment accepted (its sizes are asserted).
std::string encode_payment(const ArchivedPayment& payment);

/// Decodes the value stored under `key` ('P', 'L' or 'D') and checks everything: checksum,
/// version, lengths, enum ranges, currency, id characters, the content rules, and that the
/// record is the one its key names. kCorruption with a message naming the key on any failure.
StatusOr<ArchivedPayment> decode_payment(std::string_view key, std::string_view value);

/// The position value and its decoding (kCorruption naming the key).
std::string encode_position(std::uint32_t rows_end, std::uint64_t lsn, std::int64_t as_of_us,
                            std::uint64_t jobs);
struct PositionFields {
  std::uint32_t rows_end = 0;
  std::uint64_t lsn = 0;
  std::int64_t as_of_us = 0;
  std::uint64_t jobs = 0;
};
StatusOr<PositionFields> decode_position(std::string_view value);

/// The format value of `version` (tests write other versions with it).
std::string encode_format(std::uint8_t version);
/// The version a format value holds; kCorruption if its checksum or size is wrong.
StatusOr<std::uint8_t> decode_format(std::string_view value);

/// XXH3-64 of value[8, size): what a value's first 8 bytes must hold.
std::uint64_t value_checksum(std::string_view value);

}  // namespace paycore::archive
