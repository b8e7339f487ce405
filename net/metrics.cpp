#include "net/metrics.hpp"

#include <charconv>
#include <utility>

namespace paycore::net {

std::size_t metric_status_index(int status) {
  for (std::size_t i = 0; i < std::size(metric_statuses); ++i) {
    if (metric_statuses[i] == status) return i;
  }
  return std::size(metric_statuses);
}

void ServerMetrics::record(Route route, int status, std::uint64_t latency_us) {
  bump(requests[static_cast<std::size_t>(route)][metric_status_index(status)]);
  std::size_t bucket = 0;
  while (bucket < std::size(latency_bounds_us) && latency_us > latency_bounds_us[bucket]) ++bucket;
  bump(latency_buckets[bucket]);
  bump(latency_sum_us, latency_us);
}

namespace {

class Exposition {
 public:
  explicit Exposition(OutBuffer& out) : out_(out) {}

  void header(std::string_view name, std::string_view type, std::string_view help) {
    text("# HELP ");
    text(name);
    text(" ");
    text(help);
    text("\n# TYPE ");
    text(name);
    text(" ");
    text(type);
    text("\n");
  }
  void text(std::string_view s) { ok_ = ok_ && out_.append(s); }
  void number(std::uint64_t value) {
    char digits[24];
    const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
    (void)error;
    text(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  void signed_number(std::int64_t value) {
    char digits[24];
    const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
    (void)error;
    text(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  void sample(std::string_view name, std::uint64_t value) {
    text(name);
    text(" ");
    number(value);
    text("\n");
  }
  void gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    header(name, "gauge", help);
    sample(name, value);
  }
  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    header(name, "counter", help);
    sample(name, value);
  }
  // Buckets from log2 counts: bucket i holds values < 2^i, the last one everything from
  // 2^(n - 2) up, so it has no finite bound of its own and is counted in +Inf only.
  void log2_histogram(std::string_view name, std::string_view help,
                      const std::atomic<std::uint64_t> (&buckets)[EngineMetrics::histogram_buckets]) {
    header(name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i + 1 < EngineMetrics::histogram_buckets; ++i) {
      cumulative += buckets[i].load(std::memory_order_relaxed);
      text(name);
      text("_bucket{le=\"");
      number(std::uint64_t{1} << i);
      text("\"} ");
      number(cumulative);
      text("\n");
    }
    cumulative += buckets[EngineMetrics::histogram_buckets - 1].load(std::memory_order_relaxed);
    text(name);
    text("_bucket{le=\"+Inf\"} ");
    number(cumulative);
    text("\n");
    text(name);
    text("_count ");
    number(cumulative);
    text("\n");
  }
  bool ok() const { return ok_; }

 private:
  OutBuffer& out_;
  bool ok_ = true;
};

std::uint64_t load(const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); }

void write_requests(Exposition& e, std::span<const ServerMetrics* const> threads) {
  e.header("paycore_http_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (std::size_t r = 0; r < routes_count; ++r) {
    for (std::size_t s = 0; s < metric_statuses_count; ++s) {
      std::uint64_t total = 0;
      for (const ServerMetrics* t : threads) total += load(t->requests[r][s]);
      if (total == 0) continue;
      e.text("paycore_http_requests_total{route=\"");
      e.text(route_name(static_cast<Route>(r)));
      e.text("\",status=\"");
      if (s < std::size(metric_statuses)) {
        e.number(static_cast<std::uint64_t>(metric_statuses[s]));
      } else {
        e.text("other");
      }
      e.text("\"} ");
      e.number(total);
      e.text("\n");
    }
  }
  e.header("paycore_http_request_duration_seconds", "histogram",
           "Time from a request's last byte to its response being queued for sending.");
  std::uint64_t cumulative = 0;
  std::uint64_t sum_us = 0;
  for (std::size_t b = 0; b < latency_buckets_count; ++b) {
    for (const ServerMetrics* t : threads) cumulative += load(t->latency_buckets[b]);
    e.text("paycore_http_request_duration_seconds_bucket{le=\"");
    if (b < std::size(latency_bounds_us)) {
      // Microseconds as decimal seconds without floating point: 250 -> 0.000250.
      const std::uint64_t us = latency_bounds_us[b];
      e.number(us / 1'000'000);
      e.text(".");
      char frac[7];
      std::uint64_t rest = us % 1'000'000;
      for (int i = 5; i >= 0; --i) {
        frac[i] = static_cast<char>('0' + rest % 10);
        rest /= 10;
      }
      frac[6] = 0;
      e.text(std::string_view(frac, 6));
    } else {
      e.text("+Inf");
    }
    e.text("\"} ");
    e.number(cumulative);
    e.text("\n");
  }
  for (const ServerMetrics* t : threads) sum_us += load(t->latency_sum_us);
  e.text("paycore_http_request_duration_seconds_sum ");
  e.number(sum_us / 1'000'000);
  e.text(".");
  char frac[6];
  std::uint64_t rest = sum_us % 1'000'000;
  for (int i = 5; i >= 0; --i) {
    frac[i] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  e.text(std::string_view(frac, 6));
  e.text("\n");
  e.sample("paycore_http_request_duration_seconds_count", cumulative);
}

std::uint64_t sum_of(std::span<const ServerMetrics* const> threads,
                     std::atomic<std::uint64_t> ServerMetrics::*member) {
  std::uint64_t total = 0;
  for (const ServerMetrics* t : threads) total += load(t->*member);
  return total;
}

// Where single-command requests spend their time (core/pipeline.hpp): one power-of-two
// histogram per stage, summed over the I/O threads.
void write_stages(Exposition& e, std::span<const ServerMetrics* const> threads) {
  constexpr std::string_view name = "paycore_request_stage_duration_microseconds";
  e.header(name, "histogram",
           "Time single-command requests spent in each stage of their way through the server, in "
           "microseconds (power-of-two buckets; docs/design.md \"Seeing where the time goes\").");
  for (std::size_t s = 0; s < stages_count; ++s) {
    const std::string_view stage = stage_name(static_cast<Stage>(s));
    std::uint64_t cumulative = 0;
    // The last bucket holds everything from 2^(buckets_count - 2) up: it is +Inf's alone.
    for (std::size_t b = 0; b < StageHistograms::buckets_count; ++b) {
      for (const ServerMetrics* t : threads) cumulative += load(t->stages.duration_us_log2[s][b]);
      const bool last = b + 1 == StageHistograms::buckets_count;
      e.text(name);
      e.text("_bucket{stage=\"");
      e.text(stage);
      e.text("\",le=\"");
      if (!last) {
        e.number(std::uint64_t{1} << b);
      } else {
        e.text("+Inf");
      }
      e.text("\"} ");
      e.number(cumulative);
      e.text("\n");
    }
    e.text(name);
    e.text("_count{stage=\"");
    e.text(stage);
    e.text("\"} ");
    e.number(cumulative);
    e.text("\n");
  }
}

// Turns of the core loop over stall_threshold_ns (core/stall_watch.hpp), by cause.
void write_stalls(Exposition& e, const EngineMetrics& engine) {
  const std::pair<std::string_view, const std::atomic<std::uint64_t>*> series[] = {
      {"paycore_core_stalls_total", engine.stalls.count},
      {"paycore_core_stall_microseconds_total", engine.stalls.turn_us_total}};
  for (const auto& [name, counters] : series) {
    e.header(name, "counter",
             counters == engine.stalls.count
                 ? "Turns of the core loop longer than 1 ms, by cause."
                 : "Time spent in turns of the core loop longer than 1 ms, by cause.");
    for (std::size_t c = 0; c < stall_causes_count; ++c) {
      e.text(name);
      e.text("{cause=\"");
      e.text(stall_cause_name(static_cast<StallCause>(c)));
      e.text("\"} ");
      e.number(load(counters[c]));
      e.text("\n");
    }
  }
  e.gauge("paycore_core_stall_microseconds_max", "Longest turn of the core loop over 1 ms.",
          load(engine.stalls.turn_us_max));
}

// The cold tier (docs/design.md "Hot and cold"): what left memory, and the edge's reads of it.
void write_archive(Exposition& e, const EngineMetrics& engine, const ArchiveLookupMetrics* archive) {
  e.gauge("paycore_payments_archived", "Payments that have left memory for the archive.",
          load(engine.payments_archived));
  e.counter("paycore_archive_jobs_total", "Batches of cold payments written to the archive.",
            load(engine.archive_jobs));
  e.counter("paycore_archive_failures_total", "Archive writes that failed.",
            load(engine.archive_failures));
  if (archive == nullptr) return;
  e.header("paycore_archive_lookups_total", "counter",
           "Reads of the archive by the edge, by outcome (queue_full: refused with 503).");
  const std::pair<std::string_view, const std::atomic<std::uint64_t>*> outcomes[] = {
      {"found", &archive->found},
      {"not_found", &archive->not_found},
      {"error", &archive->errors},
      {"queue_full", &archive->queue_full}};
  for (const auto& [name, counter] : outcomes) {
    e.text("paycore_archive_lookups_total{outcome=\"");
    e.text(name);
    e.text("\"} ");
    e.number(load(*counter));
    e.text("\n");
  }
  e.log2_histogram("paycore_archive_lookup_duration_microseconds",
                   "Archive read latency in microseconds (power-of-two buckets).",
                   archive->latency_us_log2);
}

// Replication (docs/replication.md): all zero on a single node.
void write_replication(Exposition& e, const EngineMetrics& engine) {
  const auto flag = [](const std::atomic<bool>& b) {
    return b.load(std::memory_order_relaxed) ? std::uint64_t{1} : std::uint64_t{0};
  };
  e.gauge("paycore_replicated_lsn",
          "Highest log position the shared log (NATS JetStream) acknowledged; 0 on a single node.",
          engine.replicated_lsn.load(std::memory_order_relaxed));
  e.gauge("paycore_replica_fenced", "1 once another process writes the shared log.",
          flag(engine.replica_fenced));
  e.gauge("paycore_replica_stalled",
          "1 while the shared log leaves a batch unacknowledged past the timeout (writes 503).",
          flag(engine.replica_stalled));
  e.gauge("paycore_following", "1 on a standby applying the shared log.", flag(engine.following));
  e.gauge("paycore_followed_sequence", "The last stream message a standby applied.",
          engine.followed_sequence.load(std::memory_order_relaxed));
  e.gauge("paycore_follow_failed", "1 once a standby met a record that does not continue its log.",
          flag(engine.follow_failed));
  e.counter("paycore_promotions_total", "Standby to primary, in this process.",
            engine.promotions.load(std::memory_order_relaxed));
  e.gauge("paycore_snapshot_published_lsn",
          "LSN of the newest snapshot this process published to JetStream (0: none).",
          engine.snapshot_published_lsn.load(std::memory_order_relaxed));
}

// Events and webhooks (docs/events.md, docs/webhooks.md).
void write_events(Exposition& e, const events::EventsMetrics& m) {
  e.gauge("paycore_events_derived_lsn", "The last log record the event deriver has derived.", m.derived_lsn);
  e.counter("paycore_events_derived_total", "Events derived from the log since start.", m.events_derived);
  e.counter("paycore_events_deriver_failures_total", "Deriver batches that failed (retried).",
            m.deriver_failures);
  e.gauge("paycore_events_deriver_stuck", "1 while the deriver's last attempt failed.", m.deriver_stuck ? 1 : 0);
  e.counter("paycore_events_shared_log_records_total",
            "Log records the deriver read from the log stream because the local log no longer held them.",
            m.shared_log_records);
  if (!m.webhooks) return;
  e.counter("paycore_webhook_deliveries_enqueued_total", "Deliveries stored (one per event and endpoint).",
            m.deliveries_enqueued);
  e.counter("paycore_webhook_events_too_old_total",
            "Hand-overs of an event older than a cluster's changes stream keeps (no delivery made; a repeat counts again).",
            m.events_too_old);
  e.counter("paycore_webhook_deliveries_delivered_total", "Deliveries answered 2xx.", m.deliveries_delivered);
  e.counter("paycore_webhook_attempts_failed_total", "Attempts without a 2xx answer.", m.attempts_failed);
  e.counter("paycore_webhook_deliveries_given_up_total",
            "Deliveries FAILED (retry horizon passed, endpoint disabled).", m.deliveries_given_up);
  e.gauge("paycore_webhook_deliveries_pending", "Deliveries not yet delivered nor given up.",
          m.deliveries_pending);
  e.gauge("paycore_webhook_transfers_in_flight", "Webhook requests in flight now.", m.transfers_in_flight);
  if (m.webhook_sync) {
    e.counter("paycore_webhook_changes_published_total", "Delivery changes this member published to the cluster.",
              m.changes_published);
    e.counter("paycore_webhook_changes_dropped_total",
              "Delivery changes not published (a new primary may send those deliveries again).", m.changes_dropped);
    e.counter("paycore_webhook_changes_applied_total", "Other members' delivery changes applied here.",
              m.changes_applied);
    e.counter("paycore_webhook_changes_unmatched_total",
              "Changes of deliveries this member does not hold (passed over).", m.changes_unmatched);
    e.counter("paycore_webhook_deliveries_inserted_total",
              "Deliveries this member did not derive, stored from another member's PENDING change.",
              m.deliveries_inserted);
    e.gauge("paycore_webhook_changes_sequence", "The changes stream's sequence applied here.", m.changes_sequence);
    e.counter("paycore_webhook_sync_failures_total", "Webhook sync connections to NATS lost or refused.",
              m.sync_failures);
  }
  const std::string_view name = "paycore_webhook_delivery_lag_milliseconds";
  e.header(name, "histogram", "Event creation to 2xx, in ms (power-of-two buckets).");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i + 1 < m.delivery_lag_ms_buckets.size(); ++i) {
    cumulative += m.delivery_lag_ms_buckets[i];
    e.text(name);
    e.text("_bucket{le=\"");
    e.number(std::uint64_t{1} << i);
    e.text("\"} ");
    e.number(cumulative);
    e.text("\n");
  }
  cumulative += m.delivery_lag_ms_buckets.back();
  e.text(name);
  e.text("_bucket{le=\"+Inf\"} ");
  e.number(cumulative);
  e.text("\n");
  e.sample(std::string(name) + "_count", cumulative);
}

}  // namespace

bool write_metrics(OutBuffer& out, std::span<const ServerMetrics* const> threads,
                   const EngineMetrics& engine, const ServerGauges& gauges, std::int64_t now_us,
                   const ArchiveLookupMetrics* archive, const events::EventsMetrics* events) {
  Exposition e(out);
  write_requests(e, threads);
  e.gauge("paycore_http_connections_open", "Client connections open now.", gauges.connections_open);
  e.gauge("paycore_io_threads", "I/O threads serving HTTP.", gauges.io_threads);
  e.counter("paycore_http_connections_accepted_total", "Connections accepted.",
            sum_of(threads, &ServerMetrics::connections_accepted));
  e.counter("paycore_http_connections_refused_total", "Connections refused over the limit (503).",
            sum_of(threads, &ServerMetrics::connections_refused));
  e.counter("paycore_http_connections_timed_out_total", "Connections closed by a timeout.",
            sum_of(threads, &ServerMetrics::connections_timed_out));
  e.counter("paycore_http_protocol_errors_total", "Malformed, oversized or smuggling requests.",
            sum_of(threads, &ServerMetrics::protocol_errors));
  e.counter("paycore_nonces_logged_total",
            "Accepted nonces made durable in their command's log record.",
            sum_of(threads, &ServerMetrics::nonces_logged));
  e.counter("paycore_nonces_journaled_total",
            "Accepted nonces made durable in the nonce journal.",
            sum_of(threads, &ServerMetrics::nonces_journaled));

  e.counter("paycore_commands_applied_total", "Commands applied by the core.", load(engine.commands_applied));
  e.counter("paycore_wal_appends_total", "Commands appended to the write-ahead log.",
            load(engine.commands_logged));
  e.counter("paycore_wal_batches_total", "Group-commit batches written.", load(engine.wal_batches));
  e.counter("paycore_wal_fsyncs_total", "fdatasync calls completed.", load(engine.wal_fsyncs));
  e.counter("paycore_wal_bytes_total", "Bytes written to the log.", load(engine.wal_bytes));
  e.counter("paycore_wal_segments_created_total", "Log segments created since start.",
            load(engine.wal_segments));
  e.counter("paycore_wal_segments_from_spares_total",
            "Log segments made from a spare written full of zeros ahead of need.",
            load(engine.wal_segments_from_spares));
  e.log2_histogram("paycore_wal_fsync_duration_microseconds",
                   "fdatasync latency in microseconds (power-of-two buckets).",
                   engine.fsync_latency_us_log2);
  e.log2_histogram("paycore_wal_batch_records", "Records per group-commit batch (power-of-two buckets).",
                   engine.batch_records_log2);
  e.counter("paycore_engine_busy_refusals_total", "Requests refused because a ring was full.",
            load(engine.busy_refusals));
  e.counter("paycore_engine_turns_total", "Turns of the core loop.", load(engine.turns));
  write_stalls(e, engine);
  write_stages(e, threads);
  e.gauge("paycore_engine_queue_depth", "Requests waiting in the engine's rings.", load(engine.queue_depth));
  e.gauge("paycore_engine_awaiting_release", "Results applied and waiting for durability.",
          load(engine.awaiting_release));
  e.gauge("paycore_wal_durable_lsn", "Highest durable log sequence number.", load(engine.durable_lsn));
  e.gauge("paycore_accounts", "Accounts in the state.", load(engine.accounts));
  e.gauge("paycore_payments", "Payments in the state.", load(engine.payments));
  e.gauge("paycore_snapshot_lsn", "Log position of the last snapshot.", load(engine.snapshot_lsn));
  const std::int64_t snapshot_at_us = engine.snapshot_at_us.load(std::memory_order_relaxed);
  e.header("paycore_snapshot_age_seconds", "gauge", "Seconds since the last snapshot (-1: none yet).");
  e.text("paycore_snapshot_age_seconds ");
  e.signed_number(snapshot_at_us > 0 ? (now_us - snapshot_at_us) / 1'000'000 : -1);
  e.text("\n");
  e.counter("paycore_snapshots_written_total", "Snapshots written.", load(engine.snapshots_written));
  e.gauge("paycore_snapshot_pause_microseconds_max", "Longest core pause to start a snapshot.",
          load(engine.snapshot_pause_us_max));
  e.gauge("paycore_ready", "1 once recovered and the log accepts writes.",
          engine.ready.load(std::memory_order_relaxed) ? 1 : 0);
  e.gauge("paycore_read_only", "1 after a storage fault: writes refused until restart.",
          engine.read_only.load(std::memory_order_relaxed) ? 1 : 0);
  write_replication(e, engine);
  write_archive(e, engine, archive);
  if (events != nullptr) write_events(e, *events);
  return e.ok();
}

}  // namespace paycore::net
