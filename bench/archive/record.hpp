#pragma once
// PROVISIONAL layout of an archived payment, its refunds and the archive's keys, written for the
// store measurement of issue 12 (docs/archive-store.md). Nothing reads these bytes yet; the
// real format will get its own header next to core/snapshot_format.hpp once the cold tier is
// built, and may differ. Fixed sizes so that both stores see the same bytes.
//
// Values are little-endian (the host's order, asserted below); keys are big-endian so that the
// stores' bytewise order is the numeric order.
//
// PaymentRecord, 160 bytes:
//   0   8  checksum        XXH3-64 of bytes [8, 160)
//   8   2  format_version  1
//  10   1  status          core's PaymentStatus value
//  11   1  channel         1 balance, 2 alipay, 3 wechat, 4 card (provisional numbering)
//  12   4  currency        3 ASCII letters and a NUL
//  16   8  merchant_id
//  24   8  amount_minor    in the currency's minor unit
//  32   8  created_at_us
//  40   8  updated_at_us
//  48   8  refunded_minor  sum of the refunds (the refunds summary)
//  56   4  refunds_count
//  60   1  order_id_bytes  1..64
//  61   3  reserved        zero
//  64  64  order_id        the merchant's id, zero-padded
// 128  32  channel_txn_id  the channel's reference (recon joins on it), zero-padded
//
// RefundRecord, 64 bytes:
//   0   8  checksum        XXH3-64 of bytes [8, 64)
//   8   2  format_version  1
//  10   1  status
//  11   1  reserved        zero
//  12   4  refund_seq      0-based, per payment
//  16   8  amount_minor
//  24   8  created_at_us
//  32  32  request_id      zero-padded
//
// Keys (one keyspace; the first byte names the table):
//   'P' | merchant_id u64 BE | order_id                                → PaymentRecord
//   'L' | merchant_id u64 BE | ~created_at_us u64 BE | order_id        → ListEntry (2 bytes)
//   'R' | merchant_id u64 BE | order_id_bytes u8 | order_id | seq u32 BE → RefundRecord
// 'L' sorts a merchant's payments newest first (the complement of the time ascends as the time
// descends); its value carries the columns the listing filters on, so a filtered page reads a
// record only for the entries it returns. 'R' puts the length before the order id so that one
// payment's refunds are a prefix no other payment's key shares.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <xxhash.h>

#include "base/assert.hpp"

namespace paycore::archive {

static_assert(std::endian::native == std::endian::little, "values are stored little-endian");

inline constexpr std::size_t kOrderIdBytesMax = 64;
inline constexpr std::size_t kChannelTxnIdBytesMax = 32;
inline constexpr std::size_t kRequestIdBytesMax = 32;
inline constexpr std::uint16_t kFormatVersion = 1;

struct PaymentRecord {
  std::uint64_t checksum;
  std::uint16_t format_version;
  std::uint8_t status;
  std::uint8_t channel;
  char currency[4];
  std::uint64_t merchant_id;
  std::int64_t amount_minor;
  std::int64_t created_at_us;
  std::int64_t updated_at_us;
  std::int64_t refunded_minor;
  std::uint32_t refunds_count;
  std::uint8_t order_id_bytes;
  std::uint8_t reserved[3];
  char order_id[kOrderIdBytesMax];
  char channel_txn_id[kChannelTxnIdBytesMax];
};
static_assert(sizeof(PaymentRecord) == 160);
static_assert(offsetof(PaymentRecord, format_version) == 8);
static_assert(offsetof(PaymentRecord, merchant_id) == 16);
static_assert(offsetof(PaymentRecord, refunds_count) == 56);
static_assert(offsetof(PaymentRecord, order_id_bytes) == 60);
static_assert(offsetof(PaymentRecord, order_id) == 64);
static_assert(offsetof(PaymentRecord, channel_txn_id) == 128);

struct RefundRecord {
  std::uint64_t checksum;
  std::uint16_t format_version;
  std::uint8_t status;
  std::uint8_t reserved;
  std::uint32_t refund_seq;
  std::int64_t amount_minor;
  std::int64_t created_at_us;
  char request_id[kRequestIdBytesMax];
};
static_assert(sizeof(RefundRecord) == 64);
static_assert(offsetof(RefundRecord, refund_seq) == 12);
static_assert(offsetof(RefundRecord, request_id) == 32);

/// The value of an 'L' key: what a listing filters on without reading the record.
struct ListEntry {
  std::uint8_t status;
  std::uint8_t channel;
};
static_assert(sizeof(ListEntry) == 2);

inline constexpr char kPaymentTable = 'P';
inline constexpr char kListTable = 'L';
inline constexpr char kRefundTable = 'R';

/// XXH3-64 of every byte after the checksum field (docs/style.md rule 1).
template <typename Record>
[[nodiscard]] std::uint64_t record_checksum(const Record& record) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&record);
  return XXH3_64bits(bytes + sizeof(std::uint64_t), sizeof(Record) - sizeof(std::uint64_t));
}

