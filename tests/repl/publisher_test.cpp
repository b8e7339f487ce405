// The primary's side of the shared log against a real nats-server (tests/support/
// nats_cluster.hpp), one node unless said: what the stream holds, when answers leave, fencing,
// stalls and alignment at start (repl/stream_publisher.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <tuple>
#include <vector>

#include "../engine/engine_harness.hpp"
#include "base/time.hpp"
#include "repl/nats_link.hpp"
#include "repl/stream_follower.hpp"
#include "repl/stream_publisher.hpp"
#include "tests/support/nats_cluster.hpp"
#include "wal/committed.hpp"
#include "wal/format.hpp"

namespace paycore::repl {
namespace {
using paycore::testing::NatsCluster;
using namespace paycore::testing;  // engine harness and command builders

constexpr const char* kCluster = "test";

class Replication : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = make_temp_dir();
    ASSERT_TRUE(nats_.start(dir_ + "/nats", nats_nodes())) << nats_.error();
  }
  virtual int nats_nodes() const { return 1; }

  void TearDown() override {
    engines_.clear();
    publishers_.clear();
    followers_.clear();
    remove_tree(dir_);
  }

  PublisherConfig publisher_config(std::int64_t ack_timeout_ms = 10'000) const {
    PublisherConfig config;
    config.writes_until_ms = &writes_until_ms_;
    config.stream.name = log_stream_name(kCluster);
    config.stream.subject = log_subject(kCluster);
    config.stream.replicas = nats_nodes();
    config.ack_timeout_ms = ack_timeout_ms;
    config.writer_id = random_writer_id();
    return config;
  }
  LinkConfig link() const {
    LinkConfig l;
    l.urls = nats_.urls();
    l.name = "paycore-test";
    l.timeout_ms = 1000;
    return l;
  }

  // Opens an engine on data directory `name` (no replica yet). `cluster`: as a cluster member,
  // which registers its channels only once it writes the shared log.
  Engine& open(const std::string& name, bool cluster = false) {
    EngineConfig config = test_config(dir_ + "/" + name);
    config.register_channels_at_open = !cluster;
    // No ticks: an old primary left running would log one between a standby's catch-up and
    // its first append, and fence the new primary instead (docs/replication.md "Not yet").
    config.tick_interval_us = 3'600'000'000;
    engines_.push_back(open_engine(config));
    return *engines_.back();
  }

  // A cluster member's primary start: the stream holds its whole log from LSN 1.
  Engine& cluster_primary(const std::string& name) {
    Engine& engine = open(name, /*cluster=*/true);
    const Status s = try_publish(engine);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    engine.attach_replica(publishers_.back().get());
    EXPECT_TRUE(engine.register_channels().is_ok());
    engine.start();
    return engine;
  }

  // A cluster member following the stream from its local log's end.
  Engine& standby(const std::string& name) {
    Engine& engine = open(name, /*cluster=*/true);
    FollowerConfig config;
    config.stream = log_stream_name(kCluster);
    config.subject = log_subject(kCluster);
    StatusOr<std::unique_ptr<StreamFollower>> f =
        StreamFollower::start(link(), config, engine.log_last_lsn(), engine.log_last_checksum());
    EXPECT_TRUE(f.is_ok()) << f.status().to_string();
    followers_.push_back(std::move(*f));
    engine.attach_follower(followers_.back().get());
    engine.start();
    return engine;
  }

  std::uint64_t stream_last_sequence() {
    StatusOr<std::unique_ptr<NatsLink>> reader = NatsLink::connect(link());
    StatusOr<StreamPosition> position = read_position((*reader)->js(), log_stream_name(kCluster));
    EXPECT_TRUE(position.is_ok()) << position.status().to_string();
    return position->last_sequence;
  }

  // Waits until `engine` has applied the stream through `sequence`.
  static bool followed_through(Engine& engine, std::uint64_t sequence) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (engine.metrics().followed_sequence.load() < sequence) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  // Aligns the stream with `engine`'s log and starts a publisher for it: the status.
  Status try_publish(Engine& engine, std::int64_t ack_timeout_ms = 10'000) {
    auto replay = [&](std::uint64_t from, std::uint64_t to,
                      FunctionRef<void(std::uint64_t, std::span<const std::byte>)> fn) {
      return engine.replay_log_frames(from, to, fn);
    };
    const LocalLogView local{engine.log_last_lsn(), engine.log_last_checksum(), replay};
    StatusOr<std::unique_ptr<StreamPublisher>> started =
        StreamPublisher::start(link(), publisher_config(ack_timeout_ms), local);
    if (!started.is_ok()) return started.status();
    publishers_.push_back(std::move(*started));
    return Status::ok();
  }

