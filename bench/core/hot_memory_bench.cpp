// Memory per hot payment in the steady state of the cold tier (issue 12: "memory per hot
// payment, measured one documented way"; the goal is <= 256 B). The state machine alone, on one
// thread: balance payments at a simulated 50,000/s, the tick dropping idempotency records past
// the retention and archive_payments taking the payments past the hot window out of memory
// (what the engine logs once the archive holds them; no archive is written here). After the
// window has turned over `warm_windows` times, it reports what the State holds — tables,
// indexes, string arenas and the filter of archived orders (State::memory_bytes) — and the
// process's resident set, each divided by the payments in memory.
//
//   build/release/bench/core/hot_memory_bench                       (1M hot payments, 10 windows)
//   PAYCORE_BENCH_HOT=10000000 PAYCORE_BENCH_WINDOWS=4 build/release/bench/core/hot_memory_bench

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

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

void set_id(Id& id, std::string_view prefix, std::uint64_t n) {
  id = Id{};
  std::memcpy(id.bytes.data(), prefix.data(), prefix.size());
  char* end = std::to_chars(id.bytes.data() + prefix.size(), id.bytes.data() + id_bytes_max, n).ptr;
  id.size = static_cast<std::uint8_t>(end - id.bytes.data());
}

constexpr std::int64_t step_us = 20;  // 50,000 payments a second
constexpr std::uint64_t payers = 1000;
constexpr std::uint64_t merchants = 16;

struct Run {
  State state;
  std::int64_t now_us = 1'700'000'000'000'000;
  Result apply_at_next(Command c) {
    now_us += step_us;
    c.timestamp_us = now_us;
    return apply(state, c);
  }
};

void open_accounts(Run& run) {
  for (std::uint64_t i = 0; i < payers; ++i) {
    Command c;
    c.kind = CommandKind::open_account;
    c.flags = command_flag_operator;
    c.principal = Id::of("operator");
    set_id(c.request_id, "open-", i);
    set_id(c.account, "cust-", i);
    c.currency = *currency_from_code("CNY");
    c.account_kind = AccountKind::customer;
    run.apply_at_next(c);
    c.kind = CommandKind::deposit;
    set_id(c.request_id, "dep-", i);
    c.amount = 1'000'000'000'000;
    run.apply_at_next(c);
    c = Command{};
    c.kind = CommandKind::create_mandate;
    c.flags = command_flag_operator;
    c.principal = Id::of("operator");
    set_id(c.account, "cust-", i);
    set_id(c.request_id, "mandate-", i);
    set_id(c.mandate_id, "mandate-", i);
    set_id(c.merchant_id, "m_", i % merchants);
    c.amount = amount_max_default;
    run.apply_at_next(c);
  }
}

// Every `every` payments: the tick (retention) and archive_payments up to the window's start.
void age_out(Run& run, std::int64_t window_us) {
  Command tick;
  tick.kind = CommandKind::tick;
  tick.pending_lifetime_us = pending_lifetime_default_us;
  tick.expire_max = 1'000'000;
  tick.idempotency_retention_us = window_us;
  run.apply_at_next(tick);
  State& s = run.state;
  std::uint32_t end = s.payments.begin();
  while (end < s.payments.size() && s.payments[end].created_at_us < run.now_us - window_us) ++end;
  Command archive;
  archive.kind = CommandKind::archive_payments;
  archive.archive_rows_end = end;
  archive.archive_as_of_us = s.last_timestamp_us;
  run.apply_at_next(archive);
}

int main_bench() {
  const std::uint64_t hot = env_or("PAYCORE_BENCH_HOT", 1'000'000);
  const std::uint64_t windows = env_or("PAYCORE_BENCH_WINDOWS", 10);
  const std::int64_t window_us = static_cast<std::int64_t>(hot) * step_us;
  Run run;
  open_accounts(run);
  const std::size_t rss_accounts = resident_bytes();
  const std::size_t state_accounts = run.state.memory_bytes();
  for (std::uint64_t i = 0; i < hot * windows; ++i) {
    Command c;
    c.kind = CommandKind::create_payment;
    set_id(c.principal, "m_", (i % payers) % merchants);
    set_id(c.request_id, "req-", i);
    set_id(c.order_id, "ord-", i);
    set_id(c.account, "cust-", i % payers);
    c.channel = Id::of("balance");
    c.currency = *currency_from_code("CNY");
    c.amount = 100;
    Result r = run.apply_at_next(c);
    if (r.code == ResultCode::archive_check_needed) {  // the filter's "maybe": the edge looks
      c.flags = command_flag_archive_checked;          // (no archive here: never in it)
      r = run.apply_at_next(c);
    }
    if (r.code != ResultCode::ok) {
      std::fprintf(stderr, "payment %llu refused: %s\n", static_cast<unsigned long long>(i),
                   std::string(to_string(r.code)).c_str());
      return 1;
    }
    if (i % 4096 == 4095) age_out(run, window_us);
  }
  const State& s = run.state;
  const double live = static_cast<double>(s.payments.live_count());
  std::printf("hot_memory_bench: %llu payments through, %u in memory, %u archived, %u records\n",
              static_cast<unsigned long long>(hot * windows), s.payments.live_count(),
              s.payments.begin(), s.idempotency.live_count());
  std::printf("  state bytes per hot payment:    %.1f  (State::memory_bytes, accounts' share excluded)\n",
              static_cast<double>(s.memory_bytes() - state_accounts) / live);
  std::printf("  resident bytes per hot payment: %.1f  (RSS growth after the accounts)\n",
              static_cast<double>(resident_bytes() - rss_accounts) / live);
  std::printf("  filter of archived orders:      %.2f bytes per archived payment\n",
              static_cast<double>(s.archived_orders.memory_bytes()) / s.payments.begin());
  return 0;
}

}  // namespace
}  // namespace paycore

int main() { return paycore::main_bench(); }
