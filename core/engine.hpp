#pragma once
// The engine: the core thread that owns the state (docs/design.md rule 1), fed by one bounded SPSC
// ring per producer thread (the I/O threads, an admin thread), answering through one ring back
// to each producer. Each turn it takes a batch of commands, stamps each with a strictly
// increasing timestamp, applies it, appends the changes to the write-ahead log, submits the
// batch (one write + fdatasync), and releases each result only once the durable LSN covers
// what the command changed or observed (rule 4). Snapshots are written by a forked child.
//
// Producer p (one thread per p) uses:  submit(p, request) -> false when the ring is full
// ("busy": answer 503); take(p, out) for released results; result_fd(p), an eventfd that becomes
// readable when results are waiting (level: read it to rearm).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "apply.hpp"
#include "archive_port.hpp"
#include "base/function_ref.hpp"
#include "base/status.hpp"
#include "command.hpp"
#include "pipeline.hpp"
#include "replica_port.hpp"
#include "result.hpp"
#include "ring.hpp"
#include "state.hpp"
#include "wal/fault.hpp"

namespace paycore {

// When a tick leaves due work behind (it does at most tick_expire_max of each kind), the next
// one comes after this instead of tick_interval_us.
inline constexpr std::int64_t tick_backlog_interval_us = 1'000;

inline constexpr std::uint32_t snapshots_keep_max = 1000;

struct EngineConfig {
  std::string data_dir = "paycore-data";
  std::uint32_t producers = 1;
  std::uint32_t ring_capacity = 8192;  // requests per producer ring (and results back)
  std::uint32_t batch_max = 8192;      // commands taken per turn of the core loop
  Limits limits;
  StateConfig state;
  std::vector<std::string> channels;  // external channels: registered in the state at start
  // False in a cluster: a standby writes nothing of its own, so the channels are registered
  // by the primary, through the shared log (register_channels() once it writes).
  bool register_channels_at_open = true;
  std::int64_t pending_lifetime_us = pending_lifetime_default_us;
  std::int64_t tick_interval_us = 100'000;
  std::uint32_t tick_expire_max = 4096;
  // Idempotency records older than this are dropped (docs/api.md "Idempotency"); 0: never.
  std::int64_t idempotency_retention_us = 7LL * 24 * 3600 * 1'000'000;
  // Hot and cold (docs/design.md): with a sink (Engine::attach_archive), payments older than
  // the hot window, or beyond the high-water mark of live payments, are archived and leave
  // memory. Null: never.
  ArchiveSink* archive_sink = nullptr;
  std::int64_t hot_window_us = 7LL * 24 * 3600 * 1'000'000;
  std::uint32_t payments_hot_high_water = 75'000'000;
  std::uint32_t archive_job_payments_max = 2048;
  std::uint64_t snapshot_every_records = 10'000'000;    // 0: never by count
  std::int64_t snapshot_every_us = 3600LL * 1'000'000;  // 0: never by time
  std::uint32_t snapshots_keep = 3;  // 1..snapshots_keep_max
  bool snapshot_at_shutdown = true;
  std::uint64_t wal_segment_bytes = 256ULL << 20;
  std::uint32_t wal_batch_bytes_max = 8U << 20;
  bool wal_force_fallback = false;
  std::uint32_t wal_syncs_in_flight_max = 1;  // wal::Options::syncs_in_flight_max
  bool wal_spare_segments = true;             // wal::Options::spare_segments
  wal::FaultInjector* wal_faults = nullptr;  // tests only
  // Nonces logged with commands (command_flag_nonce, docs/design.md "Who may move whose money"):
  // a log segment written to within the last nonce_retention_us is kept whatever the snapshots
  // allow, and recovery hands every logged command of that span that carries a nonce to
  // on_recovered_nonce, on the opening thread, before Engine::open returns. 0: neither. The
  // edge sets it to twice its signature window: a nonce is remembered until its timestamp plus
  // the window, and a timestamp may be up to the window ahead of the clock.
  std::int64_t nonce_retention_us = 0;
  // Readers of the committed log outside the core (events/: the event deriver) that must not
  // lose records: the lowest LSN they still need. Log segments holding it or later stay,
  // whatever the snapshots (docs/events.md). Null: no such reader.
  const std::atomic<std::uint64_t>* log_readers_floor_lsn = nullptr;
  std::function<void(const Command&)> on_recovered_nonce;
  // Replication (docs/design.md "Beyond one machine"; set by Engine::attach_replica): every
  // batch written to the local log is also handed to this port, and an answer leaves only once
  // the port has acknowledged its LSN too. Fenced, the engine answers everything
  // `not_primary`; stalled, it refuses writes `unavailable`. Null: a single node.
  ReplicaPort* replica = nullptr;
  // A request whose min_lsn this process has not applied waits at most this long, then is
  // refused `min_lsn_not_applied` (503 unavailable: docs/api.md "Replication").
  std::int64_t min_lsn_wait_us = 1'000'000;
  // A log that starts empty after the newest snapshot continues the hash chain from this
  // checksum (wal::Options::prev_checksum_if_empty): a cluster member's, from the shared log.
  std::uint64_t log_prev_checksum_if_empty = 0;
  std::uint32_t idle_spins = 200;            // turns without work before the core sleeps
  // Wall clock in microseconds; tests may substitute one. Timestamps never go backwards even
  // if this does.
  std::int64_t (*clock_us)() = nullptr;