  // A started engine on `name` whose writes go to the stream.
  Engine& primary(const std::string& name, std::int64_t ack_timeout_ms = 10'000) {
    Engine& engine = open(name);
    const Status s = try_publish(engine, ack_timeout_ms);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    engine.attach_replica(publishers_.back().get());
    engine.start();
    return engine;
  }

  // Every record the stream holds, as frames, in order, and the LSN of the first.
  std::vector<std::byte> stream_frames(std::uint64_t* first_lsn) {
    StatusOr<std::unique_ptr<NatsLink>> reader = NatsLink::connect(link());
    EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
    StatusOr<StreamPosition> position = read_position((*reader)->js(), log_stream_name(kCluster));
    EXPECT_TRUE(position.is_ok()) << position.status().to_string();
    std::vector<std::byte> all;
    for (std::uint64_t seq = position->first_sequence; seq <= position->last_sequence; ++seq) {
      StatusOr<StoredMessage> m = read_message((*reader)->js(), log_stream_name(kCluster), seq);
      EXPECT_TRUE(m.is_ok()) << m.status().to_string();
      if (seq == position->first_sequence) *first_lsn = m->first_lsn;
      all.insert(all.end(), m->data.begin(), m->data.end());
    }
    return all;
  }

  std::vector<std::byte> local_frames(Engine& engine, std::uint64_t from_lsn) {
    std::vector<std::byte> all;
    auto add = [&](std::uint64_t, std::span<const std::byte> f) {
      all.insert(all.end(), f.begin(), f.end());
    };
    EXPECT_TRUE(engine.replay_log_frames(from_lsn, engine.log_last_lsn(), add).is_ok());
    return all;
  }

  // Takes producer 0's answer within `wait_ms`, if one comes.
  static std::optional<Response> answer_within(Engine& engine, int wait_ms) {
    Response response;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (engine.take(0, std::span(&response, 1)) == 1) return response;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }

  static void submit(Engine& engine, const Command& c, std::uint64_t token) {
    Request request;
    request.command = c;
    request.token = token;
    ASSERT_TRUE(engine.submit(0, request));
  }

