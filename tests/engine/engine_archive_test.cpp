// The engine with the archive (docs/design.md "Hot and cold"): payments go cold, are written to
// the RocksDB archive by the archiver thread once durable, leave memory through the logged
// archive_payments command, and a restart rebuilds the same hot state without reading the
// archive. Every payment is in memory or in the archive, and the money adds up.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "archive/archiver.hpp"
#include "archive/store.hpp"
#include "engine_harness.hpp"

namespace paycore::testing {
namespace {

// Windows small enough that a payment is cold a few milliseconds after it was made.
EngineConfig tiered_config(const std::string& dir) {
  EngineConfig config = test_config(dir);
  config.tick_interval_us = 5'000;
  config.hot_window_us = 1;
  config.idempotency_retention_us = 2'000;
  config.archive_job_payments_max = 500;
  return config;
}

// An engine with its archive, started; stopped (engine first) by stop().
struct TieredEngine {
  std::unique_ptr<ArchiveStore> store;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Archiver> archiver;

  bool open(const EngineConfig& config) {
    ArchiveOptions options;
    options.dir = config.data_dir + "/archive";
    options.block_cache_bytes = 8 << 20;
    StatusOr<std::unique_ptr<ArchiveStore>> opened = ArchiveStore::open(options);
    EXPECT_TRUE(opened.is_ok()) << opened.status().to_string();
    if (!opened.is_ok()) return false;
    store = std::move(*opened);
    engine = open_engine(config);
    if (!engine) return false;
    archiver = std::make_unique<Archiver>(store.get(), &engine->metrics().durable_lsn);
    engine->attach_archive(archiver.get());
    engine->start();
    return true;
  }
  void stop() {
    if (engine) engine->stop();
    if (archiver) archiver->stop();
  }
};

Command payment(int i) {
  const std::string n = std::to_string(i);
  return pay("m1", "r" + n, "o" + n, 1, "alice");
}

void set_up_accounts(Engine& e) {
  ASSERT_EQ(run(e, open_account("setup-1", "alice")).code, ResultCode::ok);
  ASSERT_EQ(run(e, deposit("setup-2", "alice", 1'000'000'000)).code, ResultCode::ok);
  ASSERT_EQ(run(e, create_mandate("setup-3", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
}

bool wait_for_archived(const Engine& e, std::uint64_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (e.metrics().payments_archived.load() < count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Every payment 0..count-1 is in memory or in the archive, and the merchant holds one unit each.
void expect_every_payment_somewhere(const State& s, const ArchiveStore& store, int count) {
  const std::uint32_t merchant = s.find_account("m1");
  ASSERT_NE(merchant, row_none);
  int cold = 0;
  for (int i = 0; i < count; ++i) {
    const std::string order = "o" + std::to_string(i);
    if (s.find_payment(merchant, order) != row_none) continue;
    const StatusOr<std::optional<ArchivedPayment>> archived = store.get_payment("m1", order);
    ASSERT_TRUE(archived.is_ok()) << archived.status().to_string();
    ASSERT_TRUE(archived->has_value()) << order << " is neither in memory nor in the archive";
    EXPECT_EQ((*archived)->payment.amount, 1);
    ++cold;
  }
  EXPECT_EQ(static_cast<std::uint32_t>(cold), s.payments.begin());
  EXPECT_EQ(s.accounts[merchant].balance, count);
  EXPECT_GE(store.position().rows_end, s.archived_rows_end);
}

TEST(EngineArchive, ColdPaymentsLeaveMemoryAndStayInTheArchive) {
  const std::string dir = make_temp_dir();
  const EngineConfig config = tiered_config(dir);
  constexpr int count = 3'000;
  {
    TieredEngine t;
    ASSERT_TRUE(t.open(config));
    set_up_accounts(*t.engine);
    for (int i = 0; i < count; ++i) ASSERT_EQ(run(*t.engine, payment(i)).code, ResultCode::ok);
    ASSERT_TRUE(wait_for_archived(*t.engine, count - 500)) << t.engine->metrics().payments_archived;
    t.stop();
    const State& s = t.engine->state_for_tests();
    EXPECT_GT(s.payments.begin(), 0u);
    expect_every_payment_somewhere(s, *t.store, count);
  }
  // A restart rebuilds the same hot state from the snapshot and the log alone.
  TieredEngine again;
  ASSERT_TRUE(again.open(config));
  again.stop();
  expect_every_payment_somewhere(again.engine->state_for_tests(), *again.store, count);
  remove_tree(dir);
}

// A tick does at most tick_expire_max drops; with more due, the next tick comes within a
// millisecond instead of a whole interval. Here ticks are 200 ms apart and each drops 8: at
// that pace 2,000 payments would take 50 s to leave memory, beyond the 30 s wait; with the
// catch-up they leave within a second or two (the wait is a bound, not the figure).
// Makes `count` payments on an engine configured by `adjust`, then waits (30 s at most) until
// all of them have left memory.
template <class Adjust>
void expect_all_archived(int count, Adjust adjust) {
  const std::string dir = make_temp_dir();
  EngineConfig config = tiered_config(dir);
  adjust(config);
  TieredEngine t;
  ASSERT_TRUE(t.open(config));
  set_up_accounts(*t.engine);
  for (int i = 0; i < count; ++i) ASSERT_EQ(run(*t.engine, payment(i)).code, ResultCode::ok);
  EXPECT_TRUE(wait_for_archived(*t.engine, static_cast<std::uint64_t>(count)))
      << t.engine->metrics().payments_archived;
  t.stop();
  remove_tree(dir);
}

TEST(EngineArchive, TicksCatchUpWhenTheyLeaveDueWorkBehind) {
  expect_all_archived(2'000, [](EngineConfig& config) {
    config.tick_interval_us = 200'000;
    config.tick_expire_max = 8;
  });
}

// An idle core takes each finished archive job when it finishes (the archiver's ready_fd in
// the core's epoll), not at its next tick. Ticks here are 10 s apart and jobs 10 payments: one
// job per tick would need 100 ticks (over 16 minutes) for these 1,000 payments; the first tick
// drops their idempotency records and the jobs then follow one another within seconds. (The
// 300M run's archive took 2,048 payments per 100 ms tick once its load had stopped: 20k/s.)
TEST(EngineArchive, AnIdleCoreTakesEachFinishedJobAtOnce) {
  // The wait (30 s) is a bound, not the figure: it covers the first tick and 100 jobs.
  expect_all_archived(1'000, [](EngineConfig& config) {
    config.tick_interval_us = 10'000'000;
    config.archive_job_payments_max = 10;
  });
}

TEST(EngineArchive, ArchivedOrderIdStaysTaken) {
  const std::string dir = make_temp_dir();
  TieredEngine t;
  ASSERT_TRUE(t.open(tiered_config(dir)));
  set_up_accounts(*t.engine);
  for (int i = 0; i < 1'000; ++i) ASSERT_EQ(run(*t.engine, payment(i)).code, ResultCode::ok);
  ASSERT_TRUE(wait_for_archived(*t.engine, 1));
  // o0 left memory: the core cannot decide alone, and says so (the edge asks the archive).
  const Result r = run(*t.engine, pay("m1", "r-again", "o0", 1, "alice"));
  EXPECT_EQ(r.code, ResultCode::archive_check_needed);
  EXPECT_EQ(r.payment.order_id.view(), "o0");
  EXPECT_EQ(r.payment.request_id.view(), "r-again");
  t.stop();
  remove_tree(dir);
}

}  // namespace
}  // namespace paycore::testing
