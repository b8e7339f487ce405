// Crash test: a child process runs the engine under a stream of payments and reports every
// acknowledged request through a pipe; the parent kills it with SIGKILL at a random moment,
// recovers the data directory, and checks that every acknowledged payment is there exactly
// once, the balances sum to zero, and the idempotency records still replay.
//
//   PAYCORE_CRASH_KILLS=200 PAYCORE_SEED=5 ./engine_crash_tests      (default: 20 kills)

#include <signal.h>
#include <sys/wait.h>

#include <random>
#include <set>

#include "engine_harness.hpp"
#include "random_commands.hpp"

namespace paycore::testing {
namespace {

Command payment(std::uint64_t round, std::uint64_t i) {
  const std::string id = std::to_string(round) + "-" + std::to_string(i);
  return pay("m1", "r" + id, "o" + id, 1, "alice");
}

// The child: never returns.
[[noreturn]] void run_child(const EngineConfig& config, std::uint64_t round, int pipe_fd) {
  StatusOr<std::unique_ptr<Engine>> opened = Engine::open(config);
  if (!opened.is_ok()) {
    std::fprintf(stderr, "child: %s\n", opened.status().to_string().c_str());
    ::_exit(3);
  }
  std::unique_ptr<Engine> e = std::move(*opened);
  e->start();
  // Idempotent set-up: the same request ids on every restart replay instead of re-executing.
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
      --in_flight;
      if (responses[k].result.code != ResultCode::ok) ::_exit(4);
      const std::uint64_t acked = responses[k].token;
      if (::write(pipe_fd, &acked, sizeof(acked)) != sizeof(acked)) ::_exit(5);
    }
  }
}

TEST(EngineCrash, SigkillLosesNothingAcknowledged) {
  const std::uint64_t kills = env_or("PAYCORE_CRASH_KILLS", 20);
  const std::uint64_t seed = env_or("PAYCORE_SEED", std::random_device{}());
  SCOPED_TRACE("PAYCORE_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::string dir = make_temp_dir();
  EngineConfig config = test_config(dir);
  config.snapshot_every_records = 700;  // snapshots by forked children happen mid-run too
  config.snapshot_at_shutdown = false;
  config.wal_segment_bytes = 256 << 10;

  std::vector<std::pair<std::uint64_t, std::uint64_t>> acked;  // round, i
  std::uint64_t torn_or_killed_mid_batch = 0;
  for (std::uint64_t round = 0; round < kills; ++round) {
    config.wal_force_fallback = round % 2 == 1;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      run_child(config, round, fds[1]);
    }
    ::close(fds[1]);
    std::vector<std::uint64_t> early;
    // Every other round the clock starts at the first acknowledgment rather than at fork, so
    // a slow start (recovery of a long log under a sanitizer) cannot eat every round's window.
    if (round % 2 == 0) {
      std::uint64_t first = 0;
      if (::read(fds[0], &first, sizeof(first)) == sizeof(first)) early.push_back(first);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 150));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with status " << WEXITSTATUS(status);
    for (const std::uint64_t first : early) acked.emplace_back(round, first);
    std::uint64_t i = 0;
    std::uint64_t this_round = 0;
    while (::read(fds[0], &i, sizeof(i)) == sizeof(i)) {
      acked.emplace_back(round, i);
      ++this_round;
    }
    ::close(fds[0]);

    // Recover in this process and check everything acknowledged so far.
    auto e = open_engine(config);
    ASSERT_TRUE(e) << "round " << round;
    const State& s = e->state_for_tests();
    ASSERT_TRUE(s.balances_sum_to_zero_slow()) << "round " << round;
    const std::uint32_t merchant = s.find_account("m1");
    if (merchant == row_none) {
      // Killed before the first payment applied: the merchant's account opens with it.
      ASSERT_TRUE(acked.empty()) << "merchant lost after round " << round;
      ASSERT_EQ(s.payments.size(), 0u);
      continue;
    }
    for (const auto& [r, k] : acked) {
      const std::string id = std::to_string(r) + "-" + std::to_string(k);
      const std::uint32_t row = s.find_payment(merchant, "o" + id);
      ASSERT_NE(row, row_none) << "acknowledged payment o" << id << " lost after round " << round;
      ASSERT_EQ(s.payments[row].status, PaymentStatus::paid);
    }
    // Exactly once: the merchant holds one unit per payment in the state, no more.
    ASSERT_EQ(s.accounts[merchant].balance, static_cast<Amount>(s.payments.size()));
    ASSERT_GE(s.payments.size(), acked.size());
    torn_or_killed_mid_batch += s.payments.size() - acked.size() > 0 ? 1 : 0;
    // Retries of acknowledged requests replay instead of executing again.
    if (!acked.empty()) {
      e->start();
      const auto& [r, k] = acked[rng() % acked.size()];
      const Result again = run(*e, payment(r, k));
      EXPECT_EQ(again.code, ResultCode::ok);
      EXPECT_TRUE(again.replayed);
      e->stop();
    }
  }
  EXPECT_GT(acked.size(), kills);  // the children did real work before dying
  RecordProperty("acknowledged", std::to_string(acked.size()));
  RecordProperty("rounds_with_unacknowledged_durable_payments", std::to_string(torn_or_killed_mid_batch));
  std::printf("crash test: %llu kills, %zu acknowledged payments, all recovered\n",
              static_cast<unsigned long long>(kills), acked.size());
  remove_tree(dir);
}

}  // namespace
}  // namespace paycore::testing
