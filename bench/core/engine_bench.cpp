// The engine in process, durable: payments per second through the rings, the log (group
// commit, fdatasync) and release, with latency from submit to release; the core's pause when a
// snapshot starts; and recovery time from a snapshot plus a log tail.
//
//   engine_bench [--producers N] [--seconds S] [--accounts A] [--window W] [--batch-max B]
//                [--snapshot-payments P] [--tail-records R] [--dir DIR] [--fallback]
//                [--syncs-in-flight K] [--segment-bytes B] [--no-spare-segments] [--signed]
//
// Prints one table; every figure is measured here, none is computed from a model.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.hpp"
#include "base/log.hpp"
#include "base/time.hpp"

namespace paycore {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::uint32_t producers = 1;
  double seconds = 5;
  std::uint32_t accounts = 100'000;
  std::uint32_t window = 4096;  // requests in flight per producer
  std::uint32_t batch_max = 8192;
  std::uint64_t snapshot_payments = 0;  // 0: skip the snapshot-pause and recovery parts
  std::uint64_t tail_records = 1'000'000;
  std::string dir = "/tmp/paycore-engine-bench";
  bool fallback = false;
  std::uint32_t syncs_in_flight = 1;  // wal flushes in flight at once (io_uring)
  std::uint64_t segment_bytes = 256ULL << 20;
  bool spare_segments = true;
  // Payments carry their signer's nonce (command_flag_nonce), as the server's single writes
  // do, and the engine keeps and recovers them for 10 minutes (nonce_retention_us).
  bool signed_payments = false;
};

inline constexpr std::int64_t bench_nonce_retention_us = 600LL * 1'000'000;

void set_id(Id& id, std::string_view prefix, std::uint64_t n) {
  id = Id{};
  std::memcpy(id.bytes.data(), prefix.data(), prefix.size());
  char* end = std::to_chars(id.bytes.data() + prefix.size(), id.bytes.data() + id_bytes_max, n).ptr;
  id.size = static_cast<std::uint8_t>(end - id.bytes.data());
}

Command payment(std::uint32_t producer, std::uint64_t n, std::uint64_t payer, bool with_nonce) {
  Command c;
  c.kind = CommandKind::create_payment;
  c.currency = *currency_from_code("CNY");
  c.channel = Id::of("balance");
  c.amount = 1;
  set_id(c.principal, "m_", producer);
  set_id(c.request_id, "q" + std::to_string(producer) + "-", n);
  set_id(c.order_id, "o" + std::to_string(producer) + "-", n);
  set_id(c.account, "c", payer);
  if (with_nonce) {  // 24 characters, as loadgen's
    c.flags |= command_flag_nonce;
    set_id(c.nonce, "nonce-" + std::to_string(producer) + "-00000000", n);
    c.nonce_timestamp_s = wall_clock_us() / 1'000'000;
  }
  return c;
}

// Set-up commands of one producer, many in flight (one ring applies them in order, so an
// account is open before its deposit): the set-up takes as many flushes as batches, not one
// per command. Any refusal ends the run.
class SetupCalls {
 public:
  SetupCalls(Engine& e, std::uint32_t p) : e_(e), p_(p), responses_(4096) {}
  ~SetupCalls() { drain(0); }
  SetupCalls(const SetupCalls&) = delete;
  SetupCalls& operator=(const SetupCalls&) = delete;

  void send(const Command& c) {
    drain(in_flight_max - 1);
    while (!e_.submit(p_, Request{c, 0})) take();
    ++in_flight_;
  }
  // Waits until at most `left` are in flight.
  void drain(std::uint32_t left) {
    while (in_flight_ > left) take();
  }

 private:
  static constexpr std::uint32_t in_flight_max = 4000;
  void take() {
    const std::size_t n = e_.take(p_, responses_);
    if (n == 0) std::this_thread::yield();
    for (std::size_t i = 0; i < n; ++i) {
      if (responses_[i].result.code != ResultCode::ok) {
        std::fprintf(stderr, "set-up command failed: %s\n",
                     std::string(to_string(responses_[i].result.code)).c_str());
        std::exit(1);
      }
    }
    in_flight_ -= static_cast<std::uint32_t>(n);
  }
  Engine& e_;
  std::uint32_t p_;
  std::vector<Response> responses_;
  std::uint32_t in_flight_ = 0;
};