  /// clock_us() if set, else the wall clock, in microseconds since the Unix epoch.
  std::int64_t now_us() const;
};

enum class RequestOp : std::uint8_t {
  command = 1,   // apply `command`
  snapshot = 2,  // write a snapshot now; answered when it is on disk
};

struct Request {
  Command command;
  std::uint64_t token = 0;  // the producer's own tag, returned with the response
  RequestOp op = RequestOp::command;
  // monotonic_ns() when the producer handed it in (0: not measured); the core copies it into
  // the response's stamps (core/pipeline.hpp).
  std::int64_t submitted_ns = 0;
  // Paycore-Min-Lsn: handled only once the state holds the log up to this LSN (a standby that
  // has not applied it yet keeps the request waiting, up to EngineConfig::min_lsn_wait_us).
  // 0: at once.
  std::uint64_t min_lsn = 0;
};

struct Response {
  Result result;
  std::uint64_t token = 0;
  std::uint64_t lsn = 0;  // the LSN that had to be durable before release
  RequestOp op = RequestOp::command;
  PipelineStamps stamps;  // submitted_ns .. released_ns filled; the producer adds its own
  // The command carried a nonce (command_flag_nonce) and its record is in the log at or before
  // `lsn`: the nonce is durable with it.
  bool nonce_logged = false;
  // op == snapshot
  bool snapshot_ok = false;
  std::uint64_t snapshot_lsn = 0;
  std::uint32_t snapshot_accounts = 0;
  std::uint32_t snapshot_payments = 0;
};

// Figures for /metrics, published by the core thread (relaxed atomics: read from any thread).
struct EngineMetrics {
  std::atomic<std::uint64_t> commands_applied{0};
  std::atomic<std::uint64_t> commands_logged{0};
  std::atomic<std::uint64_t> busy_refusals{0};
  std::atomic<std::uint64_t> turns{0};
  std::atomic<std::uint64_t> durable_lsn{0};
  std::atomic<std::uint64_t> accounts{0};
  std::atomic<std::uint64_t> payments{0};        // payments in memory
  std::atomic<std::uint64_t> payments_archived{0};  // rows that have left memory
  std::atomic<std::uint64_t> archive_jobs{0};
  std::atomic<std::uint64_t> archive_failures{0};
  std::atomic<std::uint64_t> queue_depth{0};       // requests waiting in the rings
  std::atomic<std::uint64_t> awaiting_release{0};  // applied, waiting for durability
  std::atomic<std::uint64_t> snapshot_lsn{0};
  std::atomic<std::int64_t> snapshot_at_us{0};
  // Records recovery read before the snapshot only for their nonces (EngineConfig::
  // nonce_retention_us), at this start.
  std::atomic<std::uint64_t> recovery_nonce_scan_records{0};
  std::atomic<std::uint64_t> snapshots_written{0};
  std::atomic<std::uint64_t> snapshot_pause_us_max{0};  // longest core pause to start one
  std::atomic<std::uint64_t> wal_batches{0};
  std::atomic<std::uint64_t> wal_fsyncs{0};
  std::atomic<std::uint64_t> wal_bytes{0};
  std::atomic<std::uint64_t> wal_segments{0};              // created since start
  std::atomic<std::uint64_t> wal_segments_from_spares{0};  // of those, zero-filled ahead
  static constexpr std::size_t histogram_buckets = 24;  // bucket i: < 2^i (us or records)
  std::atomic<std::uint64_t> fsync_latency_us_log2[histogram_buckets]{};
  std::atomic<std::uint64_t> batch_records_log2[histogram_buckets]{};
  StallMetrics stalls;  // turns of the core loop over stall_threshold_ns, by cause
  std::atomic<std::uint64_t> replicated_lsn{0};  // acknowledged by the shared log
  std::atomic<bool> replica_fenced{false};       // another process writes the shared log
  std::atomic<bool> replica_stalled{false};      // the shared log does not acknowledge
  std::atomic<bool> following{false};            // a standby applying the shared log
  std::atomic<std::uint64_t> followed_sequence{0};  // its last stream message applied
  std::atomic<bool> follow_failed{false};        // a record did not continue the local log
  std::atomic<std::uint64_t> promotions{0};      // standby -> primary, in this process
  // Set by the cluster member (repl/snapshot_shipper.hpp), not the core: the LSN of the newest
  // snapshot this process published to the snapshot bucket.
  std::atomic<std::uint64_t> snapshot_published_lsn{0};
  std::atomic<bool> ready{false};      // recovered and the log accepts writes
  std::atomic<bool> read_only{false};  // a storage fault: writes refused until restart
};

class Engine {
 public:
  /// Recovers the state from the newest valid snapshot plus the log after it, registers the
  /// configured channels, and returns an engine ready to start(). Errors: kInvalidArgument for
  /// a bad configuration (ring capacity, channel name); the log's and recovery's errors
  /// (kCorruption, kMissingSegment, kIoError...), whose messages name the file and offset or LSN.
  static StatusOr<std::unique_ptr<Engine>> open(const EngineConfig& config);
  ~Engine();

