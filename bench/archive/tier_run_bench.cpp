// A long run of the hot and cold tiers in one process (issue 12, docs/benchmarks.md "Hot and
// cold"): the real Engine with its log, snapshots, the Archiver and the RocksDB ArchiveStore,
// wired as `paycore serve` wires them, fed balance payments by one producer that keeps a
// window of them in flight (no HTTP: the figure is the engine's and the archive's). Every
// --report-s seconds it prints the payments done, the rate over the interval, the process's
// resident set, the payments in memory and those archived, so that RSS and payments/s can be
// plotted over the run. At the end it reopens the engine on the same directory and prints the
// recovery time (snapshot + log; the archive is opened, never read).
//
//   tier_run_bench --payments 30000000 [--rate 50000] [--hot-window-s 10] [--no-archive] [--dir DIR]
//
// With --no-archive the same run keeps everything in memory (the in-memory figure to compare
// with); it stops early if memory would run out (--payments-max).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "archive/archiver.hpp"
#include "archive/store.hpp"
#include "core/engine.hpp"

namespace paycore {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::uint64_t payments = 10'000'000;
  std::uint32_t payers = 10'000;
  std::uint32_t window = 4096;
  double rate = 0;  // payments/s offered at most (0: as fast as the engine answers)
  std::uint32_t job_payments = 2048;
  double hot_window_s = 10;
  double report_s = 10;
  bool no_archive = false;
  bool recover_only = false;  // only the recovery of an existing --dir (for profiling it)
  // After the run (or, with --settle-only, on an existing --dir): run on without new payments
  // until the archive has taken every cold payment (the count archived still for 3 hot
  // windows) or this many seconds passed, so that recovery is timed on the steady hot set.
  double settle_s = 0;
  bool settle_only = false;
  std::uint32_t payments_max = 100'000'000;
  std::string dir = "/tmp/paycore-tier-run";
};

std::uint64_t rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  std::uint64_t kib = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> kib;
      return kib / 1024;
    }
  }
  return 0;
}

void set_id(Id& id, std::string_view prefix, std::uint64_t n) {
  id = Id::of(std::string(prefix) + std::to_string(n));
}

// Submits and waits; set-up only.
void call(Engine& e, const Command& c) {
  while (!e.submit(0, Request{c, 0})) std::this_thread::yield();
  Response r;
  while (e.take(0, std::span(&r, 1)) == 0) std::this_thread::yield();
  if (r.result.code != ResultCode::ok) {
    std::fprintf(stderr, "tier_run_bench: set-up failed: %s\n", std::string(to_string(r.result.code)).c_str());
    std::exit(1);
  }
}

Command operator_command(CommandKind kind, std::string_view request, std::uint64_t n) {
  Command c;
  c.kind = kind;
  c.flags = command_flag_operator;
  c.principal = Id::of("operator");
  set_id(c.request_id, request, n);
  c.currency = *currency_from_code("CNY");
  return c;
}

// The merchant "m_1", `payers` customers with a deposit each and a mandate for m_1.
void set_up(Engine& e, std::uint32_t payers) {
  for (std::uint32_t i = 0; i < payers; ++i) {
    Command open = operator_command(CommandKind::open_account, "open-", i);
    set_id(open.account, "c", i);
    open.account_kind = AccountKind::customer;
    call(e, open);
    Command deposit = operator_command(CommandKind::deposit, "dep-", i);
    set_id(deposit.account, "c", i);
    deposit.amount = 1'000'000'000'000;
    call(e, deposit);
    Command mandate = operator_command(CommandKind::create_mandate, "mandate-", i);
    set_id(mandate.account, "c", i);
    set_id(mandate.mandate_id, "mandate-", i);
    mandate.merchant_id = Id::of("m_1");
    mandate.amount = amount_max_default;
    call(e, mandate);
  }
}

// The payer of payment n: spread over the payers, the same when the payment is handed in again.
std::uint64_t payer_of(std::uint64_t n, std::uint32_t payers) { return (n * 2654435761ULL) % payers; }

Command payment(std::uint64_t n, std::uint64_t payer) {
  Command c;
  c.kind = CommandKind::create_payment;
  c.currency = *currency_from_code("CNY");
  c.channel = Id::of("balance");
  c.amount = 1;
  c.principal = Id::of("m_1");
  set_id(c.request_id, "q", n);
  set_id(c.order_id, "o", n);
  set_id(c.account, "c", payer);
  return c;
}

