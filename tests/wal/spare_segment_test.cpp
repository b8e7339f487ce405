// Spare files (base/spare_file.hpp) and the log's spare segments: the next segment written full
// of zeros on a thread, taken at rotation; a fallocated segment left as soon as a spare is ready.
#include "base/spare_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

constexpr auto kWaitMax = std::chrono::seconds(30);

// Polls `done` every millisecond for up to kWaitMax; false if it never became true.
template <typename Pred>
bool eventually(Pred done) {
  const auto until = std::chrono::steady_clock::now() + kWaitMax;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

TEST(SpareFile, IsAZeroFilledFileOfTheSegmentSize) {
  TempDir tmp;
  const std::uint64_t bytes = (3U << 20) + 4096;  // not a whole number of the thread's chunks
  SpareFile spare(tmp.path() + "/00000000000000000000.log.tmp", bytes);
  ASSERT_TRUE(eventually([&] { return spare.ready(); }));
  EXPECT_EQ(file_bytes(spare.path()), bytes);
  // Every block written, none merely allocated: the file has no hole and reads as zeros.
  struct stat st {};
  ASSERT_EQ(::stat(spare.path().c_str(), &st), 0);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, bytes);
  const auto data = read_at(spare.path(), 0, bytes);
  EXPECT_EQ(std::count(data.begin(), data.end(), std::byte{0}), static_cast<std::ptrdiff_t>(bytes));
}

TEST(SpareFile, TheNextIsMadeOnlyOnceTheNameIsReleased) {
  TempDir tmp;
  SpareFile spare(tmp.path() + "/spare.tmp", 64 << 10);
  ASSERT_TRUE(eventually([&] { return spare.ready(); }));
  const int fd = spare.take();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(spare.ready());
  const std::string taken = tmp.path() + "/taken";
  ASSERT_EQ(::rename(spare.path().c_str(), taken.c_str()), 0);
  ::close(fd);
  // Not released: the thread must not write a new file under the name.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(std::filesystem::exists(spare.path()));
  EXPECT_FALSE(spare.ready());
  spare.release();
  ASSERT_TRUE(eventually([&] { return spare.ready(); }));
  EXPECT_EQ(file_bytes(spare.path()), 64U << 10);
  EXPECT_EQ(file_bytes(taken), 64U << 10);  // the taken one was left alone
}

// A spare that cannot be made (here: no directory; in life ENOSPC) is tried again later, so a
// full disk gets its spares back once space is freed.
TEST(SpareFile, OneThatCannotBeMadeIsTriedAgain) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/not-yet";
  SpareFile spare(dir + "/spare.tmp", 64 << 10, /*retry_ms=*/20);
  ASSERT_TRUE(eventually([&] { return spare.failed(); }));
  EXPECT_FALSE(spare.ready());
  ASSERT_TRUE(std::filesystem::create_directory(dir));
  ASSERT_TRUE(eventually([&] { return spare.ready(); }));
  EXPECT_FALSE(spare.failed());
  EXPECT_EQ(file_bytes(spare.path()), 64U << 10);
}

