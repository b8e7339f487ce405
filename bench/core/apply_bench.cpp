// Apply throughput of the state machine on one thread, with a large state already present
// (1M accounts, 10M payments by default), and the memory each payment and account costs.
//
//   build/release/bench/core/core_bench                      (defaults)
//   PAYCORE_BENCH_ACCOUNTS=100000 PAYCORE_BENCH_PAYMENTS=1000000 build/release/bench/core/core_bench
//
// Counters: items_per_second is commands applied per second; bytes_per_payment and
// bytes_per_account come from the resident-set growth while the state was built.

#include <benchmark/benchmark.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "core/apply.hpp"

namespace paycore {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::size_t resident_bytes() {
  long pages = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<std::size_t>(resident) * 4096;
}

// Writes prefix + decimal n into an id without allocating (as an edge decoder would copy bytes).
void set_id(Id& id, std::string_view prefix, std::uint64_t n) {
  id = Id{};
  std::memcpy(id.bytes.data(), prefix.data(), prefix.size());
  char* end = std::to_chars(id.bytes.data() + prefix.size(), id.bytes.data() + id_bytes_max, n).ptr;
  id.size = static_cast<std::uint8_t>(end - id.bytes.data());
}

constexpr std::uint64_t merchants_count = 16;

struct World {
  State state;
  std::int64_t now_us = 1'700'000'000'000'000;
  std::uint64_t accounts = 0;
  std::uint64_t payments = 0;
  std::uint64_t next_order = 0;
  std::uint64_t next_request = 0;
  double bytes_per_account = 0;  // with its deposit and its one mandate
  double bytes_per_payment = 0;
  std::vector<std::uint8_t> order_merchant;  // set-up orders: the merchant index of each
  std::vector<std::uint32_t> zipf;  // precomputed Zipf(1.0) payer draws

  Result run(Command& c) {
    c.timestamp_us = ++now_us;
    return apply(state, c);
  }

