#pragma once
// The archiver (issue 12, docs/archive-store.md): the thread that writes the core's archive jobs
// to the ArchiveStore, each only once the log position it was read at is durable, and answers
// each with an ArchiveDone. The core's side of it is core/archive_port.hpp.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "archive/store.hpp"
#include "base/thread_priority.hpp"
#include "core/archive_port.hpp"

namespace paycore {

/// How often the archiver looks at the durable-LSN counter while a job waits for it.
inline constexpr std::chrono::microseconds archiver_durable_poll_interval_default{1000};
/// The archiver thread's nice value when it runs at low priority (the lowest Linux has, the
/// one RocksDB gives its background threads for CpuPriority::kLow).
inline constexpr int archiver_low_priority_nice = thread_low_priority_nice;

/// One thread, one job queued and one in progress at most. submit() and poll() are the core
/// thread's (ArchiveSink: non-blocking; a mutex guards the hand-over, which happens once per
/// few thousand payments); stop() and the destructor are the owner's.
class Archiver final : public ArchiveSink {
 public:
  /// Starts the thread. `store` and `durable_lsn` (the log's durable LSN: every record at or
  /// below it is on stable storage) must outlive the Archiver. `low_priority`: the thread runs
  /// at nice archiver_low_priority_nice, so that under a full load the payments' threads come
  /// first and the archive catches up when the load eases (docs/design.md "Hot and cold").
  Archiver(
      ArchiveStore* store, const std::atomic<std::uint64_t>* durable_lsn,
      std::chrono::microseconds durable_poll_interval = archiver_durable_poll_interval_default,
      bool low_priority = false);
  ~Archiver() override;
  Archiver(const Archiver&) = delete;
  Archiver& operator=(const Archiver&) = delete;

  /// Takes the job unless one is already queued, or the answers not yet polled would exceed
  /// two (one per job queued or in progress): then false and the job is untouched. After stop(),
  /// always false.
  bool submit(ArchiveJob&& job) override;
  /// The next finished job's answer, in submission order. status ok: every payment of the job
  /// and the position {rows_end, lsn, as_of_us, jobs + 1} are in the store, synced. Not ok: the
  /// store's error (nothing of the job was written: the batch is atomic).
  bool poll(ArchiveDone* done) override;
  /// An eventfd written after every finished job and drained by poll().
  int ready_fd() const override { return ready_fd_; }
  /// Joins the thread. A write in progress completes (and its answer stays pollable); a job
  /// still queued or waiting for durability is dropped without an answer, which is safe: the
  /// core evicts nothing without an ok answer, and archives those payments again later.
  void stop();
  /// The thread's kernel id once it has started (0 before): for tests and diagnostics.
  pid_t thread_id() const { return thread_id_.load(std::memory_order_acquire); }

 private:
  void run();
  bool next_job(ArchiveJob* job);
  bool wait_until_durable(std::uint64_t lsn);
  ArchiveDone write_job(const ArchiveJob& job);

  static constexpr std::size_t done_capacity = 2;

  ArchiveStore* store_;
  const std::atomic<std::uint64_t>* durable_lsn_;
  std::chrono::microseconds durable_poll_interval_;
  const bool low_priority_;
  std::atomic<pid_t> thread_id_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<ArchiveJob> queued_;  // guarded by mutex_
  bool in_progress_ = false;          // guarded by mutex_
  std::deque<ArchiveDone> done_;      // guarded by mutex_; at most done_capacity
  std::atomic<bool> stopping_{false};
  int ready_fd_ = -1;
  std::thread thread_;
};

}  // namespace paycore
