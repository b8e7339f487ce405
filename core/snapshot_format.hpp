#pragma once
// The snapshot file: a consistent image of the state at an LSN (docs/design.md "Snapshots"). It is
// the input of recovery and of the reconciliation job, so its layout is fixed here, versioned,
// and described for outside readers in docs/snapshot-format.md.
//
// All integers little-endian. A "str" is u8 length + bytes (ids are at most 64 bytes).
// A "ccy" is the three ISO 4217 letters. Rows refer to earlier rows by their index.
//
//   offset size  header (header_bytes = 128)
//        0    8  magic "PAYCSNAP"
//        8    4  format version (snapshot_format_version)
//       12    4  header_bytes
//       16    8  lsn: the state holds every log record <= lsn, and none after
//       24    8  created_at_us (wall clock of the writer; informational)
//       32    8  last_timestamp_us (the newest command timestamp applied)
//       40    8  pending_lifetime_us
//       48    4  expiry_cursor
//       52    4  channels count         (row 0 is "balance")
//       56    4  accounts count
//       60    4  payments count (version 3: the end row; rows [payments_begin, end) follow)
//       64    4  refunds count (the refund rows written: refunds of the payments written)
//       68    4  idempotency count (version 3: the end row, as payments)
//       72    4  anomalies count
//       76    4  principals count
//       80    4  pending queue count (version 3: the end entry; entries [expiry_cursor, end)
//                follow)
//       84    4  system balances count (non-zero entries only)
//       88    4  mandates count                                            (version 2)
//       92    4  payments_begin: the first row in memory; rows below are archived (version 3)
//       96    4  idempotency_begin: the first record kept; those below expired  (version 3)
//      100    4  archived_rows_end: the archive holds payment rows below it     (version 3)
//      104    8  idempotency_horizon_us: records made before it were dropped    (version 3;
//                INT64_MIN: none)
//      112    8  reserved, zero           (version 2: 92..119; version 1: 88..119 reserved)
//      120    8  xxHash3-64 of bytes 0..119
//
//   sections, in this order, each led by {u32 tag, u32 zero, u64 rows} (rows = the count above):
//     CHAN  channels:     str name
//     SYSB  system:       u32 channel row (0 = external), ccy, i64 balance
//     PRIN  principals:   str id
//     ACCT  accounts:     str id, u8 kind, ccy, i64 balance, i64 created_at_us, i64 updated_at_us
//     MAND  mandates (version 2), in creation order (which rebuilds each pair's chain):
//                         str mandate_id, u32 payer account row, u32 merchant principal row,
//                         i64 amount_max, i64 expires_at_us (0: never), u8 status (stored:
//                         1 active, 2 revoked, 4 used), u8 single_use (0|1),
//                         i64 created_at_us, i64 updated_at_us
//     PAYM  payments:     u32 merchant account row, str order_id, str request_id, u8 channel row,
//                         u32 payer account row (0xFFFFFFFF: none),
//                         [version 2: u32 mandate row (0xFFFFFFFF: none)], i64 amount,
//                         i64 refunded_amount, ccy, u8 status, str channel_txn_id (may be empty),
//                         i64 created_at_us, i64 updated_at_us, [version 3: u8 flags
//                         (payment_flag_*: 1 = back from the archive, whose refunds before that
//                         are in the archive only)], u32 refunds count, then per refund:
//                         str request_id, i64 amount, i64 created_at_us
//     IDEM  idempotency:  u32 principal row, str request_id, u8 command kind, u8 result code,
//                         [version 2: u8 field at fault (0: none)],
//                         u64 fingerprint, u32 resource row (0xFFFFFFFF: none; an account,
//                         payment or mandate row, per the command kind),
//                         [version 3: i64 created_at_us]
//     ANOM  anomalies:    u8 channel row, str channel_txn_id, str merchant_id, str order_id,
//                         i64 amount, ccy, u8 notification status, u8 reason, i64 paid_at_us,
//                         i64 received_at_us
//     PEND  pending queue: u32 payment row
//     FILT  archived orders (version 3; rows = partitions of the OrderFilter, core/order_filter.hpp):
//                         u64 capacity_keys, u64 count_keys, then the partition's blocks
//                         (OrderFilter::blocks_for(capacity_keys) * 64 bytes)
//
//   trailer (24 bytes): magic "PAYCEND!", then xxHash3-128 (low 64 bits, high 64 bits) of
//   every byte before the trailer.

#include <cstddef>
#include <cstdint>

namespace paycore::snapshot {

inline constexpr char magic[8] = {'P', 'A', 'Y', 'C', 'S', 'N', 'A', 'P'};
inline constexpr char trailer_magic[8] = {'P', 'A', 'Y', 'C', 'E', 'N', 'D', '!'};
inline constexpr std::uint32_t format_version = 3;     // written
inline constexpr std::uint32_t format_version_v2 = 2;  // still read (before the cold tier)
inline constexpr std::uint32_t format_version_v1 = 1;  // still read (before mandates)
inline constexpr std::size_t header_bytes = 128;
inline constexpr std::size_t header_checksum_offset = 120;
inline constexpr std::size_t section_header_bytes = 16;
inline constexpr std::size_t trailer_bytes = 24;
inline constexpr std::uint32_t row_none_on_disk = 0xFFFF'FFFFu;

constexpr std::uint32_t tag(char a, char b, char c, char d) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(a)) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b)) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(c)) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(d)) << 24;
}
inline constexpr std::uint32_t tag_channels = tag('C', 'H', 'A', 'N');
inline constexpr std::uint32_t tag_system = tag('S', 'Y', 'S', 'B');
inline constexpr std::uint32_t tag_principals = tag('P', 'R', 'I', 'N');
inline constexpr std::uint32_t tag_accounts = tag('A', 'C', 'C', 'T');
inline constexpr std::uint32_t tag_mandates = tag('M', 'A', 'N', 'D');
inline constexpr std::uint32_t tag_payments = tag('P', 'A', 'Y', 'M');
inline constexpr std::uint32_t tag_idempotency = tag('I', 'D', 'E', 'M');
inline constexpr std::uint32_t tag_anomalies = tag('A', 'N', 'O', 'M');
inline constexpr std::uint32_t tag_pending = tag('P', 'E', 'N', 'D');
inline constexpr std::uint32_t tag_filter = tag('F', 'I', 'L', 'T');

static_assert(header_checksum_offset + 8 == header_bytes);
static_assert(sizeof(magic) == 8 && sizeof(trailer_magic) == 8);
static_assert(trailer_bytes == sizeof(trailer_magic) + 16);

}  // namespace paycore::snapshot
