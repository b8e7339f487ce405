// The deriver (events/deriver.hpp) following a real engine's log: it derives what the engine
// made durable, resumes after its last batch without deriving anything twice, holds back the
// removal of log segments it has not read, and says so when the log no longer holds records
// it never saw.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "engine_harness.hpp"
#include "events/deriver.hpp"
#include "events/event_store.hpp"
#include "core/apply.hpp"
#include "core/command_record.hpp"
#include "core/engine_records.hpp"
#include "wal/committed.hpp"
#include "wal/log.hpp"

namespace paycore::testing {
namespace {

using events::Deriver;
using events::Event;
using events::EventStore;
using events::EventType;

class DeriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = make_temp_dir();
    config = test_config(dir);
    config.snapshot_at_shutdown = false;
    open_store();
  }
  void TearDown() override {
    store.reset();
    remove_tree(dir);
  }
  void open_store() {
    store.reset();
    auto opened = EventStore::open({dir + "/events"});
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store = std::move(*opened);
  }
  events::DeriverConfig deriver_config(Engine& e) {
    events::DeriverConfig c;
    c.wal_dir = e.wal_dir();
    c.durable_lsn = &e.metrics().durable_lsn;
    c.floor_lsn = &floor;
    c.flush_interval_ms = 0;  // the floor follows every batch
    c.before_commit = [this](std::span<const Event> es) {
      if (refuse_handover) return Status(StatusCode::kUnavailable, "the dispatcher refuses");
      handed.insert(handed.end(), es.begin(), es.end());
      return Status::ok();
    };
    return c;
  }
  void pay_from_alice(Engine& e, int from, int count) {
    for (int i = from; i < from + count; ++i) {
      const std::string n = std::to_string(i);
      ASSERT_EQ(run(e, pay("m1", "r" + n, "o" + n, 10, "alice")).code, ResultCode::ok);
    }
  }
  void fund_alice(Engine& e) {
    ASSERT_EQ(run(e, open_account("o1", "alice")).code, ResultCode::ok);
    ASSERT_EQ(run(e, deposit("o2", "alice", 1'000'000)).code, ResultCode::ok);
    ASSERT_EQ(run(e, create_mandate("o3", "md-alice-m1", "alice", "m1")).code, ResultCode::ok);
  }

  // An engine that paid 300 times, then took a snapshot that removed its log's first
  // segments: its log no longer holds LSN 1. `*first` is the first it holds. Before the
  // snapshot, `shared_log` gets every record of the log (the cluster's stream, in the tests).
  std::unique_ptr<Engine> engine_without_its_first_records(std::uint64_t* first) {
    config.snapshots_keep = 1;
    config.wal_segment_bytes = 16 << 10;
    config.wal_batch_bytes_max = 8 << 10;
    auto e = open_engine(config);  // no floor: the snapshots remove what they cover
    e->start();
    fund_alice(*e);
    pay_from_alice(*e, 0, 300);
    shared_log.clear();
    EXPECT_TRUE(wal::read_committed(e->wal_dir(), 1, e->metrics().durable_lsn.load(),
                                    [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
                                      shared_log.push_back({lsn, type, {payload.begin(), payload.end()}});
                                      return true;
                                    }).is_ok());
    EXPECT_TRUE(call(*e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
    *first = *wal::first_committed_lsn(e->wal_dir());
    EXPECT_GT(*first, 1U);
    return e;
  }

  std::string dir;
  EngineConfig config;
  std::unique_ptr<EventStore> store;
  std::atomic<std::uint64_t> floor{1};
  // read_shared_log over shared_log, which holds LSN shared_from_lsn on (as a stream past
  // its retention would); each call is noted in `asked`.
  auto shared_log_reader() {
    return [this](std::uint64_t from, std::uint64_t to, wal::CommittedVisitor visit, std::uint64_t* resumes_at) {
      asked.emplace_back(from, to);
      *resumes_at = 0;
      if (from < shared_from_lsn) {
        *resumes_at = shared_from_lsn;
        return Status::not_found("the log stream does not hold LSN " + std::to_string(from));
      }
      for (const SharedRecord& r : shared_log) {
        if (r.lsn >= from && r.lsn <= to && !visit(r.lsn, r.type, r.payload)) break;
      }
      return Status::ok();
    };
  }

  // Derives all of an engine without its first records, the shared log holding LSN
  // shared_from(first) on, where `first` is the first the engine's log holds: a gap remains.
  struct GapRun {
    std::uint64_t first = 0;
    std::uint64_t shared_log_records = 0;  // the deriver's metric
  };
  GapRun derive_past_a_gap(const std::function<std::uint64_t(std::uint64_t)>& shared_from) {
    GapRun run;
    auto e = engine_without_its_first_records(&run.first);
    shared_from_lsn = shared_from(run.first);
    events::DeriverConfig c = deriver_config(*e);
    c.read_shared_log = shared_log_reader();
    Deriver deriver(*store, c, Deriver::ManualStart{});
    const Status derived = deriver.run_once();
    EXPECT_TRUE(derived.is_ok()) << derived.to_string();
    EXPECT_NE(store->gap_at_us(), 0);
    EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
    run.shared_log_records = deriver.metrics().shared_log_records.load();
    return run;
  }

  std::vector<Event> handed;
  bool refuse_handover = false;
  struct SharedRecord {
    std::uint64_t lsn = 0;
    std::uint16_t type = 0;
    std::vector<std::byte> payload;
  };
  std::vector<SharedRecord> shared_log;
  std::uint64_t shared_from_lsn = 1;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> asked;
};

TEST_F(DeriverTest, DerivesWhatTheEngineMadeDurableAndHandsItOver) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 5);
  ASSERT_EQ(run(*e, refund("m1", "f1", "o0", 5)).code, ResultCode::ok);
  Deriver deriver(*store, deriver_config(*e), Deriver::ManualStart{});
  ASSERT_TRUE(deriver.run_once().is_ok()) << deriver.last_failure();
  EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
  EXPECT_EQ(floor.load(), store->position() + 1);
  ASSERT_EQ(handed.size(), 11U);  // 5 x (created, paid) + refunded
  EXPECT_EQ(handed.back().type, EventType::payment_refunded);
  auto page = store->list({Id::of("m1"), EventType::payment_paid, std::nullopt, 100});
  ASSERT_TRUE(page.is_ok());
  EXPECT_EQ(page->events.size(), 5U);
  EXPECT_EQ(page->events.front().payment.order_id.view(), "o4");  // newest first
}

