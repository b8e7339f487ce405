#include "events/deriver.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/log.hpp"
#include "base/time.hpp"
#include "core/command_record.hpp"
#include "wal/committed.hpp"

namespace paycore::events {

Deriver::Deriver(EventStore& store, DeriverConfig config, ManualStart)
    : store_(store), config_(std::move(config)), log_(config_.wal_dir), flushed_position_(store.position()) {
  if (config_.floor_lsn != nullptr) config_.floor_lsn->store(store_.position() + 1, std::memory_order_release);
}

Deriver::Deriver(EventStore& store, DeriverConfig config)
    : Deriver(store, std::move(config), ManualStart{}) {
  thread_ = std::thread([this] { loop(); });
  (void)::pthread_setname_np(thread_.native_handle(), "paycore-events");  // top -H, perf
}

Deriver::~Deriver() { stop(); }

void Deriver::stop() {
  {
    const std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Deriver::notify() {
  {
    const std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_all();
}

std::string Deriver::last_failure() const {
  const std::lock_guard lock(mutex_);
  return last_failure_;
}

std::int64_t Deriver::now_us() const { return config_.clock_us ? config_.clock_us() : wall_clock_us(); }

// Where the local log starts now: its older segments go after snapshots (held back by the
// floor, but not while events were off, nor before a member started from a snapshot).
Status Deriver::find_local_first() {
  StatusOr<std::uint64_t> first = wal::first_committed_lsn(config_.wal_dir);
  if (!first.is_ok()) return first.status();
  local_first_lsn_ = *first;
  return Status::ok();
}

// Records after the store's position are in no log any more: derivation resumes at
// `first_lsn`, and says so. The batches committed since the last flush are made durable first:
// the store writes the skip durably at once, and a crash must not leave the skip without them.
Status Deriver::skip_gap(std::uint64_t first_lsn, const std::string& why) {
  if (store_.position() != flushed_position_) PAYCORE_RETURN_IF_ERROR(flush());
  log_line(LogLevel::warn, "events: the log no longer holds records the event store never saw",
           {{"events_position", std::to_string(store_.position())},
            {"log_first_lsn", std::to_string(first_lsn)},
            {"why", why}});
  return store_.skip_gap(first_lsn, now_us());
}

// A read of the shared log that visited nothing. kNotFound: it does not hold the record after
// the store's position either (past the stream's retention), a gap up to where it resumes or
// to the local log's first record. Otherwise it should have: an error, tried again.
Status Deriver::after_empty_shared_read(const Status& read, std::uint64_t from_lsn, std::uint64_t resumes_at_lsn) {
  if (read.code() != StatusCode::kNotFound) {
    PAYCORE_RETURN_IF_ERROR(read);
    return Status(StatusCode::kUnavailable, "the log stream held no record from LSN " + std::to_string(from_lsn));
  }
  const bool resumes_before_local = resumes_at_lsn != 0 && resumes_at_lsn < local_first_lsn_;
  return skip_gap(resumes_before_local ? resumes_at_lsn : local_first_lsn_, read.message());
}

namespace {

// Whether the tick `c` expired every payment the deriver may not know: those were all created
// before the gap, so all due once a lifetime has passed since, and a tick that stopped short
// of its limit (no work left) expired every payment due at its time.
bool ends_gap(const Command& c, const CommandOutcome& o, std::int64_t gap_at_us) {
  return c.kind == CommandKind::tick && !o.work_left &&
         c.timestamp_us >= gap_at_us + c.pending_lifetime_us;
}

}  // namespace

Status Deriver::derive_batch(std::uint64_t to_lsn, bool* progressed) {
  *progressed = false;
  const std::uint64_t from = store_.position() + 1;
  // Records before the local log's first: the shared log's in a cluster, else a gap.
  const bool before_local_log = from < local_first_lsn_;
  if (before_local_log && !config_.read_shared_log) {
    *progressed = true;  // the position moves past the gap
    return skip_gap(local_first_lsn_, "the log's older segments are gone");
  }
  to_lsn = std::min<std::uint64_t>(to_lsn, from + config_.records_per_batch_max - 1);
  if (before_local_log) to_lsn = std::min(to_lsn, local_first_lsn_ - 1);
  EventStore::BatchPtr batch = store_.begin();
  std::vector<Event> events;
  std::uint64_t last = from - 1;
  Status failed;
  std::int64_t gap_at_us = store_.gap_at_us();
  const auto visit = [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
    Command c;
    CommandOutcome o;
    bool has_outcome = false;
    if (const CommandDecodeError e = decode_command_record(type, payload, &c, &o, &has_outcome);
        e != CommandDecodeError::ok) {
      failed = Status::corruption("log record at LSN " + std::to_string(lsn) + ": " + std::string(to_string(e)));
      return false;
    }
    // Records from before outcomes were logged (type 1) give no event, and the PENDING
    // payments they made are unknown: as after a gap.
    if (!has_outcome) {
      gap_at_us = std::max(gap_at_us, c.timestamp_us);
      failed = EventStore::set_gap(*batch, gap_at_us);
    } else {
      failed = derive_events(lsn, c, o, EventStore::pending(*batch), gap_at_us == 0, &events);
      if (failed.is_ok() && gap_at_us != 0 && ends_gap(c, o, gap_at_us)) {
        gap_at_us = 0;
        failed = EventStore::set_gap(*batch, 0);
      }
    }
    if (!failed.is_ok()) return false;
    last = lsn;
    return events.size() < config_.events_per_batch_max;
  };
  std::uint64_t resumes_at_lsn = 0;
  Status read = before_local_log ? config_.read_shared_log(from, to_lsn, visit, &resumes_at_lsn)
                                 : log_.read(from, to_lsn, visit);
  PAYCORE_RETURN_IF_ERROR(failed);
  if (before_local_log && last < from) {
    *progressed = true;  // on a skip, the position moves past the gap
    return after_empty_shared_read(read, from, resumes_at_lsn);
  }
  // What was read is committed; the next batch starts where the shared log has nothing.
  if (before_local_log && read.code() == StatusCode::kNotFound) read = Status::ok();
  PAYCORE_RETURN_IF_ERROR(read);
  if (last < from) return Status::ok();
  PAYCORE_RETURN_IF_ERROR(EventStore::add(*batch, events));
  if (config_.before_commit && !events.empty()) {
    PAYCORE_RETURN_IF_ERROR(config_.before_commit(events).with_context("events: handing over"));
  }
  PAYCORE_RETURN_IF_ERROR(store_.commit(*batch, last));
  metrics_.events_derived.fetch_add(events.size(), std::memory_order_relaxed);
  metrics_.batches.fetch_add(1, std::memory_order_relaxed);
  if (before_local_log) metrics_.shared_log_records.fetch_add(last - from + 1, std::memory_order_relaxed);
  *progressed = true;
  return Status::ok();
}

void Deriver::drop_expired_events() {
  const std::int64_t now = now_us();
  if (now < next_retention_us_) return;
  next_retention_us_ = now + config_.retention_interval_us;
  StatusOr<std::uint32_t> dropped = store_.drop_older_than(now - config_.retention_us, config_.retention_drop_max);
  if (!dropped.is_ok()) {
    log_line(LogLevel::warn, "events: retention failed", {{"error", dropped.status().to_string()}});
    return;
  }
  // Whole blocks go, so a full pass may drop a little more than asked: more are due then.
  if (*dropped >= config_.retention_drop_max) next_retention_us_ = now;
  metrics_.events_dropped_by_retention.fetch_add(*dropped, std::memory_order_relaxed);
}

// Makes the store's commits durable once flush_interval_ms has passed since the last flush.
Status Deriver::flush_if_due() {
  if (store_.position() == flushed_position_) return Status::ok();
  if (last_flush_ms_.has_value() && monotonic_ms() - *last_flush_ms_ < config_.flush_interval_ms) return Status::ok();
  return flush();
}

// Makes the store's commits durable, then lets the engine remove the log records they came
// from (the floor).
Status Deriver::flush() {
  const std::int64_t now_ms = monotonic_ms();
  if (config_.before_flush) PAYCORE_RETURN_IF_ERROR(config_.before_flush().with_context("events: before the flush"));
  StatusOr<std::uint64_t> durable = store_.flush();
  if (!durable.is_ok()) return durable.status();
  last_flush_ms_ = now_ms;
  flushed_position_ = *durable;
  if (config_.floor_lsn != nullptr) config_.floor_lsn->store(*durable + 1, std::memory_order_release);
  return Status::ok();
}

Status Deriver::run_once() {
  PAYCORE_RETURN_IF_ERROR(find_local_first());
  for (;;) {
    std::uint64_t durable = config_.durable_lsn->load(std::memory_order_acquire);
    if (config_.acknowledged_lsn != nullptr && !config_.following->load(std::memory_order_acquire)) {
      durable = std::min(durable, config_.acknowledged_lsn->load(std::memory_order_acquire));
    }
    bool progressed = false;
    if (store_.position() < durable) PAYCORE_RETURN_IF_ERROR(derive_batch(durable, &progressed));
    PAYCORE_RETURN_IF_ERROR(flush_if_due());
    if (!progressed || stopping()) return Status::ok();
  }
}

bool Deriver::stopping() const {
  const std::lock_guard lock(mutex_);
  return stop_requested_;
}

void Deriver::loop() {
  (void)set_this_thread_priority(config_.priority);
  for (;;) {
    const Status s = run_once();
    metrics_.stuck.store(!s.is_ok(), std::memory_order_relaxed);
    if (!s.is_ok()) {
      metrics_.failures.fetch_add(1, std::memory_order_relaxed);
      log_line(LogLevel::error, "events: deriving failed; retrying", {{"error", s.to_string()}});
      const std::lock_guard lock(mutex_);
      last_failure_ = s.to_string();
    } else {
      drop_expired_events();
    }
    std::unique_lock lock(mutex_);
    const std::int64_t wait_ms = s.is_ok() ? config_.idle_wait_ms : config_.retry_wait_ms;
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_requested_ || notified_; });
    if (stop_requested_) return;
    notified_ = false;
  }
}

}  // namespace paycore::events
