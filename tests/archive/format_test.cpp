// archive/format.hpp: keys that sort as the listing needs, records that carry every field and
// refuse every damage.
#include "archive/format.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/archive/archive_test_util.hpp"

namespace paycore {
namespace {

using testing::add_refund;
using testing::make_payment;

ArchivedPayment payment_with_everything() {
  ArchivedPayment p = make_payment("merchant_1", "ord_1", 1'700'000'000'000'000,
                                   PaymentStatus::completed, "balance");
  add_refund(&p, "refund_a", 300, 1'700'000'000'100'000);
  add_refund(&p, "refund_b", 200, 1'700'000'000'200'000);
  return p;
}

TEST(ArchiveFormat, RoundTripKeepsEveryFieldAndRefunds) {
  for (const ArchivedPayment& original :
       {payment_with_everything(), make_payment("m", "o", 0, PaymentStatus::failed, "wechat")}) {
    ASSERT_TRUE(archive::check_payment(original).is_ok());
    const std::string key =
        archive::payment_key(original.payment.merchant_id.view(), original.payment.order_id.view());
    const StatusOr<ArchivedPayment> decoded =
        archive::decode_payment(key, archive::encode_payment(original));
    ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
    testing::expect_same(*decoded, original);
  }
}

TEST(ArchiveFormat, RecordCarriesCurrencyLettersAndStatusNumber) {
  const std::string record = archive::encode_payment(payment_with_everything());
  EXPECT_EQ(record.substr(10, 3), "CNY");
  EXPECT_EQ(static_cast<int>(record[9]), static_cast<int>(PaymentStatus::completed));
  EXPECT_EQ(static_cast<int>(record[archive::value_version_offset]),
            archive::archive_format_version);
}

TEST(ArchiveFormat, ListKeysSortNewestFirstThenByOrderId) {
  std::vector<std::string> keys = {
      archive::list_key("m1", 100, "b"), archive::list_key("m1", 300, "z"),
      archive::list_key("m1", 100, "a"), archive::list_key("m1", 200, "a"),
      archive::list_key("m1", 100, "aa")};
  std::sort(keys.begin(), keys.end());
  const std::vector<std::string> expected = {
      archive::list_key("m1", 300, "z"), archive::list_key("m1", 200, "a"),
      archive::list_key("m1", 100, "a"), archive::list_key("m1", 100, "aa"),
      archive::list_key("m1", 100, "b")};
  EXPECT_EQ(keys, expected);
}

TEST(ArchiveFormat, OneMerchantIsNeverAPrefixOfAnother) {
  const std::string prefix = archive::list_prefix("m1");
  const std::string end = archive::list_prefix_end("m1");
  for (const std::string& other : {archive::list_key("m10", 5, "o"), archive::list_key("m", 5, "o"),
                                   archive::list_key("m2", 5, "o")}) {
    EXPECT_FALSE(other >= prefix && other < end) << archive::describe_key(other);
  }
  const std::string own = archive::list_key("m1", 5, "o");
  EXPECT_TRUE(own >= prefix && own < end);
  // Without the length, merchant "m1" with order "0o" would be merchant "m10" with order "o".
  EXPECT_NE(archive::payment_key("m1", "0o"), archive::payment_key("m10", "o"));
}

TEST(ArchiveFormat, DayKeysSortByTimeAcrossMerchants) {
  EXPECT_LT(archive::day_key(100, "zzz", "z"), archive::day_key(101, "a", "a"));
  EXPECT_LT(archive::day_key(255, "m", "o"), archive::day_key(256, "m", "o"));
  EXPECT_GE(archive::day_key(100, "m", "o"), archive::day_prefix(100));
  EXPECT_LT(archive::day_key(100, "m", "o"), archive::day_prefix(101));
}

TEST(ArchiveFormat, DescribeKeyNamesEachTable) {
  EXPECT_EQ(archive::describe_key(archive::payment_key("m1", "o1")), "P/m1/o1");
  EXPECT_EQ(archive::describe_key(archive::list_key("m1", 42, "o1")), "L/m1/created_at_us=42/o1");
  EXPECT_EQ(archive::describe_key(archive::day_key(42, "m1", "o1")), "D/created_at_us=42/m1/o1");
  EXPECT_EQ(archive::describe_key(archive::meta_key("position")), "M/position");
  EXPECT_EQ(archive::describe_key(std::string("P\xff", 2)), "0x50ff");
}

TEST(ArchiveFormat, FlippedByteIsCorruptionNamingTheKey) {
  const ArchivedPayment p = payment_with_everything();
  const std::string key = archive::list_key("merchant_1", p.payment.created_at_us, "ord_1");
  const std::string record = archive::encode_payment(p);
  for (std::size_t i = 0; i < record.size(); ++i) {
    std::string damaged = record;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
    const StatusOr<ArchivedPayment> decoded = archive::decode_payment(key, damaged);
    ASSERT_FALSE(decoded.is_ok()) << "byte " << i;
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    EXPECT_NE(decoded.status().message().find("L/merchant_1/created_at_us=1700000000000000/ord_1"),
              std::string::npos)
        << decoded.status().to_string();
  }
}

TEST(ArchiveFormat, TruncatedOrLongerRecordIsCorruption) {
  const ArchivedPayment p = payment_with_everything();
  const std::string key = archive::payment_key("merchant_1", "ord_1");
  const std::string record = archive::encode_payment(p);
  for (std::size_t size = 0; size < record.size(); ++size) {
    EXPECT_EQ(archive::decode_payment(key, record.substr(0, size)).status().code(),
              StatusCode::kCorruption)
        << size;
  }
  EXPECT_EQ(archive::decode_payment(key, record + "x").status().code(), StatusCode::kCorruption);
}

// A damaged record whose checksum was recomputed still fails the content checks.
std::string resealed(std::string record) {
  const std::uint64_t checksum = archive::value_checksum(record);
  for (std::size_t i = 0; i < 8; ++i) record[i] = static_cast<char>(checksum >> (8 * i));
  return record;
}

TEST(ArchiveFormat, BadFieldsUnderAGoodChecksumAreCorruption) {
  const std::string key = archive::payment_key("merchant_1", "ord_1");
  const std::string record = archive::encode_payment(payment_with_everything());
  const auto with_byte = [&](std::size_t offset, char byte) {
    std::string damaged = record;
    damaged[offset] = byte;
    return archive::decode_payment(key, resealed(damaged)).status();
  };
  EXPECT_NE(with_byte(8, 2).message().find("format version 2"), std::string::npos);
  EXPECT_NE(with_byte(9, 0).message().find("bad status"), std::string::npos);
  EXPECT_NE(with_byte(9, 8).message().find("bad status"), std::string::npos);
  EXPECT_NE(with_byte(10, 'x').message().find("unknown currency"), std::string::npos);
  EXPECT_NE(with_byte(46, '/').message().find("bad merchant_id"), std::string::npos);
}

TEST(ArchiveFormat, RecordUnderAnotherKeyIsCorruption) {
  const ArchivedPayment p = payment_with_everything();
  const std::string record = archive::encode_payment(p);
  const auto error = [&](const std::string& key) {
    return archive::decode_payment(key, record).status().message();
  };
  EXPECT_NE(error(archive::payment_key("merchant_1", "ord_2")).find("another payment"),
            std::string::npos);
  EXPECT_NE(error(archive::payment_key("merchant_2", "ord_1")).find("another payment"),
            std::string::npos);
  EXPECT_NE(error(archive::list_key("merchant_1", 5, "ord_1")).find("created_at_us"),
            std::string::npos);
  EXPECT_NE(error(archive::meta_key("position")).find("not a payment key"), std::string::npos);
}

TEST(ArchiveFormat, PaymentBreakingAContentRuleIsRefusedBeforeWriting) {
  const auto refused = [](const ArchivedPayment& p) {
    const Status status = archive::check_payment(p);
    return status.code() == StatusCode::kInvalidArgument &&
           status.message().find("merchant_1/ord_1") != std::string::npos;
  };
  ArchivedPayment p = payment_with_everything();
  p.payment.refunded_amount += 1;
  EXPECT_TRUE(refused(p)) << "refunds that do not add up";
  p = payment_with_everything();
  p.payment.channel = Id::of("alipay");
  EXPECT_TRUE(refused(p)) << "a payer on an external channel";
  p = payment_with_everything();
  p.payment.created_at_us = -1;
  EXPECT_TRUE(refused(p)) << "a negative time";
  p = payment_with_everything();
  p.payment.currency = Currency{};
  EXPECT_TRUE(refused(p)) << "no currency";
  p = payment_with_everything();
  p.refunds.resize(archive::archive_refunds_per_payment_max + 1, p.refunds[0]);
  EXPECT_TRUE(refused(p)) << "more refunds than the count holds";
}

TEST(ArchiveFormat, PositionRoundTripAndDamage) {
  const std::string value = archive::encode_position(7, 42, 1'700'000'000'000'000, 3);
  const StatusOr<archive::PositionFields> fields = archive::decode_position(value);
  ASSERT_TRUE(fields.is_ok());
  EXPECT_EQ(fields->rows_end, 7U);
  EXPECT_EQ(fields->lsn, 42U);
  EXPECT_EQ(fields->as_of_us, 1'700'000'000'000'000);
  EXPECT_EQ(fields->jobs, 3U);
  std::string damaged = value;
  damaged[20] = static_cast<char>(damaged[20] ^ 1);
  const Status status = archive::decode_position(damaged).status();
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("M/position"), std::string::npos);
}

}  // namespace
}  // namespace paycore
