// ArchiveStore: what it writes comes back after a reopen, a job is one atomic batch with the
// archive's position, and a missing, empty, damaged or foreign store is a clear refusal.
#include "archive/store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "archive/format.hpp"
#include "tests/archive/archive_test_util.hpp"

namespace paycore {
namespace {

using testing::add_refund;
using testing::ArchiveDir;
using testing::make_payment;
using testing::open_store;
using testing::RawArchive;
using testing::small_options;
using testing::write_job;

constexpr std::int64_t t0_us = 1'700'000'000'000'000;

std::vector<ArchivedPayment> sample_payments() {
  ArchivedPayment refunded =
      make_payment("merchant_1", "ord_1", t0_us, PaymentStatus::completed, "balance");
  add_refund(&refunded, "refund_1", 400, t0_us + 100);
  add_refund(&refunded, "refund_2", 600, t0_us + 200);
  return {refunded, make_payment("merchant_1", "ord_2", t0_us + 1),
          make_payment("merchant_2", "ord_1", t0_us + 2, PaymentStatus::cancelled, "wechat")};
}

Status open_error(const ArchiveOptions& options) { return ArchiveStore::open(options).status(); }

TEST(ArchiveStore, RoundTripKeepsEveryFieldAndRefundsAcrossReopen) {
  ArchiveDir dir;
  const std::vector<ArchivedPayment> payments = sample_payments();
  ASSERT_TRUE(write_job(*open_store(dir.store()), payments).is_ok());
  const auto store = open_store(dir.store(), /*must_exist=*/true);
  ASSERT_NE(store, nullptr);
  for (const ArchivedPayment& original : payments) {
    const auto found =
        store->get_payment(original.payment.merchant_id.view(), original.payment.order_id.view());
    ASSERT_TRUE(found.is_ok()) << found.status().to_string();
    ASSERT_TRUE(found->has_value());
    testing::expect_same(**found, original);
  }
}

TEST(ArchiveStore, PaymentNotArchivedIsNullopt) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ASSERT_TRUE(write_job(*store, sample_payments()).is_ok());
  const auto found = store->get_payment("merchant_2", "ord_2");
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(store->get_payment("merchant 1", "ord_1").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ArchiveStore, RewriteReplacesTheRecordAndKeepsOneListEntry) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ArchivedPayment p = make_payment("merchant_1", "ord_1", t0_us);
  ASSERT_TRUE(write_job(*store, {p}).is_ok());
  add_refund(&p, "refund_1", 1000, t0_us + 500);
  ASSERT_TRUE(write_job(*store, {p}).is_ok());
  const auto found = store->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(found.is_ok() && found->has_value());
  testing::expect_same(**found, p);
  PaymentListQuery query;
  query.merchant_id = "merchant_1";
  const auto page = store->list_payments(query);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->data.size(), 1U);
  EXPECT_EQ(page->data[0].status, PaymentStatus::refunded);
  int day_count = 0;
  ASSERT_TRUE(store
                  ->for_each_created_between(0, t0_us + 1,
                                             [&](const ArchivedPayment& a) {
                                               EXPECT_EQ(a.payment.status, PaymentStatus::refunded);
                                               return ++day_count > 0;
                                             })
                  .is_ok());
  EXPECT_EQ(day_count, 1);
}

// A payment refunded after it went cold comes back to memory with only its later refunds;
// archived again, it keeps the archive's refunds and gains the new ones, once each.
TEST(ArchiveStore, PaymentBackFromTheArchiveKeepsTheArchivedRefunds) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ArchivedPayment p = make_payment("merchant_1", "ord_1", t0_us);
  add_refund(&p, "refund_1", 100, t0_us + 500);
  ASSERT_TRUE(write_job(*store, {p}).is_ok());
  ArchivedPayment back = p;  // as memory holds it: the total, only the later refund
  back.refunds.clear();
  add_refund(&back, "refund_2", 200, t0_us + 900);
  back.refunds_follow_archived = true;
  ASSERT_TRUE(write_job(*store, {back}).is_ok());
  ASSERT_TRUE(write_job(*store, {back}).is_ok());  // the same copy again adds nothing
  const auto found = store->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(found.is_ok() && found->has_value());
  ASSERT_EQ((*found)->refunds.size(), 2U);
  EXPECT_EQ((*found)->refunds[0].request_id.view(), "refund_1");
  EXPECT_EQ((*found)->refunds[1].request_id.view(), "refund_2");
  EXPECT_EQ((*found)->payment.refunded_amount, 300);
  EXPECT_FALSE((*found)->refunds_follow_archived);
}