// Submits and waits, as one producer; for set-up only.
void call(Engine& e, std::uint32_t p, const Command& c) {
  SetupCalls calls(e, p);
  calls.send(c);
}

// Opens `accounts` customers with a deposit each and, for each of the `producers` merchants
// ("m_<p>"), a mandate that lets it debit them (docs/api.md "Mandates").
void setup_accounts(Engine& e, std::uint32_t accounts, std::uint32_t producers) {
  SetupCalls calls(e, 0);
  for (std::uint32_t i = 0; i < accounts; ++i) {
    Command c;
    c.kind = CommandKind::open_account;
    c.flags = command_flag_operator;
    c.principal = Id::of("operator");
    set_id(c.request_id, "open-", i);
    set_id(c.account, "c", i);
    c.currency = *currency_from_code("CNY");
    c.account_kind = AccountKind::customer;
    calls.send(c);
    c.kind = CommandKind::deposit;
    set_id(c.request_id, "dep-", i);
    c.amount = 1'000'000'000'000;
    calls.send(c);
    for (std::uint32_t p = 0; p < producers; ++p) {
      Command m;
      m.kind = CommandKind::create_mandate;
      m.flags = command_flag_operator;
      m.principal = Id::of("operator");
      set_id(m.account, "c", i);
      set_id(m.request_id, "mandate-" + std::to_string(p) + "-", i);
      set_id(m.mandate_id, "mandate-" + std::to_string(p) + "-", i);
      set_id(m.merchant_id, "m_", p);
      m.amount = amount_max_default;
      calls.send(m);
    }
  }
}

// A new log starts in a fallocated segment and moves to a zero-filled spare once the spare's
// thread has written one (base/spare_file.hpp). Deposits go in, one at a time, until it has
// moved, so that the run measures the steady state and not the spare being written.
void wait_for_spare_segment(Engine& e, const Options& o) {
  if (!o.spare_segments || o.fallback) return;
  const auto give_up_at = Clock::now() + std::chrono::seconds(120);
  for (std::uint64_t n = 0; e.metrics().wal_segments_from_spares.load() == 0; ++n) {
    if (Clock::now() > give_up_at) {
      std::fprintf(stderr, "engine_bench: the log did not move to a spare in 120 s\n");
      return;
    }
    Command c;
    c.kind = CommandKind::deposit;
    c.flags = command_flag_operator;
    c.principal = Id::of("operator");
    set_id(c.request_id, "warm-", n);
    set_id(c.account, "c", 0);
    c.currency = *currency_from_code("CNY");
    c.amount = 1;
    call(e, 0, c);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct ProducerResult {
  std::uint64_t done = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint32_t> latencies_us;
  std::uint32_t worst_us = 0;
  double worst_sent_at_s = 0;  // when the slowest request was sent, from the start
  std::unique_ptr<StageHistograms> stages = std::make_unique<StageHistograms>();
};

// Keeps `window` payments in flight until the deadline, recording submit-to-release latency.
void produce(Engine& e, std::uint32_t p, const Options& o, Clock::time_point start, Clock::time_point deadline,
             ProducerResult* out) {
  std::mt19937_64 rng(p + 1);
  std::vector<Clock::time_point> sent(o.window);
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t i = 0; i < o.window; ++i) free_slots.push_back(i);
  std::vector<Response> responses(1024);
  std::uint64_t n = 0;
  out->latencies_us.reserve(8'000'000);
  while (Clock::now() < deadline || free_slots.size() < o.window) {
    while (!free_slots.empty() && Clock::now() < deadline) {
      const std::uint32_t slot = free_slots.back();
      Request request{payment(p, n, rng() % o.accounts, o.signed_payments), slot};
      request.submitted_ns = monotonic_ns();
      if (!e.submit(p, request)) break;
      sent[slot] = Clock::now();
      free_slots.pop_back();
      ++n;
    }
    const std::size_t got = e.take(p, responses);
    const auto now = Clock::now();
    const std::int64_t received_ns = monotonic_ns();
    for (std::size_t i = 0; i < got; ++i) {
      responses[i].stamps.received_ns = received_ns;
      out->stages->record(responses[i].stamps);
      const auto slot = static_cast<std::uint32_t>(responses[i].token);
      const auto latency_us = static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - sent[slot]).count());
      out->latencies_us.push_back(latency_us);
      if (latency_us > out->worst_us) {
        out->worst_us = latency_us;
        out->worst_sent_at_s = std::chrono::duration<double>(sent[slot] - start).count();
      }
      if (responses[i].result.code != ResultCode::ok) ++out->errors;
      ++out->done;
      free_slots.push_back(slot);
    }
    if (got == 0) std::this_thread::yield();
  }
}