  // While the stream does not acknowledge (past the timeout), a new write is refused at once
  // (token 2), ahead of the applied one that keeps waiting.
  static void expect_write_refused_unavailable(Engine& engine) {
    submit(engine, deposit("refused", "alice", 5), 2);
    const std::optional<Response> refused = answer_within(engine, 5'000);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->token, 2U);
    EXPECT_EQ(refused->result.code, ResultCode::unavailable);
  }

  // The core reads the stream's status once per turn (Engine's read_replica): a test that
  // changes it waits until the core has seen the change, or a write taken in the same turn
  // as the change races it.
  static void wait_until_stalled_is(Engine& engine, bool stalled) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (engine.metrics().replica_stalled.load() != stalled &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(engine.metrics().replica_stalled.load(), stalled);
  }

  void fund(Engine& engine) {
    ASSERT_EQ(run(engine, open_account("r1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(run(engine, open_account("r2", "m_001", "CNY", AccountKind::merchant)).code,
              ResultCode::ok);
    ASSERT_EQ(run(engine, deposit("r3", "alice", 1'000'000)).code, ResultCode::ok);
  }

  std::string dir_;
  NatsCluster nats_;
  std::atomic<std::int64_t> writes_until_ms_{0};  // the lease's write guard (0: none)
  std::vector<std::unique_ptr<StreamPublisher>> publishers_;  // outlive their engines
  std::vector<std::unique_ptr<StreamFollower>> followers_;
  std::vector<std::unique_ptr<Engine>> engines_;
};

TEST_F(Replication, TheStreamHoldsTheLocalLogsRecordsByteForByte) {
  Engine& engine = primary("a");
  fund(engine);
  for (int i = 0; i < 50; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(run(engine, deposit("d" + n, "alice", 10 + i)).code, ResultCode::ok);
  }
  engine.stop();
  std::uint64_t first_lsn = 0;
  const std::vector<std::byte> stream = stream_frames(&first_lsn);
  ASSERT_FALSE(stream.empty());
  // The channels registered at open came before the stream existed; every later record is in it.
  EXPECT_GT(first_lsn, 1U);
  EXPECT_EQ(stream, local_frames(engine, first_lsn));
}

// A reader of the cluster's history its local log lacks (the event deriver after a member
// started from a snapshot): the stream's records between any two LSNs, across messages, are the
// local log's; a visitor can stop the read; an LSN the stream does not hold is kNotFound.
TEST_F(Replication, TheStreamsRecordsAreReadBetweenAnyTwoLsnsAsTheLocalLogHoldsThem) {
  Engine& engine = primary("a");
  fund(engine);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(run(engine, deposit("d" + std::to_string(i), "alice", 10 + i)).code, ResultCode::ok);
  }
  engine.stop();
  std::uint64_t first_lsn = 0;
  ASSERT_FALSE(stream_frames(&first_lsn).empty());
  const std::uint64_t last_lsn = engine.log_last_lsn();
  using Record = std::tuple<std::uint64_t, std::uint16_t, std::vector<std::byte>>;
  const auto collect = [](std::vector<Record>* out) {
    return [out](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
      out->emplace_back(lsn, type, std::vector<std::byte>(payload.begin(), payload.end()));
      return true;
    };
  };
  std::vector<Record> local;
  ASSERT_TRUE(wal::read_committed(engine.wal_dir(), first_lsn + 3, last_lsn - 2, collect(&local)).is_ok());
  std::vector<Record> streamed;
  StreamRecordReader reader(link(), log_stream_name(kCluster));
  const Status read = reader.read(first_lsn + 3, last_lsn - 2, collect(&streamed));
  ASSERT_TRUE(read.is_ok()) << read.to_string();
  ASSERT_EQ(streamed.size(), last_lsn - first_lsn - 4);
  EXPECT_EQ(streamed, local);

  int visited = 0;
  ASSERT_TRUE(reader.read(first_lsn, last_lsn, [&](std::uint64_t, std::uint16_t, std::span<const std::byte>) {
    return ++visited < 5;
  }).is_ok());
  EXPECT_EQ(visited, 5);
  const auto ignore = [](std::uint64_t, std::uint16_t, std::span<const std::byte>) { return true; };
  EXPECT_EQ(reader.read(first_lsn - 1, last_lsn, ignore).code(), StatusCode::kNotFound)
      << "the channels registered before the stream existed";
  EXPECT_EQ(reader.read(last_lsn + 1, last_lsn + 5, ignore).code(), StatusCode::kNotFound);
}

TEST_F(Replication, AnAnswerWaitsForTheStreamsAcknowledgement) {
  Engine& engine = primary("a");
  fund(engine);
  nats_.pause(0);
  submit(engine, deposit("d1", "alice", 5), 7);
  EXPECT_FALSE(answer_within(engine, 500).has_value()) << "answered before the stream had it";
  nats_.resume(0);
  const std::optional<Response> answer = answer_within(engine, 10'000);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->result.code, ResultCode::ok);
  EXPECT_GE(engine.metrics().replicated_lsn.load(), answer->lsn);
}

TEST_F(Replication, AnotherWriterFencesThePrimary) {
  Engine& engine = primary("a");
  fund(engine);
  // Another process appends to the stream, as a new primary would after taking over.
  StatusOr<std::unique_ptr<NatsLink>> other = NatsLink::connect(link());
  ASSERT_TRUE(other.is_ok());
  StatusOr<StreamPosition> position = read_position((*other)->js(), log_stream_name(kCluster));
  ASSERT_TRUE(position.is_ok());
  StatusOr<StoredMessage> last =
      read_message((*other)->js(), log_stream_name(kCluster), position->last_sequence);
  ASSERT_TRUE(last.is_ok());
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsMsg_Create(&msg, log_subject(kCluster).c_str(), nullptr,
                           reinterpret_cast<const char*>(last->data.data()),
                           static_cast<int>(last->data.size())),
            NATS_OK);
  const std::string expected = std::to_string(position->last_sequence);
  natsMsgHeader_Set(msg, kHeaderExpectedLastSequence, expected.c_str());
  natsMsgHeader_Set(msg, kHeaderFirstLsn, std::to_string(last->last_lsn + 1).c_str());
  natsMsgHeader_Set(msg, kHeaderLastLsn, std::to_string(last->last_lsn + 1).c_str());
  natsMsgHeader_Set(msg, kHeaderWriter, "0000000000000bad");
  jsPubAck* ack = nullptr;
  ASSERT_EQ(js_PublishMsg(&ack, (*other)->js(), msg, nullptr, nullptr), NATS_OK);
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(msg);

  // The primary's next write is refused by the stream: it must not answer it as done.
  const Response write = call(engine, [] {
    Request r;
    r.command = deposit("after", "alice", 5);
    r.token = 9;
    return r;
  }());
  EXPECT_EQ(write.result.code, ResultCode::not_primary);
  EXPECT_TRUE(engine.metrics().replica_fenced.load());
  // Nor does it answer reads from a state the stream did not take.
  EXPECT_EQ(run(engine, get_account(op, "alice")).code, ResultCode::not_primary);
}

TEST_F(Replication, AStalledStreamRefusesNewWritesUntilItAnswers) {
  Engine& engine = primary("a", /*ack_timeout_ms=*/300);
  fund(engine);
  nats_.pause(0);
  submit(engine, deposit("waits", "alice", 5), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  expect_write_refused_unavailable(engine);
  EXPECT_TRUE(engine.metrics().replica_stalled.load());
  nats_.resume(0);
  const std::optional<Response> waited = answer_within(engine, 10'000);
  ASSERT_TRUE(waited.has_value());
  EXPECT_EQ(waited->token, 1U);
  EXPECT_EQ(waited->result.code, ResultCode::ok);
  wait_until_stalled_is(engine, false);
  EXPECT_EQ(run(engine, deposit("later", "alice", 5)).code, ResultCode::ok);
}

// The lease's write guard (PublisherConfig::writes_until_ms, set by ClusterMember after each
// lease write): past it, a primary takes no write, while reads go on; a renewal lifts it.
TEST_F(Replication, APrimaryPastItsLeaseWindowTakesNoWrites) {
  Engine& engine = primary("a");
  fund(engine);
  writes_until_ms_ = monotonic_ms() - 1;
  wait_until_stalled_is(engine, true);
  expect_write_refused_unavailable(engine);
  EXPECT_EQ(run(engine, get_account(op, "alice", /*as_operator=*/true)).code, ResultCode::ok);
  writes_until_ms_ = monotonic_ms() + 60'000;
  wait_until_stalled_is(engine, false);
  EXPECT_EQ(run(engine, deposit("renewed", "alice", 5)).code, ResultCode::ok);
}

TEST_F(Replication, WritesResumeAfterTheServerIsKilledAndRestarted) {
  Engine& engine = primary("a", /*ack_timeout_ms=*/300);
  fund(engine);
  nats_.kill(0);
  submit(engine, deposit("across", "alice", 5), 1);
  ASSERT_TRUE(nats_.restart(0)) << nats_.error();
  const std::optional<Response> answer = answer_within(engine, 20'000);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->result.code, ResultCode::ok);
  EXPECT_EQ(run(engine, deposit("after", "alice", 5)).code, ResultCode::ok);
  engine.stop();
  std::uint64_t first_lsn = 0;
  const std::vector<std::byte> stream = stream_frames(&first_lsn);
  EXPECT_EQ(stream, local_frames(engine, first_lsn));
}

TEST_F(Replication, AtStartTheLocalRecordsTheStreamLacksAreSent) {
  {
    Engine& engine = primary("a");
    fund(engine);
    engine.stop();
  }
  engines_.clear();
  publishers_.clear();
  std::uint64_t behind = 0;
  {
    // The same data directory runs alone for a while (or crashed before its publish).
    Engine& alone = open("a");
    alone.start();
    ASSERT_EQ(run(alone, deposit("alone1", "alice", 5)).code, ResultCode::ok);
    ASSERT_EQ(run(alone, deposit("alone2", "alice", 5)).code, ResultCode::ok);
    alone.stop();
    behind = alone.log_last_lsn();
  }
  engines_.clear();
  Engine& again = primary("a");
  EXPECT_GE(publishers_.back()->alignment().tail_records_sent, 2U);
  again.stop();
  std::uint64_t first_lsn = 0;
  const std::vector<std::byte> stream = stream_frames(&first_lsn);
  EXPECT_EQ(stream, local_frames(again, first_lsn));
  EXPECT_GE(again.log_last_lsn(), behind);
}

TEST_F(Replication, AStreamWithAnotherHistoryIsRefused) {
  Engine& a = primary("a");
  fund(a);
  a.stop();
  // Another data directory whose log reaches as far but holds other records.
  Engine& b = open("b");
  b.start();
  fund(b);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(run(b, deposit("other" + std::to_string(i), "alice", 1)).code, ResultCode::ok);
  }
  b.stop();
  ASSERT_GE(b.log_last_lsn(), a.log_last_lsn());
  const Status s = try_publish(b);
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.to_string();
}

TEST_F(Replication, AStreamAheadOfTheLocalLogIsRefused) {
  Engine& a = primary("a");
  fund(a);
  a.stop();
  Engine& fresh = open("fresh");  // only its channel registration
  const Status s = try_publish(fresh);
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.to_string();
  EXPECT_NE(s.message().find("ahead"), std::string::npos) << s.message();
}

TEST_F(Replication, AStandbyAppliesTheStreamAndAnswersReadsOnly) {
  Engine& primary_engine = cluster_primary("a");
  fund(primary_engine);
  Engine& standby_engine = standby("b");
  for (int i = 0; i < 20; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(run(primary_engine, deposit("d" + n, "alice", 100 + i)).code, ResultCode::ok);
  }
  ASSERT_TRUE(followed_through(standby_engine, stream_last_sequence()));
  const Result read = run(standby_engine, get_account(op, "alice", /*as_operator=*/true));
  EXPECT_EQ(read.code, ResultCode::ok);
  EXPECT_EQ(run(standby_engine, deposit("on-standby", "alice", 1)).code, ResultCode::not_primary);
  primary_engine.stop();
  standby_engine.stop();
  EXPECT_EQ(standby_engine.log_last_lsn(), primary_engine.log_last_lsn());
  EXPECT_EQ(state_image(standby_engine.state_for_tests()),
            state_image(primary_engine.state_for_tests()));
  EXPECT_FALSE(standby_engine.metrics().follow_failed.load());
}

// Read-your-writes on a standby (docs/api.md "Replication"): a read carrying the LSN of a
// write just acknowledged by the primary sees that write, however far behind the standby was.
TEST_F(Replication, AStandbyReadWithTheWritesLsnSeesTheWrite) {
  Engine& primary_engine = cluster_primary("a");
  fund(primary_engine);
  Engine& standby_engine = standby("b");
  for (int i = 0; i < 20; ++i) {
    const Response written = call(
        primary_engine,
        Request{deposit("d" + std::to_string(i), "alice", 1), 10u + static_cast<std::uint64_t>(i)});
    ASSERT_EQ(written.result.code, ResultCode::ok);
    Request read{get_account(op, "alice", /*as_operator=*/true),
                 100u + static_cast<std::uint64_t>(i)};
    read.min_lsn = written.lsn;
    const Response seen = call(standby_engine, read);
    ASSERT_EQ(seen.result.code, ResultCode::ok);
    EXPECT_EQ(seen.result.account.balance, 1'000'000 + i + 1) << "read " << i;
    EXPECT_GE(seen.lsn, written.lsn);
  }
}

TEST_F(Replication, APromotedStandbyWritesAndTheOldPrimaryIsFenced) {
  Engine& old_primary = cluster_primary("a");
  fund(old_primary);
  Engine& next = standby("b");
  // The old primary still runs and logs its ticks: a promotion whose stream moved on meanwhile
  // is deferred (the writer refuses a stream ahead of the local log), and asked again, as the
  // leadership does.
  std::atomic<bool> made{false};
  std::atomic<int> deferred{0};
  const auto make = [&](const Engine::PrimaryStart& start) -> ReplicaPort* {
    StatusOr<std::unique_ptr<StreamPublisher>> p = StreamPublisher::start(
        link(), publisher_config(), caught_up_log(start.last_lsn, start.last_checksum));
    if (!p.is_ok()) {
      EXPECT_EQ(p.status().code(), StatusCode::kConflict) << p.status().to_string();
      ++deferred;
      return nullptr;
    }
    publishers_.push_back(std::move(*p));
    made = true;
    return publishers_.back().get();
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!made.load() && std::chrono::steady_clock::now() < deadline) {
    const int deferred_before = deferred.load();
    next.request_promotion(stream_last_sequence(), make);
    while (!made.load() && deferred.load() == deferred_before &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  while (next.metrics().promotions.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(made.load());
  EXPECT_EQ(run(next, deposit("on-new-primary", "alice", 7)).code, ResultCode::ok);
  // The old primary's next append meets the new one's message: it is fenced, not answered.
  EXPECT_EQ(run(old_primary, deposit("on-old-primary", "alice", 7)).code, ResultCode::not_primary);
  EXPECT_TRUE(old_primary.metrics().replica_fenced.load());
  next.stop();
  std::uint64_t first_lsn = 0;
  const std::vector<std::byte> stream = stream_frames(&first_lsn);
  EXPECT_EQ(first_lsn, 1U);
  const std::vector<std::byte> local = local_frames(next, first_lsn);
  EXPECT_TRUE(stream == local) << "stream " << stream.size() << " bytes, the new primary's log "
                               << local.size() << " bytes to LSN " << next.log_last_lsn()
                               << "; promotions deferred " << deferred.load();
}

// The ports' eventfds are level-triggered in the core's epoll: unread, an idle core spins
// through turns instead of sleeping (550k turns in the 500 ms here, against 27-41k asleep).
// It was quarantined for a day: 120k-217k turns in about one run of three, from the log's
// completion eventfd left readable with nothing in flight (EngineTest.AnIdleCoreSleeps).
TEST_F(Replication, AnIdlePrimaryAndStandbySleep) {
  Engine& primary_engine = cluster_primary("a");
  fund(primary_engine);
  Engine& standby_engine = standby("b");
  ASSERT_TRUE(followed_through(standby_engine, stream_last_sequence()));
  // A core spins through turns while its fdatasync is in flight (by design: the answers wait
  // for it); on a loaded disk the standby's last sync can last into the window measured.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (standby_engine.metrics().durable_lsn.load() < primary_engine.metrics().durable_lsn.load() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::uint64_t primary_before = primary_engine.metrics().turns.load();
  const std::uint64_t standby_before = standby_engine.metrics().turns.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LT(primary_engine.metrics().turns.load() - primary_before, 200'000U);
  EXPECT_LT(standby_engine.metrics().turns.load() - standby_before, 200'000U);
}

// Three NATS servers, the stream on all three (R3).
class ReplicationOnThree : public Replication {
 protected:
  int nats_nodes() const override { return 3; }
};

TEST_F(ReplicationOnThree, WritesGoOnWhenOneNatsServerIsKilled) {
  Engine& engine = primary("a", /*ack_timeout_ms=*/2000);
  fund(engine);
  nats_.kill(0);
  // If the killed server led the stream, JetStream elects another (seconds): writes may be
  // refused `unavailable` meanwhile, and a retry with the same request_id then succeeds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 20; ++i) {
    const Command c = deposit("one-down-" + std::to_string(i), "alice", 1);
    ResultCode code = run(engine, c).code;
    while (code == ResultCode::unavailable && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      code = run(engine, c).code;
    }
    EXPECT_EQ(code, ResultCode::ok) << "deposit " << i;
  }
  EXPECT_FALSE(engine.metrics().replica_fenced.load());
}

TEST_F(ReplicationOnThree, TwoServersDownStopWritesAndTheirReturnResumesThem) {
  Engine& engine = primary("a", /*ack_timeout_ms=*/500);
  fund(engine);
  nats_.kill(1);
  nats_.kill(2);
  submit(engine, deposit("no-quorum", "alice", 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  expect_write_refused_unavailable(engine);
  ASSERT_TRUE(nats_.restart(1)) << nats_.error();
  ASSERT_TRUE(nats_.restart(2)) << nats_.error();
  const std::optional<Response> waited = answer_within(engine, 30'000);
  ASSERT_TRUE(waited.has_value());
  EXPECT_EQ(waited->token, 1U);
  EXPECT_EQ(waited->result.code, ResultCode::ok);
  // Writes are taken again once nothing older than the timeout waits for the stream.
  wait_until_stalled_is(engine, false);
  EXPECT_EQ(run(engine, deposit("quorum-back", "alice", 1)).code, ResultCode::ok);
  engine.stop();
  std::uint64_t first_lsn = 0;
  const std::vector<std::byte> stream = stream_frames(&first_lsn);
  EXPECT_EQ(stream, local_frames(engine, first_lsn));
}

}  // namespace
}  // namespace paycore::repl