// After the idempotency retention a client may reuse a refund's request_id for a new refund of
// the same payment (docs/api.md): that is a refund of its own, kept beside the archived one
// (found by the black-box probe: it was taken for the archived one, the refunds no longer
// added up, and the write was refused for ever, stopping all archiving behind it).
TEST(ArchiveStore, RefundReusingAnArchivedRefundsRequestIdIsKept) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ArchivedPayment p = make_payment("merchant_1", "ord_1", t0_us);
  add_refund(&p, "refund_1", 30, t0_us + 500);
  ASSERT_TRUE(write_job(*store, {p}).is_ok());
  ArchivedPayment back = p;
  back.refunds.clear();
  add_refund(&back, "refund_1", 30, t0_us + 9'000);
  back.refunds_follow_archived = true;
  const Status written = write_job(*store, {back});
  ASSERT_TRUE(written.is_ok()) << written.to_string();
  ASSERT_TRUE(write_job(*store, {back}).is_ok());  // the same copy again adds nothing
  const auto found = store->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(found.is_ok() && found->has_value());
  ASSERT_EQ((*found)->refunds.size(), 2U);
  EXPECT_EQ((*found)->refunds[0].created_at_us, t0_us + 500);
  EXPECT_EQ((*found)->refunds[1].created_at_us, t0_us + 9'000);
  EXPECT_EQ((*found)->payment.refunded_amount, 60);
}

TEST(ArchiveStore, PaymentBackFromAnArchiveThatLostItIsCorruption) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ArchivedPayment back = make_payment("merchant_1", "ord_1", t0_us);
  add_refund(&back, "refund_2", 200, t0_us + 900);
  back.payment.refunded_amount = 300;
  back.refunds_follow_archived = true;
  EXPECT_EQ(write_job(*store, {back}).code(), StatusCode::kCorruption);
  EXPECT_EQ(store->position().jobs, 0U);
}

// A payment archived again after it changed (same created_at_us: it never changes) replaces
// its three records: one entry everywhere, with the new status.
TEST(ArchiveStore, RewriteReplacesTheRecordsUnderTheSameKeys) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ASSERT_TRUE(write_job(*store, {make_payment("merchant_1", "ord_1", t0_us, PaymentStatus::paid)}).is_ok());
  ASSERT_TRUE(write_job(*store, {make_payment("merchant_1", "ord_1", t0_us, PaymentStatus::shipped)}).is_ok());
  PaymentListQuery query;
  query.merchant_id = "merchant_1";
  const auto page = store->list_payments(query);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->data.size(), 1U);
  EXPECT_EQ(page->data[0].status, PaymentStatus::shipped);
  std::vector<PaymentStatus> days;
  ASSERT_TRUE(store
                  ->for_each_created_between(0, INT64_MAX,
                                             [&](const ArchivedPayment& a) {
                                               days.push_back(a.payment.status);
                                               return true;
                                             })
                  .is_ok());
  EXPECT_EQ(days, std::vector<PaymentStatus>{PaymentStatus::shipped});
  const auto got = store->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(got.is_ok() && got->has_value());
  EXPECT_EQ((*got)->payment.status, PaymentStatus::shipped);
}

