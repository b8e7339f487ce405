// The engine: release after durability, snapshots, recovery, back-pressure, storage faults.
#include <fcntl.h>

#include <filesystem>
#include <fstream>

#include "base/time.hpp"
#include "core/apply.hpp"
#include "core/command_record.hpp"
#include "core/engine_records.hpp"
#include "engine_harness.hpp"
#include "wal/fault.hpp"
#include "wal/log.hpp"

namespace paycore::testing {
namespace {

class EngineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir = make_temp_dir();
    config = test_config(dir);
    config.wal_force_fallback = GetParam();
  }
  void TearDown() override { remove_tree(dir); }

  // A few accounts, payments and refunds.
  void populate(Engine& e, int payments) {
    ASSERT_EQ(run(e, open_account("o1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(run(e, deposit("o2", "alice", 1'000'000)).code, ResultCode::ok);
    ASSERT_EQ(run(e, create_mandate("o3", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
    for (int i = 0; i < payments; ++i) {
      const std::string n = std::to_string(i);
      ASSERT_EQ(run(e, pay("m1", "r" + n, "o" + n, 10, "alice")).code, ResultCode::ok);
    }
    ASSERT_EQ(run(e, refund("m1", "f1", "o0", 5)).code, ResultCode::ok);
    ASSERT_EQ(run(e, pay_external("m1", "x1", "ext-1", 70, "alipay")).code, ResultCode::ok);
  }

  std::string dir;
  EngineConfig config;
};

INSTANTIATE_TEST_SUITE_P(WriterPaths, EngineTest, ::testing::Values(false, true),
                         [](const auto& p) {
                           return p.param ? std::string("Fallback") : std::string("IoUring");
                         });

TEST_P(EngineTest, EmptyDataDirectoryStartsFresh) {
  auto e = open_engine(config);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->state_for_tests().accounts.size(), 0u);
  EXPECT_NE(e->state_for_tests().find_channel("alipay"), row_none);
  EXPECT_TRUE(e->metrics().ready.load());
}

// docs/style.md rule 2: a torn tail is dropped and said once. The log reports it to its caller
// without printing; the engine logs it (one "torn write" line on stderr, not two).
TEST_P(EngineTest, TornTailIsReportedOnce) {
  config.snapshot_at_shutdown = false;  // recovery must read the log's tail
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 3);
  }
  // Stray bytes just after the last record of the last segment (by name: the log may have
  // moved to a spare segment): what a crash mid-write leaves.
  std::string segment;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/wal")) {
    if (entry.path().extension() == ".log") segment = std::max(segment, entry.path().string());
  }
  ASSERT_FALSE(segment.empty());
  std::string bytes;
  {
    std::ifstream in(segment, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t last = bytes.find_last_not_of('\0');
  ASSERT_NE(last, std::string::npos);
  // The last record may end in zero bytes (empty ids, expires_at 0, padding): 64 bytes on,
  // still 8-byte aligned, is past it.
  const std::size_t tear_at = (last + 1 + 7) / 8 * 8 + 64;
  const int fd = ::open(segment.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const char stray[12] = {'t', 'o', 'r', 'n', 1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(::pwrite(fd, stray, sizeof(stray), static_cast<off_t>(tear_at)),
            static_cast<ssize_t>(sizeof(stray)));
  ::close(fd);

  ::testing::internal::CaptureStderr();
  auto e = open_engine(config);
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(e);
  std::size_t times = 0;
  for (std::size_t at = said.find("torn write"); at != std::string::npos;
       at = said.find("torn write", at + 1)) {
    ++times;
  }
  EXPECT_EQ(times, 1u) << said;
  EXPECT_EQ(e->state_for_tests().payments.size(), 4u);  // nothing before the tear is lost
}

TEST_P(EngineTest, ResultsAreReleasedOnlyWhenDurable) {
  auto e = open_engine(config);
  e->start();
  Request r;
  r.command = open_account("o1", "alice");
  r.token = 77;
  const Response response = call(*e, r);
  EXPECT_EQ(response.result.code, ResultCode::ok);
  EXPECT_GT(response.lsn, 0u);
  EXPECT_GE(e->metrics().durable_lsn.load(), response.lsn);
  // A read is released once what it observed is durable.
  const Response read = call(*e, Request{get_account("operator", "alice", true), 78});
  EXPECT_EQ(read.result.account.account_id.view(), "alice");
  EXPECT_GE(e->metrics().durable_lsn.load(), read.lsn);
}

// Paycore-Min-Lsn (docs/api.md "Replication"): a read waits until the state holds that LSN.
// Deposits from a second producer take the log there one record at a time.
TEST_P(EngineTest, AReadWithAMinLsnWaitsUntilTheStateHoldsIt) {
  config.min_lsn_wait_us = 20'000'000;
  config.producers = 2;
  auto e = open_engine(config);
  e->start();
  const Response opened = call(*e, Request{open_account("o1", "alice"), 1});
  ASSERT_EQ(opened.result.code, ResultCode::ok);
  Request read{get_account("operator", "alice", true), 2};
  read.min_lsn = opened.lsn + 20;
  while (!e->submit(0, read)) std::this_thread::yield();
  Response answer;
  std::int64_t deposited_by_min_lsn = 0;  // deposits at or below min_lsn: the read sees them
  for (int i = 0; i < 40 && e->take(0, std::span(&answer, 1)) == 0; ++i) {
    Request write{deposit("d" + std::to_string(i), "alice", 1),
                  10u + static_cast<std::uint64_t>(i)};
    while (!e->submit(1, write)) std::this_thread::yield();
    Response done;
    while (e->take(1, std::span(&done, 1)) == 0) std::this_thread::yield();
    ASSERT_EQ(done.result.code, ResultCode::ok);
    if (done.lsn <= read.min_lsn) ++deposited_by_min_lsn;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(answer.token, 2u) << "the read was never answered";
  EXPECT_EQ(answer.result.code, ResultCode::ok);
  EXPECT_GE(answer.lsn, read.min_lsn);
  EXPECT_GE(answer.result.account.balance, deposited_by_min_lsn);
  EXPECT_GT(deposited_by_min_lsn, 0);
}

TEST_P(EngineTest, AReadWhoseMinLsnIsNotReachedInTimeIsRefused) {
  config.min_lsn_wait_us = 50'000;
  auto e = open_engine(config);
  e->start();
  const Response opened = call(*e, Request{open_account("o1", "alice"), 1});
  Request read{get_account("operator", "alice", true), 2};
  read.min_lsn = opened.lsn + 1000;
  const auto started = std::chrono::steady_clock::now();
  const Response refused = call(*e, read);
  EXPECT_EQ(refused.result.code, ResultCode::min_lsn_not_applied);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(50));
  EXPECT_LT(refused.lsn, read.min_lsn);
  // One already reached is answered at once.
  read.min_lsn = opened.lsn;
  read.token = 3;
  EXPECT_EQ(call(*e, read).result.code, ResultCode::ok);
}

TEST_P(EngineTest, AReadStillWaitingForItsMinLsnIsRefusedAtShutdown) {
  config.min_lsn_wait_us = 60'000'000;
  auto e = open_engine(config);
  e->start();
  Request read{get_account("operator", "alice", true), 2};
  read.min_lsn = 1000;
  while (!e->submit(0, read)) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  e->stop();
  Response refused;
  ASSERT_EQ(e->take(0, std::span(&refused, 1)), 1u) << "a waiting read was left unanswered";
  EXPECT_EQ(refused.result.code, ResultCode::min_lsn_not_applied);
}

TEST_P(EngineTest, TimestampsStrictlyIncrease) {
  auto e = open_engine(config);
  e->start();
  std::int64_t previous = 0;
  for (int i = 0; i < 20; ++i) {
    const Result r = run(*e, open_account("o" + std::to_string(i), "a" + std::to_string(i)));
    ASSERT_GT(r.account.created_at_us, previous);
    previous = r.account.created_at_us;
  }
}

TEST_P(EngineTest, RecoveryReplaysTheLogWithoutASnapshot) {
  config.snapshot_at_shutdown = false;
  std::string before;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 50);
    e->stop();
    before = state_image(e->state_for_tests());
  }
  EXPECT_TRUE(list_snapshots(dir + "/snapshots").empty());
  auto again = open_engine(config);
  ASSERT_TRUE(again);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

TEST_P(EngineTest, CleanShutdownWritesAFinalSnapshot) {
  std::string before;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 20);
    e->stop();
    before = state_image(e->state_for_tests());
  }
  const auto snapshots = list_snapshots(dir + "/snapshots");
  ASSERT_EQ(snapshots.size(), 1u);
  State loaded;
  SnapshotInfo info;
  const Status loaded_status = load_snapshot_file(snapshots[0].path, &loaded, &info);
  ASSERT_TRUE(loaded_status.is_ok()) << loaded_status.to_string();
  EXPECT_EQ(state_image(loaded), before);
  auto again = open_engine(config);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

// An idle core sleeps. Its log's completion eventfd could be left readable with no flush in
// flight (a completion counted after the writer's last read), and the level-triggered epoll
// then ended every sleep at once: 250-400k turns in 500 ms at rest. Asleep, it takes about
// idle_spins turns per wake-up (ticks, timeouts of at most a second).
TEST_P(EngineTest, AnIdleCoreSleeps) {
  auto e = open_engine(config);
  e->start();
  populate(*e, 50);
  Request snap;  // a snapshot, like a start, waits for the log (Log::wait)
  snap.op = RequestOp::snapshot;
  snap.token = 9;
  ASSERT_TRUE(call(*e, snap).snapshot_ok);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::uint64_t before = e->metrics().turns.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LT(e->metrics().turns.load() - before, 50'000U);
}

TEST_P(EngineTest, SnapshotOnRequestThenMoreLogIsRecovered) {
  std::string before;
  {
    config.snapshot_at_shutdown = false;
    auto e = open_engine(config);
    e->start();
    populate(*e, 30);
    Request snap;
    snap.op = RequestOp::snapshot;
    snap.token = 9;
    const Response done = call(*e, snap);
    EXPECT_TRUE(done.snapshot_ok);
    EXPECT_GT(done.snapshot_lsn, 0u);
    EXPECT_EQ(done.snapshot_payments, 31u);  // 30 by balance, 1 external
    // Changes after the snapshot live only in the log.
    ASSERT_EQ(run(*e, pay("m1", "late", "late-1", 10, "alice")).code, ResultCode::ok);
    e->stop();
    before = state_image(e->state_for_tests());
  }
  auto again = open_engine(config);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

TEST_P(EngineTest, DamagedNewestSnapshotFallsBackToTheOlderOne) {
  std::string before;
  {
    config.snapshot_at_shutdown = false;
    auto e = open_engine(config);
    e->start();
    populate(*e, 10);
    ASSERT_TRUE(call(*e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
    ASSERT_EQ(run(*e, pay("m1", "late", "late-1", 10, "alice")).code, ResultCode::ok);
    ASSERT_TRUE(call(*e, Request{Command{}, 2, RequestOp::snapshot}).snapshot_ok);
    ASSERT_EQ(run(*e, pay("m1", "later", "late-2", 10, "alice")).code, ResultCode::ok);
    e->stop();
    before = state_image(e->state_for_tests());
  }
  const auto snapshots = list_snapshots(dir + "/snapshots");
  ASSERT_EQ(snapshots.size(), 2u);
  {  // flip a byte in the middle of the newest
    std::fstream f(snapshots.back().path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  auto again = open_engine(config);
  ASSERT_TRUE(again);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

// A truncated snapshot falls back to the log. Until snapshots_keep snapshots exist, the fallback
// past the oldest is an empty state and the whole log: no segment may be dropped (docs/design.md
// "Snapshots and recovery"; several segments here, so that dropping one would show).
TEST_P(EngineTest, ADamagedOnlySnapshotFallsBackToTheWholeLog) {
  config.snapshot_at_shutdown = false;
  config.snapshots_keep = 2;
  config.wal_segment_bytes = 16 << 10;  // several segments below the snapshot
  config.wal_batch_bytes_max = 8 << 10;
  std::string before;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 600);
    ASSERT_TRUE(call(*e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
    e->stop();
    before = state_image(e->state_for_tests());
  }
  const auto snapshots = list_snapshots(dir + "/snapshots");
  ASSERT_EQ(snapshots.size(), 1u);
  ASSERT_EQ(::truncate(snapshots[0].path.c_str(), 100), 0);
  auto again = open_engine(config);
  ASSERT_TRUE(again);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

// Once snapshots_keep exist, the log below the oldest is dropped, and a damaged newest snapshot
// still recovers through the oldest and the log after it.
TEST_P(EngineTest, TheLogBelowTheOldestKeptSnapshotIsDropped) {
  config.snapshot_at_shutdown = false;
  config.snapshots_keep = 2;
  config.wal_segment_bytes = 16 << 10;
  config.wal_batch_bytes_max = 8 << 10;
  const std::string first_segment = dir + "/wal/00000000000000000001.log";
  std::string before;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 300);
    ASSERT_TRUE(call(*e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
    EXPECT_TRUE(std::filesystem::exists(first_segment)) << "one snapshot of two kept";
    for (int i = 0; i < 300; ++i) {
      const std::string n = std::to_string(i);
      ASSERT_EQ(run(*e, pay("m1", "s" + n, "p" + n, 10, "alice")).code, ResultCode::ok);
    }
    ASSERT_TRUE(call(*e, Request{Command{}, 2, RequestOp::snapshot}).snapshot_ok);
    EXPECT_FALSE(std::filesystem::exists(first_segment)) << "two of two kept";
    e->stop();
    before = state_image(e->state_for_tests());
  }
  const auto snapshots = list_snapshots(dir + "/snapshots");
  ASSERT_EQ(snapshots.size(), 2u);
  ASSERT_EQ(::truncate(snapshots[1].path.c_str(), 100), 0);
  auto again = open_engine(config);
  ASSERT_TRUE(again);
  EXPECT_EQ(state_image(again->state_for_tests()), before);
}

TEST_P(EngineTest, SnapshotsKeepMustBeOneToTheMaximum) {
  for (const std::uint32_t keep : {0U, snapshots_keep_max + 1}) {
    config.snapshots_keep = keep;
    const StatusOr<std::unique_ptr<Engine>> e = Engine::open(config);
    ASSERT_FALSE(e.is_ok()) << keep;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find("snapshots_keep"), std::string::npos)
        << e.status().to_string();
  }
  config.snapshots_keep = 1;
  EXPECT_TRUE(Engine::open(config).is_ok());
}

TEST_P(EngineTest, MissingLogSegmentRefusesToStart) {
  config.snapshot_at_shutdown = false;
  config.wal_segment_bytes = 16 << 10;  // several segments
  config.wal_batch_bytes_max = 8 << 10;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 600);
    e->stop();
  }
  std::vector<std::string> segments;
  DIR* d = ::opendir((dir + "/wal").c_str());
  while (const dirent* ent = ::readdir(d)) {
    if (std::string(ent->d_name).ends_with(".log")) segments.push_back(ent->d_name);
  }
  ::closedir(d);
  std::sort(segments.begin(), segments.end());
  ASSERT_GE(segments.size(), 3u);
  ASSERT_EQ(::unlink((dir + "/wal/" + segments[1]).c_str()), 0);
  const StatusOr<std::unique_ptr<Engine>> e = Engine::open(config);
  EXPECT_FALSE(e.is_ok());
  const std::string error = e.status().to_string();
  EXPECT_NE(error.find("segment"), std::string::npos) << error;
}

// Writes `records` (type, payload) into a fresh log at dir/wal, as an older or another build
// would have; returns whether it could.
bool write_records(const EngineConfig& config,
                   const std::vector<std::pair<std::uint16_t, std::vector<std::byte>>>& records) {
  wal::Options options;
  options.dir = Engine::wal_dir_of(config.data_dir);
  options.segment_bytes = config.wal_segment_bytes;
  options.force_fallback = true;
  std::unique_ptr<wal::Log> log;
  wal::RecoveryReport report;
  if (!wal::Log::open(options, &log, &report).is_ok()) return false;
  for (const auto& [type, payload] : records) {
    std::uint64_t lsn = 0;
    if (!log->append(type, payload, &lsn).is_ok()) return false;
  }
  if (!log->submit().is_ok()) return false;
  log->wait();
  return log->durable_lsn() == records.size();
}

// The record of `c` stamped at `timestamp_us` with the outcome apply gives it on `state`.
std::pair<std::uint16_t, std::vector<std::byte>> record_after(State& state, Command c,
                                                               std::int64_t timestamp_us) {
  c.timestamp_us = timestamp_us;
  const Result r = apply(state, c);
  std::vector<std::byte> payload(command_record_bytes_max);
  payload.resize(encode_command_record(c, outcome_of(r), payload));
  return {record_type_command_outcome, payload};
}

// Logs written before outcomes (record_type_command) are still read.
TEST_P(EngineTest, ALogOfCommandsWithoutOutcomesStillRecovers) {
  std::vector<std::pair<std::uint16_t, std::vector<std::byte>>> records;
  std::int64_t t = 1'700'000'000'000'000;
  for (Command c : {open_account("o1", "alice"), deposit("o2", "alice", 700)}) {
    c.timestamp_us = ++t;
    std::vector<std::byte> payload(command_encoded_bytes_max);
    payload.resize(encode_command(c, payload));
    records.emplace_back(record_type_command, payload);
  }
  ASSERT_TRUE(write_records(config, records));
  auto e = open_engine(config);
  ASSERT_TRUE(e);
  const std::uint32_t alice = e->state_for_tests().find_account("alice");
  ASSERT_NE(alice, row_none);
  EXPECT_EQ(e->state_for_tests().accounts[alice].balance, 700);
}

// Deterministic apply, checked record by record: a record whose logged outcome this build's
// apply does not reproduce stops the start, naming the record.
TEST_P(EngineTest, ARecordWhoseOutcomeApplyDoesNotReproduceRefusesToStart) {
  State state;
  std::int64_t t = 1'700'000'000'000'000;
  std::vector<std::pair<std::uint16_t, std::vector<std::byte>>> records;
  records.push_back(record_after(state, add_channel("alipay"), ++t));
  records.push_back(record_after(state, open_account("o1", "alice"), ++t));
  auto [type, payload] = record_after(state, deposit("o2", "alice", 700), ++t);
  ASSERT_TRUE(write_records(config, {records[0], records[1], {type, payload}}));
  {
    auto e = open_engine(config);  // the faithful log recovers
    ASSERT_TRUE(e);
  }
  remove_tree(Engine::wal_dir_of(config.data_dir));
  remove_tree(Engine::snapshots_dir_of(config.data_dir));
  // The same deposit, logged as having left a balance of 701.
  Command c;
  CommandOutcome outcome;
  bool has_outcome = false;
  ASSERT_EQ(decode_command_record(type, payload, &c, &outcome, &has_outcome), CommandDecodeError::ok);
  outcome.account.balance = 701;
  payload.resize(command_record_bytes_max);
  payload.resize(encode_command_record(c, outcome, payload));
  ASSERT_TRUE(write_records(config, {records[0], records[1], {type, payload}}));
  const StatusOr<std::unique_ptr<Engine>> e = Engine::open(config);
  ASSERT_FALSE(e.is_ok());
  const std::string error = e.status().to_string();
  EXPECT_NE(error.find("LSN 3 replays differently"), std::string::npos) << error;
}

TEST_P(EngineTest, FullRingAnswersBusy) {
  config.ring_capacity = 4;
  auto e = open_engine(config);  // not started: nobody drains the ring
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += e->submit(0, Request{open_account("o", "a"), 1}) ? 1 : 0;
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(e->metrics().busy_refusals.load(), 6u);
}

// `c` carrying a signer's nonce (command_flag_nonce), as the edge sends a single write.
Command signed_command(Command c, const std::string& nonce) {
  c.flags |= command_flag_nonce;
  c.nonce = Id::of(nonce);
  c.nonce_timestamp_s = 1'795'670'354;
  return c;
}

TEST_P(EngineTest, FsyncFailureRefusesWritesKeepsReadsAndLosesNothingDurable) {
  wal::FaultInjector faults;
  config.wal_faults = &faults;
  config.snapshot_at_shutdown = false;
  {
    auto e = open_engine(config);
    e->start();
    populate(*e, 5);
    faults.fail(wal::FaultOp::kFsync, EIO);
    // Signed: a record that never became durable does not hold its nonce either.
    const Command signed_pay = signed_command(pay("m1", "rX", "oX", 10, "alice"), "nonce-of-rX");
    const Response failed_answer = call(*e, Request{signed_pay, 1});
    const Result& failed = failed_answer.result;
    EXPECT_EQ(failed.code, ResultCode::unavailable);
    EXPECT_FALSE(failed_answer.nonce_logged);
    EXPECT_TRUE(e->metrics().read_only.load());
    EXPECT_FALSE(e->metrics().ready.load());
    EXPECT_EQ(run(*e, pay("m1", "rY", "oY", 10, "alice")).code, ResultCode::unavailable);
    // Reads still work and show only what is durable.
    EXPECT_EQ(run(*e, get_payment("m1", "o1")).code, ResultCode::ok);
    EXPECT_EQ(run(*e, get_payment("m1", "oX")).code, ResultCode::payment_not_found);
    e->stop();
  }
  config.wal_faults = nullptr;
  auto again = open_engine(config);
  ASSERT_TRUE(again);
  // Everything acknowledged before the fault is there. The record whose fsync failed was
  // answered 503, yet its bytes may have reached the disk: it may or may not be recovered
  // (a client's retry with the same request_id then replays it). What was refused before the
  // log (oY) is not.
  const State& s = again->state_for_tests();
  const std::uint32_t m1 = s.find_account("m1");
  for (const char* order : {"o0", "o1", "o2", "o3", "o4", "ext-1"}) {
    EXPECT_NE(s.find_payment(m1, order), row_none) << order;
  }
  EXPECT_EQ(s.find_payment(m1, "oY"), row_none);
  EXPECT_TRUE(s.balances_sum_to_zero_slow());
  EXPECT_GE(s.payments.size(), 6u);
}

TEST_P(EngineTest, TimestampsDoNotGoBackwardsAcrossRestarts) {
  static std::int64_t fake_now = 2'000'000'000'000'000;
  config.clock_us = [] { return fake_now; };
  std::int64_t last = 0;
  {
    auto e = open_engine(config);
    e->start();
    last = run(*e, open_account("o1", "alice")).account.created_at_us;
    e->stop();
  }
  fake_now -= 3'600'000'000;  // the clock steps back an hour
  auto again = open_engine(config);
  again->start();
  EXPECT_GT(run(*again, open_account("o2", "bob")).account.created_at_us, last);
}

// ---- Nonces logged with their commands (docs/design.md "Who may move whose money")

class EngineNonceTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    config.snapshot_at_shutdown = false;
    config.wal_segment_bytes = 16 << 10;  // several segments below the snapshot
    config.wal_batch_bytes_max = 8 << 10;
    config.nonce_retention_us = 3600LL * 1'000'000;
  }
  // A started engine with accounts, as populate() leaves them.
  std::unique_ptr<Engine> started() {
    auto e = open_engine(config);
    e->start();
    populate(*e, 5);
    return e;
  }
  // Opens the engine as a restart does, collecting the nonces recovery hands back.
  std::unique_ptr<Engine> reopen(std::vector<std::string>* nonces) {
    config.on_recovered_nonce = [nonces](const Command& c) {
      nonces->emplace_back(c.nonce.view());
    };
    return open_engine(config);
  }
  static void snapshot(Engine& e) {
    ASSERT_TRUE(call(e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
  }
  static void pay_signed(Engine& e, const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
      const std::string n = prefix + std::to_string(i);
      const Request request{signed_command(pay("m1", n, n, 10, "alice"), "nonce-" + n), 1};
      const Response answer = call(e, request);
      ASSERT_EQ(answer.result.code, ResultCode::ok);
      ASSERT_TRUE(answer.nonce_logged);
    }
  }
  // The nonces pay_signed made, runs of (prefix, count) in order.
  static std::vector<std::string> nonces_of(
      std::initializer_list<std::pair<const char*, int>> runs) {
    std::vector<std::string> out;
    for (const auto& [prefix, count] : runs) {
      for (int i = 0; i < count; ++i) out.push_back("nonce-" + (prefix + std::to_string(i)));
    }
    return out;
  }
};

INSTANTIATE_TEST_SUITE_P(WriterPaths, EngineNonceTest, ::testing::Values(false, true),
                         [](const auto& p) {
                           return p.param ? std::string("Fallback") : std::string("IoUring");
                         });

// Only a command whose record is in the log has its nonce there: a repeat answered from its
// idempotency record, or an unsigned command, says so.
TEST_P(EngineNonceTest, AnAnswerSaysWhetherItsNonceIsInTheLog) {
  auto e = started();
  const Command first = signed_command(pay("m1", "n1", "n1", 10, "alice"), "nonce-first");
  EXPECT_TRUE(call(*e, Request{first, 1}).nonce_logged);
  const Response repeat = call(*e, Request{signed_command(first, "nonce-repeat"), 2});
  EXPECT_TRUE(repeat.result.replayed);
  EXPECT_FALSE(repeat.nonce_logged);
  EXPECT_FALSE(call(*e, Request{pay("m1", "n2", "n2", 10, "alice"), 3}).nonce_logged);
  e->stop();
}

// The nonces of the records before the snapshot (read only for them, from several segments)
// and of those replayed after it all come back; unsigned commands hand back nothing.
TEST_P(EngineNonceTest, LoggedNoncesComeBackAtRecoveryOnBothSidesOfTheSnapshot) {
  {
    auto e = started();
    pay_signed(*e, "a", 300);
    snapshot(*e);
    pay_signed(*e, "b", 20);
    e->stop();
  }
  std::vector<std::string> nonces;
  auto again = reopen(&nonces);
  ASSERT_TRUE(again);
  EXPECT_EQ(nonces, nonces_of({{"a", 300}, {"b", 20}}));
}

// When the newest snapshot is damaged and the one before it is used, the scan stops at the
// snapshot used and the replay hands back the rest: each nonce comes back once.
TEST_P(EngineNonceTest, ANonceComesBackOnceWhenTheNewestSnapshotIsDamaged) {
  {
    auto e = started();
    pay_signed(*e, "a", 100);
    snapshot(*e);
    pay_signed(*e, "b", 100);
    snapshot(*e);
    pay_signed(*e, "c", 10);
    e->stop();
  }
  const auto snapshots = list_snapshots(dir + "/snapshots");
  ASSERT_EQ(snapshots.size(), 2u);
  ASSERT_EQ(::truncate(snapshots.back().path.c_str(), 100), 0);
  std::vector<std::string> nonces;
  auto again = reopen(&nonces);
  ASSERT_TRUE(again);
  EXPECT_EQ(nonces, nonces_of({{"a", 100}, {"b", 100}, {"c", 10}}));
}

// Records older than the retention are not read: the scan starts at the newest segment whose
// first record is older than the cutoff, and hands back none of them.
TEST_P(EngineNonceTest, NoncesOlderThanTheRetentionStayInTheLog) {
  static std::int64_t now_us = 0;
  now_us = wall_clock_us() - 2 * config.nonce_retention_us;  // two retentions ago
  config.clock_us = [] { return now_us; };
  {
    auto e = started();
    pay_signed(*e, "old", 300);
    e->stop();
  }
  config.clock_us = nullptr;
  {
    auto e = open_engine(config);
    e->start();
    pay_signed(*e, "new", 10);
    snapshot(*e);
    e->stop();
  }
  std::vector<std::string> nonces;
  auto again = reopen(&nonces);
  ASSERT_TRUE(again);
  EXPECT_EQ(nonces, nonces_of({{"new", 10}}));
  // From the last segment that began before the cutoff: a part of the old records, not all.
  const std::uint64_t scanned = again->metrics().recovery_nonce_scan_records.load();
  EXPECT_GE(scanned, 10u);
  EXPECT_LT(scanned, 300u);
}

// A segment written to within the retention outlives the snapshots that no longer need it.
TEST_P(EngineNonceTest, SegmentsWithRecentNoncesOutliveTheSnapshots) {
  config.snapshots_keep = 1;
  const std::string first_segment = dir + "/wal/00000000000000000001.log";
  {
    auto e = started();
    pay_signed(*e, "a", 300);
    snapshot(*e);
    pay_signed(*e, "b", 300);
    snapshot(*e);
    EXPECT_TRUE(std::filesystem::exists(first_segment));
    e->stop();
  }
  std::vector<std::string> nonces;
  auto again = reopen(&nonces);
  ASSERT_TRUE(again);
  EXPECT_EQ(nonces.size(), 600u);
}

}  // namespace
}  // namespace paycore::testing
