#include "storage_guard.hpp"

#include <sys/statvfs.h>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "recovery.hpp"

namespace paycore {
namespace {

constexpr std::int64_t no_space_recheck_us = 100'000;

}  // namespace

StorageGuard::StorageGuard(const EngineConfig& config, std::string wal_dir,
                           std::string snapshots_dir, EngineMetrics& metrics,
                           ReleaseQueue& releases, std::unique_ptr<State>& state, wal::Log& log)
    : config_(config),
      wal_dir_(std::move(wal_dir)),
      snapshots_dir_(std::move(snapshots_dir)),
      metrics_(metrics),
      releases_(releases),
      state_(state),
      log_(log) {}

// After a full disk: refused until more than two segments' worth of space is free.
bool StorageGuard::still_no_space(std::int64_t now_us) {
  if (now_us < no_space_until_us_) return true;
  // Space may have come back: look again (at most every 100 ms).
  struct statvfs fs {};
  const bool stat_ok = ::statvfs(wal_dir_.c_str(), &fs) == 0;
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (stat_ok && free_bytes > 2 * config_.wal_segment_bytes) {
    no_space_ = false;
    log_line(LogLevel::info, "disk space is back: accepting writes again");
    metrics_.ready.store(true, std::memory_order_relaxed);
    return false;
  }
  no_space_until_us_ = now_us + no_space_recheck_us;
  return true;
}

std::uint64_t StorageGuard::on_fault(const Status& status, std::int64_t now_us) {
  const bool full = status.code() == StatusCode::kNoSpace && !log_.read_only();
  log_line(LogLevel::error,
           full ? "disk full: refusing writes until space returns"
                : "storage fault: the log is read-only until restart",
           {{"status", status.to_string()}});
  if (full) {
    // Nothing was written for this record; what was appended before it is made durable.
    if (log_.batch_pending_bytes() > 0) (void)log_.submit();
    log_.wait();
    no_space_ = true;
    no_space_until_us_ = now_us + no_space_recheck_us;
  } else {
    metrics_.read_only.store(true, std::memory_order_relaxed);
  }
  metrics_.ready.store(false, std::memory_order_relaxed);
  const std::uint64_t durable = log_.read_only() ? log_.durable_lsn() : log_.wait();
  rebuild_from_disk(durable);
  return durable;
}

// The in-memory state holds changes the log may not have: rebuild it from what is durable,
// and answer `unavailable` to every request whose answer depended on the rest.
void StorageGuard::rebuild_from_disk(std::uint64_t durable_lsn) {
  StatusOr<RecoveredState> recovered = rebuild_state(config_.state, snapshots_dir_, log_);
  const bool rebuilt = recovered.is_ok();
  PAYCORE_ASSERT(rebuilt);  // what recovery read at start-up is still on disk
  state_ = std::move(recovered->state);
  releases_.refuse_beyond(durable_lsn);
  log_line(LogLevel::info, "state rebuilt from disk after a storage fault",
           {{"durable_lsn", std::to_string(durable_lsn)},
            {"replayed", std::to_string(recovered->replayed_count)}});
}

}  // namespace paycore
