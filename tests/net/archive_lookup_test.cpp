// The archive lookup service (net/archive_lookup.hpp) against in-memory ArchiveReader doubles:
// a map, one that fails, one that blocks until released.

#include "net/archive_lookup.hpp"

#include <poll.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

namespace paycore::net {
namespace {

using Key = std::pair<std::string, std::string>;

// The doubles answer point reads; these tests make no listing.
class PointReader : public ArchiveReader {
 public:
  StatusOr<std::vector<RefundView>> list_refunds(std::string_view,
                                                 std::string_view) const override {
    return Status::invalid_argument("this double answers point reads only");
  }
  StatusOr<PaymentPage> list_payments(const PaymentListQuery&) const override {
    return Status::invalid_argument("this double answers point reads only");
  }
};

class MapArchive : public PointReader {
 public:
  void put(std::string_view merchant, std::string_view order, PaymentStatus status) {
    ArchivedPayment archived;
    archived.payment.merchant_id = Id::of(merchant);
    archived.payment.order_id = Id::of(order);
    archived.payment.status = status;
    archived.payment.amount = 500;
    payments_[Key(merchant, order)] = archived;
  }
  StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view merchant_id,
                                                       std::string_view order_id) const override {
    const auto it = payments_.find(Key(merchant_id, order_id));
    if (it == payments_.end()) return std::optional<ArchivedPayment>{};
    return std::optional<ArchivedPayment>{it->second};
  }

 private:
  std::map<Key, ArchivedPayment> payments_;
};

class FailingArchive : public PointReader {
 public:
  StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view,
                                                       std::string_view) const override {
    return Status::io_error("archive: read failed");
  }
};

// Every read waits until release(); entered() says how many reads have begun.
class BlockingArchive : public PointReader {
 public:
  StatusOr<std::optional<ArchivedPayment>> get_payment(std::string_view,
                                                       std::string_view) const override {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
    return std::optional<ArchivedPayment>{};
  }
  void wait_entered(int reads) const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return entered_ >= reads; });
  }
  void release() {
    const std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable int entered_ = 0;
  bool released_ = false;
};

ArchiveLookupJob job(std::uint64_t token, std::string_view merchant, std::string_view order) {
  ArchiveLookupJob j;
  j.token = token;
  j.merchant_id = Id::of(merchant);
  j.order_id = Id::of(order);
  return j;
}

std::unique_ptr<ArchiveLookup> make(const ArchiveReader& reader, std::uint32_t threads,
                                    std::uint32_t queue, std::uint32_t clients = 1) {
  StatusOr<std::unique_ptr<ArchiveLookup>> made =
      ArchiveLookup::create(reader, ArchiveLookupConfig{threads, queue}, clients);
  EXPECT_TRUE(made.is_ok()) << made.status().to_string();
  return std::move(made).value();
}

// Waits (bounded) until `client` has `count` answers in all, as an I/O thread would on its
// eventfd; returns them.
std::vector<ArchiveLookupDone> wait_answers(ArchiveLookup& lookup, std::uint32_t client,
                                            std::size_t count) {
  std::vector<ArchiveLookupDone> all;
  std::vector<ArchiveLookupDone> some;
  for (int polls = 0; polls < 100 && all.size() < count; ++polls) {
    pollfd fd{lookup.completion_fd(client), POLLIN, 0};
    if (::poll(&fd, 1, 100) <= 0) continue;
    lookup.take(client, &some);
    for (ArchiveLookupDone& done : some) all.push_back(std::move(done));
  }
  return all;
}

TEST(ArchiveLookup, FoundAnswersWithTheArchivedPayment) {
  MapArchive archive;
  archive.put("m1", "o1", PaymentStatus::paid);
  auto lookup = make(archive, 2, 8);
  lookup->start();
  ASSERT_TRUE(lookup->submit(0, job(42, "m1", "o1")));
  const auto answers = wait_answers(*lookup, 0, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].job.token, 42u);
  EXPECT_EQ(answers[0].outcome, ArchiveLookupOutcome::found);
  EXPECT_EQ(answers[0].payment.order_id.view(), "o1");
  EXPECT_EQ(answers[0].payment.amount, 500);
  EXPECT_EQ(lookup->metrics().found.load(), 1u);
}

TEST(ArchiveLookup, UnknownOrderAnswersNotFound) {
  MapArchive archive;
  archive.put("m1", "o1", PaymentStatus::paid);
  auto lookup = make(archive, 1, 8);
  lookup->start();
  ASSERT_TRUE(lookup->submit(0, job(1, "m2", "o1")));  // another merchant's order id
  const auto answers = wait_answers(*lookup, 0, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].outcome, ArchiveLookupOutcome::not_found);
  EXPECT_EQ(lookup->metrics().not_found.load(), 1u);
}

