// Crash test of the cold tier (docs/design.md "Hot and cold"): a child process runs the engine
// with its RocksDB archive and windows so small that payments are archived and leave memory
// while it takes payments; the parent kills it with SIGKILL at a random moment — while a job
// waits for durability, while RocksDB writes, between the archive's write and the logged
// archive_payments, during a snapshot — then recovers and checks: every acknowledged payment is
// in memory or in the archive, the merchant holds exactly one unit per payment (nothing lost,
// nothing counted twice), the archive is never behind what the log says left memory, and a
// retried acknowledged request never executes twice.
//
//   PAYCORE_CRASH_KILLS=200 PAYCORE_SEED=5 ./engine_archive_crash_tests      (default: 20 kills)

#include <signal.h>
#include <sys/wait.h>

#include <random>

#include "archive/archiver.hpp"
#include "archive/store.hpp"
#include "engine_harness.hpp"
#include "random_commands.hpp"

namespace paycore::testing {
namespace {

std::string order_of(std::uint64_t round, std::uint64_t i) {
  return "o" + std::to_string(round) + "-" + std::to_string(i);
}

Command payment(std::uint64_t round, std::uint64_t i) {
  const std::string id = std::to_string(round) + "-" + std::to_string(i);
  return pay("m1", "r" + id, "o" + id, 1, "alice");
}

EngineConfig crash_config(const std::string& dir) {
  EngineConfig config = test_config(dir);
  config.snapshot_every_records = 900;  // forked snapshots mid-run too
  config.snapshot_at_shutdown = false;
  config.wal_segment_bytes = 256 << 10;
  config.tick_interval_us = 2'000;
  config.hot_window_us = 1;
  config.idempotency_retention_us = 3'000;
  config.archive_job_payments_max = 300;
  return config;
}

std::unique_ptr<ArchiveStore> open_store(const std::string& dir, bool must_exist) {
  ArchiveOptions options;
  options.dir = dir + "/archive";
  options.block_cache_bytes = 8 << 20;
  options.must_exist = must_exist;
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  if (!store.is_ok()) {
    std::fprintf(stderr, "archive: %s\n", store.status().to_string().c_str());
    return nullptr;
  }
  return std::move(*store);
}

// The child: never returns. Acknowledged payments go to the parent through the pipe.
[[noreturn]] void run_child(const EngineConfig& config, std::uint64_t round, int pipe_fd) {
  StatusOr<std::unique_ptr<Engine>> opened = Engine::open(config);
  if (!opened.is_ok()) ::_exit(3);
  std::unique_ptr<Engine> e = std::move(*opened);
  std::unique_ptr<ArchiveStore> store = open_store(config.data_dir, e->archived_rows_end() > 0);
  if (!store) ::_exit(6);
  Archiver archiver(store.get(), &e->metrics().durable_lsn);
  e->attach_archive(&archiver);
  e->start();
  run(*e, open_account("setup-1", "alice"));
  run(*e, deposit("setup-2", "alice", 1'000'000'000));
  run(*e, create_mandate("setup-3", "md-alice-m1", "alice", "m1"));
  std::uint64_t next = 0, in_flight = 0;
  Response responses[64];
  for (;;) {
    while (in_flight < 64 && e->submit(0, Request{payment(round, next), next})) {
      ++next;
      ++in_flight;
    }
    const std::size_t n = e->take(0, responses);
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t token = responses[k].token;
      if (responses[k].result.code == ResultCode::archive_check_needed) {
        // The filter's "maybe" (about 1% when full): look, as the edge does, and hand it in again.
        const auto archived = store->get_payment("m1", order_of(round, token));
        if (!archived.is_ok()) ::_exit(7);
        Command again = payment(round, token);
        again.flags = static_cast<std::uint8_t>(
            again.flags | command_flag_archive_checked |
            (archived->has_value() ? command_flag_in_archive : 0));
        while (!e->submit(0, Request{again, token})) std::this_thread::yield();
        continue;
      }
      if (responses[k].result.code != ResultCode::ok) {
        std::fprintf(stderr, "child: payment %llu answered %s\n",
                     static_cast<unsigned long long>(responses[k].token),
                     std::string(to_string(responses[k].result.code)).c_str());
        ::_exit(4);
      }
      --in_flight;
      if (::write(pipe_fd, &token, sizeof(token)) != sizeof(token)) ::_exit(5);
    }
  }
}

// Kills one child at a random moment; returns the payments it acknowledged.
std::vector<std::uint64_t> run_and_kill(const EngineConfig& config, std::uint64_t round,
                                        std::mt19937_64& rng) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  EXPECT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    run_child(config, round, fds[1]);
  }
  ::close(fds[1]);
  std::vector<std::uint64_t> acked;
  std::uint64_t i = 0;
  // Start the clock at the first acknowledgment: recovery of a long log must not eat the window.
  if (::read(fds[0], &i, sizeof(i)) == sizeof(i)) acked.push_back(i);
  std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
  EXPECT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status)) << "child exited early with status " << WEXITSTATUS(status);
  while (::read(fds[0], &i, sizeof(i)) == sizeof(i)) acked.push_back(i);
  ::close(fds[0]);
  return acked;
}

