#include "snapshot_scheduler.hpp"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <limits>

#include "base/assert.hpp"
#include "base/json_text.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "snapshot_store.hpp"

namespace paycore {
namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

SnapshotScheduler::SnapshotScheduler(const EngineConfig& config, std::string snapshots_dir,
                                     EngineMetrics& metrics, ReleaseQueue& releases,
                                     const std::unique_ptr<State>& state, wal::Log& log,
                                     int epoll_fd, std::uint64_t snapshot_lsn)
    : config_(config),
      snapshots_dir_(std::move(snapshots_dir)),
      metrics_(metrics),
      releases_(releases),
      state_(state),
      log_(log),
      epoll_fd_(epoll_fd),
      snapshot_lsn_(snapshot_lsn),
      last_snapshot_us_(wall_clock_us()) {}

SnapshotScheduler::~SnapshotScheduler() {
  if (child_fd_ >= 0) ::close(child_fd_);
}

void SnapshotScheduler::request(std::uint32_t p, std::uint64_t token) {
  waiting_.emplace_back(p, token);
  requested_ = true;
}

bool SnapshotScheduler::due(std::int64_t now_us) const {
  if (requested_) return true;
  if (records_since_snapshot_ == 0) return false;
  const bool by_count = config_.snapshot_every_records != 0 &&
                        records_since_snapshot_ >= config_.snapshot_every_records;
  const bool by_time =
      config_.snapshot_every_us != 0 && now_us - last_snapshot_us_ >= config_.snapshot_every_us;
  return by_count || by_time;
}

// The child writes the image of the state at state_lsn at once, even if the last records are
// still being written: the core does not wait for an fsync, so its pause is the fork alone.
// The file gets its final name only once the log is durable past its LSN (publish_if_durable),
// so a snapshot on disk never holds a change the log might lose.
void SnapshotScheduler::maybe_start(std::int64_t now_us, std::uint64_t state_lsn) {
  if (child_ >= 0 || unpublished_ || !due(now_us)) return;
  if (log_.read_only()) {
    answer(waiting_, false, 0);
    requested_ = false;
    return;
  }
  in_flight_ = std::move(waiting_);
  waiting_.clear();
  requested_ = false;
  records_since_snapshot_ = 0;
  last_snapshot_us_ = now_us;
  if (state_lsn == snapshot_lsn_ && state_lsn != 0) {  // nothing new since the last one
    answer(in_flight_, true, state_lsn);
    return;
  }
  fork_child(state_lsn);
}

void SnapshotScheduler::fork_child(std::uint64_t lsn) {
  child_lsn_ = lsn;
  child_final_path_ = snapshot_path(snapshots_dir_, lsn);
  child_temp_path_ = child_final_path_ + ".tmp";
  const std::int64_t started_us = config_.now_us();
  const pid_t pid = ::fork();
  const int fork_errno = errno;
  if (pid == 0) {
    const int rc =
        write_snapshot_temp(child_temp_path_.c_str(), *state_, lsn, wall_clock_us(), buffer_);
    ::_exit(rc == 0 ? 0 : 1);
  }
  const auto pause_us = static_cast<std::uint64_t>(config_.now_us() - started_us);
  if (pause_us > metrics_.snapshot_pause_us_max.load(std::memory_order_relaxed)) {
    metrics_.snapshot_pause_us_max.store(pause_us, std::memory_order_relaxed);
  }
  if (pid < 0) {
    log_line(LogLevel::error, "snapshot: fork failed", {{"error", std::strerror(fork_errno)}});
    answer(in_flight_, false, 0);
    return;
  }
  watch_child(pid);
}

// The child's exit makes its pidfd readable: the core's epoll wakes up to reap it.
void SnapshotScheduler::watch_child(pid_t pid) {
  child_ = pid;
  child_fd_ = pidfd_open(pid);
  if (child_fd_ < 0) return;  // reaped on the next turn anyway
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = child_fd_;
  (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, child_fd_, &ev);  // failing: reaped by polling
}

void SnapshotScheduler::reap_child(bool block) {
  if (child_ < 0) return;
  int status = 0;
  const pid_t done = ::waitpid(child_, &status, block ? 0 : WNOHANG);
  if (done != child_) return;
  child_ = -1;
  if (child_fd_ >= 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child_fd_, nullptr);
    ::close(child_fd_);
    child_fd_ = -1;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    unpublished_ = true;
    publish_if_durable();
    return;
  }
  log_line(LogLevel::error, "snapshot: the writer failed", {{"path", child_temp_path_}});
  answer(in_flight_, false, child_lsn_);
}

