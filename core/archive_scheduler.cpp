#include "archive_scheduler.hpp"

#include "apply.hpp"
#include "base/assert.hpp"
#include "base/log.hpp"

namespace paycore {
namespace {

// After a failed write the sink gets a second before the next job (the error is logged once
// per attempt, not once per turn).
constexpr std::int64_t retry_after_failure_us = 1'000'000;

}  // namespace

ArchiveScheduler::ArchiveScheduler(const EngineConfig& config, EngineMetrics& metrics,
                                   const std::unique_ptr<State>& state)
    : config_(config), metrics_(metrics), state_(state) {}

bool ArchiveScheduler::take_done(std::int64_t now_us, Command* out) {
  if (config_.archive_sink == nullptr || !in_flight_) return false;
  ArchiveDone done;
  if (!config_.archive_sink->poll(&done)) return false;
  in_flight_ = false;
  if (!done.status.is_ok()) {
    metrics_.archive_failures.fetch_add(1, std::memory_order_relaxed);
    log_line(LogLevel::error, "archive write failed; payments stay in memory",
             {{"rows_begin", std::to_string(done.rows_begin)},
              {"rows_end", std::to_string(done.rows_end)},
              {"error", done.status.to_string()}});
    next_attempt_us_ = now_us + retry_after_failure_us;
    return false;
  }
  metrics_.archive_jobs.fetch_add(1, std::memory_order_relaxed);
  *out = Command{};
  out->kind = CommandKind::archive_payments;
  out->archive_rows_end = done.rows_end;
  out->archive_as_of_us = done.as_of_us;
  return true;
}

bool ArchiveScheduler::is_cold(std::uint32_t row, std::int64_t now_us) const {
  const State& s = *state_;
  if (!s.payment_is_evictable(row, s.last_timestamp_us)) return false;
  const bool old = s.payments[row].created_at_us <= now_us - config_.hot_window_us;
  const bool crowded = s.payments.live_count() > config_.payments_hot_high_water;
  return old || crowded;
}

void ArchiveScheduler::maybe_submit(std::int64_t now_us, std::uint64_t state_lsn) {
  if (config_.archive_sink == nullptr || in_flight_ || now_us < next_attempt_us_) return;
  const State& s = *state_;
  ArchiveJob job;
  job.sequence = next_sequence_;
  job.rows_begin = s.payments.begin();
  job.lsn = state_lsn;
  job.as_of_us = s.last_timestamp_us;
  std::uint32_t row = job.rows_begin;
  for (; row < s.payments.size() && row - job.rows_begin < config_.archive_job_payments_max; ++row) {
    if (!is_cold(row, now_us)) break;
    ArchivedPayment& copy = job.payments.emplace_back();
    copy.payment = payment_view(s, row, s.last_timestamp_us);
    copy.refunds_follow_archived = (s.payments[row].flags & payment_flag_from_archive) != 0;
    for (std::uint32_t r = s.payments[row].first_refund; r != row_none; r = s.refunds[r].next) {
      copy.refunds.push_back(refund_view(s, r));
    }
  }
  job.rows_end = row;
  if (job.payments.empty()) {
    next_attempt_us_ = now_us + config_.tick_interval_us;  // nothing cold at the front yet
    return;
  }
  const bool taken = config_.archive_sink->submit(std::move(job));
  PAYCORE_ASSERT(taken);  // one job in flight at most, and the sink holds one
  ++next_sequence_;
  in_flight_ = true;
}

}  // namespace paycore