EngineConfig config_for(const Options& o) {
  EngineConfig config;
  config.data_dir = o.dir;
  config.state.accounts_expected = o.payers + 64;
  config.state.payments_expected = 1 << 22;
  config.state.idempotency_expected = 1 << 22;
  config.limits.payments_max = o.payments_max;
  config.limits.idempotency_max = 2 * o.payments_max;
  config.payments_hot_high_water = o.payments_max / 4 * 3;
  config.archive_job_payments_max = o.job_payments;
  if (!o.no_archive) {
    const auto window_us = static_cast<std::int64_t>(o.hot_window_s * 1e6);
    config.hot_window_us = window_us;
    config.idempotency_retention_us = window_us;
  }
  return config;
}

struct Tier {
  std::unique_ptr<ArchiveStore> store;
  std::unique_ptr<Archiver> archiver;
};

std::unique_ptr<Engine> open_engine(const Options& o, Tier* tier, bool must_exist) {
  StatusOr<std::unique_ptr<Engine>> e = Engine::open(config_for(o));
  if (!e.is_ok()) {
    std::fprintf(stderr, "tier_run_bench: %s\n", e.status().to_string().c_str());
    std::exit(1);
  }
  if (o.no_archive) return std::move(*e);
  ArchiveOptions options;
  options.dir = o.dir + "/archive";
  options.must_exist = must_exist;
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  if (!store.is_ok()) {
    std::fprintf(stderr, "tier_run_bench: %s\n", store.status().to_string().c_str());
    std::exit(1);
  }
  tier->store = std::move(*store);
  tier->archiver = std::make_unique<Archiver>(tier->store.get(), &(*e)->metrics().durable_lsn);
  (*e)->attach_archive(tier->archiver.get());
  return std::move(*e);
}

// Keeps `window` payments in flight until `payments` are answered, printing a line per
// report interval. Returns the payments answered ok.
std::uint64_t run(Engine& e, const Options& o) {
  std::vector<Response> responses(4096);
  std::uint64_t sent = 0, done = 0, refused = 0, done_at_report = 0, rechecked = 0;
  const auto start = Clock::now();
  auto next_report = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.report_s));
  auto last_report = start;
  std::printf("%8s %12s %10s %8s %12s %12s\n", "t_s", "payments", "per_s", "rss_mib", "in_memory",
              "archived");
  ResultCode first_refusal = ResultCode::ok;
  while (done + refused < o.payments) {
    // Paced: no more sent than the rate allows by now.
    const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    const std::uint64_t allowed =
        o.rate > 0 ? std::min<std::uint64_t>(o.payments, static_cast<std::uint64_t>(elapsed_s * o.rate))
                   : o.payments;
    while (sent - done - refused < o.window && sent < allowed &&
           e.submit(0, Request{payment(sent, payer_of(sent, o.payers)), sent})) {
      ++sent;
    }
    const std::size_t got = e.take(0, responses);
    for (std::size_t i = 0; i < got; ++i) {
      const ResultCode code = responses[i].result.code;
      if (code == ResultCode::archive_check_needed) {
        // The filter of archived orders says "maybe" (a false positive: every order here is
        // new); the edge would read the archive and hand it in again, as done here.
        Command again = payment(responses[i].token, payer_of(responses[i].token, o.payers));
        again.flags = command_flag_archive_checked;
        while (!e.submit(0, Request{again, responses[i].token})) std::this_thread::yield();
        ++rechecked;
      } else if (code == ResultCode::ok) {
        ++done;
      } else {
        if (refused++ == 0) first_refusal = code;
      }
    }
    // Nothing answered: sleep rather than spin. A spinning producer took a whole core from
    // the archive's writer and RocksDB's compactions, which then fell behind at ~45M archived
    // payments (write stalls on level-0 files) while a server's I/O threads sleep in epoll.
    if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto now = Clock::now();
    if (now >= next_report) {
      const double interval_s = std::chrono::duration<double>(now - last_report).count();
      std::printf("%8.0f %12llu %10.0f %8llu %12llu %12llu\n",
                  std::chrono::duration<double>(now - start).count(),
                  static_cast<unsigned long long>(done),
                  static_cast<double>(done - done_at_report) / interval_s,
                  static_cast<unsigned long long>(rss_mib()),
                  static_cast<unsigned long long>(e.metrics().payments.load()),
                  static_cast<unsigned long long>(e.metrics().payments_archived.load()));
      std::fflush(stdout);
      done_at_report = done;
      last_report = now;
      next_report += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.report_s));
    }
    if (refused > 0 && o.no_archive) break;  // memory is full: the in-memory run ends here
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("total: %llu payments in %.1f s = %.0f payments/s, %llu refused (first: %s), %llu "
              "handed in again after the archive filter's false positive\n",
              static_cast<unsigned long long>(done), total_s, static_cast<double>(done) / total_s,
              static_cast<unsigned long long>(refused), std::string(to_string(first_refusal)).c_str(),
              static_cast<unsigned long long>(rechecked));
  return done;
}

