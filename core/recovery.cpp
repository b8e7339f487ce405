#include "recovery.hpp"

#include <limits>
#include <string>
#include <vector>

#include "apply.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "command.hpp"
#include "command_record.hpp"
#include "engine_records.hpp"
#include "snapshot_store.hpp"

namespace paycore {
namespace {

std::string at_lsn(std::uint64_t lsn) { return "log record at LSN " + std::to_string(lsn); }

Status decode_record(std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload,
                     Command* c, CommandOutcome* outcome, bool* has_outcome) {
  const CommandDecodeError decoded = decode_command_record(type, payload, c, outcome, has_outcome);
  if (decoded != CommandDecodeError::ok) {
    return Status::corruption(at_lsn(lsn) + ": " + std::string(to_string(decoded)));
  }
  return Status::ok();
}

// decode_record() of a record whose outcome is not needed (checked all the same).
Status decode_record(std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload,
                     Command* c) {
  CommandOutcome outcome;
  bool has_outcome = false;
  return decode_record(lsn, type, payload, c, &outcome, &has_outcome);
}

void hand_back_nonce(const Command& c, const RecoveryNonces& nonces) {
  if (nonces.sink && c.carries_nonce() && c.timestamp_us >= nonces.since_us) nonces.sink(c);
}

// Calls `visit` (-> Status) for the durable records from_lsn..to_lsn in order, none after the
// first that fails; returns the read's error, else that visit's.
template <typename Visit>
Status visit_records(wal::Log& log, std::uint64_t from_lsn, std::uint64_t to_lsn, Visit visit) {
  Status visit_error;
  const Status read = log.replay(
      from_lsn,
      [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
        if (visit_error.is_ok()) visit_error = visit(lsn, type, payload);
      },
      to_lsn);
  return read.is_ok() ? visit_error : read;
}

// Applies one logged record to `state`; an error names the record's LSN.
Status replay_record(State& state, std::uint64_t lsn, std::uint16_t type,
                     std::span<const std::byte> payload, const RecoveryNonces& nonces) {
  Command c;
  CommandOutcome logged;
  bool has_outcome = false;
  PAYCORE_RETURN_IF_ERROR(decode_record(lsn, type, payload, &c, &logged, &has_outcome));
  if (c.timestamp_us < state.last_timestamp_us) {
    return Status::corruption(at_lsn(lsn) + ": timestamp goes backwards");
  }
  const Result result = apply(state, c);
  if (!result.mutated) {
    return Status::corruption(at_lsn(lsn) +
                              " changed nothing on replay: the log and this build disagree");
  }
  // Deterministic apply (docs/design.md rule 2), checked: the same outcome as when logged.
  if (has_outcome) {
    if (const std::string differs = describe_outcome_mismatch(logged, outcome_of(result));
        !differs.empty()) {
      return Status::corruption(at_lsn(lsn) + " replays differently (" + differs +
                                "): the log and this build disagree");
    }
  }
  hand_back_nonce(c, nonces);
  return Status::ok();
}

// Replays every record after `snapshot_lsn` into `state`; returns how many.
StatusOr<std::uint64_t> replay_after(State& state, std::uint64_t snapshot_lsn, wal::Log& log,
                                     const RecoveryNonces& nonces) {
  std::uint64_t replayed = 0;
  const Status read = visit_records(
      log, snapshot_lsn + 1, std::numeric_limits<std::uint64_t>::max(),
      [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
        PAYCORE_RETURN_IF_ERROR(replay_record(state, lsn, type, payload, nonces));
        ++replayed;
        return Status::ok();
      });
  if (read.code() == StatusCode::kNotFound) {
    return Status(StatusCode::kMissingSegment, "the log has no records after the snapshot at LSN " +
                                                   std::to_string(snapshot_lsn) +
                                                   " (segments missing): " + read.to_string());
  }
  if (!read.is_ok()) return read;
  return replayed;
}

// The timestamp of the record at `lsn` (the first of a segment).
StatusOr<std::int64_t> record_timestamp_us(wal::Log& log, std::uint64_t lsn) {
  Command c;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(visit_records(
      log, lsn, lsn, [&](std::uint64_t at, std::uint16_t type, std::span<const std::byte> payload) {
        found = true;
        return decode_record(at, type, payload, &c);
      }));
  if (!found) return Status(StatusCode::kNotFound, at_lsn(lsn) + " is not on disk");
  return c.timestamp_us;
}

// The first LSN at or after which a record up to `to_lsn` may have been written at or after
// since_us: the start of the newest segment whose first record is older than that. Timestamps
// increase along the log, so a binary search over the segments' first records finds it.
StatusOr<std::uint64_t> nonce_scan_start(wal::Log& log, std::int64_t since_us, std::uint64_t to_lsn) {
  std::vector<std::uint64_t> firsts = log.segment_first_lsns();
  while (!firsts.empty() && firsts.back() > to_lsn) firsts.pop_back();
  if (firsts.empty()) return to_lsn + 1;
  std::size_t low = 0;               // invariant: the answer is a segment at or after `low`
  std::size_t high = firsts.size();  // and the first one at or after `high` starts too late
  while (high - low > 1) {
    const std::size_t middle = low + (high - low) / 2;
    StatusOr<std::int64_t> first_us = record_timestamp_us(log, firsts[middle]);
    if (!first_us.is_ok()) return first_us.status();
    if (*first_us < since_us) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return firsts[low];
}

// Hands back the nonces of the records up to `to_lsn` written since nonces.since_us (the records
// after it are replayed, and hand theirs back as they go). Returns how many records were read.
// The state does not depend on these records: a failure is said in the log, and the start goes
// on with the nonces found so far (a replay of one of the others would be refused only by its
// idempotency record, docs/api.md).
std::uint64_t scan_nonces_before(wal::Log& log, std::uint64_t to_lsn, const RecoveryNonces& nonces) {
  StatusOr<std::uint64_t> start = nonce_scan_start(log, nonces.since_us, to_lsn);
  std::uint64_t read_count = 0;
  Status read = start.status();
  if (start.is_ok() && *start <= to_lsn) {
    read = visit_records(
        log, *start, to_lsn,
        [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
          Command c;
          PAYCORE_RETURN_IF_ERROR(decode_record(lsn, type, payload, &c));
          ++read_count;
          hand_back_nonce(c, nonces);
          return Status::ok();
        });
  }
  if (!read.is_ok()) {
    log_line(LogLevel::warn, "recovery: nonces of records before the snapshot not all read",
             {{"to_lsn", std::to_string(to_lsn)}, {"error", read.to_string()}});
  }
  return read_count;
}

}  // namespace

StatusOr<RecoveredState> rebuild_state(const StateConfig& config, const std::string& snapshots_dir,
                                       wal::Log& log, const RecoveryNonces& nonces) {
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
  if (nonces.sink && info.lsn > 0) {
    const std::int64_t scan_start_ns = monotonic_ns();
    recovered.nonce_scan_count = scan_nonces_before(log, info.lsn, nonces);
    recovered.nonce_scan_us = (monotonic_ns() - scan_start_ns) / 1000;
  }
  if (log.next_lsn() == info.lsn + 1) return recovered;  // nothing after the snapshot
  const std::int64_t replay_start_ns = monotonic_ns();
  StatusOr<std::uint64_t> replayed = replay_after(*recovered.state, info.lsn, log, nonces);
  if (!replayed.is_ok()) return replayed.status();
  recovered.replayed_count = *replayed;
  recovered.replay_us = (monotonic_ns() - replay_start_ns) / 1000;
  return recovered;
}

}  // namespace paycore
