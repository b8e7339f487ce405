// Times the whole job from a snapshot file, as `paycore recon` runs it: N payments made
// through the state machine (recon/gen_state.hpp), the snapshot written, then
//   load (read + check + parse the snapshot into a State) -> convert to LocalData -> reconcile.
//
//   recon_snapshot_bench [--payments N] [--dir DIR]
//
// Prints each phase's time and rate and the peak RSS (ru_maxrss). Exits 1 if a count differs
// from the generator's expectation.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "recon/gen_state.hpp"
#include "recon/recon.hpp"
#include "recon/snapshot_loader.hpp"
#include "core/apply.hpp"
#include "core/snapshot.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace recon = paycore::recon;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

bool counts_equal(const recon::ReconReport& report, const std::array<std::uint64_t, recon::finding_class_count>& want,
                  const char* phase) {
  bool ok = report.match.malformed_count == 0;
  for (std::size_t c = 0; c < recon::finding_class_count; ++c) {
    if (report.match.totals.classes[c].count != want[c]) {
      std::fprintf(stderr, "recon_snapshot_bench: %s: %s found %llu, expected %llu\n", phase,
                   std::string(recon::finding_class_name(static_cast<recon::FindingClass>(c))).c_str(),
                   static_cast<unsigned long long>(report.match.totals.classes[c].count),
                   static_cast<unsigned long long>(want[c]));
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  recon::StateGenOptions gen;
  gen.payments_count = 1'000'000;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "paycore_recon_snapshot_bench";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--payments" && i + 1 < argc) {
      gen.payments_count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: recon_snapshot_bench [--payments N] [--dir DIR]\n");
      return 2;
    }
  }
  if (gen.payments_count == 0 || gen.payments_count > 50'000'000) return 2;

  auto start = Clock::now();
  recon::StateGenExpected expected;
  const paycore::Status generated = recon::generate_state_files(gen, dir, &expected);
  if (!generated.is_ok()) {
    std::fprintf(stderr, "recon_snapshot_bench: %s\n", generated.message().c_str());
    return 2;
  }
  const double gen_s = seconds_since(start);
  const auto snapshot = dir / "snapshot.snap";
  std::printf("generated through apply(): %llu commands in %.2f s (%.0f commands/s, snapshot and statement "
              "written); snapshot %.0f MiB, %llu payments, %llu refunds, %llu anomalies\n",
              static_cast<unsigned long long>(expected.commands_count), gen_s,
              static_cast<double>(expected.commands_count) / gen_s,
              static_cast<double>(std::filesystem::file_size(snapshot)) / (1024.0 * 1024.0),
              static_cast<unsigned long long>(expected.payments_count),
              static_cast<unsigned long long>(expected.refunds_count),
              static_cast<unsigned long long>(expected.anomalies_count));
  const double rss_after_gen = peak_rss_mib();

  start = Clock::now();
  paycore::StatusOr<recon::LocalData> local = recon::load_local_data(snapshot.string());
  if (!local.is_ok()) {
    std::fprintf(stderr, "recon_snapshot_bench: %s\n", local.status().message().c_str());
    return 2;
  }
  const double load_s = seconds_since(start);
  std::printf("loaded the snapshot into LocalData in %.2f s (%.2f M payments/s)\n", load_s,
              static_cast<double>(local->payments().size()) / load_s / 1e6);

  recon::ReconOptions options;
  options.statements.push_back({(dir / "statement.csv").string(), recon::StatementFormat::csv, "", {}});
  options.cutoff_us = gen.cutoff_us();
  options.tolerance_seconds = gen.tolerance_seconds;
  start = Clock::now();
  paycore::StatusOr<recon::ReconReport> report = recon::reconcile(options, *local);
  if (!report.is_ok()) {
    std::fprintf(stderr, "recon_snapshot_bench: %s\n", report.status().message().c_str());
    return 2;
  }
  const double recon_s = seconds_since(start);
  const double rows = static_cast<double>(report->match.statement_rows_count);
  std::printf("reconciled %.0f rows in %.2f s (%.2f M rows/s); snapshot -> report %.2f s\n", rows, recon_s,
              rows / recon_s / 1e6, load_s + recon_s);
  std::printf("peak RSS %.0f MiB (after generating: %.0f MiB)\n", peak_rss_mib(), rss_after_gen);
  recon::print_table(*report, std::cout);
  const bool ok = counts_equal(*report, expected.counts, "first recon");
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