// Runs on without new payments until the archive stands still (Options::settle_s).
void settle(Engine& e, const Options& o) {
  const auto start = Clock::now();
  const double still_needed_s = 3 * o.hot_window_s;
  std::uint64_t archived = e.metrics().payments_archived.load();
  auto moved_at = start;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto now = Clock::now();
    const std::uint64_t archived_now = e.metrics().payments_archived.load();
    if (archived_now != archived) {
      archived = archived_now;
      moved_at = now;
    }
    const double settled_s = std::chrono::duration<double>(now - start).count();
    const bool still = std::chrono::duration<double>(now - moved_at).count() >= still_needed_s;
    if (still || settled_s >= o.settle_s) {
      std::printf("settled after %.1f s (%s): %llu in memory, %llu archived since start\n", settled_s,
                  still ? "the archive stood still" : "time up",
                  static_cast<unsigned long long>(e.metrics().payments.load()),
                  static_cast<unsigned long long>(archived));
      return;
    }
  }
}

}  // namespace
}  // namespace paycore

int main(int argc, char** argv) {
  using namespace paycore;
  Options o;
  CLI::App app{"tier_run_bench: hot and cold tiers in one process over a long run"};
  app.add_option("--payments", o.payments, "payments to make")->capture_default_str();
  app.add_option("--payers", o.payers, "customer accounts paying")->capture_default_str();
  app.add_option("--window", o.window, "payments in flight")->capture_default_str();
  app.add_option("--job-payments", o.job_payments, "payments per archive job at most")->capture_default_str();
  app.add_option("--rate", o.rate, "payments/s offered at most (0: unpaced)")->capture_default_str();
  app.add_option("--hot-window-s", o.hot_window_s, "hot window and idempotency retention, seconds")
      ->capture_default_str();
  app.add_option("--report-s", o.report_s, "seconds between report lines")->capture_default_str();
  app.add_option("--payments-max", o.payments_max, "payments in memory at most")->capture_default_str();
  app.add_flag("--no-archive", o.no_archive, "keep everything in memory (the comparison run)");
  app.add_option("--dir", o.dir, "data directory (emptied first)")->capture_default_str();
  app.add_flag("--recover-only", o.recover_only, "only time the recovery of the run left in --dir");
  app.add_option("--settle-s", o.settle_s,
                 "after the run, seconds at most to let the archive take every cold payment")
      ->capture_default_str();
  app.add_flag("--settle-only", o.settle_only,
               "only settle the run left in --dir (--settle-s, default 600), then time its recovery");
  CLI11_PARSE(app, argc, argv);
  if (o.settle_only && o.settle_s <= 0) o.settle_s = 600;
  const bool fresh = !o.recover_only && !o.settle_only;
  if (fresh) std::filesystem::remove_all(o.dir);
  std::printf("tier_run_bench: %llu payments, %s, hot window %.0f s, %s\n",
              static_cast<unsigned long long>(o.payments), o.no_archive ? "no archive" : "archiving",
              o.hot_window_s, o.dir.c_str());
  if (!o.recover_only) {
    Tier tier;
    auto engine = open_engine(o, &tier, !fresh);
    engine->start();
    if (fresh) {
      set_up(*engine, o.payers);
      run(*engine, o);
    }
    if (o.settle_s > 0) settle(*engine, o);
    engine->stop();
    if (tier.archiver) tier.archiver->stop();
  }
  const auto start = std::chrono::steady_clock::now();
  Tier tier;
  auto engine = open_engine(o, &tier, !o.no_archive);
  const double recovery_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const State& state = engine->state_for_tests();
  std::printf("recovery: %.2f s (%u payments in memory, the archive holds rows below %u), rss %llu MiB\n",
              recovery_s, state.payments.live_count(), engine->archived_rows_end(),
              static_cast<unsigned long long>(rss_mib()));
  return 0;
}
