#pragma once
// The event deriver (issue 15; docs/events.md): a thread that follows the committed local log
// (a wal::CommittedReader, up to the engine's durable LSN), turns each command record into its
// events (derive_events) and writes them, with the PENDING payments and its position, to the
// EventStore in batches, made durable by a flush about once a second. It never touches the
// core: the core's only part is to keep the log segments the deriver has not made durable yet
// (EngineConfig::log_readers_floor_lsn, which the deriver advances after each flush). Before it
// commits a batch it hands the batch's events to `before_commit` (the webhook dispatcher's
// enqueue), and before each flush it calls `before_flush` (the dispatcher's sync); after a
// crash it resumes after its last flushed batch, so every event is derived and handed over at
// least once, always with the same id.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "base/status.hpp"
#include "base/thread_priority.hpp"
#include "events/event.hpp"
#include "events/event_store.hpp"
#include "wal/committed.hpp"

namespace paycore::events {

struct DeriverConfig {
  std::string wal_dir;                                  // the engine's log (Engine::wal_dir)
  const std::atomic<std::uint64_t>* durable_lsn = nullptr;  // EngineMetrics::durable_lsn
  // In a cluster: the shared log's acknowledged LSN (EngineMetrics::replicated_lsn) and whether
  // this member follows the stream (EngineMetrics::following). While it does not follow (it is
  // primary, or not yet either), no record past the acknowledged LSN is derived (0: none): a
  // primary's records the stream never took are set aside, never part of the cluster's
  // history, and must give no event. A follower's records all came from the stream. Null (both):
  // a single node.
  const std::atomic<std::uint64_t>* acknowledged_lsn = nullptr;
  const std::atomic<bool>* following = nullptr;
  // In a cluster: reads records of the shared log (the log stream: repl::StreamRecordReader)
  // that the local log no longer holds, as after this member started from the published
  // snapshot, so that every member derives every event of the cluster's history (docs/events.md
  // "Gaps"). kNotFound: the shared log does not hold them either; they are a gap then. Null: a
  // single node, where such records are a gap at once.
  // On kNotFound, *resumes_at_lsn is the first LSN past the missing ones the shared log holds
  // (0: none), where the gap ends if that is before the local log's first record.
  std::function<Status(std::uint64_t from_lsn, std::uint64_t to_lsn, wal::CommittedVisitor visit,
                       std::uint64_t* resumes_at_lsn)>
      read_shared_log;
  // Advanced to the durable position + 1 after each flush; give it to EngineConfig::
  // log_readers_floor_lsn (set it to store.position() + 1 before the engine opens).
  std::atomic<std::uint64_t>* floor_lsn = nullptr;
  std::uint32_t records_per_batch_max = 4096;  // records read per store commit
  std::uint32_t events_per_batch_max = 8192;   // a batch ends after the record that passes it
  std::int64_t idle_wait_ms = 20;              // sleep when caught up (or notify())
  // The store's commits are made durable this often (EventStore::flush); only then does the
  // floor move past them. 0: after every batch (tests).
  std::int64_t flush_interval_ms = 1000;
  std::int64_t retry_wait_ms = 1000;           // sleep after a failure before trying again
  std::int64_t retention_us = 30LL * 24 * 3600 * 1'000'000;  // events kept at least this long
  std::uint32_t retention_drop_max = 10'000;   // events deleted per pass
  std::int64_t retention_interval_us = 60'000'000;  // a pass this often (again at once while full)
  std::function<std::int64_t()> clock_us;      // wall clock (tests inject one); null: the system's
  // Called on the deriver thread with each batch's events in log order, before the batch is
  // committed: a failure leaves the batch uncommitted, to be derived and handed over again.
  // So every event is handed over at least once even across a crash (the webhook
  // dispatcher's enqueue adds nothing for a delivery it already holds).
  std::function<Status(std::span<const Event>)> before_commit;
  // Called on the deriver thread before each flush of the store: whatever before_commit
  // handed over must be durable when it returns (the dispatcher's sync), since after the
  // flush those events are never derived again. A failure leaves the flush for later.
  std::function<Status()> before_flush;
  // The thread's CPU priority (base/thread_priority.hpp): derivation is background work, and
  // under a full load the payments' threads come first while the log keeps what is not
  // derived yet (the floor above).
  ThreadPriority priority = ThreadPriority::normal;
};

/// Counters for /metrics.
struct DeriverMetrics {
  std::atomic<std::uint64_t> events_derived{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> events_dropped_by_retention{0};
  std::atomic<std::uint64_t> failures{0};         // batches that failed (retried)
  std::atomic<std::uint64_t> shared_log_records{0};  // read from the shared log (read_shared_log)
  std::atomic<bool> stuck{false};                 // the last attempt failed
};

class Deriver {
 public:
  /// Starts the thread. `store` must outlive the deriver.
  Deriver(EventStore& store, DeriverConfig config);
  ~Deriver();  // stop()
  Deriver(const Deriver&) = delete;
  Deriver& operator=(const Deriver&) = delete;

  /// Stops the thread after its current batch (idempotent; a catch-up stops between batches).
  void stop();
  /// Wakes the thread: more of the log is durable.
  void notify();
  /// Derives up to durable_lsn now, on the calling thread (tests; the thread must not run:
  /// construct with start = false). Returns the first failure.
  Status run_once();
  const DeriverMetrics& metrics() const { return metrics_; }
  /// The last failure's text ("" when none).
  std::string last_failure() const;

  struct ManualStart {};
  /// A deriver without its thread (run_once drives it).
  Deriver(EventStore& store, DeriverConfig config, ManualStart);

 private:
  void loop();
  Status derive_batch(std::uint64_t to_lsn, bool* progressed);
  Status find_local_first();
  Status skip_gap(std::uint64_t first_lsn, const std::string& why);
  Status after_empty_shared_read(const Status& read, std::uint64_t from_lsn, std::uint64_t resumes_at_lsn);
  void drop_expired_events();
  Status flush_if_due();
  Status flush();
  bool stopping() const;
  std::int64_t now_us() const;
  std::int64_t next_retention_us_ = 0;

  EventStore& store_;
  DeriverConfig config_;
  wal::CommittedReader log_;  // keeps its place in the log between batches
  std::uint64_t flushed_position_;  // the store's position as of its last flush
  std::uint64_t local_first_lsn_ = 0;  // the local log's first record as of run_once (0: none)
  // None before the first flush, which comes at once: the monotonic clock starts at boot, so
  // a 0 here held the first flush back on a machine up for less than flush_interval_ms.
  std::optional<std::int64_t> last_flush_ms_;
  DeriverMetrics metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_requested_ = false;
  bool notified_ = false;
  std::string last_failure_;
  std::thread thread_;
};

}  // namespace paycore::events