TEST_F(DeriverTest, ARestartResumesAfterTheLastBatchWithoutDerivingTwice) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 3);
  {
    Deriver first(*store, deriver_config(*e), Deriver::ManualStart{});
    ASSERT_TRUE(first.run_once().is_ok());
  }
  pay_from_alice(*e, 3, 2);
  open_store();  // a restart of the process
  handed.clear();
  Deriver second(*store, deriver_config(*e), Deriver::ManualStart{});
  ASSERT_TRUE(second.run_once().is_ok());
  ASSERT_EQ(handed.size(), 4U);  // only the two new payments' events
  EXPECT_EQ(handed.front().payment.order_id.view(), "o3");
  EXPECT_EQ(store->list({Id{}, std::nullopt, std::nullopt, 100})->events.size(), 10U);
}

// Commits become durable at the store's flush (about once a second): until then the floor
// stays, so the log keeps what a crash would make the deriver derive again, and it does so.
TEST_F(DeriverTest, ACrashBeforeTheFlushDerivesTheUnflushedBatchesAgain) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 2);
  events::DeriverConfig c = deriver_config(*e);
  c.flush_interval_ms = 3'600'000;
  Deriver deriver(*store, c, Deriver::ManualStart{});
  ASSERT_TRUE(deriver.run_once().is_ok());  // the first flush comes at once
  // What it flushed (the engine's ticks may have added a record derived after the flush).
  const std::uint64_t flushed = floor.load() - 1;
  EXPECT_GE(flushed, 5U);  // the funding and the two payments
  pay_from_alice(*e, 2, 3);
  ASSERT_TRUE(deriver.run_once().is_ok());
  EXPECT_GT(store->position(), flushed);
  EXPECT_EQ(floor.load(), flushed + 1);  // not durable yet
  // The store's files as a crash now leaves them: what the last flush wrote.
  const std::string crashed = dir + "/events-crashed";
  ASSERT_EQ(std::system(("cp -r '" + dir + "/events' '" + crashed + "'").c_str()), 0);
  auto reopened = EventStore::open({crashed});
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  EXPECT_EQ((*reopened)->position(), flushed);
  handed.clear();
  Deriver again(**reopened, deriver_config(*e), Deriver::ManualStart{});
  ASSERT_TRUE(again.run_once().is_ok());
  ASSERT_EQ(handed.size(), 6U);  // the three later payments' events, handed over again
  EXPECT_EQ(handed.front().payment.order_id.view(), "o2");
  EXPECT_EQ((*reopened)->list({Id{}, std::nullopt, std::nullopt, 100})->events.size(), 10U);
}

