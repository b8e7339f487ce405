// The two write paths, io_uring and the pwrite+fdatasync thread, and the storage faults each
// must survive. Every test runs on both paths.

#include <poll.h>

#include <cerrno>

#include <gtest/gtest.h>

#include "wal/fault.hpp"
#include "wal/log.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

enum class Path { kIoUring, kFallback };

class WalWriter : public ::testing::TestWithParam<Path> {
 protected:
  Options options() const {
    Options o;
    o.dir = tmp_.log_dir();
    o.segment_bytes = 256 << 10;
    o.batch_bytes_max = 64 << 10;
    o.force_fallback = GetParam() == Path::kFallback;
    o.faults = const_cast<FaultInjector*>(&faults_);
    return o;
  }
  std::unique_ptr<Log> open() {
    auto log = open_log(options());
    if (log && GetParam() == Path::kIoUring && !log->using_io_uring()) {
      ADD_FAILURE() << "io_uring was refused on this machine; the io_uring case cannot run";
    }
    if (log && GetParam() == Path::kFallback) {
      EXPECT_FALSE(log->using_io_uring());
    }
    return log;
  }
  void append_n(Log& log, int n) {
    for (int i = 0; i < n; ++i) {
      const std::uint64_t want = log.next_lsn();
      std::uint64_t lsn = 0;
      ASSERT_TRUE(log.append(type_for(want), payload_for(want), &lsn).is_ok());
      ASSERT_EQ(lsn, want);
    }
  }
  static bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
  }

  TempDir tmp_;
  FaultInjector faults_;
};

TEST_P(WalWriter, GroupCommitMakesBatchDurable) {
  auto log = open();
  ASSERT_TRUE(log);
  append_n(*log, 100);
  EXPECT_EQ(log->durable_lsn(), 0u);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 100u);
  const Stats st = log->stats();
  EXPECT_EQ(st.batches_count, 1u);
  EXPECT_EQ(st.appends_count, 100u);
  EXPECT_EQ(st.batch_records_max, 100u);
  // One fdatasync for the batch, plus the two of creating the first segment.
  EXPECT_EQ(st.fsyncs_count, 3u);
  log.reset();
  auto again = open();
  expect_records(replay_all(*again, 1), 1, 100);
}

TEST_P(WalWriter, NextBatchFillsWhileOneIsInFlight) {
  auto log = open();
  ASSERT_TRUE(log);
  for (int round = 0; round < 50; ++round) {
    append_n(*log, 20);
    ASSERT_TRUE(log->submit().is_ok());  // waits for the previous batch if still in flight
    EXPECT_LE(log->poll(), log->next_lsn() - 1);
    EXPECT_GE(log->durable_lsn(), static_cast<std::uint64_t>(round) * 20);
  }
  EXPECT_EQ(log->wait(), 1000u);
  EXPECT_FALSE(log->batch_in_flight());
  expect_records(replay_all(*log, 1), 1, 1000);
}

TEST_P(WalWriter, CompletionFdSignalsDurability) {
  auto log = open();
  ASSERT_TRUE(log);
  EXPECT_FALSE(readable(log->completion_fd(), 0));
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  ASSERT_TRUE(readable(log->completion_fd(), 5000)) << "no completion signal within 5 s";
  // The fd may be readable a moment before the whole chain is reaped: poll until durable.
  std::uint64_t durable = 0;
  for (int i = 0; i < 5000 && durable < 10; ++i) {
    durable = log->poll();
    if (durable < 10) readable(log->completion_fd(), 1);
  }
  EXPECT_EQ(durable, 10u);
  EXPECT_FALSE(readable(log->completion_fd(), 0)) << "poll() should drain the eventfd";
}

TEST_P(WalWriter, ManyBatchesAcrossRotations) {
  Options o = options();
  auto log = open();
  ASSERT_TRUE(log);
  write_records(*log, 10000, 37);
  EXPECT_GE(log->stats().segments_created_count, 4u);
  log.reset();
  RecoveryReport report;
  auto again = open_log(o, &report);
  ASSERT_TRUE(again);
  EXPECT_EQ(report.last_lsn, 10000u);
  EXPECT_FALSE(report.torn_tail_truncated);
  expect_records(replay_all(*again, 1), 1, 10000);
}

TEST_P(WalWriter, ShortWriteIsCompleted) {
  auto log = open();
  ASSERT_TRUE(log);
  faults_.short_write(1000);  // the kernel takes only 1000 of ~5600 bytes
  faults_.short_write(7, 1);  // and then only 7 of the rest
  append_n(*log, 50);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 50u);
  EXPECT_FALSE(log->read_only());
  EXPECT_EQ(faults_.fired(), 2u);
  EXPECT_EQ(log->stats().short_writes_count, 2u);
  log.reset();
  RecoveryReport report;
  auto again = open_log(options(), &report);
  ASSERT_TRUE(again);
  EXPECT_FALSE(report.torn_tail_truncated);
  expect_records(replay_all(*again, 1), 1, 50);
}

