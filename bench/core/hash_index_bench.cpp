// HashIndex alone: insert (growths included), find of present and absent keys, and the
// sliding window of issue 12 (insert the newest key, erase the oldest). The caller's
// comparison is `value == key`, so the figures are the index's probes, not row reads.
//
//   build/release/bench/core/hash_index_bench
//   PAYCORE_BENCH_KEYS=10000000 build/release/bench/core/hash_index_bench
//
// items_per_second counts keys inserted, looked up, or (window) insert+erase pairs.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/hash_index.hpp"

namespace paycore {
namespace {

std::uint64_t keys_count() {
  const char* v = std::getenv("PAYCORE_BENCH_KEYS");
  return v ? std::strtoull(v, nullptr, 10) : 1'000'000;
}

// splitmix64: well-mixed hashes without reading any key bytes.
std::uint64_t mixed_hash(std::uint64_t i) {
  std::uint64_t z = i + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

bool find(const HashIndex& index, std::uint32_t key) {
  std::uint32_t found = 0;
  return index.find(
      mixed_hash(key), [key](std::uint32_t v) { return v == key; }, &found);
}

// Keys [0, keys_count()), built once and shared by the find benchmarks.
const HashIndex& filled_index() {
  static const std::unique_ptr<HashIndex> index = [] {
    auto built = std::make_unique<HashIndex>(16);
    const auto n = static_cast<std::uint32_t>(keys_count());
    for (std::uint32_t key = 0; key < n; ++key) built->insert(mixed_hash(key), key);
    return built;
  }();
  return *index;
}

void BM_HashIndexInsert(benchmark::State& st) {
  const auto n = static_cast<std::uint32_t>(keys_count());
  for (auto _ : st) {
    HashIndex index(16);  // every growth on the way to n keys is part of the figure
    for (std::uint32_t key = 0; key < n; ++key) index.insert(mixed_hash(key), key);
    benchmark::DoNotOptimize(index.size());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * n));
}
BENCHMARK(BM_HashIndexInsert)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_HashIndexFindHit(benchmark::State& st) {
  const HashIndex& index = filled_index();
  const auto n = static_cast<std::uint32_t>(keys_count());
  std::uint32_t key = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(find(index, key));
    key = key + 7919 < n ? key + 7919 : key + 7919 - n;  // a stride that visits every key
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_HashIndexFindHit)->MinTime(2.0);

void BM_HashIndexFindMiss(benchmark::State& st) {
  const HashIndex& index = filled_index();
  auto key = static_cast<std::uint32_t>(keys_count());
  for (auto _ : st) benchmark::DoNotOptimize(find(index, key++));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_HashIndexFindMiss)->MinTime(2.0);

// One step: insert key `oldest + n`, erase key `oldest`. Reports the index's bytes at the end.
void BM_HashIndexSlidingWindow(benchmark::State& st) {
  const auto n = static_cast<std::uint32_t>(keys_count());
  HashIndex index(16);
  for (std::uint32_t key = 0; key < n; ++key) index.insert(mixed_hash(key), key);
  std::uint32_t oldest = 0;
  for (auto _ : st) {
    index.insert(mixed_hash(oldest + n), oldest + n);
    const std::uint32_t erased = oldest++;
    benchmark::DoNotOptimize(
        index.erase(mixed_hash(erased), [erased](std::uint32_t v) { return v == erased; }));
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
  st.counters["index_bytes"] = static_cast<double>(index.memory_bytes());
}
BENCHMARK(BM_HashIndexSlidingWindow)->MinTime(2.0);

}  // namespace
}  // namespace paycore

BENCHMARK_MAIN();