// Recovers and checks everything acknowledged so far. Returns the payments that left memory.
std::uint32_t check_recovered(const EngineConfig& config,
                              const std::vector<std::pair<std::uint64_t, std::uint64_t>>& acked,
                              std::mt19937_64& rng) {
  auto e = open_engine(config);
  EXPECT_TRUE(e);
  if (!e) return 0;
  std::unique_ptr<ArchiveStore> store = open_store(config.data_dir, e->archived_rows_end() > 0);
  EXPECT_TRUE(store);
  if (!store) return 0;
  const State& s = e->state_for_tests();
  EXPECT_TRUE(s.balances_sum_to_zero_slow());
  EXPECT_GE(store->position().rows_end, s.archived_rows_end) << "the archive is behind the log";
  const std::uint32_t merchant = s.find_account("m1");
  if (merchant == row_none) {
    EXPECT_TRUE(acked.empty());
    return 0;
  }
  for (const auto& [r, k] : acked) {
    const std::string order = order_of(r, k);
    if (s.find_payment(merchant, order) != row_none) continue;
    const StatusOr<std::optional<ArchivedPayment>> archived = store->get_payment("m1", order);
    EXPECT_TRUE(archived.is_ok() && archived->has_value()) << "acknowledged payment " << order << " lost";
    if (!archived.is_ok() || !archived->has_value()) return 0;
  }
  // Exactly once: one unit per payment ever created, in memory or archived (rows below begin).
  EXPECT_EQ(s.accounts[merchant].balance, static_cast<Amount>(s.payments.size()));
  EXPECT_GE(s.payments.size(), acked.size());
  // A retry never executes twice: it replays (its record kept), is a duplicate order (its
  // record past the retention) or needs the archive (the payment left memory: the edge then
  // answers 409 duplicate_order).
  if (!acked.empty()) {
    Archiver archiver(store.get(), &e->metrics().durable_lsn);
    e->attach_archive(&archiver);
    e->start();
    const auto& [r, k] = acked[rng() % acked.size()];
    const Result again = run(*e, payment(r, k));
    const bool replayed = again.code == ResultCode::ok && again.replayed;
    const bool known = again.code == ResultCode::duplicate_order ||
                       again.code == ResultCode::archive_check_needed;
    EXPECT_TRUE(replayed || known) << to_string(again.code);
    EXPECT_FALSE(again.mutated && again.code == ResultCode::ok && !again.replayed);
    e->stop();
    archiver.stop();
  }
  return s.payments.begin();
}

TEST(EngineArchiveCrash, SigkillWhileArchivingLosesNothing) {
  const std::uint64_t kills = env_or("PAYCORE_CRASH_KILLS", 20);
  const std::uint64_t seed = env_or("PAYCORE_SEED", std::random_device{}());
  SCOPED_TRACE("PAYCORE_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::string dir = make_temp_dir();
  EngineConfig config = crash_config(dir);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> acked;
  std::uint32_t archived = 0;
  for (std::uint64_t round = 0; round < kills && !HasFatalFailure(); ++round) {
    config.wal_force_fallback = round % 2 == 1;
    for (const std::uint64_t i : run_and_kill(config, round, rng)) acked.emplace_back(round, i);
    archived = check_recovered(config, acked, rng);
    if (HasFailure()) break;
  }
  EXPECT_GT(archived, 0u);  // payments did leave memory before the kills
  std::printf("archive crash test: %llu kills, %zu acknowledged payments, %u archived\n",
              static_cast<unsigned long long>(kills), acked.size(), archived);
  remove_tree(dir);
}

}  // namespace
}  // namespace paycore::testing
