#pragma once
// Prometheus text exposition (version 0.0.4) for GET /metrics. Each I/O thread counts into its
// own ServerMetrics (one writer, relaxed atomics, read by whichever thread renders /metrics);
// the engine publishes EngineMetrics the same way. Rendering sums the threads' counters.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/archive_lookup.hpp"
#include "net/response.hpp"
#include "net/routes.hpp"
#include "core/engine.hpp"
#include "events/service.hpp"

namespace paycore::net {

// The status codes the server sends; anything else is counted as "other".
inline constexpr int metric_statuses[] = {200, 201, 202, 400, 401, 402, 404, 405, 409,
                                          411, 413, 422, 431, 500, 503, 507};
inline constexpr std::size_t metric_statuses_count = std::size(metric_statuses) + 1;
// Request latency bucket upper bounds in microseconds (then +Inf).
inline constexpr std::uint64_t latency_bounds_us[] = {50,    100,    250,    500,    1000,
                                                      2500,  5000,   10000,  25000,  50000,
                                                      100000, 250000, 1000000, 5000000};
inline constexpr std::size_t latency_buckets_count = std::size(latency_bounds_us) + 1;

std::size_t metric_status_index(int status);

struct alignas(64) ServerMetrics {
  std::atomic<std::uint64_t> requests[routes_count][metric_statuses_count]{};
  std::atomic<std::uint64_t> latency_buckets[latency_buckets_count]{};  // not cumulative
  std::atomic<std::uint64_t> latency_sum_us{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_refused{0};  // over connections_max
  std::atomic<std::uint64_t> connections_timed_out{0};
  std::atomic<std::uint64_t> protocol_errors{0};      // malformed / oversized requests
  std::atomic<std::uint64_t> stale_responses{0};      // for connections already closed
  // Accepted nonces made durable in a command's log record, or in the nonce journal.
  std::atomic<std::uint64_t> nonces_logged{0};
  std::atomic<std::uint64_t> nonces_journaled{0};
  StageHistograms stages;  // single-command answers' stages (core/pipeline.hpp)

  // Single writer: load + store is enough and cheaper than fetch_add.
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  void record(Route route, int status, std::uint64_t latency_us);
};

struct ServerGauges {
  std::uint64_t connections_open = 0;
  std::uint64_t io_threads = 0;
};

// Appends the whole exposition to `out`; false if it did not fit. `archive`: the archive
// lookups' counters (null: no archive, none written); `events`: the event deriver's and the
// webhook dispatcher's (null: events off, none written).
[[nodiscard]] bool write_metrics(OutBuffer& out, std::span<const ServerMetrics* const> threads,
                                 const EngineMetrics& engine, const ServerGauges& gauges,
                                 std::int64_t now_us, const ArchiveLookupMetrics* archive = nullptr,
                                 const events::EventsMetrics* events = nullptr);

}  // namespace paycore::net