// What was handed over must be durable before the store's flush makes its events so: a
// failed before_flush (the dispatcher's sync) leaves the flush, and the floor, for later.
TEST_F(DeriverTest, TheFloorWaitsForTheHandedOverEventsToBeDurable) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 2);
  events::DeriverConfig c = deriver_config(*e);
  int syncs = 0;
  bool refuse_sync = true;
  c.before_flush = [&] {
    ++syncs;
    return refuse_sync ? Status(StatusCode::kIoError, "fsync failed") : Status::ok();
  };
  Deriver deriver(*store, c, Deriver::ManualStart{});
  EXPECT_EQ(deriver.run_once().code(), StatusCode::kIoError);
  EXPECT_EQ(syncs, 1);
  EXPECT_EQ(floor.load(), 1U);  // the log keeps everything
  refuse_sync = false;
  ASSERT_TRUE(deriver.run_once().is_ok());
  EXPECT_EQ(syncs, 2);
  EXPECT_EQ(floor.load(), store->position() + 1);
  EXPECT_EQ(handed.size(), 4U);  // handed over once: the batch was committed the first time
}

// A batch whose events could not be handed over is not committed: derived again, and handed
// over, on the next attempt (at least once).
TEST_F(DeriverTest, ABatchNotHandedOverIsNotCommitted) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 2);
  Deriver deriver(*store, deriver_config(*e), Deriver::ManualStart{});
  refuse_handover = true;
  EXPECT_EQ(deriver.run_once().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->position(), 0U);
  EXPECT_TRUE(store->list({Id{}, std::nullopt, std::nullopt, 10})->events.empty());
  refuse_handover = false;
  ASSERT_TRUE(deriver.run_once().is_ok());
  EXPECT_EQ(handed.size(), 4U);
  EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
}

TEST_F(DeriverTest, TheThreadFollowsTheLogAsItGrows) {
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  Deriver deriver(*store, deriver_config(*e));
  pay_from_alice(*e, 0, 20);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store->position() < e->metrics().durable_lsn.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  deriver.stop();
  EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
  EXPECT_EQ(deriver.metrics().events_derived.load(), 40U);
}

TEST_F(DeriverTest, SegmentsItHasNotReadOutliveTheSnapshots) {
  config.snapshots_keep = 1;
  config.wal_segment_bytes = 16 << 10;
  config.wal_batch_bytes_max = 8 << 10;
  config.log_readers_floor_lsn = &floor;
  auto e = open_engine(config);
  e->start();
  fund_alice(*e);
  pay_from_alice(*e, 0, 300);
  ASSERT_TRUE(call(*e, Request{Command{}, 1, RequestOp::snapshot}).snapshot_ok);
  EXPECT_EQ(*wal::first_committed_lsn(e->wal_dir()), 1U) << "the deriver has read nothing";
  Deriver deriver(*store, deriver_config(*e), Deriver::ManualStart{});
  ASSERT_TRUE(deriver.run_once().is_ok()) << deriver.last_failure();
  EXPECT_EQ(handed.size(), 600U);
  pay_from_alice(*e, 300, 1);
  ASSERT_TRUE(call(*e, Request{Command{}, 2, RequestOp::snapshot}).snapshot_ok);
  EXPECT_GT(*wal::first_committed_lsn(e->wal_dir()), 1U) << "read, so removable";
}

TEST_F(DeriverTest, ALogThatNoLongerHoldsUnseenRecordsIsAGapSaidOnce) {
  std::uint64_t first = 0;
  auto e = engine_without_its_first_records(&first);
  ASSERT_FALSE(HasFailure());
  Deriver deriver(*store, deriver_config(*e), Deriver::ManualStart{});
  ASSERT_TRUE(deriver.run_once().is_ok()) << deriver.last_failure();
  EXPECT_NE(store->gap_at_us(), 0);
  EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
  ASSERT_FALSE(handed.empty());
  EXPECT_GE(handed.front().lsn, first);
}