TEST_P(WalWriter, ShortWriteIsCompletedWhilePolling) {
  auto log = open();
  ASSERT_TRUE(log);
  faults_.short_write(512);
  faults_.short_write(512, 1);
  append_n(*log, 50);
  ASSERT_TRUE(log->submit().is_ok());
  // The engine's way: sleep on the completion fd, poll when woken. Resubmitting the rest of a
  // short write must leave the fd quiet until there is news, so wake-ups stay few.
  int wakeups = 0;
  while (log->poll() < 50 && wakeups < 100) {
    ASSERT_TRUE(readable(log->completion_fd(), 5000)) << "no completion within 5 s";
    ++wakeups;
  }
  EXPECT_EQ(log->durable_lsn(), 50u);
  EXPECT_LE(wakeups, 12) << "the completion fd stayed readable: the engine would spin";
  EXPECT_EQ(log->stats().short_writes_count, 2u);
  expect_records(replay_all(*log, 1), 1, 50);
}

TEST_P(WalWriter, EioOnWriteMakesLogReadOnly) {
  auto log = open();
  ASSERT_TRUE(log);
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  ASSERT_EQ(log->wait(), 10u);
  faults_.fail(FaultOp::kWrite, EIO);
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 10u);  // the failed batch never becomes durable
  EXPECT_TRUE(log->read_only());
  EXPECT_EQ(log->failure().code(), StatusCode::kIoError);
  EXPECT_NE(log->failure().message().find("Input/output error"), std::string::npos)
      << log->failure().to_string();
  std::uint64_t lsn = 0;
  EXPECT_EQ(log->append(1, payload_for(1), &lsn).code(), StatusCode::kReadOnly);
  EXPECT_EQ(log->submit().code(), StatusCode::kReadOnly);
  expect_records(replay_all(*log, 1), 1, 10);
}

TEST_P(WalWriter, EioOnFsyncMakesLogReadOnlyAndReadsStillWork) {
  auto log = open();
  ASSERT_TRUE(log);
  append_n(*log, 30);
  ASSERT_TRUE(log->submit().is_ok());
  ASSERT_EQ(log->wait(), 30u);
  faults_.fail(FaultOp::kFsync, EIO);
  append_n(*log, 30);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 30u);
  EXPECT_TRUE(log->read_only());
  EXPECT_NE(log->failure().message().find("fdatasync"), std::string::npos)
      << log->failure().to_string();
  const std::uint64_t fsyncs = faults_.count(FaultOp::kFsync);
  // The fsync is never retried: further writes are refused without touching the disk.
  std::uint64_t lsn = 0;
  EXPECT_EQ(log->append(1, payload_for(1), &lsn).code(), StatusCode::kReadOnly);
  EXPECT_EQ(log->submit().code(), StatusCode::kReadOnly);
  EXPECT_EQ(log->wait(), 30u);
  EXPECT_EQ(faults_.count(FaultOp::kFsync), fsyncs);
  // Reads keep working.
  expect_records(replay_all(*log, 1), 1, 30);
  expect_records(replay_all(*log, 17), 17, 30);
}

TEST_P(WalWriter, EnospcIsReported) {
  auto log = open();
  ASSERT_TRUE(log);
  faults_.fail(FaultOp::kWrite, ENOSPC);
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 0u);
  // A write that failed for lack of space may have written part of the batch: same as EIO,
  // the log stops taking writes in this process.
  EXPECT_TRUE(log->read_only());
  EXPECT_EQ(log->failure().code(), StatusCode::kNoSpace);
  std::uint64_t lsn = 0;
  EXPECT_EQ(log->append(1, payload_for(1), &lsn).code(), StatusCode::kReadOnly);
}

TEST_P(WalWriter, EnospcOnNewSegmentKeepsLogWritable) {
  auto log = open();
  ASSERT_TRUE(log);
  faults_.fail(FaultOp::kFallocate, ENOSPC);
  // Fill the first segment until appending needs the next one.
  Status s;
  std::uint64_t lsn = 0;
  std::uint64_t appended = 0;
  for (;;) {
    const std::uint64_t want = log->next_lsn();
    s = log->append(type_for(want), payload_for(want), &lsn);
    if (s.code() == StatusCode::kFull) {
      ASSERT_TRUE(log->submit().is_ok());
      s = log->append(type_for(want), payload_for(want), &lsn);
    }
    if (!s.is_ok()) break;
    ++appended;
  }
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.to_string();
  EXPECT_FALSE(log->read_only());  // nothing was written: the next append may try again
  EXPECT_EQ(log->wait(), appended);
  const std::uint64_t want = log->next_lsn();
  ASSERT_TRUE(log->append(type_for(want), payload_for(want), &lsn).is_ok());
  EXPECT_EQ(lsn, appended + 1);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), appended + 1);
  EXPECT_EQ(log->stats().segments_created_count, 2u);
}

INSTANTIATE_TEST_SUITE_P(Paths, WalWriter, ::testing::Values(Path::kIoUring, Path::kFallback),
                         [](const ::testing::TestParamInfo<Path>& param_info) {
                           return param_info.param == Path::kIoUring ? "IoUring" : "Fallback";
                         });

}  // namespace
}  // namespace paycore::wal