TEST(ArchiveStore, PositionIsWrittenWithThePaymentsAndReadBackAfterReopen) {
  ArchiveDir dir;
  const ArchivePosition position{250, 9'001, t0_us + 5, 1};
  {
    const auto store = open_store(dir.store());
    EXPECT_EQ(store->position(), ArchivePosition{});
    ASSERT_TRUE(store->write(sample_payments(), position).is_ok());
    EXPECT_EQ(store->position(), position);
  }
  const auto store = open_store(dir.store(), /*must_exist=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->position(), position);
  const auto found = store->get_payment("merchant_2", "ord_1");
  ASSERT_TRUE(found.is_ok() && found->has_value());
}

TEST(ArchiveStore, RefusedPaymentWritesNeitherTheJobNorThePosition) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  std::vector<ArchivedPayment> payments = sample_payments();
  payments[2].payment.refunded_amount = 1;  // no refund adds up to it
  const Status status = write_job(*store, payments);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("merchant_2/ord_1"), std::string::npos) << status.to_string();
  EXPECT_EQ(store->position(), ArchivePosition{});
  const auto found = store->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found->has_value());
}

TEST(ArchiveStore, PositionThatDoesNotFollowTheLastJobIsRefused) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ASSERT_TRUE(store->write({}, {0, 10, t0_us, 1}).is_ok());
  EXPECT_EQ(store->write({}, {0, 11, t0_us, 3}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->write({}, {0, 9, t0_us, 2}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->write({}, {0, 10, t0_us, 2}).is_ok());
}

TEST(ArchiveStore, ListRefundsOfAnArchivedPayment) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ASSERT_TRUE(write_job(*store, sample_payments()).is_ok());
  const auto refunds = store->list_refunds("merchant_1", "ord_1");
  ASSERT_TRUE(refunds.is_ok());
  ASSERT_EQ(refunds->size(), 2U);
  EXPECT_EQ((*refunds)[0].request_id.view(), "refund_1");
  EXPECT_EQ((*refunds)[1].amount, 600);
  const auto none = store->list_refunds("merchant_1", "ord_2");
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
}

TEST(ArchiveStore, RefundsOfAPaymentNotArchivedAreNotFound) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  EXPECT_EQ(store->list_refunds("merchant_1", "ord_9").status().code(), StatusCode::kNotFound);
}

TEST(ArchiveStore, ForEachCreatedBetweenVisitsEveryMerchantInTimeOrder) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  ASSERT_TRUE(
      write_job(*store,
                {make_payment("m_b", "o1", t0_us + 30), make_payment("m_a", "o2", t0_us + 10),
                 make_payment("m_c", "o3", t0_us + 20), make_payment("m_a", "o4", t0_us + 40)})
          .is_ok());
  std::vector<std::string> seen;
  const auto collect = [&](const ArchivedPayment& a) {
    seen.emplace_back(a.payment.order_id.view());
    return true;
  };
  ASSERT_TRUE(store->for_each_created_between(t0_us + 10, t0_us + 40, collect).is_ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"o2", "o3", "o1"}));  // [from, to): o4 is out
  seen.clear();
  ASSERT_TRUE(store
                  ->for_each_created_between(0, INT64_MAX,
                                             [&](const ArchivedPayment& a) {
                                               seen.emplace_back(a.payment.order_id.view());
                                               return seen.size() < 2;  // stop after two
                                             })
                  .is_ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"o2", "o3"}));
  EXPECT_EQ(store->for_each_created_between(5, 4, collect).code(), StatusCode::kInvalidArgument);
}

TEST(ArchiveStore, ReadsBesideTheWriterSeeEveryJobThePositionCounts) {
  ArchiveDir dir;
  const auto store = open_store(dir.store());
  constexpr std::uint64_t jobs = 20;
  constexpr int per_job = 25;
  const auto order = [](std::uint64_t job, int i) {
    return "j" + std::to_string(job) + "_" + std::to_string(i);
  };
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread reader([&] {
    while (!done.load()) {
      // The position is published after its batch: every job it counts must be readable.
      const std::uint64_t counted = store->position().jobs;
      if (counted == 0) continue;
      const auto found = store->get_payment("m1", order(counted, per_job - 1));
      if (!found.is_ok() || !found->has_value()) failures.fetch_add(1);
      PaymentListQuery query;
      query.merchant_id = "m1";
      if (!store->list_payments(query).is_ok()) failures.fetch_add(1);
    }
  });
  for (std::uint64_t job = 1; job <= jobs; ++job) {
    std::vector<ArchivedPayment> payments;
    for (int i = 0; i < per_job; ++i) {
      payments.push_back(make_payment("m1", order(job, i), t0_us + static_cast<std::int64_t>(job)));
    }
    const Status status = write_job(*store, payments);
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    if (!status.is_ok()) break;  // and still join the reader
  }
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->position().jobs, jobs);
}

// Damages the value under `key` (one bit of byte `offset`) through RocksDB itself.
void flip_byte(const std::string& dir, const std::string& key, std::size_t offset) {
  RawArchive raw(dir);
  std::optional<std::string> value = raw.get(key);
  ASSERT_TRUE(value.has_value()) << archive::describe_key(key);
  (*value)[offset] = static_cast<char>((*value)[offset] ^ 0x01);
  raw.put(key, *value);
}

TEST(ArchiveStore, FlippedByteInAPaymentRecordIsCorruptionNamingTheKey) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  flip_byte(dir.store(), archive::payment_key("merchant_1", "ord_2"), 30);
  const auto store = open_store(dir.store(), true);
  const auto found = store->get_payment("merchant_1", "ord_2");
  EXPECT_EQ(found.status().code(), StatusCode::kCorruption);
  EXPECT_NE(found.status().message().find("P/merchant_1/ord_2"), std::string::npos)
      << found.status().to_string();
  EXPECT_TRUE(store->get_payment("merchant_1", "ord_1").is_ok());  // the others still read
}

TEST(ArchiveStore, FlippedByteInAListEntryIsCorruptionNamingTheKey) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  flip_byte(dir.store(), archive::list_key("merchant_1", t0_us, "ord_1"), 60);
  const auto store = open_store(dir.store(), true);
  PaymentListQuery query;
  query.merchant_id = "merchant_1";
  const auto page = store->list_payments(query);
  EXPECT_EQ(page.status().code(), StatusCode::kCorruption);
  EXPECT_NE(page.status().message().find("L/merchant_1/created_at_us=" + std::to_string(t0_us) +
                                         "/ord_1"),
            std::string::npos)
      << page.status().to_string();
}

TEST(ArchiveStore, FlippedByteInADayEntryIsCorruptionNamingTheKey) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  flip_byte(dir.store(), archive::day_key(t0_us + 2, "merchant_2", "ord_1"), 12);
  const auto store = open_store(dir.store(), true);
  const Status status =
      store->for_each_created_between(0, INT64_MAX, [](const ArchivedPayment&) { return true; });
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("D/created_at_us="), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, FlippedByteInThePositionIsCorruptionAtOpen) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  flip_byte(dir.store(), archive::meta_key(archive::meta_position_name), 14);
  const Status status = open_error(small_options(dir.store()));
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("M/position"), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, MustExistOnAMissingDirIsNotFound) {
  ArchiveDir dir;
  ArchiveOptions options = small_options(dir.store());
  options.must_exist = true;
  const Status status = open_error(options);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find("archive missing"), std::string::npos) << status.to_string();
  EXPECT_FALSE(std::filesystem::exists(dir.store()));  // nothing was created
}

TEST(ArchiveStore, MustExistOnAStoreWithoutAJobIsAnError) {
  ArchiveDir dir;
  ASSERT_NE(open_store(dir.store()), nullptr);  // a fresh store: format key, no job
  ArchiveOptions options = small_options(dir.store());
  options.must_exist = true;
  const Status status = open_error(options);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("archive missing"), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, MustExistOnAnEmptyRocksDbIsAnError) {
  ArchiveDir dir;
  { RawArchive raw(dir.store(), /*create=*/true); }
  ArchiveOptions options = small_options(dir.store());
  options.must_exist = true;
  const Status status = open_error(options);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("is empty"), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, WrongFormatVersionIsRefused) {
  ArchiveDir dir;
  ASSERT_NE(open_store(dir.store()), nullptr);
  {
    RawArchive raw(dir.store());
    raw.put(archive::meta_key(archive::meta_format_name), archive::encode_format(2));
  }
  const Status status = open_error(small_options(dir.store()));
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("format version 2"), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, DataWithoutAFormatKeyIsRefused) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  { RawArchive(dir.store()).remove(archive::meta_key(archive::meta_format_name)); }
  const Status status = open_error(small_options(dir.store()));
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("no format key"), std::string::npos) << status.to_string();
}

