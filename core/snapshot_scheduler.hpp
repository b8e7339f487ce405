#pragma once
// The snapshot scheduler (docs/design.md "Snapshots and recovery"): decides when a snapshot is
// due (by request, by record count, by time), forks the child that writes the image, reaps it,
// publishes the file once the log is durable past its LSN, answers the producers that asked for
// it, and at shutdown writes the final one in the calling thread.
//
// Core thread only. The pause it costs the core is the fork alone (the child writes the image of
// the state at fork time; the core goes on).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "release_queue.hpp"
#include "state.hpp"
#include "wal/log.hpp"

namespace paycore {

class SnapshotScheduler {
 public:
  /// `state` and `log` are the core's (the state may be replaced after a storage fault, hence
  /// the owner); `epoll_fd` is where the core sleeps: the child's pidfd is added to it so that
  /// its exit wakes the core. `snapshot_lsn` is the newest snapshot on disk (0: none).
  SnapshotScheduler(const EngineConfig& config, std::string snapshots_dir, EngineMetrics& metrics,
                    ReleaseQueue& releases, const std::unique_ptr<State>& state, wal::Log& log,
                    int epoll_fd, std::uint64_t snapshot_lsn);
  ~SnapshotScheduler();
  SnapshotScheduler(const SnapshotScheduler&) = delete;
  SnapshotScheduler& operator=(const SnapshotScheduler&) = delete;

  /// Producer `p` asked for a snapshot (its request `token`); answered once it is on disk.
  void request(std::uint32_t p, std::uint64_t token);
  /// One more record in the log since the last snapshot (for snapshot_every_records).
  void note_logged_record() { ++records_since_snapshot_; }

  /// If one is due and none is under way, forks the child that writes the state at
  /// `state_lsn`. `now_us` is the core's clock.
  void maybe_start(std::int64_t now_us, std::uint64_t state_lsn);
  /// Reaps the child if it exited (waits for it if `block`); a written image is then published
  /// as soon as the log is durable past its LSN.
  void reap_child(bool block);
  /// Publishes the child's image if the log is now durable past its LSN (or drops it if the
  /// log became read-only before that), and answers the producers that waited for it.
  void publish_if_durable();

  /// Shutdown: writes the snapshot at the durable LSN in this thread, unless the log is
  /// read-only or that snapshot exists; then refuses the requests still waiting.
  void write_final();

  std::uint64_t snapshot_lsn() const { return snapshot_lsn_; }

 private:
  using Waiters = std::vector<std::pair<std::uint32_t, std::uint64_t>>;  // producer, token

  bool due(std::int64_t now_us) const;
  void fork_child(std::uint64_t lsn);
  void watch_child(pid_t pid);
  void on_written(std::uint64_t lsn);
  void answer(Waiters& waiters, bool ok, std::uint64_t lsn);

  const EngineConfig& config_;
  const std::string snapshots_dir_;
  EngineMetrics& metrics_;
  ReleaseQueue& releases_;
  const std::unique_ptr<State>& state_;
  wal::Log& log_;
  const int epoll_fd_;
  std::uint64_t snapshot_lsn_;  // newest snapshot on disk
  std::uint64_t records_since_snapshot_ = 0;
  std::int64_t last_snapshot_us_;
  bool requested_ = false;
  Waiters waiting_;    // asked, not yet started
  Waiters in_flight_;  // asked, the child's snapshot will answer them
  pid_t child_ = -1;
  int child_fd_ = -1;
  bool unpublished_ = false;  // the child's image is written, waiting for the log to be durable
  std::uint64_t child_lsn_ = 0;
  std::string child_temp_path_;
  std::string child_final_path_;
  std::vector<std::byte> buffer_ = std::vector<std::byte>(1 << 20);  // the writer's, reused
};

}  // namespace paycore
