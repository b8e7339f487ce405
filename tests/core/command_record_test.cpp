// Command records (core/command_record.hpp): a command and its outcome, as the log holds them
// since events (issue 15). One test per failure mode of the decoder, round trips of every
// resource, and a random run whose every mutation's record decodes to what apply returned.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "commands.hpp"
#include "core/command_record.hpp"
#include "core/engine_records.hpp"
#include "random_commands.hpp"

namespace paycore::testing {
namespace {

std::vector<std::byte> encode(const Command& c, const CommandOutcome& o) {
  std::vector<std::byte> out(command_record_bytes_max);
  out.resize(encode_command_record(c, o, out));
  return out;
}

struct Decoded {
  CommandDecodeError error = CommandDecodeError::ok;
  Command command;
  CommandOutcome outcome;
  bool has_outcome = false;
};

Decoded decode(std::span<const std::byte> payload, std::uint16_t type = record_type_command_outcome) {
  Decoded d;
  d.error = decode_command_record(type, payload, &d.command, &d.outcome, &d.has_outcome);
  return d;
}

// A driver with an account, a channel and one payment of each kind of channel.
class CommandRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d.run(add_channel("alipay")).mutated);
    ASSERT_EQ(d.run(open_account("o1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(d.run(deposit("o2", "alice", 10'000)).code, ResultCode::ok);
    ASSERT_EQ(d.run(create_mandate("om0", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
  }
  // The record of `c` applied now, and the outcome it holds.
  std::vector<std::byte> record_of(const Command& c, CommandOutcome* outcome) {
    Command stamped = c;
    const Result r = d.run(c);
    stamped.timestamp_us = d.now_us();
    EXPECT_TRUE(r.mutated);
    *outcome = outcome_of(r);
    last_command = stamped;
    return encode(stamped, *outcome);
  }
  Driver d;
  Command last_command;
};

TEST_F(CommandRecord, APaymentsOutcomeRoundTripsWithItsView) {
  CommandOutcome o;
  const auto bytes = record_of(pay("m1", "r1", "o-1", 250, "alice"), &o);
  ASSERT_EQ(o.resource, ResourceKind::payment);
  EXPECT_EQ(o.payment.status, PaymentStatus::paid);
  const Decoded got = decode(bytes);
  ASSERT_EQ(got.error, CommandDecodeError::ok);
  EXPECT_TRUE(got.has_outcome);
  EXPECT_EQ(got.command, last_command);
  EXPECT_EQ(got.outcome, o);
  EXPECT_EQ(got.outcome.payment.order_id.view(), "o-1");
  EXPECT_EQ(got.outcome.payment.amount, 250);
}

TEST_F(CommandRecord, AnAccountsAndAMandatesOutcomeRoundTrip) {
  CommandOutcome deposit_outcome;
  const auto deposit_bytes = record_of(deposit("o3", "alice", 5), &deposit_outcome);
  EXPECT_EQ(deposit_outcome.account.balance, 10'005);
  EXPECT_EQ(decode(deposit_bytes).outcome, deposit_outcome);
  CommandOutcome created;
  record_of(create_mandate("om1", "md-1", "alice", "m2"), &created);
  CommandOutcome revoked;
  const auto revoke_bytes = record_of(revoke_mandate("om2", "md-1"), &revoked);
  ASSERT_EQ(revoked.resource, ResourceKind::mandate);
  EXPECT_EQ(revoked.mandate.status, MandateStatus::revoked);
  EXPECT_EQ(decode(revoke_bytes).outcome, revoked);
}

TEST_F(CommandRecord, AKeptRefusalIsItsOutcome) {
  CommandOutcome o;
  const auto bytes = record_of(pay("m1", "r2", "o-2", 1'000'000, "alice"), &o);
  EXPECT_EQ(o.code, ResultCode::insufficient_funds);
  EXPECT_EQ(decode(bytes).outcome.code, ResultCode::insufficient_funds);
}

TEST_F(CommandRecord, ATicksOutcomeCountsTheExpiredPayments) {
  ASSERT_EQ(d.run(pay_external("m1", "r3", "o-3", 100, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(pay_external("m1", "r4", "o-4", 100, "alipay")).code, ResultCode::ok);
  CommandOutcome o;
  const auto bytes = record_of(tick(1), &o);
  EXPECT_EQ(o.expired_count, 2U);
  EXPECT_EQ(o.resource, ResourceKind::none);
  EXPECT_EQ(decode(bytes).outcome, o);
}

TEST_F(CommandRecord, ALegacyCommandRecordHasNoOutcome) {
  const Command c = deposit("o9", "alice", 7);
  std::vector<std::byte> legacy(command_encoded_bytes_max);
  legacy.resize(encode_command(c, legacy));
  const Decoded got = decode(legacy, record_type_command);
  ASSERT_EQ(got.error, CommandDecodeError::ok);
  EXPECT_FALSE(got.has_outcome);
  EXPECT_EQ(got.command, c);
  EXPECT_EQ(got.outcome, CommandOutcome{});
}

TEST_F(CommandRecord, AnotherRecordTypeIsRefused) {
  CommandOutcome o;
  const auto bytes = record_of(deposit("o3", "alice", 5), &o);
  EXPECT_EQ(decode(bytes, 3).error, CommandDecodeError::unknown_kind);
}

TEST_F(CommandRecord, EveryPrefixIsTruncated) {
  CommandOutcome o;
  const auto bytes = record_of(pay("m1", "r1", "o-1", 250, "alice"), &o);
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    const Decoded got = decode(std::span(bytes).first(size));
    EXPECT_NE(got.error, CommandDecodeError::ok) << size;
    EXPECT_FALSE(got.has_outcome) << size;
  }
}

TEST_F(CommandRecord, TrailingBytesAreRefused) {
  CommandOutcome o;
  auto bytes = record_of(deposit("o3", "alice", 5), &o);
  bytes.push_back(std::byte{0});
  EXPECT_EQ(decode(bytes).error, CommandDecodeError::trailing_bytes);
}

TEST_F(CommandRecord, ACommandLengthPastTheRecordIsTruncated) {
  CommandOutcome o;
  auto bytes = record_of(deposit("o3", "alice", 5), &o);
  bytes[0] = std::byte{0xff};
  bytes[1] = std::byte{0xff};
  EXPECT_EQ(decode(bytes).error, CommandDecodeError::truncated);
}

// Offset of the outcome within a record (after the u16 length and the command).
std::size_t outcome_offset(std::span<const std::byte> bytes) {
  return 2 + (static_cast<std::size_t>(bytes[0]) | static_cast<std::size_t>(bytes[1]) << 8);
}

TEST_F(CommandRecord, EachOutOfRangeOutcomeFieldIsRefused) {
  CommandOutcome o;
  const auto bytes = record_of(pay("m1", "r1", "o-1", 250, "alice"), &o);
  const std::size_t at = outcome_offset(bytes);
  struct Case {
    std::size_t offset;
    std::uint8_t value;
    CommandDecodeError want;
  };
  const Case cases[] = {
      {0, 9, CommandDecodeError::unknown_version},
      {1, static_cast<std::uint8_t>(ResultCode::invalid_field), CommandDecodeError::bad_enum},
      {1, 200, CommandDecodeError::bad_enum},
      {2, 4, CommandDecodeError::bad_enum},  // notification outcome
      {3, 1, CommandDecodeError::bad_enum},  // an anomaly reason without an anomaly
      {4, 4, CommandDecodeError::bad_enum},  // resource kind
      {9, 2, CommandDecodeError::bad_enum},  // flags: an unknown bit
  };
  for (const Case& c : cases) {
    auto changed = bytes;
    changed[at + c.offset] = std::byte{c.value};
    EXPECT_EQ(decode(changed).error, c.want) << "offset " << c.offset;
  }
  auto bad_status = bytes;
  bad_status.back() = std::byte{0};  // the payment's status: the view's last byte
  EXPECT_EQ(decode(bad_status).error, CommandDecodeError::bad_enum);
}

TEST(CommandRecordMismatch, NamesWhatDiffers) {
  CommandOutcome a;
  a.resource = ResourceKind::payment;
  a.payment.status = PaymentStatus::paid;
  CommandOutcome b = a;
  EXPECT_EQ(describe_outcome_mismatch(a, b), "");
  b.code = ResultCode::insufficient_funds;
  EXPECT_NE(describe_outcome_mismatch(a, b).find("insufficient_funds"), std::string::npos);
  b = a;
  b.expired_count = 3;
  EXPECT_NE(describe_outcome_mismatch(a, b).find("apply here says 3"), std::string::npos);
  b = a;
  b.payment.refunded_amount = 1;
  EXPECT_NE(describe_outcome_mismatch(a, b).find("representation"), std::string::npos);
}

// Every mutation of a random run: its record decodes to the command and the outcome apply gave.
TEST(CommandRecordRandom, EveryMutationsRecordDecodesToItsCommandAndOutcome) {
  const std::uint64_t seed = env_or("PAYCORE_SEED", 20261201);
  SCOPED_TRACE("PAYCORE_SEED=" + std::to_string(seed));
  Driver d;
  ASSERT_TRUE(d.run(add_channel("alipay")).mutated);
  ASSERT_TRUE(d.run(add_channel("wechat")).mutated);
  Generator gen(seed, d.now_us());
  std::map<ResourceKind, int> seen;
  for (int i = 0; i < 20'000; ++i) {
    Command c = gen.next();
    const Result r = d.run(c, gen.step_us());
    if (!r.mutated) continue;
    c.timestamp_us = d.now_us();
    const CommandOutcome o = outcome_of(r);
    // The core encodes straight from its Result: the same bytes as through the outcome.
    std::vector<std::byte> from_result(command_record_bytes_max);
    from_result.resize(encode_command_record(c, r, from_result));
    ASSERT_EQ(from_result, encode(c, o)) << "command " << i;
    const Decoded got = decode(encode(c, o));
    ASSERT_EQ(got.error, CommandDecodeError::ok) << "command " << i << " " << to_string(c.kind);
    ASSERT_EQ(got.command, c) << "command " << i;
    ASSERT_EQ(got.outcome, o) << "command " << i;
    ++seen[o.resource];
  }
  // The run covered every kind of resource (else the test proves less than it says).
  EXPECT_GT(seen[ResourceKind::account], 0);
  EXPECT_GT(seen[ResourceKind::payment], 0);
  EXPECT_GT(seen[ResourceKind::mandate], 0);
}

}  // namespace
}  // namespace paycore::testing
