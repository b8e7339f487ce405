#pragma once
// Writing and reading snapshot files (layout: snapshot_format.hpp). Writing allocates nothing
// (it may run in a forked child of a multi-threaded process, where malloc is not safe);
// reading trusts nothing: every count, reference, enum and id is checked, and an error names
// the byte offset where the file went wrong.

#include <cstddef>
#include <climits>
#include <cstdint>
#include <span>
#include <string>

#include "base/status.hpp"
#include "state.hpp"

namespace paycore {

// Where serialized bytes go.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  [[nodiscard]] virtual bool write(const std::byte* data, std::size_t size) = 0;
};

class StringSink final : public ByteSink {
 public:
  bool write(const std::byte* data, std::size_t size) override {
    bytes.append(reinterpret_cast<const char*>(data), size);
    return true;
  }
  std::string bytes;
};

// Buffers writes in a caller-owned buffer and writes it to a file descriptor when full.
class FdSink final : public ByteSink {
 public:
  FdSink(int fd, std::span<std::byte> buffer) : fd_(fd), buffer_(buffer) {}
  bool write(const std::byte* data, std::size_t size) override;
  [[nodiscard]] bool flush();
  int error() const { return errno_; }  // the errno of the failed write, if any

 private:
  int fd_;
  std::span<std::byte> buffer_;
  std::size_t used_ = 0;
  int errno_ = 0;
};

struct SnapshotInfo {
  std::uint32_t format_version = 0;
  std::uint64_t lsn = 0;
  std::int64_t created_at_us = 0;
  std::int64_t last_timestamp_us = 0;
  std::int64_t pending_lifetime_us = 0;
  // payments, idempotency and pending are end rows (version 3): the rows in the file are
  // those from the begin rows below (from expiry_cursor for the pending queue).
  std::uint32_t channels = 0, accounts = 0, payments = 0, refunds = 0, idempotency = 0,
                anomalies = 0, principals = 0, pending = 0, system_balances = 0, mandates = 0;
  std::uint32_t payments_begin = 0, idempotency_begin = 0, archived_rows_end = 0;
  std::uint32_t expiry_cursor = 0;
  std::int64_t idempotency_horizon_us = INT64_MIN;
  std::uint64_t checksum_low = 0, checksum_high = 0;  // the trailer's xxHash3-128
};

// Serializes `state` as the snapshot at `lsn`. The bytes depend only on the state, `lsn` and
// `created_at_us`: two states built by the same commands serialize identically.
[[nodiscard]] bool write_snapshot(const State& state, std::uint64_t lsn, std::int64_t created_at_us,
                                  ByteSink& sink);
std::string serialize_snapshot(const State& state, std::uint64_t lsn, std::int64_t created_at_us);

/// The configuration to load the snapshot `info` describes with: `config`'s expected sizes
/// raised to 1.5x the rows the file holds (so that loading never prepares a larger index
/// table). Payments and idempotency records count from their begin
/// rows: what was archived or dropped before the snapshot is not in memory, and sizing for it
/// would cost 16 bytes of index per row ever made (issue 12: 15.8 GiB after 300M archived).
StateConfig sized_for(const StateConfig& config, const SnapshotInfo& info);

/// Parses a whole snapshot into `*state` (which must be freshly constructed). Errors:
/// kCorruption with a message naming the offset where the bytes went wrong; `*state` is then
/// unusable. `*info` holds what the header said, as far as it was read.
Status load_snapshot(std::span<const std::byte> bytes, State* state, SnapshotInfo* info);
/// Checks the header and trailer checksum only (fast): for `snapshot inspect` and for choosing
/// the newest valid snapshot at recovery. Errors as load_snapshot.
Status check_snapshot(std::span<const std::byte> bytes, SnapshotInfo* info);

/// A whole file's bytes. Errors: open's or read's, naming the file (errno_status).
StatusOr<std::string> read_file(const std::string& path);
/// read_file + load_snapshot; a content error is prefixed with the file's path.
Status load_snapshot_file(const std::string& path, State* state, SnapshotInfo* info);

}  // namespace paycore
