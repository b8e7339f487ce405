// Times the reconciliation job on generated data: N local payments (with refunds, anomalies
// and every kind of discrepancy) against a statement CSV of about as many rows.
//
//   recon_bench [--payments N] [--dir DIR] [--report]
//
// Phases are timed apart: generating the input (not part of the job), reconciling (reading the
// statement file + hash join + sweep) and, with --report, writing the report files. Peak RSS
// (getrusage ru_maxrss) covers everything, the in-memory local data included, as the real job
// holds it too. Exits 1 if the counts found differ from the generator's.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "recon/gen.hpp"
#include "recon/recon.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

int usage_error() {
  std::fprintf(stderr, "usage: recon_bench [--payments N] [--dir DIR] [--report]\n");
  return 2;
}

struct BenchArgs {
  paycore::recon::GenOptions gen;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "paycore_recon_bench";
  bool report = false;
};

// False on a malformed command line.
bool parse_args(int argc, char** argv, BenchArgs* args) {
  args->gen.payments_count = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--payments" && i + 1 < argc) {
      args->gen.payments_count = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--dir" && i + 1 < argc) {
      args->dir = argv[++i];
    } else if (arg == "--report") {
      args->report = true;
    } else {
      return false;
    }
  }
  return args->gen.payments_count != 0;
}

// The job's three phases, timed apart: index the local records, one pass over the statement,
// sweep the local records. (reconcile() in recon.hpp does the same in one call.)
paycore::Status reconcile_timed(const paycore::recon::LocalData& local,
                                const paycore::recon::GenOptions& gen,
                                const std::filesystem::path& statement,
                                paycore::recon::ReconReport* result) {
  using namespace paycore::recon;
  MatchOptions match_options;
  match_options.cutoff_us = gen.cutoff_us;
  match_options.tolerance_seconds = gen.tolerance_seconds;
  auto start = Clock::now();
  Reconciler reconciler(local, match_options);
  const double index_s = seconds_since(start);
  start = Clock::now();
  result->statements.push_back({statement.string(), {}, {}});
  reconciler.begin_statement(statement.string());
  PAYCORE_RETURN_IF_ERROR(read_statement({statement.string(), StatementFormat::csv, "", {}},
                                         reconciler.sink(), &result->statements.back().stats));
  const double pass_s = seconds_since(start);
  start = Clock::now();
  result->match = reconciler.finish();
  const double sweep_s = seconds_since(start);
  result->tolerance_seconds = gen.tolerance_seconds;
  result->exit_status = result->match.problems_count() == 0 ? exit_matched : exit_findings;
  const double reconcile_s = index_s + pass_s + sweep_s;
  const double rows = static_cast<double>(result->match.statement_rows_count);
  std::printf("reconciled %.0f rows against %zu payments in %.2f s (index %.2f s, statement pass "
              "%.2f s, sweep %.2f s): %.2f M rows/s, %zu findings\n",
              rows, local.payments().size(), reconcile_s, index_s, pass_s, sweep_s,
              rows / reconcile_s / 1e6, result->match.findings.size());
  return paycore::Status::ok();
}

// Every class count as generated, and no malformed row.
bool counts_match(const paycore::recon::ReconReport& result,
                  const paycore::recon::GenExpected& expected) {
  using namespace paycore::recon;
  bool counts_ok = result.match.malformed_count == 0;
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    if (result.match.totals.classes[c].count != expected.counts[c]) {
      std::fprintf(stderr, "recon_bench: %s: found %llu, generated %llu\n",
                   std::string(finding_class_name(static_cast<FindingClass>(c))).c_str(),
                   static_cast<unsigned long long>(result.match.totals.classes[c].count),
                   static_cast<unsigned long long>(expected.counts[c]));
      counts_ok = false;
    }
  }
  return counts_ok;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace paycore::recon;
  BenchArgs args;
  if (!parse_args(argc, argv, &args)) return usage_error();
  const GenOptions& gen = args.gen;
  std::filesystem::create_directories(args.dir);
  const std::filesystem::path statement = args.dir / "statement.csv";

  auto start = Clock::now();
  LocalData local;
  GenExpected expected;
  {
    std::ofstream out(statement, std::ios::binary | std::ios::trunc);
    expected = generate(gen, &local, out);
  }
  const double generate_s = seconds_since(start);
  const double rss_after_generate = peak_rss_mib();
  std::printf("generated %llu payments, %zu refunds, %zu anomalies, %llu statement rows (%.0f MiB) in %.2f s\n",
              static_cast<unsigned long long>(gen.payments_count), local.refunds().size(),
              local.anomalies().size(), static_cast<unsigned long long>(expected.statement_rows_count),
              static_cast<double>(std::filesystem::file_size(statement)) / (1024.0 * 1024.0),
              generate_s);

  ReconReport result;
  if (const paycore::Status read = reconcile_timed(local, gen, statement, &result); !read.is_ok()) {
    std::fprintf(stderr, "recon_bench: %s\n", read.message().c_str());
    return 2;
  }
  if (args.report) {
    start = Clock::now();
    const paycore::Status written = write_report_files(result, args.dir / "out");
    if (!written.is_ok()) {
      std::fprintf(stderr, "recon_bench: %s\n", written.message().c_str());
      return 2;
    }
    std::printf("wrote the report files to %s in %.2f s\n", (args.dir / "out").c_str(), seconds_since(start));
  }
  std::printf("peak RSS %.0f MiB (after generating: %.0f MiB)\n", peak_rss_mib(), rss_after_generate);
  print_table(result, std::cout);
  const bool counts_ok = counts_match(result, expected);
  std::filesystem::remove(statement);
  return counts_ok ? 0 : 1;
}
