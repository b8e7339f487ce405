// Recovery: one test per way a log directory can be found at start-up.

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "base/time.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

Options small_options(const TempDir& tmp) {
  Options o;
  o.dir = tmp.log_dir();
  o.segment_bytes = 64 << 10;
  o.batch_bytes_max = 16 << 10;
  o.spare_segments = false;  // these tests place records at known offsets of one segment
  return o;
}

TEST(WalRecovery, EmptyDirectoryStartsFresh) {
  TempDir tmp;
  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);  // the directory does not exist yet
  ASSERT_TRUE(log);
  EXPECT_TRUE(report.fresh);
  EXPECT_EQ(report.records_count, 0u);
  EXPECT_EQ(log->next_lsn(), 1u);
  EXPECT_EQ(log->durable_lsn(), 0u);
  EXPECT_TRUE(std::filesystem::exists(segment_path(tmp.log_dir(), 1)));
  log.reset();
  // An existing but empty directory is the same.
  TempDir tmp2;
  std::filesystem::create_directories(tmp2.log_dir());
  auto log2 = open_log(small_options(tmp2), &report);
  ASSERT_TRUE(log2);
  EXPECT_TRUE(report.fresh);
  EXPECT_EQ(log2->next_lsn(), 1u);
}

TEST(WalRecovery, FreshLogStartsAtFirstLsnIfEmpty) {
  TempDir tmp;
  Options o = small_options(tmp);
  o.first_lsn_if_empty = 5001;
  {
    auto log = open_log(o);
    ASSERT_TRUE(log);
    EXPECT_EQ(log->next_lsn(), 5001u);
    EXPECT_EQ(log->durable_lsn(), 5000u);
    write_records(*log, 10);
    EXPECT_EQ(log->durable_lsn(), 5010u);
  }
  o.first_lsn_if_empty = 1;  // ignored once segments exist
  RecoveryReport report;
  auto log = open_log(o, &report);
  ASSERT_TRUE(log);
  EXPECT_FALSE(report.fresh);
  EXPECT_EQ(report.first_lsn, 5001u);
  EXPECT_EQ(report.last_lsn, 5010u);
  expect_records(replay_all(*log, 5001), 5001, 5010);
}

TEST(WalRecovery, ReopenContinuesAfterLastRecord) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 50);
  }
  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);
  ASSERT_TRUE(log);
  EXPECT_EQ(report.records_count, 50u);
  EXPECT_EQ(report.last_lsn, 50u);
  EXPECT_FALSE(report.torn_tail_truncated);
  EXPECT_EQ(log->next_lsn(), 51u);
  write_records(*log, 5);
  expect_records(replay_all(*log, 1), 1, 55);
}

TEST(WalRecovery, TornTailIsTruncated) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 11);
  }
  // A crash in the middle of writing record 11: its last bytes never reached the disk.
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::uint64_t off11 = record_offset(11);
  const std::size_t len11 = payload_for(11).size();
  const std::vector<std::byte> zeros(len11 / 2, std::byte{0});
  write_at(seg, off11 + format::kRecordHeaderBytes + len11 - zeros.size(), zeros);

  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);
  ASSERT_TRUE(log);
  EXPECT_TRUE(report.torn_tail_truncated);
  EXPECT_EQ(report.torn_file, seg);
  EXPECT_EQ(report.torn_offset, off11);
  EXPECT_GT(report.torn_bytes, 0u);
  EXPECT_EQ(report.last_lsn, 10u);
  EXPECT_EQ(log->next_lsn(), 11u);
  // The torn bytes are zeros now, so a later crash cannot mistake them for a record.
  const auto tail = read_at(seg, off11, format::kRecordHeaderBytes);
  EXPECT_TRUE(format::all_zero(tail.data(), tail.size()));
  write_records(*log, 3);
  log.reset();
  auto again = open_log(small_options(tmp), &report);
  ASSERT_TRUE(again);
  EXPECT_FALSE(report.torn_tail_truncated);
  expect_records(replay_all(*again, 1), 1, 13);
}

TEST(WalRecovery, TornHeaderAtTailIsTruncated) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 4);
  }
  // Only the first 12 bytes of a fifth record's header reached the disk.
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::vector<std::byte> partial(12, std::byte{0xAB});
  write_at(seg, record_offset(5), partial);
  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);
  ASSERT_TRUE(log);
  EXPECT_TRUE(report.torn_tail_truncated);
  EXPECT_EQ(report.torn_offset, record_offset(5));
  EXPECT_EQ(log->next_lsn(), 5u);
}

