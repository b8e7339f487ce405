#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <xxhash.h>

#include "commands.hpp"

namespace paycore::testing {
namespace {

std::vector<std::byte> encode(const Command& c) {
  std::vector<std::byte> out(command_encoded_bytes_max);
  out.resize(encode_command(c, out));
  return out;
}

TEST(CommandCodec, RoundTripsEveryField) {
  Command c = notify("alipay", "t-1", "m_001", "o-1001", 1234, NotificationStatus::failed, "BHD");
  c.timestamp_us = 1'795'670'354'123'456;
  c.paid_at_us = -5;
  c.flags = command_flag_operator;
  c.expire_max = 77;
  c.request_id = Id::of("r.1:x");
  c.account = Id::of("acct");
  c.account_kind = AccountKind::merchant;
  const auto bytes = encode(c);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(std::memcmp(&back, &c, sizeof(Command)), 0);
}

// paid_at_us and pending_lifetime_us were one field (time_us): they share the i64 at offset 28,
// so logs written before the split decode to the same commands, byte for byte.
std::int64_t time_field_of(const std::vector<std::byte>& bytes) {
  std::int64_t value = 0;
  std::memcpy(&value, bytes.data() + command_encoding_time_field_offset, sizeof(value));
  return value;
}

TEST(CommandCodec, NotificationPaidAtIsTheI64AtOffset28) {
  Command c = notify("alipay", "t-1", "m_001", "o-1", 100, NotificationStatus::success);
  c.paid_at_us = 1'795'670'354'123'456;
  const auto bytes = encode(c);
  EXPECT_EQ(time_field_of(bytes), c.paid_at_us);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(back.paid_at_us, c.paid_at_us);
  EXPECT_EQ(back.pending_lifetime_us, 0);
}

TEST(CommandCodec, TickLifetimeIsTheI64AtOffset28) {
  const Command c = tick(900'000'000, 7);
  const auto bytes = encode(c);
  EXPECT_EQ(time_field_of(bytes), 900'000'000);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(back.pending_lifetime_us, 900'000'000);
  EXPECT_EQ(back.paid_at_us, 0);
  EXPECT_EQ(encode(back), bytes);
}

TEST(CommandCodec, ArchivePaymentsFieldsShareTheTickSlots) {
  Command c;
  c.kind = CommandKind::archive_payments;
  c.timestamp_us = 1'795'670'354'123'456;
  c.archive_rows_end = 4096;
  c.archive_as_of_us = 1'795'670'354'000'001;
  const auto bytes = encode(c);
  EXPECT_EQ(time_field_of(bytes), c.archive_as_of_us);
  std::uint32_t count = 0;
  std::memcpy(&count, bytes.data() + 8, sizeof(count));
  EXPECT_EQ(count, 4096u);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(back, c);
  EXPECT_EQ(back.expire_max, 0u);
  EXPECT_EQ(back.paid_at_us, 0);
}

TEST(CommandCodec, TickRetentionIsTheTrailingI64) {
  Command c = tick(900'000'000, 4096);
  c.timestamp_us = 1'795'670'354'123'456;
  c.idempotency_retention_us = 604'800'000'000;
  const auto bytes = encode(c);
  std::int64_t tail = 0;
  std::memcpy(&tail, bytes.data() + bytes.size() - sizeof(tail), sizeof(tail));
  EXPECT_EQ(tail, c.idempotency_retention_us);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(back, c);
  EXPECT_EQ(back.expires_at_us, 0);
}

TEST(CommandCodec, MandateFieldsRoundTrip) {
  Command c = create_mandate("r1", "md-1", "alice", "m_001", 500, 1'795'670'354'000'000, true);
  c.timestamp_us = 1'795'670'000'000'000;
  Command back;
  ASSERT_EQ(decode_command(encode(c), &back), CommandDecodeError::ok);
  EXPECT_EQ(std::memcmp(&back, &c, sizeof(Command)), 0);
  EXPECT_TRUE(back.is_single_use());
}

// A version 1 encoding is a version 2 one without the two trailing ids (mandate_id and
// merchant_id) and expires_at_us, which are then empty and zero.
std::vector<std::byte> as_version_1(std::vector<std::byte> v2) {
  for (std::size_t i = v2.size() - 10; i < v2.size(); ++i) EXPECT_EQ(v2[i], std::byte{0});
  v2.resize(v2.size() - 10);
  v2[0] = std::byte{command_encoding_version_v1};
  return v2;
}

TEST(CommandCodec, Version1LogRecordsStillDecode) {
  Command c = pay("m1", "r1", "o1", 5, "a1");
  c.timestamp_us = 1'795'670'354'123'456;
  Command back;
  ASSERT_EQ(decode_command(as_version_1(encode(c)), &back), CommandDecodeError::ok);
  EXPECT_EQ(std::memcmp(&back, &c, sizeof(Command)), 0);
}

TEST(CommandCodec, SingleUseFlagInVersion1IsRefused) {
  auto bytes = as_version_1(encode(pay("m1", "r1", "o1", 5, "a1")));
  bytes[4] = std::byte{command_flag_single_use};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_enum);
}

// Fingerprints kept in snapshots written before mandates must still match the same request:
// a command that version 1 can hold is fingerprinted over its version 1 bytes, as it was.
TEST(CommandCodec, FingerprintOfAnOldCommandIsUnchanged) {
  Command canonical = pay("m1", "", "o1", 5, "a1");
  const auto v1 = as_version_1(encode(canonical));
  EXPECT_EQ(command_fingerprint(pay("m1", "r1", "o1", 5, "a1")), XXH3_64bits(v1.data(), v1.size()));
}

TEST(CommandCodec, FingerprintCoversTheMandateFields) {
  const Command a = create_mandate("r1", "md-1", "alice", "m1", 500);
  EXPECT_NE(command_fingerprint(a), command_fingerprint(create_mandate("r1", "md-1", "alice", "m2", 500)));
  EXPECT_NE(command_fingerprint(a), command_fingerprint(create_mandate("r1", "md-2", "alice", "m1", 500)));
  EXPECT_NE(command_fingerprint(a), command_fingerprint(create_mandate("r1", "md-1", "alice", "m1", 500, 0, true)));
  EXPECT_NE(command_fingerprint(a), command_fingerprint(create_mandate("r1", "md-1", "alice", "m1", 500, 7)));
}

TEST(CommandCodec, EncodingIsCompactForTypicalPayments) {
  EXPECT_LT(encode(pay("m_001", "req-000001", "order-000001", 100, "cust-0001")).size(), 100u);
}

TEST(CommandCodec, EveryPrefixIsTruncated) {
  const auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Command back;
    EXPECT_EQ(decode_command(std::span(bytes.data(), n), &back), CommandDecodeError::truncated) << n;
  }
}

TEST(CommandCodec, UnknownVersionIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[0] = std::byte{4};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::unknown_version);
}

