#pragma once
// Recovery (docs/design.md "Snapshots and recovery"): the newest whole snapshot plus every
// durable log record after it, replayed through the same `apply` as live commands.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "command.hpp"
#include "state.hpp"
#include "wal/log.hpp"

namespace paycore {

/// What recovery rebuilt: the state, the LSN of the snapshot it started from (0: none) and how
/// many log records were replayed on top of it.
struct RecoveredState {
  std::unique_ptr<State> state;
  std::uint64_t snapshot_lsn = 0;
  std::uint64_t replayed_count = 0;
  // Where recovery's time went (CLOCK_MONOTONIC): choosing, reading and loading the snapshot,
  // and replaying the log after it. Opening the log (its scan) is before both.
  std::int64_t snapshot_load_us = 0;
  std::int64_t replay_us = 0;
  // Records read before the snapshot only for the nonces they carry, and the time it took.
  std::uint64_t nonce_scan_count = 0;
  std::int64_t nonce_scan_us = 0;
};

/// Where recovery hands back the nonces that logged commands carry (command_flag_nonce): `sink`
/// gets every such command whose record was written at or after `since_us` (wall time, us since
/// the epoch), those before the snapshot as well as those replayed on top of it. Records before
/// the snapshot are read for this only, from the first segment that may hold one so recent; a
/// segment already removed is skipped (logged). An empty sink: none is read.
struct RecoveryNonces {
  std::int64_t since_us = 0;
  std::function<void(const Command&)> sink;
};

/// Rebuilds the state from `snapshots_dir` and `log`. A damaged snapshot is logged (warn) and the
/// one before it is used. Errors: kMissingSegment when the log lacks records after the snapshot
/// (it ends before it, or its first segments were removed); kCorruption for a record that does
/// not decode, goes back in time or changes nothing on replay (the message names its LSN); the
/// log's own replay errors as they come.
StatusOr<RecoveredState> rebuild_state(const StateConfig& config, const std::string& snapshots_dir,
                                       wal::Log& log, const RecoveryNonces& nonces = {});

}  // namespace paycore