TEST(WalRecovery, StrayBytesAfterLastRecordAreTorn) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 8);
  }
  // A crash left a few pages of a batch whose first page never arrived: zeros where record 9's
  // header should be, then bytes that are not a valid record.
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::vector<std::byte> junk(300, std::byte{0x77});
  write_at(seg, record_offset(9) + 4096, junk);
  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);
  ASSERT_TRUE(log);
  EXPECT_TRUE(report.torn_tail_truncated);
  EXPECT_EQ(report.torn_offset, record_offset(9));
  EXPECT_GE(report.torn_bytes, 4096u + 300u);
  const auto after = read_at(seg, record_offset(9) + 4096, junk.size());
  EXPECT_TRUE(format::all_zero(after.data(), after.size()));
  EXPECT_EQ(log->next_lsn(), 9u);
}

TEST(WalRecovery, ValidRecordAfterZeroedGapIsCorruption) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 12);
  }
  // Record 10 is wiped but 11 and 12 are intact: not a torn tail, so refuse to guess.
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::vector<std::byte> zeros(record_offset(11) - record_offset(10), std::byte{0});
  write_at(seg, record_offset(10), zeros);
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(small_options(tmp), &log, &report);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("offset " + std::to_string(record_offset(10))), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("LSN 11"), std::string::npos) << s.message();
}

TEST(WalRecovery, CorruptMiddleRecordStopsRecovery) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 20);
  }
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::uint64_t off5 = record_offset(5);
  flip_byte(seg, off5 + format::kRecordHeaderBytes + 3);  // a payload byte of LSN 5
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(small_options(tmp), &log, &report);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_FALSE(log);
  EXPECT_NE(s.message().find(seg), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset " + std::to_string(off5)), std::string::npos) << s.message();
  // Recovery refused: nothing was truncated.
  const auto after = read_at(seg, record_offset(20), format::kRecordHeaderBytes);
  EXPECT_FALSE(format::all_zero(after.data(), after.size()));
}

TEST(WalRecovery, CorruptRecordInOlderSegmentStopsRecovery) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 2000);  // several 64 KiB segments
  }
  // Damage the last record of the first segment: valid records follow only in later files.
  std::uint64_t last_in_first = 0;
  std::uint64_t off = format::kSegmentHeaderBytes;
  for (std::uint64_t lsn = 1;; ++lsn) {
    const std::uint64_t next = off + format::record_bytes(payload_for(lsn).size());
    if (next > (64u << 10)) break;
    last_in_first = off;
    off = next;
  }
  flip_byte(segment_path(tmp.log_dir(), 1), last_in_first + format::kRecordHeaderBytes);
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(small_options(tmp), &log, &report);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("offset " + std::to_string(last_in_first)), std::string::npos)
      << s.message();
}

TEST(WalRecovery, BrokenHashChainIsDetected) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 10);
  }
  // Rewrite record 6 with a wrong prev_checksum but a correct checksum of its own: every record
  // is intact by itself, only the chain says something is wrong.
  const std::string seg = segment_path(tmp.log_dir(), 1);
  const std::uint64_t off6 = record_offset(6);
  const auto payload = payload_for(6);
  std::vector<std::byte> rec(format::record_bytes(payload.size()));
  format::encode_record(rec.data(), 6, type_for(6), 0xDEADBEEF, payload);
  write_at(seg, off6, rec);
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(small_options(tmp), &log, &report);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("hash chain"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset " + std::to_string(off6)), std::string::npos) << s.message();
}

TEST(WalRecovery, MissingSegmentIsReported) {
  TempDir tmp;
  std::vector<std::uint64_t> firsts;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 2000);
  }
  for (const auto& e : std::filesystem::directory_iterator(tmp.log_dir())) {
    firsts.push_back(std::stoull(e.path().filename().string()));
  }
  std::sort(firsts.begin(), firsts.end());
  ASSERT_GE(firsts.size(), 3u);
  const std::string missing = segment_path(tmp.log_dir(), firsts[1]);
  std::filesystem::remove(missing);
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(small_options(tmp), &log, &report);
  EXPECT_EQ(s.code(), StatusCode::kMissingSegment) << s.to_string();
  EXPECT_NE(s.message().find(std::filesystem::path(missing).filename().string()), std::string::npos)
      << s.message();
}

