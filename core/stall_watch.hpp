#pragma once
// The core's stall detector (docs/design.md "Seeing where the time goes"): times the phases of
// each turn of the core loop and, when a turn takes longer than stall_threshold_ns, counts it
// in StallMetrics under its cause and logs it. Core thread only.

#include <cstdint>

#include "pipeline.hpp"

namespace paycore {

/// Log lines for stalls per second at most; the rest are counted in the next line.
inline constexpr std::uint32_t stall_log_lines_per_s_max = 10;

class StallWatch {
 public:
  explicit StallWatch(StallMetrics& metrics) : metrics_(metrics) {}

  /// Starts timing a turn. `segments_created_count` and `index_growths_count`: the log's and
  /// the state's counters now (a change during the turn names the cause). `measure_cpu`: also
  /// read the thread's CPU time and context switches (getrusage, a system call), so that a
  /// preempted turn is told apart; pass it only for turns that apply commands, not for the many
  /// turns a busy core spins through waiting for the disk.
  void begin(std::uint64_t segments_created_count, std::uint64_t index_growths_count,
             bool measure_cpu);
  /// The time since begin() or the last lap() went to `phase`.
  void lap(StallCause phase);
  /// Ends the turn begun last: over the threshold, counts, records and logs it.
  void end(std::uint64_t segments_created_count, std::uint64_t index_growths_count);

 private:
  struct ThreadUsage {
    std::int64_t cpu_ns = 0;
    std::int64_t involuntary_switches = 0;
  };
  static ThreadUsage thread_usage();
  StallCause longest_phase() const;
  StallCause cause(std::int64_t turn_ns, std::uint64_t segments_created_count,
                   std::uint64_t index_growths_count) const;
  void log_stall(StallCause cause, std::int64_t turn_ns, std::int64_t now_ns);

  StallMetrics& metrics_;
  std::int64_t begin_ns_ = 0;
  std::int64_t last_lap_ns_ = 0;
  bool cpu_measured_ = false;
  ThreadUsage usage_begin_;  // when cpu_measured_
  std::int64_t phase_ns_[stall_causes_count]{};
  std::uint64_t segments_begin_ = 0;
  std::uint64_t growths_begin_ = 0;
  // Rate limit of the log lines: the second being counted, its lines, and the stalls since the
  // last line that were not logged (reported in the next one, so none goes unnoticed).
  std::int64_t log_second_begin_ns_ = 0;
  std::uint32_t logged_this_second_ = 0;
  std::uint64_t unlogged_ = 0;
};

}  // namespace paycore