// A cluster member started from a snapshot: what its log no longer holds, the shared log does
// (here a copy of the whole log made before the snapshot removed its start), and every event
// is derived, in order, with no gap.
TEST_F(DeriverTest, WhatTheLogNoLongerHoldsIsReadFromTheSharedLog) {
  std::uint64_t first = 0;
  auto e = engine_without_its_first_records(&first);
  ASSERT_FALSE(HasFailure());
  events::DeriverConfig c = deriver_config(*e);
  c.read_shared_log = shared_log_reader();
  Deriver deriver(*store, c, Deriver::ManualStart{});
  ASSERT_TRUE(deriver.run_once().is_ok()) << deriver.last_failure();
  EXPECT_EQ(store->gap_at_us(), 0);
  EXPECT_EQ(store->position(), e->metrics().durable_lsn.load());
  ASSERT_EQ(handed.size(), 600U) << "created and paid, of each payment";
  for (std::size_t i = 1; i < handed.size(); ++i) ASSERT_LE(handed[i - 1].lsn, handed[i].lsn);
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.front().first, 1U);
  EXPECT_EQ(asked.back().second, first - 1) << "the local log's records are read locally";
  EXPECT_EQ(deriver.metrics().shared_log_records.load(), first - 1);
}

// The shared log no longer holds them either (past the stream's retention): a gap, as on one node.
TEST_F(DeriverTest, WhatTheSharedLogNoLongerHoldsEitherIsAGap) {
  const GapRun run = derive_past_a_gap([](std::uint64_t first) { return first + 100; });  // none of it
  ASSERT_FALSE(handed.empty());
  EXPECT_GE(handed.front().lsn, run.first);
  EXPECT_EQ(run.shared_log_records, 0U);
}

// The shared log holds the end of the gap only: the gap ends where it resumes, and what it
// holds is derived.
TEST_F(DeriverTest, WhatTheSharedLogStillHoldsOfTheGapIsDerived) {
  const GapRun run = derive_past_a_gap([](std::uint64_t first) { return first / 2; });
  ASSERT_FALSE(handed.empty());
  EXPECT_GE(handed.front().lsn, shared_from_lsn);
  EXPECT_LT(handed.front().lsn, run.first) << "the stream's part of the gap gave events";
  EXPECT_EQ(run.shared_log_records, run.first - shared_from_lsn);
}

// The shared log does not answer (NATS is down): nothing is skipped, the batch is tried again.
TEST_F(DeriverTest, ASharedLogThatDoesNotAnswerIsRetriedNotSkipped) {
  std::uint64_t first = 0;
  auto e = engine_without_its_first_records(&first);
  ASSERT_FALSE(HasFailure());
  events::DeriverConfig c = deriver_config(*e);
  c.read_shared_log = [](std::uint64_t, std::uint64_t, wal::CommittedVisitor, std::uint64_t*) {
    return Status(StatusCode::kUnavailable, "no NATS server answered");
  };
  Deriver deriver(*store, c, Deriver::ManualStart{});
  EXPECT_EQ(deriver.run_once().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->position(), 0U);
  EXPECT_EQ(store->gap_at_us(), 0);
  EXPECT_TRUE(handed.empty());
}

// A skip is written durably at once: the batches derived before it in the same flush interval
// are made durable first, or a crash would leave the skip without them.
TEST_F(DeriverTest, WhatWasDerivedBeforeASkipIsDurableWithIt) {
  std::uint64_t first = 0;
  auto e = engine_without_its_first_records(&first);
  ASSERT_FALSE(HasFailure());
  events::DeriverConfig c = deriver_config(*e);
  c.flush_interval_ms = 3'600'000;
  c.records_per_batch_max = 10;
  bool ended = false;  // the shared log loses its start after the first batches
  c.read_shared_log = [&, read = shared_log_reader()](std::uint64_t from, std::uint64_t to,
                                                      wal::CommittedVisitor visit, std::uint64_t* resumes_at) {
    if (from > 30 && !ended) {
      ended = true;
      shared_from_lsn = 50;
    }
    return read(from, to, visit, resumes_at);
  };
  {
    Deriver deriver(*store, c, Deriver::ManualStart{});
    ASSERT_TRUE(deriver.run_once().is_ok()) << deriver.last_failure();
  }
  // The store's files as a crash now leaves them: what was flushed, and the skip.
  const std::string crashed = dir + "/events-crashed";
  ASSERT_EQ(std::system(("cp -r '" + dir + "/events' '" + crashed + "'").c_str()), 0);
  auto reopened = EventStore::open({crashed});
  ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
  EXPECT_GE((*reopened)->position(), 49U);
  // Every event of LSN 1..30, derived before the skip, is in it.
  std::ptrdiff_t kept_before_skip = 0;
  events::EventListQuery query{Id{}, std::nullopt, std::nullopt, 100};
  for (;;) {
    StatusOr<events::EventListPage> page = (*reopened)->list(query);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    kept_before_skip += std::count_if(page->events.begin(), page->events.end(), [](const Event& ev) { return ev.lsn <= 30; });
    if (!page->has_more || page->events.empty()) break;
    query.starting_after = events::EventKey{page->events.back().lsn, page->events.back().index};
  }
  const auto handed_before_skip = std::count_if(handed.begin(), handed.end(), [](const Event& ev) { return ev.lsn <= 30; });
  EXPECT_GT(handed_before_skip, 0);
  EXPECT_EQ(kept_before_skip, handed_before_skip);
}

