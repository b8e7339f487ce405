// Following the committed log from outside its writer (wal/committed.hpp): a CommittedReader
// resumes where its last read ended while the writer goes on, across segments; any other
// start, removed records and damage are said.

#include <filesystem>

#include <gtest/gtest.h>

#include "wal/committed.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

Options follow_options(const TempDir& tmp) {
  Options o;
  o.dir = tmp.log_dir();
  o.segment_bytes = 16 << 10;  // about a hundred records each
  o.batch_bytes_max = 8 << 10;
  o.spare_segments = false;
  return o;
}

// A log of `records` records, closed.
void make_log(const TempDir& tmp, std::uint64_t records) {
  auto log = open_log(follow_options(tmp));
  ASSERT_TRUE(log);
  write_records(*log, records);
}

// Reads from..to in reads of at most `per_read` records (the visitor stops, as the event
// deriver's does at its batch limit), each from the LSN after the last one read.
std::vector<Collected> follow(CommittedReader& reader, std::uint64_t from, std::uint64_t to,
                              std::size_t per_read) {
  std::vector<Collected> out;
  while (from <= to) {
    std::size_t taken = 0;
    const Status s = reader.read(from, to, [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> p) {
      out.push_back({lsn, type, {p.begin(), p.end()}});
      return ++taken < per_read;
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!s.is_ok() || taken == 0) break;
    from = out.back().lsn + 1;
  }
  return out;
}

TEST(CommittedReader, FollowsAGrowingLogAcrossSegmentsFromWhereItStopped) {
  TempDir tmp;
  auto log = open_log(follow_options(tmp));
  ASSERT_TRUE(log);
  CommittedReader reader(tmp.log_dir());
  std::vector<Collected> got;
  for (std::uint64_t written = 0; written < 1200; written += 150) {
    write_records(*log, 150);  // durable when it returns; some reads end inside a segment
    const std::vector<Collected> more = follow(reader, written + 1, written + 150, 37);
    got.insert(got.end(), more.begin(), more.end());
  }
  ASSERT_GT(std::distance(std::filesystem::directory_iterator(tmp.log_dir()), {}), 8);
  expect_records(got, 1, 1200);
}

TEST(CommittedReader, AReadFromElsewhereStartsAfresh) {
  TempDir tmp;
  auto log = open_log(follow_options(tmp));
  ASSERT_TRUE(log);
  write_records(*log, 500);
  CommittedReader reader(tmp.log_dir());
  expect_records(follow(reader, 1, 300, 1000), 1, 300);
  expect_records(follow(reader, 20, 40, 1000), 20, 40);    // back
  expect_records(follow(reader, 450, 500, 7), 450, 500);  // ahead, another segment
  expect_records(follow(reader, 41, 60, 1000), 41, 60);
}

TEST(CommittedReader, RecordsNoLongerOnDiskAreNotFound) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(make_log(tmp, 300));
  ASSERT_EQ(::unlink(segment_path(tmp.log_dir(), 1).c_str()), 0);
  CommittedReader reader(tmp.log_dir());
  const Status s = reader.read(1, 300, [](std::uint64_t, std::uint16_t, std::span<const std::byte>) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_EQ(read_committed(tmp.log_dir(), 5, 10, [](std::uint64_t, std::uint16_t, std::span<const std::byte>) {
              return true;
            }).code(),
            StatusCode::kNotFound);
}

TEST(CommittedReader, DamageIsCorruptionAndTheNextReadStartsAfresh) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(make_log(tmp, 50));
  CommittedReader reader(tmp.log_dir());
  expect_records(follow(reader, 1, 5, 1000), 1, 5);
  flip_byte(segment_path(tmp.log_dir(), 1), record_offset(7) + 40);
  std::uint64_t last = 0;
  const Status s = reader.read(6, 50, [&](std::uint64_t lsn, std::uint16_t, std::span<const std::byte>) {
    last = lsn;
    return true;
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_EQ(last, 6U);  // nothing past the damage
  flip_byte(segment_path(tmp.log_dir(), 1), record_offset(7) + 40);  // repaired
  expect_records(follow(reader, 6, 50, 1000), 6, 50);
}

}  // namespace
}  // namespace paycore::wal
