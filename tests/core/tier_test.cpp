// The hot tier's rules in the state machine (docs/design.md "Hot and cold"): idempotency
// retention, which payments `archive_payments` takes out of memory, and what stays true after.
#include <gtest/gtest.h>

#include <string>

#include "commands.hpp"
#include "core/snapshot.hpp"

namespace paycore::testing {
namespace {

constexpr std::int64_t retention_us = 3'600'000'000;  // one hour

Command retention_tick() {
  Command c = tick(pending_lifetime_default_us, 1'000'000);
  c.idempotency_retention_us = retention_us;
  return c;
}

Command archive(std::uint32_t rows_end, std::int64_t as_of_us) {
  Command c;
  c.kind = CommandKind::archive_payments;
  c.archive_rows_end = rows_end;
  c.archive_as_of_us = as_of_us;
  return c;
}

class TierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(d.run(add_channel("alipay")).mutated);
    ASSERT_EQ(d.run(open_account("o1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(d.run(deposit("o2", "alice", 1'000'000'000)).code, ResultCode::ok);
    ASSERT_EQ(d.run(create_mandate("om1", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
  }
  void TearDown() override { EXPECT_TRUE(d.state.balances_sum_to_zero_slow()); }

  void pay_many(int count, const std::string& prefix) {
    for (int i = 0; i < count; ++i) {
      const std::string n = prefix + std::to_string(i);
      ASSERT_EQ(d.run(pay("m1", "r" + n, "o" + n, 1, "alice"), 1).code, ResultCode::ok);
    }
  }
  Amount balance(std::string_view account) {
    const std::uint32_t row = d.state.find_account(account);
    EXPECT_NE(row, row_none) << account;
    return row == row_none ? 0 : d.state.accounts[row].balance;
  }
  // Lets the retention pass and drops the records, so that the payments may leave.
  void expire_records() { ASSERT_TRUE(d.run(retention_tick(), retention_us + 1).mutated); }

  Driver d;
};

TEST_F(TierTest, RetentionDropsOldIdempotencyRecords) {
  pay_many(3, "a");
  EXPECT_EQ(d.state.idempotency.live_count(), 6u);  // 3 set-up records + 3 payments
  expire_records();
  EXPECT_EQ(d.state.idempotency.live_count(), 0u);
  EXPECT_GT(d.state.idempotency_horizon_us, d.state.payments[d.state.payments.begin()].updated_at_us);
  // A repeat after the retention executes as new: the order id is still taken.
  EXPECT_EQ(d.run(pay("m1", "ra0", "oa0", 1, "alice")).code, ResultCode::duplicate_order);
}

TEST_F(TierTest, RetentionKeepsRecordsYoungerThanIt) {
  pay_many(2, "a");
  d.run(tick(pending_lifetime_default_us), retention_us);  // no retention: nothing dropped
  pay_many(2, "b");
  EXPECT_FALSE(d.run(tick(pending_lifetime_default_us)).mutated);
  const Result r = d.run(retention_tick(), 10);
  EXPECT_TRUE(r.mutated);
  EXPECT_EQ(d.state.idempotency.live_count(), 2u);  // the b payments'
  EXPECT_TRUE(d.run(pay("m1", "rb1", "ob1", 1, "alice")).replayed);
}

TEST_F(TierTest, PaymentsStayWhileARecordRefersToThem) {
  pay_many(3, "a");
  const Result r = d.run(archive(d.state.payments.size(), d.now_us()));
  EXPECT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.archived_count, 0u);
  EXPECT_EQ(d.state.payments.begin(), 0u);
  EXPECT_EQ(d.state.archived_rows_end, 3u);  // the archive holds them, memory keeps them
}

TEST_F(TierTest, ArchivedPaymentsLeaveMemoryAndTheirIndexes) {
  pay_many(3, "a");
  expire_records();
  const Result r = d.run(archive(2, d.now_us()));
  EXPECT_EQ(r.archived_count, 2u);
  EXPECT_TRUE(r.mutated);
  EXPECT_EQ(d.state.payments.begin(), 2u);
  EXPECT_EQ(d.state.payments.live_count(), 1u);
  const std::uint32_t merchant = d.state.find_account("m1");
  EXPECT_EQ(d.state.find_payment(merchant, "oa0"), row_none);
  EXPECT_EQ(d.state.find_payment(merchant, "oa2"), 2u);
  EXPECT_EQ(d.run(get_payment("m1", "oa0")).code, ResultCode::archive_check_needed);
  EXPECT_EQ(d.run(get_payment("m1", "o-never")).code, ResultCode::payment_not_found);
  EXPECT_EQ(d.run(get_payment("m1", "oa2")).payment.amount, 1);
  EXPECT_EQ(d.state.accounts[merchant].balance, 3);  // money never moves with the archive
}

TEST_F(TierTest, ArchivingStopsAtAPendingPayment) {
  ASSERT_EQ(d.run(pay_external("m1", "rx", "ox", 5, "alipay")).code, ResultCode::ok);
  pay_many(2, "a");
  expire_records();
  const Result r = d.run(archive(d.state.payments.size(), d.now_us()));
  EXPECT_EQ(r.archived_count, 0u);  // the front is PENDING: the window waits for it
}

TEST_F(TierTest, ArchivingStopsAtAPaymentChangedSinceTheCopy) {
  pay_many(3, "a");
  expire_records();
  const std::int64_t copied_at_us = d.now_us();
  ASSERT_EQ(d.run(order_command(CommandKind::ship_payment, "m1", "s1", "oa1")).code,
            ResultCode::ok);
  const Result r = d.run(archive(3, copied_at_us));
  EXPECT_EQ(r.archived_count, 1u);  // oa0 only: oa1 changed after its copy was read
  EXPECT_EQ(d.state.payments.begin(), 1u);
}

TEST_F(TierTest, RowsEndPastTheTableIsInvalid) {
  pay_many(1, "a");
  const Result r = d.run(archive(2, d.now_us()));
  EXPECT_EQ(r.code, ResultCode::invalid_field);
  EXPECT_FALSE(r.mutated);
  EXPECT_EQ(d.run(archive(1, d.now_us() + 10'000'000)).code, ResultCode::invalid_field);
}

TEST_F(TierTest, RefundsOfArchivedPaymentsLeaveWithThem) {
  pay_many(2, "a");
  ASSERT_EQ(d.run(refund("m1", "f1", "oa0", 1)).code, ResultCode::ok);
  expire_records();
  EXPECT_EQ(d.run(archive(1, d.now_us())).archived_count, 1u);
  EXPECT_EQ(d.state.refunds.live_count(), 0u);
}

TEST_F(TierTest, SettledPaymentThatLeftIsPassedOverByTheExpiry) {
  ASSERT_EQ(d.run(pay_external("m1", "rx", "ox", 5, "alipay")).code, ResultCode::ok);
  ASSERT_EQ(d.run(notify("alipay", "t1", "m1", "ox", 5, NotificationStatus::success)).code,
            ResultCode::ok);
  expire_records();
  ASSERT_EQ(d.run(archive(1, d.now_us())).archived_count, 1u);
  EXPECT_EQ(d.state.find_channel_txn(1, "t1"), row_none);
  const Result r = d.run(tick(1'000'000), 1'000'000);  // the queue entry's payment is gone
  EXPECT_EQ(r.expired_count, 0u);
  EXPECT_EQ(d.state.expiry_cursor, 1u);
}

TEST_F(TierTest, MemoryOfArchivedPaymentsIsReturned) {
  const std::uint32_t count = 5 * ChunkedVector<PaymentRow>::chunk_items;
  pay_many(static_cast<int>(count), "a");
  const std::size_t full_bytes = d.state.memory_bytes();
  expire_records();
  ASSERT_EQ(d.run(archive(count, d.now_us())).archived_count, count);
  // Every whole chunk of payments and records goes; the index keeps its size (tombstones) and
  // the filter gains its first partition.
  EXPECT_LT(d.state.memory_bytes() + 4 * ChunkedVector<PaymentRow>::chunk_bytes, full_bytes);
}

TEST_F(TierTest, SnapshotKeepsTheWindows) {
  pay_many(5, "a");
  expire_records();
  ASSERT_EQ(d.run(archive(3, d.now_us())).archived_count, 3u);
  pay_many(2, "b");
  const std::string bytes = serialize_snapshot(d.state, 7, 0);
  State loaded;
  SnapshotInfo info;
  ASSERT_TRUE(load_snapshot(std::as_bytes(std::span(bytes)), &loaded, &info).is_ok());
  EXPECT_EQ(loaded.payments.begin(), 3u);
  EXPECT_EQ(loaded.payments.size(), 7u);
  EXPECT_EQ(loaded.idempotency.begin(), d.state.idempotency.begin());
  EXPECT_EQ(loaded.archived_rows_end, 3u);
  EXPECT_EQ(loaded.idempotency_horizon_us, d.state.idempotency_horizon_us);
  const std::uint32_t merchant = loaded.find_account("m1");
  EXPECT_EQ(loaded.find_payment(merchant, "oa3"), 3u);
  EXPECT_EQ(loaded.find_payment(merchant, "oa0"), row_none);
  EXPECT_EQ(serialize_snapshot(loaded, 7, 0), bytes);  // the same state, byte for byte
}

// Loading sizes the indexes for the rows in the file, not for every row ever made: after 300M
// archived payments the old sizing took 15.8 GiB and 40 s to load 640k hot ones (issue 12).
TEST(SnapshotSizing, CountsOnlyTheRowsInMemory) {
  SnapshotInfo info;
  info.accounts = 10'000;
  info.payments_begin = 299'500'000;
  info.payments = 300'000'000;
  info.idempotency_begin = 300'100'000;
  info.idempotency = 300'700'000;
  const StateConfig sized = sized_for(StateConfig{}, info);
  EXPECT_EQ(sized.accounts_expected, 15'000u);  // room for half as many again
  EXPECT_EQ(sized.payments_expected, 750'000u);
  EXPECT_EQ(sized.idempotency_expected, 900'000u);
  const StateConfig floor = sized_for(StateConfig{}, SnapshotInfo{});  // never below the defaults
  EXPECT_EQ(floor.payments_expected, StateConfig{}.payments_expected);
  EXPECT_EQ(floor.idempotency_expected, StateConfig{}.idempotency_expected);
}

// The memory of a loaded state, without the filter of archived orders (which grows with the
// archive by design).
std::size_t loaded_hot_bytes(const std::string& bytes) {
  SnapshotInfo info;
  EXPECT_TRUE(check_snapshot(std::as_bytes(std::span(bytes)), &info).is_ok());
  State loaded(sized_for(StateConfig{}, info));
  EXPECT_TRUE(load_snapshot(std::as_bytes(std::span(bytes)), &loaded, &info).is_ok());
  return loaded.memory_bytes() - loaded.archived_orders.memory_bytes();
}

TEST_F(TierTest, LoadedMemoryDoesNotGrowWithTheArchive) {
  pay_many(2, "a");
  const std::size_t small_bytes = loaded_hot_bytes(serialize_snapshot(d.state, 7, 0));
  constexpr int archived_count = 30'000;
  pay_many(archived_count, "b");
  expire_records();
  const std::uint32_t rows_end = d.state.payments.size();
  ASSERT_EQ(d.run(archive(rows_end, d.now_us())).archived_count, rows_end);
  pay_many(2, "c");
  const std::size_t large_bytes = loaded_hot_bytes(serialize_snapshot(d.state, 8, 0));
  // Sized for 30k rows, the two indexes alone would be 1 MiB; sized for the 2 hot ones, 256 KiB.
  EXPECT_LT(large_bytes, small_bytes + 256 * 1024) << small_bytes;
}

TEST_F(TierTest, SnapshotWhoseArchiveIsBehindMemoryIsRefused) {
  pay_many(2, "a");
  expire_records();
  ASSERT_EQ(d.run(archive(2, d.now_us())).archived_count, 2u);
  d.state.archived_rows_end = 1;  // as if the archive's position had been lost
  const std::string bytes = serialize_snapshot(d.state, 7, 0);
  State loaded;
  SnapshotInfo info;
  const Status s = load_snapshot(std::as_bytes(std::span(bytes)), &loaded, &info);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("archive does not hold"), std::string::npos) << s.to_string();
  d.state.archived_rows_end = 2;
}

// ---- Orders that left memory: uniqueness and commands on cold payments

// The command as the edge hands it in again after looking in the archive.
Command checked(Command c, bool in_archive) {
  c.flags |= command_flag_archive_checked | (in_archive ? command_flag_in_archive : 0);
  return c;
}

// A refund (or transition) carrying the payment oa0 as the archive holds it.
Command with_archived_oa0(Command c, Amount refunded_amount = 0) {
  c = checked(c, true);
  c.flags |= command_flag_archived_payment;
  c.currency = ccy("CNY");
  c.channel = Id::of("balance");
  c.account = Id::of("alice");
  c.mandate_id = Id::of("md-alice-m1");
  c.archived.request_id = Id::of("ra0");
  c.archived.amount = 1;
  c.archived.refunded_amount = refunded_amount;
  c.archived.status = PaymentStatus::paid;
  c.archived.created_at_us = 1'700'000'000'000'000;
  c.archived.updated_at_us = 1'700'000'000'000'000;
  return c;
}

class ColdOrderTest : public TierTest {
 protected:
  void SetUp() override {
    TierTest::SetUp();
    pay_many(2, "a");
    expire_records();
    ASSERT_EQ(d.run(archive(1, d.now_us())).archived_count, 1u);  // oa0 is cold
  }
};

TEST_F(ColdOrderTest, NewOrderWithAnArchivedIdAsksTheArchive) {
  const Result r = d.run(pay("m1", "r-new", "oa0", 1, "alice"));
  EXPECT_EQ(r.code, ResultCode::archive_check_needed);
  EXPECT_FALSE(r.mutated);
  const Result found = d.run(checked(pay("m1", "r-new", "oa0", 1, "alice"), true));
  EXPECT_EQ(found.code, ResultCode::duplicate_order);
  EXPECT_TRUE(found.mutated);  // kept under r-new, as any duplicate
  EXPECT_EQ(d.run(pay("m1", "r-new", "oa0", 1, "alice")).code, ResultCode::duplicate_order);
}

TEST_F(ColdOrderTest, FilterFalsePositiveCreatesAfterTheArchiveSaysNo) {
  const Result r = d.run(checked(pay("m1", "r-new", "oa0", 1, "alice"), false));
  EXPECT_EQ(r.code, ResultCode::ok);  // as if the filter had been wrong about oa0
}

TEST_F(ColdOrderTest, NewOrderUnknownToTheFilterNeedsNoArchive) {
  EXPECT_EQ(d.run(pay("m1", "r-new", "o-never-seen", 1, "alice")).code, ResultCode::ok);
}

TEST_F(ColdOrderTest, RefundOfAColdPaymentBringsItBack) {
  EXPECT_EQ(d.run(refund("m1", "f1", "oa0", 1)).code, ResultCode::archive_check_needed);
  const Amount alice_before = balance("alice");
  const Result r = d.run(with_archived_oa0(refund("m1", "f1", "oa0", 1)));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.status, PaymentStatus::refunded);
  EXPECT_EQ(r.payment.refunded_amount, 1);
  EXPECT_EQ(balance("alice"), alice_before + 1);
  const std::uint32_t row = d.state.find_payment(d.state.find_account("m1"), "oa0");
  ASSERT_NE(row, row_none);
  EXPECT_EQ(d.state.payments[row].flags, payment_flag_from_archive);
  EXPECT_EQ(d.run(refund("m1", "f1", "oa0", 1)).replayed, true);
}

TEST_F(ColdOrderTest, RefundOfAColdPaymentChecksItsRefundableRest) {
  const std::uint32_t live = d.state.payments.live_count();
  Command c = with_archived_oa0(refund("m1", "f1", "oa0", 1));
  c.archived.amount = 5;
  c.archived.refunded_amount = 5;
  c.archived.status = PaymentStatus::refunded;
  EXPECT_EQ(d.run(c).code, ResultCode::invalid_state);
  EXPECT_EQ(d.state.payments.live_count(), live);  // a refusal brings nothing back
}

TEST_F(ColdOrderTest, ArchivedCopyThatDoesNotFitTheStateIsRefused) {
  Command c = with_archived_oa0(refund("m1", "f1", "oa0", 1));
  c.account = Id::of("nobody");
  const Result r = d.run(c);
  EXPECT_EQ(r.code, ResultCode::invalid_field);
  EXPECT_FALSE(r.mutated);
}

TEST_F(ColdOrderTest, ColdPaymentNotInTheArchiveIsNotFound) {
  const Result r = d.run(checked(refund("m1", "f1", "oa0", 1), false));
  EXPECT_EQ(r.code, ResultCode::payment_not_found);
}

TEST_F(ColdOrderTest, ShipOfAColdPaidPaymentBringsItBack) {
  const Result r =
      d.run(with_archived_oa0(order_command(CommandKind::ship_payment, "m1", "s1", "oa0")));
  ASSERT_EQ(r.code, ResultCode::ok);
  EXPECT_EQ(r.payment.status, PaymentStatus::shipped);
  EXPECT_EQ(r.payment.created_at_us, 1'700'000'000'000'000);
}

TEST_F(ColdOrderTest, SnapshotKeepsAPaymentBackFromTheArchive) {
  Command c = with_archived_oa0(refund("m1", "f1", "oa0", 1));
  c.archived.amount = 3;
  c.archived.refunded_amount = 1;  // one refund made before it went cold
  ASSERT_EQ(d.run(c).code, ResultCode::ok);
  const std::string bytes = serialize_snapshot(d.state, 9, 0);
  State loaded;
  SnapshotInfo info;
  ASSERT_TRUE(load_snapshot(std::as_bytes(std::span(bytes)), &loaded, &info).is_ok());
  EXPECT_EQ(serialize_snapshot(loaded, 9, 0), bytes);
  EXPECT_TRUE(loaded.order_may_be_archived(loaded.find_account("m1"), "oa0"));
}

// ---- The filter itself

TEST(OrderFilter, NeverForgetsAKey) {
  OrderFilter filter;
  for (std::uint64_t i = 0; i < 3'000'000; ++i) filter.insert(hash_key(7, std::to_string(i)));
  EXPECT_EQ(filter.partitions(), 2u);  // 1M, then 2M keys
  for (std::uint64_t i = 0; i < 3'000'000; i += 997) {
    ASSERT_TRUE(filter.may_contain(hash_key(7, std::to_string(i)))) << i;
  }
}

TEST(OrderFilter, FalsePositivesStayNearOnePercent) {
  OrderFilter filter;
  for (std::uint64_t i = 0; i < 500'000; ++i) filter.insert(hash_key(1, "in-" + std::to_string(i)));
  int positives = 0;
  for (std::uint64_t i = 0; i < 100'000; ++i) positives += filter.may_contain(hash_key(1, "out-" + std::to_string(i)));
  EXPECT_LT(positives, 2'000);  // < 2% (half full: far below)
}

TEST(OrderFilter, RestoreRefusesAPartitionOfTheWrongShape) {
  OrderFilter source;
  source.insert(42);
  OrderFilter copy;
  OrderFilter::PartitionImage image = source.partition(0);
  image.capacity_keys *= 2;
  EXPECT_FALSE(copy.restore_partition(image));
  image = source.partition(0);
  image.blocks = image.blocks.first(64);
  EXPECT_FALSE(copy.restore_partition(image));
  ASSERT_TRUE(copy.restore_partition(source.partition(0)));
  EXPECT_TRUE(copy.may_contain(42));
}

}  // namespace
}  // namespace paycore::testing