  /// Gives the core the sink that writes cold payments to the archive (before start() or the
  /// first turn()). The sink usually needs metrics().durable_lsn, hence after open().
  void attach_archive(ArchiveSink* sink);
  /// The archive holds payment rows below this, as the recovered log says (before start()):
  /// an archive whose position is below it is missing payments.
  std::uint32_t archived_rows_end() const { return state_->archived_rows_end; }

  /// Makes the engine a primary of a shared log (before start()): every batch written from now
  /// on goes to `replica` too, and answers wait for its acknowledgement. The replica must
  /// already hold every record of the local log (repl/ aligns it with log_last_lsn() and
  /// replay_log_frames() first) and outlive the engine.
  void attach_replica(ReplicaPort* replica);
  /// Before start(): the local log's last record (0 and 0 when empty) and its durable records'
  /// frames in [from_lsn, to_lsn] (wal::Log::replay_frames, its errors).
  std::uint64_t log_last_lsn() const;
  std::uint64_t log_last_checksum() const;
  /// Before start(): the first record still on disk (log_last_lsn() + 1 when there is none).
  std::uint64_t log_first_lsn() const;
  Status replay_log_frames(std::uint64_t from_lsn, std::uint64_t to_lsn,
                           FunctionRef<void(std::uint64_t, std::span<const std::byte>)> fn);

  /// Makes the engine a standby (before start()): it applies the records `source` hands over,
  /// in order, appending them to its local log at the same LSNs, answers reads, and refuses
  /// every other request `not_primary`. A record that does not continue the local log's chain
  /// stops the following (logged; metrics().follow_failed). `source` must outlive the engine
  /// or the promotion that detaches it.
  void attach_follower(FollowSource* source);