class WalSpares : public ::testing::TestWithParam<bool> {
 protected:
  Options options() const {
    return writer_test_options(tmp_, /*force_fallback=*/GetParam(), /*spare_segments=*/true);
  }
  // Appends one small batch at a time until the log moved to a spare (bounded).
  void write_until_on_a_spare(Log& log, std::uint64_t* written) {
    const auto until = std::chrono::steady_clock::now() + kWaitMax;
    while (log.stats().segments_from_spares_count == 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "the log never moved to a spare";
      write_records(log, 1, 1);
      ++*written;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  TempDir tmp_;
};

INSTANTIATE_TEST_SUITE_P(Paths, WalSpares, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? std::string("Fallback") : std::string("IoUring"); });

// A fresh log's first segment is fallocated; it is left for the spare long before it is full,
// and every record before and after the move is read back, across a reopen.
TEST_P(WalSpares, AFallocatedSegmentIsLeftOnceASpareIsReady) {
  auto log = open_log(options());
  ASSERT_TRUE(log);
  std::uint64_t written = 0;
  write_until_on_a_spare(*log, &written);
  const Stats stats = log->stats();
  EXPECT_EQ(stats.segments_created_count, 2u);
  EXPECT_EQ(stats.segments_from_spares_count, 1u);
  // The move happened at the last record's batch, which starts the new segment: long before
  // 256 KiB of ~110-byte records filled the first one.
  const std::uint64_t moved_at = log->next_lsn() - 1;
  EXPECT_LT(moved_at, 1000u);
  EXPECT_TRUE(std::filesystem::exists(segment_path(tmp_.log_dir(), moved_at)));
  write_records(*log, 100, 7);
  std::uint64_t last = log->next_lsn() - 1;
  log.reset();
  RecoveryReport report;
  auto again = open_log(options(), &report);
  ASSERT_TRUE(again);
  EXPECT_EQ(report.segments_count, 2u);
  EXPECT_EQ(report.last_lsn, last);
  EXPECT_FALSE(report.torn_tail_truncated);
  expect_records(replay_all(*again, 1), 1, last);
  // The segment it reopened in was a spare, all written (FIEMAP says so): it is not left for
  // the new spare, which is ready long before these 200 small batches are done.
  for (int i = 0; i < 200; ++i) {
    write_records(*again, 1, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  last += 200;
  EXPECT_EQ(again->stats().segments_created_count, 0u);
  expect_records(replay_all(*again, 1), 1, last);
}

// Steady state: rotations take zero-filled spares when the writer is slower than the spare's
// thread (here: 20 records per 5 ms). Only a count is asserted, not that every rotation found
// one ready: a busy CI machine may stall the spare's flushes.
TEST_P(WalSpares, RotationsTakeSpares) {
  Options o = options();
  o.segment_bytes = 16 << 10;
  o.batch_bytes_max = 8 << 10;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  std::uint64_t written = 0;
  write_until_on_a_spare(*log, &written);
  const auto until = std::chrono::steady_clock::now() + kWaitMax;
  while (log->stats().segments_from_spares_count < 4) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "rotations did not take spares";
    write_records(*log, 20, 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const std::uint64_t last = log->next_lsn() - 1;
  log.reset();
  RecoveryReport report;
  auto again = open_log(o, &report);
  ASSERT_TRUE(again);
  EXPECT_EQ(report.last_lsn, last);
  expect_records(replay_all(*again, 1), 1, last);
}

// A crash leaves the spare (whole or half-written): recovery removes it like any temp file, and
// the log makes a new one.
TEST_P(WalSpares, ASpareLeftByACrashIsRemoved) {
  {
    auto log = open_log(options());
    ASSERT_TRUE(log);
    write_records(*log, 10, 5);
  }
  const std::string spare = tmp_.log_dir() + "/00000000000000000000.log.tmp";
  {
    std::ofstream f(spare, std::ios::binary | std::ios::trunc);
    f << "half a spare";
  }
  RecoveryReport report;
  auto log = open_log(options(), &report);
  ASSERT_TRUE(log);
  EXPECT_EQ(report.temp_files_removed, 1u);
  EXPECT_EQ(report.last_lsn, 10u);
  std::uint64_t written = 0;
  write_until_on_a_spare(*log, &written);
  expect_records(replay_all(*log, 1), 1, 10 + written);
}

// With spares off, nothing but segments is ever in the directory, and no segment is left early.
TEST_P(WalSpares, OffMeansFallocatedSegmentsOnly) {
  Options o = options();
  o.spare_segments = false;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 20; ++i) {
    write_records(*log, 1, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(log->stats().segments_created_count, 1u);
  EXPECT_EQ(log->stats().segments_from_spares_count, 0u);
  EXPECT_FALSE(std::filesystem::exists(tmp_.log_dir() + "/00000000000000000000.log.tmp"));
}

}  // namespace
}  // namespace paycore::wal