TEST(CommandCodec, UnknownKindIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[1] = std::byte{99};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::unknown_kind);
}

TEST(CommandCodec, EnumOutOfRangeIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[2] = std::byte{7};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_enum);
}

TEST(CommandCodec, UnknownCurrencyIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[5] = std::byte{'Q'};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_currency);
}

TEST(CommandCodec, InvalidIdCharacterIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[command_encoded_fixed_bytes + 1] = std::byte{' '};  // first byte of the principal
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_id);
}

TEST(CommandCodec, OverlongIdIsRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes[command_encoded_fixed_bytes] = std::byte{65};
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_id);
}

TEST(CommandCodec, TrailingBytesAreRefused) {
  auto bytes = encode(pay("m1", "r1", "o1", 5, "a1"));
  bytes.push_back(std::byte{0});
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::trailing_bytes);
}

Command signed_pay() {
  Command c = pay("m1", "r1", "o1", 5, "a1");
  c.flags = command_flag_nonce;
  c.nonce = Id::of("n0nce-ABC_123");
  c.nonce_timestamp_s = 1'795'670'354;
  return c;
}

TEST(CommandCodec, TheNonceRoundTripsAfterEverythingElse) {
  const Command c = signed_pay();
  Command plain = c;
  plain.flags = 0;
  plain.nonce = Id{};
  plain.nonce_timestamp_s = 0;
  const auto bytes = encode(c);
  const auto plain_bytes = encode(plain);
  // The plain encoding, then i64 timestamp, u8 length and the nonce's 13 bytes.
  ASSERT_EQ(bytes.size(), plain_bytes.size() + 8 + 1 + 13);
  EXPECT_EQ(std::memcmp(bytes.data() + 5, plain_bytes.data() + 5, plain_bytes.size() - 5), 0);
  Command back;
  ASSERT_EQ(decode_command(bytes, &back), CommandDecodeError::ok);
  EXPECT_EQ(std::memcmp(&back, &c, sizeof(Command)), 0);
  EXPECT_TRUE(back.carries_nonce());
}