  /// What a standby promoted to primary starts from (core thread, in the promotion callback).
  struct PrimaryStart {
    std::uint64_t last_lsn = 0;
    std::uint64_t last_checksum = 0;
    std::uint64_t followed_sequence = 0;  // the last stream message applied
  };
  /// Asks a standby to become the primary once it has applied every stream message up to
  /// `through_sequence`: then, on the core thread, it calls make_primary, which starts the
  /// writer of the shared log (repl/ aligns it and publishes) and returns it, or null if it
  /// could not (the engine stays a standby and keeps following). From any thread; a later
  /// request replaces an earlier one not yet carried out.
  void request_promotion(std::uint64_t through_sequence,
                         std::function<ReplicaPort*(const PrimaryStart&)> make_primary);
  /// Withdraws a request not yet carried out (the lease was lost meanwhile). Any thread.
  void cancel_promotion();

  /// Registers the configured channels the state lacks, through the log (before start(), or
  /// on the core thread). A promoted standby does it itself. Errors: kInvalidArgument for a
  /// bad name, the log's errors.
  Status register_channels();

  void start();  // runs the core loop on its own thread
  // Clean shutdown: takes what is already in the rings, makes it durable, releases every
  // result, writes a final snapshot (if configured), and joins the core thread.
  void stop();

  // Run to completion (`--io-threads 0`, docs/design.md rule 1): instead of start(), one I/O thread
  // drives the core itself and stays the only writer of state. It calls turn() after handing
  // in requests, sleeps in its own epoll on poll_fd() (readable when the log completes a batch
  // or a snapshot child exits) with a timeout of at most timeout_ms(), and stop() then shuts
  // down in the calling thread.
  bool turn();
  int poll_fd() const;
  int timeout_ms() const;

  // Producer side; `producer` < config.producers, each index used by one thread only.
  [[nodiscard]] bool submit(std::uint32_t producer, const Request& request);
  std::size_t take(std::uint32_t producer, std::span<Response> out);
  int result_fd(std::uint32_t producer) const;

  const EngineMetrics& metrics() const { return metrics_; }
  /// EngineMetrics::snapshot_published_lsn, which the cluster member writes (any thread).
  std::atomic<std::uint64_t>& snapshot_published_lsn_metric() {
    return metrics_.snapshot_published_lsn;
  }
  const EngineConfig& config() const { return config_; }
  std::string snapshots_dir() const { return snapshots_dir_of(config_.data_dir); }
  std::string wal_dir() const { return wal_dir_of(config_.data_dir); }
  /// DATA_DIR/snapshots and DATA_DIR/wal: the data directory's layout, for whoever prepares it
  /// before the engine opens (a cluster member's bootstrap).
  static std::string snapshots_dir_of(const std::string& data_dir) {
    return data_dir + "/snapshots";
  }
  static std::string wal_dir_of(const std::string& data_dir) { return data_dir + "/wal"; }

  // For tests and tools, from the thread that owns the engine when it is not started.
  const State& state_for_tests() const { return *state_; }

  // The core thread's private part (engine.cpp): the turn's pipeline over the release queue,
  // the snapshot scheduler and the storage guard.
  struct Core;

 private:
  explicit Engine(const EngineConfig& config);
  void make_rings();

  EngineConfig config_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Core> core_;
  std::vector<std::unique_ptr<SpscRing<Request>>> in_;
  std::vector<std::unique_ptr<SpscRing<Response>>> out_;
  std::vector<int> result_fds_;
  int wake_fd_ = -1;  // producers wake a sleeping core
  std::atomic<bool> core_sleeping_{false};
  // A producer has written wake_fd_ since the core last drained it: others need not
  // (Core::sleep_until_work says how the two flags keep a wake-up from being lost).
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> stop_requested_{false};
  // A standby's promotion, asked from another thread, carried out by the core.
  std::mutex promotion_mu_;
  std::uint64_t promotion_through_ = 0;
  std::function<ReplicaPort*(const PrimaryStart&)> promotion_;
  std::atomic<bool> promotion_requested_{false};
  bool driven_ = false;  // turn() was called: no core thread, the caller drives
  bool stopped_ = false;
  std::thread thread_;
  EngineMetrics metrics_;
};

}  // namespace paycore