TEST(ArchiveStore, DamagedManifestIsACorruptionAtOpen) {
  ArchiveDir dir;
  ASSERT_TRUE(write_job(*open_store(dir.store()), sample_payments()).is_ok());
  // CURRENT names the MANIFEST, RocksDB's log of its files: damage one byte in its middle.
  std::string manifest;
  std::getline(std::ifstream(dir.store() + "/CURRENT"), manifest);
  const std::string path = dir.store() + "/" + manifest;
  const auto size = static_cast<std::streamoff>(std::filesystem::file_size(path));
  ASSERT_GT(size, 40);
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(size / 2);
    const char byte = static_cast<char>(file.get() ^ 0x40);
    file.seekp(size / 2);
    file.put(byte);
  }
  const Status status = open_error(small_options(dir.store()));
  EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.to_string();
  EXPECT_NE(status.message().find("opening archive " + dir.store()), std::string::npos)
      << status.to_string();
}

TEST(ArchiveStore, ReadOnlyOpenReadsBesideTheWriterAndRefusesWrites) {
  ArchiveDir dir;
  const auto writer = open_store(dir.store());
  ASSERT_TRUE(write_job(*writer, sample_payments()).is_ok());
  ArchiveOptions options = small_options(dir.store());
  options.read_only = true;
  auto reader = ArchiveStore::open(options);
  ASSERT_TRUE(reader.is_ok()) << reader.status().to_string();
  EXPECT_EQ((*reader)->position(), writer->position());
  const auto found = (*reader)->get_payment("merchant_1", "ord_1");
  ASSERT_TRUE(found.is_ok() && found->has_value());
  EXPECT_EQ((*reader)->write({}, {0, 2, 0, 2}).code(), StatusCode::kReadOnly);
}

TEST(ArchiveStore, ReadOnlyOnAMissingDirIsNotFound) {
  ArchiveDir dir;
  ArchiveOptions options = small_options(dir.store());
  options.read_only = true;
  EXPECT_EQ(open_error(options).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace paycore
