// Log recovery over arbitrary segment files. Input: byte 0 holds flags, byte 1 a split point,
// the rest is written as one segment file (or two, split at byte 1's share of the bytes) in a
// fresh temporary directory, each named after the first LSN its header claims. Flag bit 0
// repairs the segment header checksum and every record checksum that can be found by walking
// the lengths, so that mutations get past the checksums to the structure checks behind them.
// Then, on that directory:
//   wal_verify and wal_dump (read only) must agree on whether the log is valid;
//   Log::open (recovery, which zeroes a torn tail) must succeed exactly when they say valid,
//   replay must hand over as many records as recovery counted, and wal_verify afterwards must
//   find a clean log with no torn tail left.
// The directory is removed after every input. PAYCORE_FUZZ_TMPDIR (scripts/fuzz sets one
// under /dev/shm) says where to make it; otherwise /dev/shm if present, else $TMPDIR or /tmp.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_target.hpp"
#include "core/command.hpp"
#include "wal/format.hpp"
#include "wal/log.hpp"
#include "wal/tools.hpp"

namespace {

namespace fmt = paycore::wal::format;

std::string temp_base() {
  if (const char* dir = std::getenv("PAYCORE_FUZZ_TMPDIR"); dir != nullptr && *dir != '\0') return dir;
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  if (const char* dir = std::getenv("TMPDIR"); dir != nullptr && *dir != '\0') return dir;
  return "/tmp";
}

// A directory that lives for one input.
class TempDir {
 public:
  TempDir() {
    std::string pattern = temp_base() + "/paycore-wal-fuzz-XXXXXX";
    FUZZ_CHECK(wal_recovery, ::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void repair_checksums(std::vector<std::byte>* segment) {
  if (segment->size() < fmt::kSegmentHeaderBytes) return;
  std::byte* p = segment->data();
  fmt::store(p + fmt::kSegChecksumOffset, fmt::hash(p, fmt::kSegChecksumOffset));
  std::size_t offset = fmt::kSegmentHeaderBytes;
  while (offset + fmt::kRecordHeaderBytes <= segment->size()) {
    const std::uint32_t length = fmt::load<std::uint32_t>(p + offset + fmt::kRecLengthOffset);
    if (length > segment->size() - offset - fmt::kRecordHeaderBytes) break;
    if (fmt::all_zero(p + offset, fmt::kRecordHeaderBytes)) break;
    fmt::store(p + offset + fmt::kRecChecksumOffset, fmt::compute_record_checksum(p + offset, length));
    offset += fmt::record_bytes(length);
  }
}

std::string segment_name(const std::vector<std::byte>& segment, std::uint64_t fallback_lsn) {
  std::uint64_t first_lsn = fallback_lsn;
  if (segment.size() >= fmt::kSegFirstLsnOffset + 8) {
    first_lsn = fmt::load<std::uint64_t>(segment.data() + fmt::kSegFirstLsnOffset);
  }
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.log", static_cast<unsigned long long>(first_lsn));
  return name;
}

void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FUZZ_CHECK(wal_recovery, fd >= 0);
  const ssize_t written = ::write(fd, bytes.data(), bytes.size());
  ::close(fd);
  FUZZ_CHECK(wal_recovery, written == static_cast<ssize_t>(bytes.size()));
}

std::string format_payload(std::uint16_t, std::span<const std::byte> payload) {
  paycore::Command command;
  if (paycore::decode_command(payload, &command) != paycore::CommandDecodeError::ok) return {};
  return "\"" + std::string(paycore::to_string(command.kind)) + "\"";
}

}  // namespace

PAYCORE_FUZZ_TARGET(wal_recovery) {
  using namespace paycore::wal;
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const auto body = paycore::fuzz::as_bytes(data + 2, size - 2);
  std::vector<std::vector<std::byte>> segments;
  if ((flags & 2) != 0 && body.size() >= 2) {
    const std::size_t split = 1 + (body.size() - 1) * data[1] / 256;
    segments.emplace_back(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(split));
    segments.emplace_back(body.begin() + static_cast<std::ptrdiff_t>(split), body.end());
  } else {
    segments.emplace_back(body.begin(), body.end());
  }
  TempDir dir;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if ((flags & 1) != 0) repair_checksums(&segments[i]);
    write_file(dir.path() + "/" + segment_name(segments[i], i + 1), segments[i]);
  }

  std::ostringstream verify_out, dump_out;
  const int verify_rc = wal_verify(dir.path(), verify_out);
  const int dump_rc = wal_dump(dir.path(), dump_out, format_payload);
  FUZZ_CHECK(wal_recovery, verify_rc == 0 || verify_rc == 1);
  FUZZ_CHECK(wal_recovery, verify_rc == dump_rc);

  Options options;
  options.dir = dir.path();
  options.segment_bytes = 4096;
  options.batch_bytes_max = 4096;
  options.force_fallback = true;  // recovery is what is fuzzed; no io_uring ring per input
  options.spare_segments = false;  // nor a thread writing a spare per input
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status opened = Log::open(options, &log, &report);
  FUZZ_CHECK(wal_recovery, opened.is_ok() == (verify_rc == 0));
  if (!opened.is_ok()) return 0;

  std::uint64_t replayed = 0, last_lsn = 0;
  bool in_order = true;
  const Status replay = log->replay(log->first_lsn(), [&](std::uint64_t lsn, std::uint16_t,
                                                          std::span<const std::byte>) {
    in_order = in_order && (last_lsn == 0 || lsn == last_lsn + 1);
    last_lsn = lsn;
    ++replayed;
  });
  FUZZ_CHECK(wal_recovery, replay.is_ok());
  FUZZ_CHECK(wal_recovery, in_order && replayed == report.records_count);
  FUZZ_CHECK(wal_recovery, replayed == 0 || last_lsn == report.last_lsn);
  log.reset();

  std::ostringstream after;
  FUZZ_CHECK(wal_recovery, wal_verify(dir.path(), after) == 0);
  FUZZ_CHECK(wal_recovery, after.str().find("torn tail in") == std::string::npos);
  return 0;
}
