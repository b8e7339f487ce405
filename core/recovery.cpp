#include "recovery.hpp"

#include <string>
#include <vector>

#include "apply.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "command.hpp"
#include "engine_records.hpp"
#include "snapshot_store.hpp"

namespace paycore {
namespace {

std::string at_lsn(std::uint64_t lsn) { return "log record at LSN " + std::to_string(lsn); }

// Applies one logged record to `state`; an error names the record's LSN.
Status replay_record(State& state, std::uint64_t lsn, std::uint16_t type,
                     std::span<const std::byte> payload) {
  Command c;
  const CommandDecodeError decoded =
      type == record_type_command ? decode_command(payload, &c) : CommandDecodeError::unknown_kind;
  if (decoded != CommandDecodeError::ok) {
    return Status::corruption(at_lsn(lsn) + ": " + std::string(to_string(decoded)));
  }
  if (c.timestamp_us < state.last_timestamp_us) {
    return Status::corruption(at_lsn(lsn) + ": timestamp goes backwards");
  }
  const Result result = apply(state, c);
  if (!result.mutated) {
    return Status::corruption(at_lsn(lsn) +
                              " changed nothing on replay: the log and this build disagree");
  }
  return Status::ok();
}

// Replays every record after `snapshot_lsn` into `state`; returns how many.
StatusOr<std::uint64_t> replay_after(State& state, std::uint64_t snapshot_lsn, wal::Log& log) {
  Status record_error;
  std::uint64_t replayed = 0;
  const Status read = log.replay(snapshot_lsn + 1, [&](std::uint64_t lsn, std::uint16_t type,
                                                       std::span<const std::byte> payload) {
    if (!record_error.is_ok()) return;
    record_error = replay_record(state, lsn, type, payload);
    if (record_error.is_ok()) ++replayed;
  });
  if (read.code() == StatusCode::kNotFound) {
    return Status(StatusCode::kMissingSegment, "the log has no records after the snapshot at LSN " +
                                                   std::to_string(snapshot_lsn) +
                                                   " (segments missing): " + read.to_string());
  }
  if (!read.is_ok()) return read;
  if (!record_error.is_ok()) return record_error;
  return replayed;
}

}  // namespace

StatusOr<RecoveredState> rebuild_state(const StateConfig& config, const std::string& snapshots_dir,
                                       wal::Log& log) {
  RecoveredState recovered;
  SnapshotInfo info;
  std::vector<std::string> skipped;
  const std::int64_t load_start_ns = monotonic_ns();
  load_newest_snapshot(snapshots_dir, config, &recovered.state, &info, &skipped);
  recovered.snapshot_load_us = (monotonic_ns() - load_start_ns) / 1000;
  for (const std::string& why : skipped) {
    log_line(LogLevel::warn, "snapshot damaged, using the one before it", {{"reason", why}});
  }
  recovered.snapshot_lsn = info.lsn;
  if (log.next_lsn() <= info.lsn) {
    return Status(StatusCode::kMissingSegment,
                  "the log ends at LSN " + std::to_string(log.next_lsn() - 1) +
                      ", before the snapshot's LSN " + std::to_string(info.lsn) +
                      ": log records are missing");
  }
  if (log.next_lsn() == info.lsn + 1) return recovered;  // nothing after the snapshot
  const std::int64_t replay_start_ns = monotonic_ns();
  StatusOr<std::uint64_t> replayed = replay_after(*recovered.state, info.lsn, log);
  if (!replayed.is_ok()) return replayed.status();
  recovered.replayed_count = *replayed;
  recovered.replay_us = (monotonic_ns() - replay_start_ns) / 1000;
  return recovered;
}

}  // namespace paycore
