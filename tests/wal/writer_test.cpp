// The two flush paths, io_uring (several flushes in flight, or one) and the fdatasync thread,
// and the storage faults each must survive. Every test runs on each path.

#include <poll.h>

#include <cerrno>

#include <gtest/gtest.h>

#include "wal/fault.hpp"
#include "wal/log.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

enum class Path { kIoUring, kIoUringOneFlush, kFallback };

class WalWriter : public ::testing::TestWithParam<Path> {
 protected:
  Options options() const {
    // Without spares: fallocate faults must reach every rotation (spare_segment_test has them).
    Options o = writer_test_options(tmp_, GetParam() == Path::kFallback, /*spare_segments=*/false);
    o.syncs_in_flight_max = GetParam() == Path::kIoUring ? 4 : 1;
    o.faults = const_cast<FaultInjector*>(&faults_);
    return o;
  }
  std::unique_ptr<Log> open() {
    auto log = open_log(options());
    if (log && GetParam() != Path::kFallback && !log->using_io_uring()) {
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
  // submit() waits for a flush only when every slot is taken: then the batch submitted that
  // many batches before this one is durable.
  const std::uint64_t slots = GetParam() == Path::kIoUring ? 4 : 1;
  for (std::uint64_t round = 0; round < 50; ++round) {
    append_n(*log, 20);
    ASSERT_TRUE(log->submit().is_ok());
    EXPECT_LE(log->poll(), log->next_lsn() - 1);
    if (round >= slots) {
      EXPECT_GE(log->durable_lsn(), (round - slots + 1) * 20);
    }
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

// A blocking wait() takes its completion without the eventfd's read that poll() does, so the
// fd is left readable with nothing in flight (an idle core used to spin on it); settling it
// empties it.
TEST_P(WalWriter, SettlingTheCompletionFdWithNothingInFlightEmptiesIt) {
  auto log = open();
  ASSERT_TRUE(log);
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 10u);
  ASSERT_FALSE(log->batch_in_flight());
  readable(log->completion_fd(), 100);  // the fallback writer's signal may come a moment late
  log->settle_completion_fd();
  EXPECT_FALSE(readable(log->completion_fd(), 0));
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
  // The engine's way: sleep on the completion fd, poll when woken. The fd must stay quiet until
  // there is news, so wake-ups stay few.
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
  EXPECT_EQ(log->submit().code(), StatusCode::kIoError);  // the pwrite is the submit's own
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
  EXPECT_EQ(log->submit().code(), StatusCode::kNoSpace);
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

// Submitting does not wait for the flush before it while a slot is free; when the flushes
// complete, the durable LSN is the last batch's whatever order they completed in.
TEST_P(WalWriter, SeveralBatchesAreFlushedAtOnce) {
  auto log = open();
  ASSERT_TRUE(log);
  const bool several = GetParam() == Path::kIoUring;
  for (int batch = 0; batch < 3; ++batch) {
    append_n(*log, 25);
    ASSERT_TRUE(log->submit().is_ok());
    EXPECT_EQ(log->sync_slot_free(), several) << "after batch " << batch;
  }
  EXPECT_LE(log->poll(), 75u);
  EXPECT_EQ(log->wait(), 75u);
  EXPECT_FALSE(log->batch_in_flight());
  EXPECT_TRUE(log->sync_slot_free());
  EXPECT_EQ(log->stats().batches_count, 3u);
  expect_records(replay_all(*log, 1), 1, 75);
}

// A failed flush among several in flight: the log stops, nothing after the fault becomes
// durable, and what was durable before it still reads back.
TEST_P(WalWriter, FailedFlushAmongSeveralStopsTheLog) {
  auto log = open();
  ASSERT_TRUE(log);
  append_n(*log, 10);
  ASSERT_TRUE(log->submit().is_ok());
  ASSERT_EQ(log->wait(), 10u);
  faults_.fail(FaultOp::kFsync, EIO, 1);  // the second of the next three flushes
  for (int batch = 0; batch < 3; ++batch) {
    append_n(*log, 10);
    const Status s = log->submit();
    ASSERT_TRUE(s.is_ok() || s.code() == StatusCode::kReadOnly) << s.to_string();
  }
  const std::uint64_t durable = log->wait();
  EXPECT_TRUE(log->read_only());
  EXPECT_GE(durable, 10u);
  EXPECT_LE(durable, 40u);
  EXPECT_NE(durable, 30u) << "the failed batch (21..30) was reported durable on its own";
  EXPECT_EQ(log->submit().code(), StatusCode::kReadOnly);
  expect_records(replay_all(*log, 1), 1, durable);
}

TEST(WalOptions, FlushesInFlightMustBeOneToEight) {
  TempDir tmp;
  for (const std::uint32_t bad : {0U, kSyncSlotsMax + 1}) {
    Options o;
    o.dir = tmp.log_dir();
    o.syncs_in_flight_max = bad;
    std::unique_ptr<Log> log;
    RecoveryReport report;
    const Status s = Log::open(o, &log, &report);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("syncs_in_flight_max"), std::string::npos) << s.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, WalWriter,
                         ::testing::Values(Path::kIoUring, Path::kIoUringOneFlush, Path::kFallback),
                         [](const ::testing::TestParamInfo<Path>& param_info) {
                           switch (param_info.param) {
                             case Path::kIoUring: return "IoUring";
                             case Path::kIoUringOneFlush: return "IoUringOneFlush";
                             case Path::kFallback: return "Fallback";
                           }
                           return "unknown";
                         });

}  // namespace
}  // namespace paycore::wal