double percentile(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

EngineConfig config_for(const Options& o) {
  EngineConfig config;
  config.data_dir = o.dir;
  config.producers = o.producers;
  config.batch_max = o.batch_max;
  config.ring_capacity = 8192;
  config.wal_force_fallback = o.fallback;
  config.wal_syncs_in_flight_max = o.syncs_in_flight;
  config.wal_segment_bytes = o.segment_bytes;
  config.wal_spare_segments = o.spare_segments;
  config.snapshot_every_records = 0;
  config.snapshot_every_us = 0;
  config.snapshot_at_shutdown = false;
  config.state.accounts_expected = o.accounts + 64;
  config.state.payments_expected = 1 << 20;
  config.state.idempotency_expected = 1 << 20;
  if (o.signed_payments) config.nonce_retention_us = bench_nonce_retention_us;
  return config;
}

std::unique_ptr<Engine> open_or_die(const EngineConfig& config) {
  StatusOr<std::unique_ptr<Engine>> e = Engine::open(config);
  if (!e.is_ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", e.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*e);
}

void throughput(const Options& o) {
  std::system(("rm -rf '" + o.dir + "'").c_str());
  auto e = open_or_die(config_for(o));
  e->start();
  setup_accounts(*e, o.accounts, o.producers);
  wait_for_spare_segment(*e, o);
  const std::uint64_t batches_before = e->metrics().wal_batches.load();
  const std::uint64_t logged_before = e->metrics().commands_logged.load();
  std::vector<ProducerResult> results(o.producers);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (std::uint32_t p = 0; p < o.producers; ++p) {
    threads.emplace_back(produce, std::ref(*e), p, std::cref(o), start, deadline, &results[p]);
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<std::uint32_t> all;
  std::uint64_t done = 0, errors = 0;
  for (auto& r : results) {
    done += r.done;
    errors += r.errors;
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
  }
  const std::uint64_t batches = e->metrics().wal_batches.load() - batches_before;
  const std::uint64_t logged = e->metrics().commands_logged.load() - logged_before;
  std::printf("durable payments: producers=%u window=%u batch_max=%u path=%s syncs_in_flight=%u\n", o.producers,
              o.window, o.batch_max, o.fallback ? "fallback" : "io_uring", o.fallback ? 1U : o.syncs_in_flight);
  std::printf("  log segments: %" PRIu64 " created, %" PRIu64 " of them zero-filled spares (spares %s)\n",
              e->metrics().wal_segments.load(), e->metrics().wal_segments_from_spares.load(),
              o.spare_segments ? "on" : "off");
  std::printf("  %.0f payments/s (%" PRIu64 " in %.2f s, %" PRIu64 " errors), %" PRIu64 " fsync batches, %.0f records/batch\n",
              static_cast<double>(done) / elapsed, done, elapsed, errors, batches,
              batches ? static_cast<double>(logged) / static_cast<double>(batches) : 0.0);
  std::printf("  latency submit->release us: p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f max=%.0f\n", percentile(all, 0.5),
              percentile(all, 0.9), percentile(all, 0.99), percentile(all, 0.999), percentile(all, 1.0));
  for (const auto& r : results) {
    std::printf("  slowest: %u us, sent %.3f s after the start\n", r.worst_us, r.worst_sent_at_s);
  }
  StageHistograms stages;
  for (const auto& r : results) stages.add(*r.stages);
  std::printf("  stages (core/pipeline.hpp; power-of-two bucket bounds):\n%s", stages_report(stages).c_str());
  const StallMetrics& stalls = e->metrics().stalls;
  std::printf("  core stalls over 1 ms:");
  for (std::size_t c = 0; c < stall_causes_count; ++c) {
    const std::uint64_t count = stalls.count[c].load();
    if (count > 0) {
      std::printf(" %s=%llu (%.1f ms)", std::string(stall_cause_name(static_cast<StallCause>(c))).c_str(),
                  static_cast<unsigned long long>(count), static_cast<double>(stalls.turn_us_total[c].load()) / 1000);
    }
  }
  std::printf(", longest %.1f ms\n", static_cast<double>(stalls.turn_us_max.load()) / 1000);
  e->stop();
}

// Builds a state of `snapshot_payments` payments through the engine, measures the core's pause
// when a snapshot starts, then appends `tail_records` more and times recovery.
void snapshot_and_recovery(const Options& o) {
  std::system(("rm -rf '" + o.dir + "'").c_str());
  Options big = o;
  big.producers = 1;
  EngineConfig config = config_for(big);
  config.state.payments_expected = o.snapshot_payments + o.tail_records;
  config.state.idempotency_expected = config.state.payments_expected;
  auto e = open_or_die(config);
  e->start();
  setup_accounts(*e, o.accounts, 1);
  auto fill = [&](std::uint64_t from, std::uint64_t count) {
    std::vector<Response> responses(4096);
    std::uint64_t sent = 0, done = 0;
    std::mt19937_64 rng(from + 7);
    while (done < count) {
      while (sent < count && sent - done < 8000 && e->submit(0, Request{payment(0, from + sent, rng() % o.accounts, o.signed_payments), 0})) ++sent;
      done += e->take(0, responses);
    }
  };
  const auto fill_start = Clock::now();
  fill(0, o.snapshot_payments);
  std::printf("built %" PRIu64 " payments in %.1f s\n", o.snapshot_payments,
              std::chrono::duration<double>(Clock::now() - fill_start).count());
  // A steady stream keeps going while the snapshot is taken, so the pause is a real stall.
  Request snap;
  snap.op = RequestOp::snapshot;
  const auto snap_start = Clock::now();
  while (!e->submit(0, snap)) std::this_thread::yield();
  Response r;
  while (e->take(0, std::span(&r, 1)) == 0 || r.op != RequestOp::snapshot) std::this_thread::yield();
  std::printf("snapshot of %u payments at LSN %" PRIu64 ": core pause %" PRIu64 " us, written in %.2f s (ok=%d)\n",
              r.snapshot_payments, r.snapshot_lsn, e->metrics().snapshot_pause_us_max.load(),
              std::chrono::duration<double>(Clock::now() - snap_start).count(), r.snapshot_ok ? 1 : 0);
  fill(o.snapshot_payments, o.tail_records);
  e->stop();
  e.reset();
  std::uint64_t nonces_recovered = 0;
  if (o.signed_payments) {
    config.on_recovered_nonce = [&nonces_recovered](const Command&) { ++nonces_recovered; };
  }
  const auto recover_start = Clock::now();
  auto recovered = open_or_die(config);
  const double seconds = std::chrono::duration<double>(Clock::now() - recover_start).count();
  std::printf("recovery: snapshot of %" PRIu64 " payments + %" PRIu64 " log records in %.2f s (%.0f records/s replay incl. snapshot load)\n",
              o.snapshot_payments, o.tail_records, seconds,
              static_cast<double>(o.tail_records) / seconds);
  std::printf("  recovered payments: %u\n", recovered->state_for_tests().payments.size());
  if (o.signed_payments) {
    std::printf("  nonces handed back: %" PRIu64 "; records read before the snapshot for them: %" PRIu64 "\n",
                nonces_recovered, recovered->metrics().recovery_nonce_scan_records.load());
  }
}

}  // namespace
}  // namespace paycore

int main(int argc, char** argv) {
  paycore::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--producers") o.producers = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--accounts") o.accounts = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--window") o.window = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--batch-max") o.batch_max = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--snapshot-payments") o.snapshot_payments = std::stoull(next());
    else if (a == "--tail-records") o.tail_records = std::stoull(next());
    else if (a == "--dir") o.dir = next();
    else if (a == "--fallback") o.fallback = true;
    else if (a == "--syncs-in-flight") o.syncs_in_flight = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--segment-bytes") o.segment_bytes = std::stoull(next());
    else if (a == "--no-spare-segments") o.spare_segments = false;
    else if (a == "--signed") o.signed_payments = true;
    else {
      std::fprintf(stderr, "engine_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (o.snapshot_payments > 0) paycore::snapshot_and_recovery(o);
  else paycore::throughput(o);
  std::system(("rm -rf '" + o.dir + "'").c_str());
  return 0;
}
