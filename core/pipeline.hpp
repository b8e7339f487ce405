#pragma once
// Where a request's time goes (docs/design.md "Seeing where the time goes"): the moments a
// request passes on its way through the server, the stages between them, and the core's
// stalls. The I/O thread stamps the ends (bytes read, handed in, answer received, answer
// rendered); the core stamps the middle (taken, applied, write submitted, durable, released)
// into the Response. Each I/O thread turns the stamps of every answer into per-stage
// histograms (/metrics `paycore_request_stage_duration_microseconds`); engine_bench does the
// same for the core's part.
//
// All stamps are CLOCK_MONOTONIC nanoseconds (base/time.hpp monotonic_ns()); 0 means "not
// stamped" (a request that never reached that moment, e.g. one answered by the edge).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace paycore {

/// The moments of one request, in the order it passes them.
struct PipelineStamps {
  std::int64_t read_ns = 0;       // the I/O thread read the request's bytes (its wake-up time)
  std::int64_t submitted_ns = 0;  // parsed, authenticated, decided: pushed into the core's ring
  std::int64_t taken_ns = 0;      // the core took it (with the rest of its ring's chunk)
  std::int64_t applied_ns = 0;    // its chunk of commands was applied and appended to the log
  // The log batch holding what the answer depends on was handed to the disk (one write +
  // fdatasync). Answers that needed no write carry applied_ns here.
  std::int64_t write_submitted_ns = 0;
  std::int64_t durable_ns = 0;   // the core saw the log durable up to the answer's LSN
  std::int64_t released_ns = 0;  // handed to the I/O thread's result ring
  std::int64_t received_ns = 0;  // the I/O thread took it from the result ring
  std::int64_t answered_ns = 0;  // its HTTP answer was rendered into the connection's output
};

/// The intervals between consecutive stamps, plus the whole way (`total`).
enum class Stage : std::uint8_t {
  parse,        // read -> submitted: parsing, signature check, decision, admission
  ring_wait,    // submitted -> taken: waiting in the ring for the core's next turn
  apply,        // taken -> applied: the chunk's apply and append
  batch_wait,   // applied -> write submitted: waiting for the log batch to go (the one in
                // flight must finish first)
  write_fsync,  // write submitted -> durable: the disk's write + fdatasync, and the core's
                // noticing it
  release,      // durable -> released
  wakeup,       // released -> received: the I/O thread's wake-up
  respond,      // received -> answered: waiting for earlier answers on the connection, render
  total,        // read -> answered
};
inline constexpr std::size_t stages_count = 9;

/// The metric label of each stage ("parse", "ring_wait", ...).
std::string_view stage_name(Stage stage);

/// Stage durations in power-of-two microsecond buckets (base/histogram.hpp: bucket i holds
/// durations < 2^i us). One writer (its thread), any reader (relaxed atomics).
struct StageHistograms {
  static constexpr std::size_t buckets_count = 24;
  std::atomic<std::uint64_t> duration_us_log2[stages_count][buckets_count]{};

  /// Counts each stage whose two ends are stamped (a stage whose later end comes before its
  /// earlier one, which a clock cannot do, counts as 0 us).
  void record(const PipelineStamps& stamps);
  /// Adds `other`'s counts (read relaxed) to these: the sum of several threads' histograms.
  void add(const StageHistograms& other);
  /// Durations counted for `stage`.
  std::uint64_t count(Stage stage) const;
  /// An upper bound in microseconds (2^i for bucket i) of quantile `q` (0 < q <= 1) of
  /// `stage`'s durations; 0 when none was counted.
  std::uint64_t quantile_us(Stage stage, double q) const;
};

/// One line per stage with counts: "  parse  n=... p50<..us p99<..us p99.9<..us" (the
/// bucket bounds), for the benchmarks' reports.
std::string stages_report(const StageHistograms& h);

/// Why a turn of the core loop took longer than `stall_threshold_ns` (the phase that took the
/// most of it, or what happened in it).
enum class StallCause : std::uint8_t {
  snapshot,          // the snapshot's work on the core: the fork (its page-table copy, mostly),
                     // reaping the child, publishing the file, removing old segments
  segment_rotation,  // the log created or preallocated a segment during the turn
  index_growth,      // an index of the state started growing during the turn
  long_batch,        // taking and applying the turn's commands
  tick,              // expiring orders and idempotency records
  archive,           // the archive job's eviction
  log_submit,        // submitting the batch and reaping completions
  release,           // handing answers back
  preempted,         // the OS took the CPU away (an involuntary context switch) and the thread
                     // ran for less than half the turn
};
inline constexpr std::size_t stall_causes_count = 9;
inline constexpr std::int64_t stall_threshold_ns = 1'000'000;

/// The metric label of each cause ("snapshot", "segment_rotation", ...).
std::string_view stall_cause_name(StallCause cause);

/// The core's stalls, published by the core thread (relaxed atomics).
struct StallMetrics {
  std::atomic<std::uint64_t> count[stall_causes_count]{};
  std::atomic<std::uint64_t> turn_us_total[stall_causes_count]{};
  std::atomic<std::uint64_t> turn_us_max{0};
};

}  // namespace paycore
