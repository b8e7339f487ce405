// Archiver: a job is written only once its LSN is durable, answered in order with the store's
// position advanced, a failed write is a not-ok answer, and stop() returns with a job pending.
#include "archive/archiver.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/archive/archive_test_util.hpp"

namespace paycore {
namespace {

using testing::ArchiveDir;
using testing::eventually;
using testing::make_payment;
using testing::open_store;

constexpr std::int64_t t0_us = 1'700'000'000'000'000;

ArchiveJob make_job(std::uint64_t sequence, std::uint32_t rows_begin, std::uint32_t count,
                    std::uint64_t lsn) {
  ArchiveJob job;
  job.sequence = sequence;
  job.rows_begin = rows_begin;
  job.rows_end = rows_begin + count;
  job.lsn = lsn;
  job.as_of_us = t0_us + static_cast<std::int64_t>(lsn);
  for (std::uint32_t row = rows_begin; row < job.rows_end; ++row) {
    job.payments.push_back(make_payment("m1", "ord_" + std::to_string(row), t0_us + row));
  }
  return job;
}

struct ArchiverFixture {
  ArchiveDir dir;
  std::unique_ptr<ArchiveStore> store = open_store(dir.store());
  std::atomic<std::uint64_t> durable_lsn{0};
  Archiver archiver{store.get(), &durable_lsn, std::chrono::microseconds(200)};

  ArchiveDone await_done() {
    ArchiveDone done;
    EXPECT_TRUE(eventually([&] { return archiver.poll(&done); }));
    return done;
  }
};

TEST(Archiver, WritesOnlyAfterTheJobsLsnIsDurable) {
  ArchiverFixture f;
  f.durable_lsn = 9;
  ASSERT_TRUE(f.archiver.submit(make_job(1, 0, 3, 10)));
  // The job waits: give the thread ample time to (wrongly) write it before the LSN is durable.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ArchiveDone done;
  EXPECT_FALSE(f.archiver.poll(&done));
  EXPECT_EQ(f.store->position().jobs, 0U);
  f.durable_lsn = 10;
  done = f.await_done();
  EXPECT_TRUE(done.status.is_ok()) << done.status.to_string();
  EXPECT_EQ(done.sequence, 1U);
  EXPECT_EQ(done.rows_begin, 0U);
  EXPECT_EQ(done.rows_end, 3U);
  EXPECT_EQ(done.as_of_us, t0_us + 10);
  EXPECT_EQ(f.store->position(), (ArchivePosition{3, 10, t0_us + 10, 1}));
  const auto found = f.store->get_payment("m1", "ord_2");
  ASSERT_TRUE(found.is_ok() && found->has_value());
}

TEST(Archiver, JobsAreAnsweredInOrderAndAdvanceThePosition) {
  ArchiverFixture f;
  f.durable_lsn = 100;
  ASSERT_TRUE(f.archiver.submit(make_job(1, 0, 2, 5)));
  const ArchiveDone first = f.await_done();
  ASSERT_TRUE(f.archiver.submit(make_job(2, 2, 2, 7)));
  const ArchiveDone second = f.await_done();
  EXPECT_EQ(first.sequence, 1U);
  EXPECT_EQ(second.sequence, 2U);
  EXPECT_TRUE(second.status.is_ok()) << second.status.to_string();
  EXPECT_EQ(f.store->position(), (ArchivePosition{4, 7, t0_us + 7, 2}));
}

TEST(Archiver, FailedWriteIsANotOkDoneAndWritesNothing) {
  ArchiverFixture f;
  f.durable_lsn = 100;
  ArchiveJob job = make_job(1, 0, 2, 5);
  job.payments[1].payment.amount = 0;  // the store refuses the job, as it would a disk error
  ASSERT_TRUE(f.archiver.submit(std::move(job)));
  const ArchiveDone done = f.await_done();
  EXPECT_FALSE(done.status.is_ok());
  EXPECT_EQ(done.sequence, 1U);
  EXPECT_EQ(f.store->position(), ArchivePosition{});
  const auto found = f.store->get_payment("m1", "ord_0");
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found->has_value());
}

TEST(Archiver, SecondQueuedJobIsRefusedUntilTheFirstIsTaken) {
  ArchiverFixture f;  // durable LSN 0: every job waits
  ASSERT_TRUE(f.archiver.submit(make_job(1, 0, 1, 5)));
  // Job 2 is taken once the thread has moved job 1 from the queue to its wait.
  EXPECT_TRUE(eventually([&] { return f.archiver.submit(make_job(2, 1, 1, 6)); }));
  EXPECT_FALSE(f.archiver.submit(make_job(3, 2, 1, 7)));  // one queued, one in progress
  f.durable_lsn = 7;
  EXPECT_EQ(f.await_done().sequence, 1U);
  EXPECT_EQ(f.await_done().sequence, 2U);
  EXPECT_EQ(f.store->position().jobs, 2U);
}

TEST(Archiver, StopWithAJobPendingReturnsAndDropsIt) {
  ArchiverFixture f;
  ASSERT_TRUE(f.archiver.submit(make_job(1, 0, 1, 5)));
  EXPECT_TRUE(eventually([&] { return f.archiver.submit(make_job(2, 1, 1, 6)); }));
  f.archiver.stop();  // job 1 waits for durability, job 2 is queued
  ArchiveDone done;
  EXPECT_FALSE(f.archiver.poll(&done));
  EXPECT_EQ(f.store->position().jobs, 0U);
  EXPECT_FALSE(f.archiver.submit(make_job(3, 2, 1, 7)));  // stopped
}

// Archiving is background work: at low priority the thread's nice value is the lowest.
TEST(Archiver, LowPriorityRunsTheThreadAtTheLowestNice) {
  const int caller_nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  ArchiveDir dir;
  std::unique_ptr<ArchiveStore> store = open_store(dir.store());
  std::atomic<std::uint64_t> durable_lsn{0};
  Archiver archiver{store.get(), &durable_lsn, std::chrono::microseconds(200), true};
  ASSERT_TRUE(eventually([&] { return archiver.thread_id() != 0; }));
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(archiver.thread_id()));
  ASSERT_EQ(errno, 0);
  EXPECT_EQ(nice, archiver_low_priority_nice);
  // The rest of the process is untouched.
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), caller_nice);
}

}  // namespace
}  // namespace paycore
