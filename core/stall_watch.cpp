#include "stall_watch.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <string>

#include "base/log.hpp"
#include "base/time.hpp"

namespace paycore {
namespace {

void add(std::atomic<std::uint64_t>& counter, std::uint64_t by) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

StallWatch::ThreadUsage StallWatch::thread_usage() {
  rusage usage{};
  if (::getrusage(RUSAGE_THREAD, &usage) != 0) return ThreadUsage{};
  const auto ns = [](const timeval& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 +
           static_cast<std::int64_t>(t.tv_usec) * 1000;
  };
  return ThreadUsage{ns(usage.ru_utime) + ns(usage.ru_stime),
                     static_cast<std::int64_t>(usage.ru_nivcsw)};
}

void StallWatch::begin(std::uint64_t segments_created_count, std::uint64_t index_growths_count,
                       bool measure_cpu) {
  begin_ns_ = monotonic_ns();
  last_lap_ns_ = begin_ns_;
  cpu_measured_ = measure_cpu;
  if (measure_cpu) usage_begin_ = thread_usage();
  std::fill(std::begin(phase_ns_), std::end(phase_ns_), 0);
  segments_begin_ = segments_created_count;
  growths_begin_ = index_growths_count;
}

void StallWatch::lap(StallCause phase) {
  const std::int64_t now_ns = monotonic_ns();
  phase_ns_[static_cast<std::size_t>(phase)] += now_ns - last_lap_ns_;
  last_lap_ns_ = now_ns;
}

void StallWatch::end(std::uint64_t segments_created_count, std::uint64_t index_growths_count) {
  const std::int64_t now_ns = monotonic_ns();
  const std::int64_t turn_ns = now_ns - begin_ns_;
  if (turn_ns < stall_threshold_ns) return;
  const StallCause c = cause(turn_ns, segments_created_count, index_growths_count);
  const auto i = static_cast<std::size_t>(c);
  const auto turn_us = static_cast<std::uint64_t>(turn_ns / 1000);
  add(metrics_.count[i], 1);
  add(metrics_.turn_us_total[i], turn_us);
  if (turn_us > metrics_.turn_us_max.load(std::memory_order_relaxed)) {
    metrics_.turn_us_max.store(turn_us, std::memory_order_relaxed);
  }
  log_stall(c, turn_ns, now_ns);
}

StallCause StallWatch::longest_phase() const {
  return static_cast<StallCause>(std::max_element(std::begin(phase_ns_), std::end(phase_ns_)) -
                                 std::begin(phase_ns_));
}

// What happened in the turn names it first -- the log made a segment (which blocks in
// fdatasync), the OS took the CPU away for most of the turn, an index grew while commands were
// applied -- and otherwise the phase that took longest. Time blocked in a system call is not
// preemption: it is the phase that made the call.
StallCause StallWatch::cause(std::int64_t turn_ns, std::uint64_t segments_created_count,
                             std::uint64_t index_growths_count) const {
  if (segments_created_count != segments_begin_) return StallCause::segment_rotation;
  if (cpu_measured_) {
    const ThreadUsage now = thread_usage();
    const bool switched_out = now.involuntary_switches > usage_begin_.involuntary_switches;
    if (switched_out && (now.cpu_ns - usage_begin_.cpu_ns) * 2 < turn_ns) {
      return StallCause::preempted;
    }
  }
  const StallCause longest = longest_phase();
  if (longest == StallCause::long_batch && index_growths_count != growths_begin_) {
    return StallCause::index_growth;
  }
  return longest;
}

void StallWatch::log_stall(StallCause c, std::int64_t turn_ns, std::int64_t now_ns) {
  if (now_ns - log_second_begin_ns_ >= 1'000'000'000) {
    log_second_begin_ns_ = now_ns;
    logged_this_second_ = 0;
  }
  if (logged_this_second_ >= stall_log_lines_per_s_max) {
    ++unlogged_;
    return;
  }
  ++logged_this_second_;
  const StallCause longest = longest_phase();
  log_line(LogLevel::warn, "core stall",
           {{"cause", stall_cause_name(c)},
            {"turn_us", std::to_string(turn_ns / 1000)},
            {"longest_phase", stall_cause_name(longest)},
            {"longest_phase_us", std::to_string(phase_ns_[static_cast<std::size_t>(longest)] / 1000)},
            {"earlier_stalls_not_logged", std::to_string(unlogged_)}});
  unlogged_ = 0;
}

}  // namespace paycore
