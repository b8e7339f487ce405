#pragma once
// The storage guard (docs/design.md rule 7): what the core does when the disk fails it.
//  - A full disk (ENOSPC on a new segment) refuses mutations until space returns (looked at
//    again at most every 100 ms); what was appended before is made durable.
//  - Any other write or fsync failure makes the log read-only until restart.
// Either way the in-memory state may hold changes the log lacks: it is rebuilt from what is
// durable, and every waiting answer that depended on the rest becomes `unavailable`.
//
// Core thread only.

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "engine.hpp"
#include "release_queue.hpp"
#include "state.hpp"
#include "wal/log.hpp"

namespace paycore {

class StorageGuard {
 public:
  /// `state` is the core's state, replaced by a rebuilt one after a fault.
  StorageGuard(const EngineConfig& config, std::string wal_dir, std::string snapshots_dir,
               EngineMetrics& metrics, ReleaseQueue& releases, std::unique_ptr<State>& state,
               wal::Log& log);

  /// Whether mutations are refused at `now_us`: after a storage fault for good, after a full
  /// disk until more than two segments' worth of space is free again.
  /// Called per command: without a fault it costs two loads.
  bool writes_refused(std::int64_t now_us) {
    if (metrics_.read_only.load(std::memory_order_relaxed)) return true;
    if (!no_space_) return false;
    return still_no_space(now_us);
  }

  /// A write, submit or fsync failed with `status`: refuses writes as above, rebuilds the state
  /// from disk and rewrites the answers beyond it. Returns the LSN the state now holds.
  std::uint64_t on_fault(const Status& status, std::int64_t now_us);

 private:
  bool still_no_space(std::int64_t now_us);
  void rebuild_from_disk(std::uint64_t durable_lsn);

  const EngineConfig& config_;
  const std::string wal_dir_;
  const std::string snapshots_dir_;
  EngineMetrics& metrics_;
  ReleaseQueue& releases_;
  std::unique_ptr<State>& state_;
  wal::Log& log_;
  bool no_space_ = false;
  std::int64_t no_space_until_us_ = 0;  // look at the free space again from then on
};

}  // namespace paycore