inline void append_u64_be(std::string& key, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((value >> shift) & 0xffU));
  }
}

inline void append_u32_be(std::string& key, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((value >> shift) & 0xffU));
  }
}

[[nodiscard]] inline std::uint64_t read_u64_be(std::string_view bytes) noexcept {
  PAYCORE_ASSERT_GE(bytes.size(), 8U);
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

/// 'P' | merchant_id | order_id: the primary key, a point read by (merchant_id, order_id).
[[nodiscard]] inline std::string payment_key(std::uint64_t merchant_id, std::string_view order_id) {
  PAYCORE_ASSERT(!order_id.empty());
  PAYCORE_ASSERT_LE(order_id.size(), kOrderIdBytesMax);
  std::string key;
  key.reserve(1 + 8 + order_id.size());
  key.push_back(kPaymentTable);
  append_u64_be(key, merchant_id);
  key.append(order_id);
  return key;
}

/// 'L' | merchant_id | ~created_at_us: where a merchant's listing starts at or before a time.
[[nodiscard]] inline std::string list_key_prefix(std::uint64_t merchant_id,
                                                 std::int64_t created_at_us) {
  PAYCORE_ASSERT_GE(created_at_us, 0);
  std::string key;
  key.reserve(1 + 8 + 8 + kOrderIdBytesMax);
  key.push_back(kListTable);
  append_u64_be(key, merchant_id);
  append_u64_be(key, ~static_cast<std::uint64_t>(created_at_us));
  return key;
}

/// The full listing key of one payment.
[[nodiscard]] inline std::string list_key(std::uint64_t merchant_id, std::int64_t created_at_us,
                                          std::string_view order_id) {
  std::string key = list_key_prefix(merchant_id, created_at_us);
  key.append(order_id);
  return key;
}

/// 'L' | merchant_id: every listing key of one merchant starts with these 9 bytes.
[[nodiscard]] inline std::string list_merchant_prefix(std::uint64_t merchant_id) {
  std::string key;
  key.push_back(kListTable);
  append_u64_be(key, merchant_id);
  return key;
}

inline constexpr std::size_t kListKeyOrderIdOffset = 1 + 8 + 8;

/// The created_at_us a listing key holds.
[[nodiscard]] inline std::int64_t list_key_created_at_us(std::string_view key) noexcept {
  PAYCORE_ASSERT_GT(key.size(), kListKeyOrderIdOffset);
  return static_cast<std::int64_t>(~read_u64_be(key.substr(1 + 8)));
}

/// 'R' | merchant_id | order_id_bytes | order_id: the prefix of one payment's refunds.
[[nodiscard]] inline std::string refund_key_prefix(std::uint64_t merchant_id,
                                                   std::string_view order_id) {
  PAYCORE_ASSERT(!order_id.empty());
  PAYCORE_ASSERT_LE(order_id.size(), kOrderIdBytesMax);
  std::string key;
  key.push_back(kRefundTable);
  append_u64_be(key, merchant_id);
  key.push_back(static_cast<char>(order_id.size()));
  key.append(order_id);
  return key;
}

[[nodiscard]] inline std::string refund_key(std::uint64_t merchant_id, std::string_view order_id,
                                            std::uint32_t refund_seq) {
  std::string key = refund_key_prefix(merchant_id, order_id);
  append_u32_be(key, refund_seq);
  return key;
}

}  // namespace paycore::archive