  // A balance payment from `payer` to the merchant that holds its mandate (payer % 16: each
  // customer has one mandate, docs/api.md "Mandates").
  Command payment(std::uint64_t payer, Amount amount) {
    Command c;
    c.kind = CommandKind::create_payment;
    c.currency = *currency_from_code("CNY");
    c.channel = Id::of("balance");
    c.amount = amount;
    set_id(c.principal, "m_", payer % merchants_count);
    set_id(c.request_id, "req-", next_request++);
    set_id(c.order_id, "order-", next_order++);
    set_id(c.account, "cust-", payer);
    return c;
  }
};

World& world() {
  static World* w = [] {
    auto* world = new World;
    world->accounts = env_or("PAYCORE_BENCH_ACCOUNTS", 1'000'000);
    world->payments = env_or("PAYCORE_BENCH_PAYMENTS", 10'000'000);
    const std::size_t rss_start = resident_bytes();
    Command c;
    for (std::uint64_t i = 0; i < world->accounts; ++i) {
      c = Command{};
      c.kind = CommandKind::open_account;
      c.flags = command_flag_operator;
      c.principal = Id::of("operator");
      set_id(c.request_id, "open-", i);
      set_id(c.account, "cust-", i);
      c.currency = *currency_from_code("CNY");
      c.account_kind = AccountKind::customer;
      PAYCORE_ASSERT(world->run(c).code == ResultCode::ok);
      c.kind = CommandKind::deposit;
      set_id(c.request_id, "dep-", i);
      c.amount = 1'000'000'000'000;
      PAYCORE_ASSERT(world->run(c).code == ResultCode::ok);
      c = Command{};
      c.kind = CommandKind::create_mandate;
      c.flags = command_flag_operator;
      c.principal = Id::of("operator");
      set_id(c.account, "cust-", i);
      set_id(c.request_id, "mandate-", i);
      set_id(c.mandate_id, "mandate-", i);
      set_id(c.merchant_id, "m_", i % merchants_count);
      c.amount = amount_max_default;
      const Result granted = world->run(c);
      PAYCORE_ASSERT(granted.code == ResultCode::ok);
    }
    const std::size_t rss_accounts = resident_bytes();
    world->bytes_per_account = static_cast<double>(rss_accounts - rss_start) / static_cast<double>(world->accounts);
    std::mt19937_64 rng(1);
    world->order_merchant.reserve(world->payments);
    for (std::uint64_t i = 0; i < world->payments; ++i) {
      const std::uint64_t payer = rng() % world->accounts;
      c = world->payment(payer, 100);
      PAYCORE_ASSERT(world->run(c).code == ResultCode::ok);
      world->order_merchant.push_back(static_cast<std::uint8_t>(payer % merchants_count));
    }
    world->bytes_per_payment = static_cast<double>(resident_bytes() - rss_accounts) / static_cast<double>(world->payments);
    // Zipf(s = 1) over the accounts by inverse transform on the harmonic CDF (approximation
    // ln(k) + gamma), precomputed so that drawing costs nothing in the measured loop.
    world->zipf.resize(1 << 20);
    const double h = std::log(static_cast<double>(world->accounts)) + 0.5772156649;
    std::uniform_real_distribution<double> u(0, 1);
    for (auto& draw : world->zipf) {
      const double k = std::exp(u(rng) * h - 0.5772156649);
      draw = static_cast<std::uint32_t>(std::min<double>(std::max(k, 1.0), static_cast<double>(world->accounts)) - 1);
    }
    return world;
  }();
  return *w;
}

void report_memory(benchmark::State& st, World& w) {
  st.counters["accounts"] = static_cast<double>(w.state.accounts.size());
  st.counters["payments"] = static_cast<double>(w.state.payments.size());
  st.counters["bytes_per_payment"] = w.bytes_per_payment;
  st.counters["bytes_per_account"] = w.bytes_per_account;
}

void BM_BalancePaymentUniform(benchmark::State& st) {
  World& w = world();
  std::mt19937_64 rng(2);
  for (auto _ : st) {
    Command c = w.payment(rng() % w.accounts, 100);
    benchmark::DoNotOptimize(w.run(c));
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
  report_memory(st, w);
}
BENCHMARK(BM_BalancePaymentUniform)->MinTime(2.0);

// As the engine applies a batch: index slots, then rows, are prefetched ahead of command k.
void BM_BalancePaymentUniformBatched(benchmark::State& st) {
  World& w = world();
  std::mt19937_64 rng(3);
  constexpr std::size_t batch = 256;
  std::vector<Command> commands(batch);
  for (auto _ : st) {
    st.PauseTiming();
    for (auto& c : commands) c = w.payment(rng() % w.accounts, 100);
    st.ResumeTiming();
    for (std::size_t k = 0; k < batch; ++k) {
      if (k + prefetch_slots_distance < batch) prefetch(w.state, commands[k + prefetch_slots_distance]);
      if (k + prefetch_rows_distance < batch) prefetch_rows(w.state, commands[k + prefetch_rows_distance]);
      benchmark::DoNotOptimize(w.run(commands[k]));
    }
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * batch));
}
BENCHMARK(BM_BalancePaymentUniformBatched)->MinTime(2.0);

void BM_BalancePaymentZipf(benchmark::State& st) {
  World& w = world();
  std::size_t i = 0;
  for (auto _ : st) {
    Command c = w.payment(w.zipf[i++ & (w.zipf.size() - 1)], 100);
    benchmark::DoNotOptimize(w.run(c));
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_BalancePaymentZipf)->MinTime(2.0);

// The same request again: idempotency lookup, fingerprint, current representation.
void BM_IdempotentReplay(benchmark::State& st) {
  World& w = world();
  std::vector<Command> done;
  for (int i = 0; i < 4096; ++i) {
    Command c = w.payment(static_cast<std::uint64_t>(i) % w.accounts, 100);
    PAYCORE_ASSERT(w.run(c).code == ResultCode::ok);
    done.push_back(c);
  }
  std::size_t i = 0;
  for (auto _ : st) {
    Command& c = done[i++ & 4095];
    const Result r = w.run(c);
    benchmark::DoNotOptimize(r);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_IdempotentReplay)->MinTime(2.0);

// Partial refunds of existing payments (each 1 of the 100 minor units).
void BM_Refund(benchmark::State& st) {
  World& w = world();
  std::uint64_t n = 0;
  for (auto _ : st) {
    Command c;
    c.kind = CommandKind::refund_payment;
    const std::uint64_t order = n % w.payments;
    set_id(c.principal, "m_", w.order_merchant[order]);
    set_id(c.order_id, "order-", order);
    set_id(c.request_id, "refund-", n++);
    c.amount = 1;
    benchmark::DoNotOptimize(w.run(c));
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}
BENCHMARK(BM_Refund)->MinTime(2.0);

}  // namespace
}  // namespace paycore

BENCHMARK_MAIN();