TEST(CommandCodec, TheNonceFollowsAnArchivedPayment) {
  Command c = signed_pay();
  c.kind = CommandKind::refund_payment;
  c.flags |= command_flag_archived_payment;
  c.archived.status = PaymentStatus::completed;
  c.archived.amount = 5;
  c.archived.request_id = Id::of("r0");
  Command back;
  ASSERT_EQ(decode_command(encode(c), &back), CommandDecodeError::ok);
  EXPECT_EQ(std::memcmp(&back, &c, sizeof(Command)), 0);
}

TEST(CommandCodec, ANonceFlagWithoutANonceIsRefused) {
  auto bytes = encode(signed_pay());
  bytes.resize(bytes.size() - 14);  // the nonce (u8 length + 13 bytes)
  bytes.push_back(std::byte{0});    // as an empty one
  Command back;
  EXPECT_EQ(decode_command(bytes, &back), CommandDecodeError::bad_id);
}

TEST(CommandCodec, EveryPrefixOfASignedCommandIsTruncated) {
  const auto bytes = encode(signed_pay());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Command back;
    EXPECT_EQ(decode_command(std::span(bytes.data(), n), &back), CommandDecodeError::truncated) << n;
  }
}

// The nonce is transport: a retry with a new nonce is the same request (docs/api.md
// "Idempotency"), and a signed command is fingerprinted exactly as an unsigned one.
TEST(CommandFingerprint, IgnoresTheNonce) {
  const Command c = signed_pay();
  Command other = c;
  other.nonce = Id::of("another-nonce");
  other.nonce_timestamp_s = 7;
  EXPECT_EQ(command_fingerprint(c), command_fingerprint(other));
  EXPECT_EQ(command_fingerprint(c), command_fingerprint(pay("m1", "r1", "o1", 5, "a1")));
}

TEST(CommandFingerprint, IgnoresTimestampAndRequestIdButNotTheBody) {
  Command a = pay("m1", "r1", "o1", 5, "a1");
  Command b = a;
  b.timestamp_us = 99;
  b.request_id = Id::of("other");
  EXPECT_EQ(command_fingerprint(a), command_fingerprint(b));
  b.amount = 6;
  EXPECT_NE(command_fingerprint(a), command_fingerprint(b));
}

TEST(Ids, ValidationFollowsTheApi) {
  EXPECT_TRUE(id_is_valid("A-z_0.9:x"));
  EXPECT_TRUE(id_is_valid(std::string(64, 'a')));
  EXPECT_FALSE(id_is_valid(std::string(65, 'a')));
  EXPECT_FALSE(id_is_valid(""));
  using namespace std::string_view_literals;
  for (std::string_view bad : {"a b"sv, "a/b"sv, "é"sv, "a\nb"sv, "a\0b"sv, "a+b"sv, "a#b"sv}) {
    EXPECT_FALSE(id_is_valid(bad)) << bad;
  }
  Id id;
  EXPECT_FALSE(Id::from("bad id", &id));
  EXPECT_TRUE(id.empty());
}

}  // namespace
}  // namespace paycore::testing