// Stopping the thread while it catches up from the shared log ends it after the current batch.
TEST_F(DeriverTest, AStopDuringACatchUpEndsItAfterTheCurrentBatch) {
  std::uint64_t first = 0;
  auto e = engine_without_its_first_records(&first);
  ASSERT_FALSE(HasFailure());
  events::DeriverConfig c = deriver_config(*e);
  c.records_per_batch_max = 5;
  std::atomic<int> calls{0};
  c.read_shared_log = [&, read = shared_log_reader()](std::uint64_t from, std::uint64_t to,
                                                      wal::CommittedVisitor visit, std::uint64_t* resumes_at) {
    calls.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return read(from, to, visit, resumes_at);
  };
  Deriver deriver(*store, c);
  while (calls.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  deriver.stop();
  EXPECT_LT(store->position(), first - 1) << "the catch-up was not finished";
}

// A log written before outcomes were logged (record type 1): those records give no events and
// their PENDING payments are unknown, so a later tick expiring them is not corruption; and
// once such a tick has expired everything due, the gap is over.
TEST_F(DeriverTest, RecordsWithoutOutcomesAreReadAsAGap) {
  State state;
  std::int64_t t = 1'700'000'000'000'000;
  wal::Options options;
  options.dir = dir + "/wal";
  options.force_fallback = true;
  std::unique_ptr<wal::Log> log;
  wal::RecoveryReport report;
  ASSERT_TRUE(wal::Log::open(options, &log, &report).is_ok());
  const auto append = [&](Command c, bool with_outcome) {
    c.timestamp_us = (t += 1'000'000);
    const Result r = apply(state, c);
    ASSERT_TRUE(r.mutated);
    std::vector<std::byte> payload(command_record_bytes_max);
    payload.resize(with_outcome ? encode_command_record(c, outcome_of(r), payload) : encode_command(c, payload));
    std::uint64_t lsn = 0;
    ASSERT_TRUE(log->append(with_outcome ? record_type_command_outcome : record_type_command, payload, &lsn).is_ok());
  };
  append(add_channel("alipay"), false);
  append(pay_external("m1", "r1", "o-1", 70, "alipay"), false);
  append(pay_external("m1", "r2", "o-2", 70, "alipay"), true);
  t += 2 * pending_lifetime_default_us;
  append(tick(pending_lifetime_default_us), true);  // expires both
  ASSERT_TRUE(log->submit().is_ok());
  log->wait();
  std::atomic<std::uint64_t> durable{log->durable_lsn()};
  events::DeriverConfig c;
  c.wal_dir = dir + "/wal";
  c.durable_lsn = &durable;
  c.before_commit = [this](std::span<const Event> es) {
    handed.insert(handed.end(), es.begin(), es.end());
    return Status::ok();
  };
  Deriver deriver(*store, c, Deriver::ManualStart{});
  const Status derived = deriver.run_once();
  ASSERT_TRUE(derived.is_ok()) << derived.to_string();
  EXPECT_EQ(store->position(), 4U);
  // The tick came a whole lifetime after the last record without an outcome, and stopped short
  // of its limit: every payment made before it had expired, so the gap is over.
  EXPECT_EQ(store->gap_at_us(), 0);
  ASSERT_EQ(handed.size(), 2U);  // o-2 created, then expired; o-1 unknown
  EXPECT_EQ(handed[1].type, EventType::payment_cancelled);
  EXPECT_EQ(handed[1].payment.order_id.view(), "o-2");
}

}  // namespace
}  // namespace paycore::testing
