#include "pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "base/assert.hpp"
#include "base/histogram.hpp"

namespace paycore {
namespace {

constexpr std::string_view stage_names[stages_count] = {
    "parse", "ring_wait", "apply", "batch_wait", "write_fsync", "release", "wakeup", "respond", "total"};
constexpr std::string_view stall_cause_names[stall_causes_count] = {
    "snapshot", "segment_rotation", "index_growth", "long_batch", "tick",
    "archive", "log_submit", "release", "preempted"};

static_assert(static_cast<std::size_t>(Stage::total) + 1 == stages_count);
static_assert(static_cast<std::size_t>(StallCause::preempted) + 1 == stall_causes_count);

void bump(std::atomic<std::uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

std::string_view stage_name(Stage stage) {
  const auto i = static_cast<std::size_t>(stage);
  PAYCORE_ASSERT_LT(i, stages_count);
  return stage_names[i];
}

std::string_view stall_cause_name(StallCause cause) {
  const auto i = static_cast<std::size_t>(cause);
  PAYCORE_ASSERT_LT(i, stall_causes_count);
  return stall_cause_names[i];
}

void StageHistograms::record(const PipelineStamps& s) {
  const std::int64_t ends[] = {s.read_ns,    s.submitted_ns, s.taken_ns,
                               s.applied_ns, s.write_submitted_ns, s.durable_ns,
                               s.released_ns, s.received_ns, s.answered_ns};
  static_assert(sizeof(ends) / sizeof(ends[0]) == stages_count);  // 8 stages between 9 ends
  const auto count_stage = [this](Stage stage, std::int64_t from_ns, std::int64_t to_ns) {
    if (from_ns == 0 || to_ns == 0) return;
    const std::int64_t us = to_ns > from_ns ? (to_ns - from_ns) / 1000 : 0;
    bump(duration_us_log2[static_cast<std::size_t>(stage)]
                [log2_bucket(static_cast<std::uint64_t>(us), buckets_count)]);
  };
  for (std::size_t i = 0; i + 1 < std::size(ends); ++i) {
    count_stage(static_cast<Stage>(i), ends[i], ends[i + 1]);
  }
  count_stage(Stage::total, s.read_ns, s.answered_ns);
}

void StageHistograms::add(const StageHistograms& other) {
  for (std::size_t s = 0; s < stages_count; ++s) {
    for (std::size_t b = 0; b < buckets_count; ++b) {
      const std::uint64_t more = other.duration_us_log2[s][b].load(std::memory_order_relaxed);
      duration_us_log2[s][b].store(duration_us_log2[s][b].load(std::memory_order_relaxed) + more,
                          std::memory_order_relaxed);
    }
  }
}

std::uint64_t StageHistograms::count(Stage stage) const {
  std::uint64_t total = 0;
  for (const auto& bucket : duration_us_log2[static_cast<std::size_t>(stage)]) {
    total += bucket.load(std::memory_order_relaxed);
  }
  return total;
}

std::uint64_t StageHistograms::quantile_us(Stage stage, double q) const {
  const std::uint64_t total = count(stage);
  if (total == 0) return 0;
  // The smallest bucket holding the ceil(q * total)-th duration.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets_count; ++b) {
    seen += duration_us_log2[static_cast<std::size_t>(stage)][b].load(std::memory_order_relaxed);
    if (seen >= rank) return std::uint64_t{1} << b;
  }
  return std::uint64_t{1} << (buckets_count - 1);
}

std::string stages_report(const StageHistograms& h) {
  std::string out;
  for (std::size_t s = 0; s < stages_count; ++s) {
    const auto stage = static_cast<Stage>(s);
    if (h.count(stage) == 0) continue;
    char line[160];
    std::snprintf(line, sizeof(line), "  %-12.*s n=%-10llu p50<%lluus p99<%lluus p99.9<%lluus\n",
                  static_cast<int>(stage_name(stage).size()), stage_name(stage).data(),
                  static_cast<unsigned long long>(h.count(stage)),
                  static_cast<unsigned long long>(h.quantile_us(stage, 0.5)),
                  static_cast<unsigned long long>(h.quantile_us(stage, 0.99)),
                  static_cast<unsigned long long>(h.quantile_us(stage, 0.999)));
    out += line;
  }
  return out;
}

}  // namespace paycore