TEST(ArchiveLookup, ReadErrorAnswersErrorWithTheStatus) {
  FailingArchive archive;
  auto lookup = make(archive, 1, 8);
  lookup->start();
  ASSERT_TRUE(lookup->submit(0, job(1, "m1", "o1")));
  const auto answers = wait_answers(*lookup, 0, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].outcome, ArchiveLookupOutcome::error);
  EXPECT_EQ(answers[0].error.code(), StatusCode::kIoError);
  EXPECT_EQ(lookup->metrics().errors.load(), 1u);
}

TEST(ArchiveLookup, FullQueueRefusesAtOnce) {
  BlockingArchive archive;
  auto lookup = make(archive, 1, 1);
  lookup->start();
  ASSERT_TRUE(lookup->submit(0, job(1, "m1", "o1")));
  archive.wait_entered(1);                              // the worker holds job 1
  ASSERT_TRUE(lookup->submit(0, job(2, "m1", "o2")));   // queued
  EXPECT_FALSE(lookup->submit(0, job(3, "m1", "o3")));  // beyond the queue's limit
  EXPECT_EQ(lookup->metrics().queue_full.load(), 1u);
  archive.release();
  const auto answers = wait_answers(*lookup, 0, 2);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].job.token + answers[1].job.token, 3u);  // 1 and 2, never 3
}

TEST(ArchiveLookup, AnswersGoToTheThreadThatAsked) {
  MapArchive archive;
  archive.put("m1", "o1", PaymentStatus::refunded);
  auto lookup = make(archive, 2, 8, 2);
  lookup->start();
  ArchiveLookupJob asked = job(0xabcdef, "m1", "o1");
  asked.purpose = ArchiveLookupPurpose::command;
  asked.command.kind = CommandKind::refund_payment;
  asked.command.amount = 7;
  ASSERT_TRUE(lookup->submit(1, asked));
  const auto answers = wait_answers(*lookup, 1, 1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].job.token, 0xabcdefu);
  EXPECT_EQ(answers[0].job.purpose, ArchiveLookupPurpose::command);
  EXPECT_EQ(answers[0].job.command.amount, 7);  // what to do with it comes back whole
  std::vector<ArchiveLookupDone> other;
  EXPECT_EQ(lookup->take(0, &other), 0u);
}

// stop() with a read in progress returns once that read is done (joins, never abandons a
// worker inside the reader); the queued job is read or dropped, depending on whether stop()
// came before the worker looked at the queue again; nothing is taken after it.
TEST(ArchiveLookup, StopWithJobsInFlightJoinsTheWorkers) {
  BlockingArchive archive;
  auto lookup = make(archive, 1, 8);
  lookup->start();
  ASSERT_TRUE(lookup->submit(0, job(1, "m1", "o1")));
  archive.wait_entered(1);
  ASSERT_TRUE(lookup->submit(0, job(2, "m1", "o2")));
  std::thread stopper([&] { lookup->stop(); });
  archive.release();  // the read in progress finishes; stop() then joins its worker
  stopper.join();
  EXPECT_FALSE(lookup->submit(0, job(3, "m1", "o3")));  // stopped: refused
  std::vector<ArchiveLookupDone> answers;
  lookup->take(0, &answers);
  ASSERT_GE(answers.size(), 1u);  // job 1 was being read: it is answered
  EXPECT_LE(answers.size(), 2u);
  for (const ArchiveLookupDone& done : answers) EXPECT_LE(done.job.token, 2u);
}

TEST(ArchiveLookup, LatencyHistogramCountsEveryRead) {
  MapArchive archive;
  auto lookup = make(archive, 2, 8);
  lookup->start();
  for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(lookup->submit(0, job(i, "m1", "o1")));
  ASSERT_EQ(wait_answers(*lookup, 0, 5).size(), 5u);
  std::uint64_t counted = 0;
  for (const auto& bucket : lookup->metrics().latency_us_log2) counted += bucket.load();
  EXPECT_EQ(counted, 5u);
}

TEST(ArchiveLookup, LimitsOutOfRangeAreRefused) {
  MapArchive archive;
  EXPECT_EQ(ArchiveLookup::create(archive, ArchiveLookupConfig{0, 8}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ArchiveLookup::create(archive, ArchiveLookupConfig{2, 0}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ArchiveLookup::create(archive, ArchiveLookupConfig{2, 8}, 0).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace paycore::net
