#pragma once
// Helpers shared by the wal tests: temporary directories, deterministic payloads, raw file edits.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "wal/format.hpp"
#include "wal/log.hpp"

namespace paycore::wal::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/paycore-wal-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (p == nullptr) std::abort();
    path_ = p;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string log_dir() const { return path_ + "/wal"; }

 private:
  std::string path_;
};

// The writer tests' log: 256 KiB segments (a few thousand records each), 64 KiB batches.
inline Options writer_test_options(const TempDir& tmp, bool force_fallback, bool spare_segments) {
  Options o;
  o.dir = tmp.log_dir();
  o.segment_bytes = 256 << 10;
  o.batch_bytes_max = 64 << 10;
  o.force_fallback = force_fallback;
  o.spare_segments = spare_segments;
  return o;
}

// Payload of record `lsn`: its length and bytes follow from the LSN, so any record can be checked.
inline std::vector<std::byte> payload_for(std::uint64_t lsn, std::size_t base_bytes = 100) {
  const std::size_t n = base_bytes + static_cast<std::size_t>(lsn * 7 % 13);
  std::vector<std::byte> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>((lsn * 31 + i) & 0xFF);
  return p;
}

inline std::uint16_t type_for(std::uint64_t lsn) { return static_cast<std::uint16_t>(lsn % 5 + 1); }

inline std::string segment_path(const std::string& dir, std::uint64_t first_lsn) {
  char name[40];
  std::snprintf(name, sizeof name, "%020llu.log", static_cast<unsigned long long>(first_lsn));
  return dir + "/" + name;
}

// Appends records until `count` have been made durable, submitting whenever the batch is full
// and every `batch_records` records.
inline void write_records(Log& log, std::uint64_t count, std::uint64_t batch_records = 16,
                          std::size_t base_bytes = 100) {
  std::uint64_t in_batch = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t lsn_expected = log.next_lsn();
    const auto p = payload_for(lsn_expected, base_bytes);
    std::uint64_t lsn = 0;
    Status s = log.append(type_for(lsn_expected), p, &lsn);
    if (s.code() == StatusCode::kFull) {
      ASSERT_TRUE(log.submit().is_ok());
      in_batch = 0;
      s = log.append(type_for(lsn_expected), p, &lsn);
    }
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_EQ(lsn, lsn_expected);
    if (++in_batch == batch_records) {
      ASSERT_TRUE(log.submit().is_ok());
      in_batch = 0;
    }
  }
  ASSERT_TRUE(log.submit().is_ok());
  log.wait();
  ASSERT_EQ(log.durable_lsn(), log.next_lsn() - 1);
}

inline std::unique_ptr<Log> open_log(const Options& options, RecoveryReport* report = nullptr) {
  RecoveryReport ignored;
  std::unique_ptr<Log> log;
  const Status s = Log::open(options, &log, report != nullptr ? report : &ignored);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return log;
}

// Offset of record `lsn` in a log's first segment (starting at LSN 1) written with payload_for.
inline std::uint64_t record_offset(std::uint64_t lsn, std::size_t base_bytes = 100) {
  std::uint64_t off = format::kSegmentHeaderBytes;
  for (std::uint64_t i = 1; i < lsn; ++i) off += format::record_bytes(payload_for(i, base_bytes).size());
  return off;
}

inline std::vector<std::byte> read_at(const std::string& path, std::uint64_t offset, std::size_t n) {
  std::vector<std::byte> buf(n);
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::pread(fd, buf.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
  return buf;
}

inline void write_at(const std::string& path, std::uint64_t offset, std::span<const std::byte> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

inline void flip_byte(const std::string& path, std::uint64_t offset) {
  auto b = read_at(path, offset, 1);
  b[0] ^= std::byte{0x5A};
  write_at(path, offset, b);
}

struct Collected {
  std::uint64_t lsn;
  std::uint16_t type;
  std::vector<std::byte> payload;
};

inline std::vector<Collected> replay_all(Log& log, std::uint64_t from_lsn) {
  std::vector<Collected> out;
  const Status s = log.replay(from_lsn, [&](std::uint64_t lsn, std::uint16_t type,
                                            std::span<const std::byte> payload) {
    out.push_back({lsn, type, {payload.begin(), payload.end()}});
  });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return out;
}

// Every record from `from` to the end is present, in order, with the payload payload_for made.
inline void expect_records(const std::vector<Collected>& got, std::uint64_t from, std::uint64_t to,
                           std::size_t base_bytes = 100) {
  ASSERT_EQ(got.size(), to - from + 1);
  for (std::uint64_t lsn = from; lsn <= to; ++lsn) {
    const Collected& c = got[lsn - from];
    ASSERT_EQ(c.lsn, lsn);
    ASSERT_EQ(c.type, type_for(lsn));
    ASSERT_EQ(c.payload, payload_for(lsn, base_bytes)) << "payload of LSN " << lsn;
  }
}

}  // namespace paycore::wal::testing