TEST(WalRecovery, HalfCreatedSegmentIsRemoved) {
  TempDir tmp;
  {
    auto log = open_log(small_options(tmp));
    write_records(*log, 5);
  }
  // A crash while creating the next segment leaves only its temporary file.
  const std::string tmp_file = segment_path(tmp.log_dir(), 6) + ".tmp";
  std::FILE* f = std::fopen(tmp_file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  RecoveryReport report;
  auto log = open_log(small_options(tmp), &report);
  ASSERT_TRUE(log);
  EXPECT_EQ(report.temp_files_removed, 1u);
  EXPECT_FALSE(std::filesystem::exists(tmp_file));
  EXPECT_EQ(log->next_lsn(), 6u);
}

TEST(WalRecovery, RotationKeepsRecordsWhole) {
  TempDir tmp;
  Options o = small_options(tmp);
  auto log = open_log(o);
  ASSERT_TRUE(log);
  // Payloads from 100 to ~3 KiB so that rotation meets records of many sizes.
  std::uint64_t lsn = 0;
  for (std::uint64_t i = 1; i <= 600; ++i) {
    const auto p = payload_for(i, 100 + (i * 97) % 3000);
    Status s = log->append(1, p, &lsn);
    if (s.code() == StatusCode::kFull) {
      ASSERT_TRUE(log->submit().is_ok());
      s = log->append(1, p, &lsn);
    }
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_EQ(log->wait(), 600u);
  EXPECT_GE(log->stats().segments_created_count, 10u);
  // Each segment's name is its first record's LSN, and every record lies inside one file.
  std::uint64_t expected_lsn = 1;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(o.dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    EXPECT_EQ(std::stoull(f.filename().string()), expected_lsn) << f;
    const auto bytes = read_at(f.string(), 0, static_cast<std::size_t>(std::filesystem::file_size(f)));
    std::uint64_t off = format::kSegmentHeaderBytes;
    while (off + format::kRecordHeaderBytes <= bytes.size() &&
           !format::all_zero(bytes.data() + off, format::kRecordHeaderBytes)) {
      const auto h = format::decode_record_header(bytes.data() + off);
      ASSERT_EQ(h.lsn, expected_lsn);
      ASSERT_LE(off + format::record_bytes(h.length), bytes.size()) << "record spans files";
      ASSERT_EQ(format::compute_record_checksum(bytes.data() + off, h.length), h.checksum);
      off += format::record_bytes(h.length);
      ++expected_lsn;
    }
  }
  EXPECT_EQ(expected_lsn, 601u);
  std::uint64_t seen = 0;
  ASSERT_TRUE(log->replay(1, [&](std::uint64_t l, std::uint16_t, std::span<const std::byte> p) {
                   ++seen;
                   EXPECT_EQ(std::vector<std::byte>(p.begin(), p.end()), payload_for(l, 100 + (l * 97) % 3000));
                 }).is_ok());
  EXPECT_EQ(seen, 600u);
}

TEST(WalRecovery, ReplayFromLsn) {
  TempDir tmp;
  auto log = open_log(small_options(tmp));
  ASSERT_TRUE(log);
  write_records(*log, 3000);  // several segments
  expect_records(replay_all(*log, 1234), 1234, 3000);
  expect_records(replay_all(*log, 3000), 3000, 3000);
  EXPECT_TRUE(replay_all(*log, 3001).empty());
  // Only durable records are replayed: appended-but-unsubmitted ones are not.
  std::uint64_t lsn = 0;
  const auto p = payload_for(3001);
  ASSERT_TRUE(log->append(type_for(3001), p, &lsn).is_ok());
  EXPECT_TRUE(replay_all(*log, 3001).empty());
}

TEST(WalRecovery, RemoveSegmentsBelowKeepsLaterRecords) {
  TempDir tmp;
  Options o = small_options(tmp);
  auto log = open_log(o);
  ASSERT_TRUE(log);
  write_records(*log, 3000);
  const auto count_files = [&] {
    return std::distance(std::filesystem::directory_iterator(o.dir), std::filesystem::directory_iterator{});
  };
  const auto before = count_files();
  ASSERT_TRUE(log->remove_segments_below(2000).is_ok());
  EXPECT_LT(count_files(), before);
  EXPECT_LE(log->first_lsn(), 2000u);
  EXPECT_GT(log->first_lsn(), 1u);
  expect_records(replay_all(*log, 2000), 2000, 3000);
  std::vector<Collected> none;
  EXPECT_EQ(log->replay(1, [&](std::uint64_t, std::uint16_t, std::span<const std::byte>) {}).code(),
            StatusCode::kNotFound);
  // The remaining files still open as a valid log.
  log.reset();
  RecoveryReport report;
  auto again = open_log(o, &report);
  ASSERT_TRUE(again);
  EXPECT_EQ(report.last_lsn, 3000u);
  EXPECT_EQ(report.first_lsn, again->first_lsn());
  // The segment being written is never removed, whatever the LSN.
  ASSERT_TRUE(again->remove_segments_below(UINT64_MAX).is_ok());
  EXPECT_EQ(count_files(), 1);
  write_records(*again, 5);
  EXPECT_EQ(again->durable_lsn(), 3005u);
}

TEST(WalRecovery, ReplayStopsAtToLsn) {
  TempDir tmp;
  auto log = open_log(small_options(tmp));
  ASSERT_TRUE(log);
  write_records(*log, 3000);  // several segments
  std::vector<std::uint64_t> lsns;
  const auto collect = [&](std::uint64_t lsn, std::uint16_t, std::span<const std::byte>) {
    lsns.push_back(lsn);
  };
  ASSERT_TRUE(log->replay(1000, collect, 2500).is_ok());
  ASSERT_EQ(lsns.size(), 1501u);
  EXPECT_EQ(lsns.front(), 1000u);
  EXPECT_EQ(lsns.back(), 2500u);
  lsns.clear();
  ASSERT_TRUE(log->replay(7, collect, 7).is_ok());
  EXPECT_EQ(lsns, std::vector<std::uint64_t>{7});
  // Each segment's first LSN, oldest first: 1, then where each rotation began.
  const std::vector<std::uint64_t> firsts = log->segment_first_lsns();
  ASSERT_GT(firsts.size(), 2u);
  EXPECT_EQ(firsts.front(), 1u);
  EXPECT_TRUE(std::is_sorted(firsts.begin(), firsts.end()));
}

// A segment written to at or after the given wall time stays, and every later one with it,
// although its LSNs are below the limit (the nonces of the last window: docs/design.md).
TEST(WalRecovery, RemoveSegmentsBelowKeepsThoseWrittenSince) {
  TempDir tmp;
  Options o = small_options(tmp);
  auto log = open_log(o);
  ASSERT_TRUE(log);
  write_records(*log, 3000);
  const std::vector<std::uint64_t> firsts = log->segment_first_lsns();
  ASSERT_GT(firsts.size(), 2u);
  // Every closed segment was written to within the last minute: none goes.
  ASSERT_TRUE(log->remove_segments_below(UINT64_MAX, wall_clock_us() - 60'000'000).is_ok());
  EXPECT_EQ(log->segment_first_lsns(), firsts);
  // A cutoff after their rotation: all closed segments go.
  ASSERT_TRUE(log->remove_segments_below(UINT64_MAX, wall_clock_us() + 1).is_ok());
  EXPECT_EQ(log->segment_first_lsns(), std::vector<std::uint64_t>{firsts.back()});
}

// Segments found at open count as written at the open: the previous run may have written to
// them up to its end, and nothing on disk says when that was.
TEST(WalRecovery, SegmentsFoundAtOpenCountAsWrittenThen) {
  TempDir tmp;
  Options o = small_options(tmp);
  const std::int64_t before_open_us = [&] {
    auto log = open_log(o);
    EXPECT_TRUE(log);
    write_records(*log, 3000);
    return wall_clock_us();
  }();
  auto again = open_log(o);
  ASSERT_TRUE(again);
  const std::vector<std::uint64_t> firsts = again->segment_first_lsns();
  ASSERT_GT(firsts.size(), 2u);
  ASSERT_TRUE(again->remove_segments_below(UINT64_MAX, before_open_us).is_ok());
  EXPECT_EQ(again->segment_first_lsns(), firsts);
}

TEST(WalRecovery, BatchFullAndOversizedRecordAreReported) {
  TempDir tmp;
  Options o = small_options(tmp);
  o.batch_bytes_max = 4096;
  auto log = open_log(o);
  ASSERT_TRUE(log);
  std::uint64_t lsn = 0;
  const std::vector<std::byte> big(5000);
  EXPECT_EQ(log->append(1, big, &lsn).code(), StatusCode::kInvalidArgument);
  const std::vector<std::byte> p(1000);
  int appended = 0;
  Status s;
  while ((s = log->append(1, p, &lsn)).is_ok()) ++appended;
  EXPECT_EQ(s.code(), StatusCode::kFull);
  EXPECT_EQ(appended, 3);  // records of 1032 bytes: 3 fit in 4096, a 4th does not
  ASSERT_TRUE(log->submit().is_ok());
  EXPECT_TRUE(log->append(1, p, &lsn).is_ok());
  EXPECT_EQ(lsn, 4u);
}

}  // namespace
}  // namespace paycore::wal