void SnapshotScheduler::publish_if_durable() {
  if (!unpublished_) return;
  if (log_.durable_lsn() < child_lsn_) {
    if (!log_.read_only()) return;       // not yet
    ::unlink(child_temp_path_.c_str());  // never will be: the log failed before reaching it
    unpublished_ = false;
    answer(in_flight_, false, child_lsn_);
    return;
  }
  unpublished_ = false;
  const Status published = publish_snapshot(snapshots_dir_, child_temp_path_, child_final_path_);
  if (published.is_ok()) {
    on_written(child_lsn_);
  } else {
    log_line(LogLevel::error, "snapshot: publishing failed",
             {{"path", child_final_path_}, {"error", published.message()}});
  }
  answer(in_flight_, published.is_ok(), child_lsn_);
}

void SnapshotScheduler::on_written(std::uint64_t lsn) {
  snapshot_lsn_ = lsn;
  metrics_.snapshot_lsn.store(lsn, std::memory_order_relaxed);
  metrics_.snapshot_at_us.store(wall_clock_us(), std::memory_order_relaxed);
  metrics_.snapshots_written.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t oldest = retain_snapshots(snapshots_dir_, config_.snapshots_keep);
  if (oldest > 0) {
    // Segments that may hold a nonce still within its window stay (EngineConfig::
    // nonce_retention_us); the next snapshot removes them.
    const std::int64_t keep_written_since_us =
        config_.nonce_retention_us > 0 ? wall_clock_us() - config_.nonce_retention_us
                                       : std::numeric_limits<std::int64_t>::max();
    std::uint64_t below = oldest + 1;
    if (config_.log_readers_floor_lsn != nullptr) {
      below = std::min(below, config_.log_readers_floor_lsn->load(std::memory_order_acquire));
    }
    const Status removed = log_.remove_segments_below(below, keep_written_since_us);
    if (!removed.is_ok()) {
      log_line(LogLevel::warn, "could not remove old log segments",
               {{"status", removed.to_string()}});
    }
  }
  log_line(LogLevel::info, "snapshot written",
           {{"path", snapshot_path(snapshots_dir_, lsn)}, {"lsn", std::to_string(lsn)}});
}

void SnapshotScheduler::answer(Waiters& waiters, bool ok, std::uint64_t lsn) {
  for (const auto& [p, token] : waiters) {
    Response r;
    r.op = RequestOp::snapshot;
    r.token = token;
    r.lsn = lsn;
    r.snapshot_ok = ok;
    r.snapshot_lsn = lsn;
    r.snapshot_accounts = state_->accounts.size();
    r.snapshot_payments = state_->payments.size();
    r.result.code = ok ? ResultCode::ok : ResultCode::unavailable;
    releases_.answer_now(p, r);
  }
  waiters.clear();
  releases_.wake_producers();
}

void SnapshotScheduler::write_final() {
  reap_child(true);
  publish_if_durable();
  const std::uint64_t lsn = log_.durable_lsn();
  if (config_.snapshot_at_shutdown && !log_.read_only() && lsn != snapshot_lsn_) {
    const std::string final_path = snapshot_path(snapshots_dir_, lsn);
    const std::string temp_path = final_path + ".tmp";
    const int written =
        write_snapshot_temp(temp_path.c_str(), *state_, lsn, wall_clock_us(), buffer_);
    const Status s = written != 0 ? errno_status("write " + temp_path, written)
                                  : publish_snapshot(snapshots_dir_, temp_path, final_path);
    if (s.is_ok()) {
      on_written(lsn);
    } else {
      log_line(LogLevel::error, "final snapshot failed", {{"error", s.message()}});
    }
  }
  answer(waiting_, false, 0);
}

}  // namespace paycore
