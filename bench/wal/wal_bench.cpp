// wal benchmarks: group commit throughput per batch size and write path, and replay speed.
// Run from a Release build; the log lives in a fresh directory under /tmp, removed afterwards.
//
//   BM_GroupCommit/<records per batch>/<0 io_uring | 1 fallback thread>
//   BM_Replay/<records>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "wal/format.hpp"
#include "wal/log.hpp"

namespace {

using paycore::wal::Log;
using paycore::wal::Options;
using paycore::wal::RecoveryReport;
using paycore::Status;
using paycore::StatusCode;

constexpr std::size_t kPayloadBytes = 100;

struct TempLogDir {
  TempLogDir() {
    char tmpl[] = "/tmp/paycore-wal-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    path = tmpl;
  }
  ~TempLogDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

std::unique_ptr<Log> open_or_die(const Options& o) {
  std::unique_ptr<Log> log;
  RecoveryReport report;
  const Status s = Log::open(o, &log, &report);
  if (!s.is_ok()) {
    std::fprintf(stderr, "wal_bench: open failed: %s\n", s.to_string().c_str());
    std::abort();
  }
  return log;
}

void append_or_die(Log& log, std::span<const std::byte> payload) {
  std::uint64_t lsn = 0;
  Status s = log.append(1, payload, &lsn);
  if (s.code() == StatusCode::kFull) {
    if (!log.submit().is_ok()) std::abort();
    s = log.append(1, payload, &lsn);
  }
  if (!s.is_ok()) {
    std::fprintf(stderr, "wal_bench: append failed: %s\n", s.to_string().c_str());
    std::abort();
  }
}

// One iteration = one batch: append N records of 100 bytes, submit (which waits for the previous
// batch: the next batch fills while one is in flight, as in the engine).
void BM_GroupCommit(benchmark::State& state) {
  const auto batch_records = static_cast<std::size_t>(state.range(0));
  TempLogDir dir;
  Options o;
  o.dir = dir.path + "/wal";
  o.force_fallback = state.range(1) != 0;
  auto log = open_or_die(o);
  std::vector<std::byte> payload(kPayloadBytes, std::byte{0x42});
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch_records; ++i) append_or_die(*log, payload);
    if (!log->submit().is_ok()) std::abort();
    log->poll();
  }
  log->wait();
  const auto stats = log->stats();
  state.SetLabel(log->using_io_uring() ? "io_uring" : "fallback");
  state.SetItemsProcessed(static_cast<std::int64_t>(stats.appends_count));
  state.SetBytesProcessed(static_cast<std::int64_t>(stats.write_bytes));
  state.counters["fsyncs/s"] =
      benchmark::Counter(static_cast<double>(stats.batches_count), benchmark::Counter::kIsRate);
  state.counters["segments"] = static_cast<double>(stats.segments_created_count);
}
BENCHMARK(BM_GroupCommit)
    ->ArgsProduct({{1, 16, 256, 4096}, {0, 1}})
    ->ArgNames({"batch", "fallback"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Replays a log of N records of 100 bytes (written once, outside the timing).
void BM_Replay(benchmark::State& state) {
  const auto records = static_cast<std::uint64_t>(state.range(0));
  TempLogDir dir;
  Options o;
  o.dir = dir.path + "/wal";
  {
    auto log = open_or_die(o);
    std::vector<std::byte> payload(kPayloadBytes, std::byte{0x17});
    for (std::uint64_t i = 0; i < records; ++i) append_or_die(*log, payload);
    if (!log->submit().is_ok()) std::abort();
    log->wait();
  }
  auto log = open_or_die(o);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    std::uint64_t seen = 0;
    const Status s = log->replay(1, [&](std::uint64_t lsn, std::uint16_t type,
                                        std::span<const std::byte> p) {
      sum += lsn + type + p.size();
      ++seen;
    });
    if (!s.is_ok() || seen != records) std::abort();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * records *
                                                    paycore::wal::format::record_bytes(kPayloadBytes)));
}
BENCHMARK(BM_Replay)->Arg(1'000'000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
