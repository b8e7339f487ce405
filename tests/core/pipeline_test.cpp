// Where the time goes (core/pipeline.hpp, core/release_queue.hpp, core/stall_watch.hpp): the
// stages between a request's stamps, the stamps the release queue adds, and the core's stall
// detector's causes.

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "base/time.hpp"
#include "core/pipeline.hpp"
#include "core/release_queue.hpp"
#include "core/stall_watch.hpp"

namespace paycore {
namespace {

std::uint64_t count_in(const StageHistograms& h, Stage stage, std::size_t bucket) {
  return h.duration_us_log2[static_cast<std::size_t>(stage)][bucket].load();
}

std::uint64_t count_of(const StageHistograms& h, Stage stage) {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b < StageHistograms::buckets_count; ++b) total += count_in(h, stage, b);
  return total;
}

PipelineStamps stamps_every_ms() {
  PipelineStamps s;
  std::int64_t* ends[] = {&s.read_ns,    &s.submitted_ns, &s.taken_ns,
                          &s.applied_ns, &s.write_submitted_ns, &s.durable_ns,
                          &s.released_ns, &s.received_ns, &s.answered_ns};
  std::int64_t at_ns = 5'000'000'000;
  for (std::int64_t* end : ends) {
    *end = at_ns;
    at_ns += 1'000'000;  // 1000 us: bucket 10 (512..1023 us holds < 1024)
  }
  return s;
}

TEST(StageHistograms, EachStageCountsTheTimeBetweenItsStamps) {
  StageHistograms h;
  h.record(stamps_every_ms());
  for (std::size_t s = 0; s + 1 < stages_count; ++s) {
    EXPECT_EQ(count_in(h, static_cast<Stage>(s), 10), 1u) << stage_name(static_cast<Stage>(s));
  }
  // read -> answered: 8 ms = 8000 us, in bucket 13 (4096..8191).
  EXPECT_EQ(count_in(h, Stage::total, 13), 1u);
}

TEST(StageHistograms, AStageWithAnEndNotStampedIsNotCounted) {
  StageHistograms h;
  PipelineStamps s = stamps_every_ms();
  s.read_ns = 0;  // an answer the edge never timed: no parse, no total
  h.record(s);
  EXPECT_EQ(count_of(h, Stage::parse), 0u);
  EXPECT_EQ(count_of(h, Stage::total), 0u);
  EXPECT_EQ(count_of(h, Stage::ring_wait), 1u);
}

TEST(StageHistograms, AnEndBeforeItsStartCountsAsZero) {
  StageHistograms h;
  PipelineStamps s = stamps_every_ms();
  s.durable_ns = s.write_submitted_ns - 5'000;
  h.record(s);
  EXPECT_EQ(count_in(h, Stage::write_fsync, 0), 1u);
}

TEST(StageHistograms, QuantilesAreTheBoundsOfTheirBuckets) {
  StageHistograms h;
  PipelineStamps s;
  s.taken_ns = 1'000'000;
  s.applied_ns = s.taken_ns + 5'000;  // 5 us: bucket 3, below 8 us
  for (int i = 0; i < 995; ++i) h.record(s);
  s.applied_ns = s.taken_ns + 1'000'000;  // 1000 us: bucket 10, below 1024 us
  for (int i = 0; i < 5; ++i) h.record(s);
  EXPECT_EQ(h.count(Stage::apply), 1000u);
  EXPECT_EQ(h.quantile_us(Stage::apply, 0.5), 8u);
  EXPECT_EQ(h.quantile_us(Stage::apply, 0.99), 8u);
  EXPECT_EQ(h.quantile_us(Stage::apply, 0.999), 1024u);
  EXPECT_EQ(h.quantile_us(Stage::parse, 0.5), 0u);  // none counted
  StageHistograms sum;
  sum.add(h);
  sum.add(h);
  EXPECT_EQ(sum.count(Stage::apply), 2000u);
  EXPECT_NE(stages_report(sum).find("apply"), std::string::npos);
  EXPECT_EQ(stages_report(sum).find("parse"), std::string::npos);
}

// A release queue over one producer ring.
struct Queue {
  std::vector<std::unique_ptr<SpscRing<Response>>> rings;
  std::vector<int> fds;
  std::unique_ptr<ReleaseQueue> queue;

  Queue() {
    rings.push_back(std::make_unique<SpscRing<Response>>(16));
    fds.push_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    queue = std::make_unique<ReleaseQueue>(rings, fds, 16);
  }
  ~Queue() { ::close(fds[0]); }
  void enqueue(std::uint64_t token, std::uint64_t lsn) {
    queue->note_taken(0);
    queue->enqueue(0, token, Result{}, lsn, PipelineStamps{.submitted_ns = 10, .taken_ns = 20}, false);
  }
  Response take() {
    Response r;
    EXPECT_EQ(rings[0]->pop(std::span(&r, 1)), 1u);
    return r;
  }
};

TEST(ReleaseQueueStamps, AnAnswerCarriesEachMomentTheCorePassed) {
  Queue q;
  q.enqueue(1, 7);
  q.queue->stamp_applied(30);
  q.queue->stamp_write_submitted(40, 6);
  ASSERT_TRUE(q.queue->release(7, 50));
  const Response r = q.take();
  EXPECT_EQ(r.stamps.submitted_ns, 10);
  EXPECT_EQ(r.stamps.taken_ns, 20);
  EXPECT_EQ(r.stamps.applied_ns, 30);
  EXPECT_EQ(r.stamps.write_submitted_ns, 40);
  EXPECT_EQ(r.stamps.durable_ns, 50);
  EXPECT_GE(r.stamps.released_ns, 50);
}

TEST(ReleaseQueueStamps, AnAnswerAlreadyDurableWaitedForNoWrite) {
  Queue q;
  q.enqueue(1, 5);  // observed LSN 5, durable since long before (seen at 15)
  q.queue->stamp_applied(30);
  q.queue->stamp_write_submitted(40, 6);  // a later batch: not this answer's
  ASSERT_TRUE(q.queue->release(6, 15));
  const Response r = q.take();
  EXPECT_EQ(r.stamps.write_submitted_ns, 30);
  EXPECT_EQ(r.stamps.durable_ns, 30);
}

TEST(ReleaseQueueStamps, EachBatchStampsOnlyTheAnswersQueuedBeforeIt) {
  Queue q;
  q.enqueue(1, 7);
  q.queue->stamp_applied(30);
  q.queue->stamp_write_submitted(40, 6);
  q.enqueue(2, 8);
  q.queue->stamp_applied(45);
  q.queue->stamp_write_submitted(60, 7);
  ASSERT_TRUE(q.queue->release(8, 70));
  const Response first = q.take();
  const Response second = q.take();
  EXPECT_EQ(first.stamps.applied_ns, 30);
  EXPECT_EQ(first.stamps.write_submitted_ns, 40);
  EXPECT_EQ(second.stamps.applied_ns, 45);
  EXPECT_EQ(second.stamps.write_submitted_ns, 60);
}

std::uint64_t stalls_of(const StallMetrics& m, StallCause cause) {
  return m.count[static_cast<std::size_t>(cause)].load();
}

void spin_for(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

TEST(StallWatch, AShortTurnIsNoStall) {
  StallMetrics m;
  StallWatch watch(m);
  watch.begin(0, 0, false);
  watch.lap(StallCause::long_batch);
  watch.end(0, 0);
  for (std::size_t c = 0; c < stall_causes_count; ++c) EXPECT_EQ(m.count[c].load(), 0u);
  EXPECT_EQ(m.turn_us_max.load(), 0u);
}

TEST(StallWatch, ALongTurnIsCountedUnderItsLongestPhase) {
  StallMetrics m;
  StallWatch watch(m);
  watch.begin(0, 0, false);
  watch.lap(StallCause::long_batch);
  spin_for(std::chrono::microseconds(1500));
  watch.lap(StallCause::tick);
  watch.end(0, 0);
  EXPECT_EQ(stalls_of(m, StallCause::tick), 1u);
  EXPECT_GE(m.turn_us_total[static_cast<std::size_t>(StallCause::tick)].load(), 1500u);
  EXPECT_GE(m.turn_us_max.load(), 1500u);
}

// A 1.5 ms turn spent applying, with the log's and the indexes' counters moving as given:
// the cause it is counted under.
StallCause cause_of_long_apply(std::uint64_t segments_from, std::uint64_t segments_to,
                               std::uint64_t growths_from, std::uint64_t growths_to) {
  StallMetrics m;
  StallWatch watch(m);
  watch.begin(segments_from, growths_from, false);
  spin_for(std::chrono::microseconds(1500));
  watch.lap(StallCause::long_batch);
  watch.end(segments_to, growths_to);
  for (std::size_t c = 0; c < stall_causes_count; ++c) {
    if (m.count[c].load() == 1) return static_cast<StallCause>(c);
  }
  ADD_FAILURE() << "no stall counted";
  return StallCause::release;
}

TEST(StallWatch, ASegmentMadeDuringTheTurnIsTheCause) {
  EXPECT_EQ(cause_of_long_apply(3, 4, 0, 0), StallCause::segment_rotation);
}

TEST(StallWatch, AnIndexGrowingWhileApplyingIsTheCause) {
  EXPECT_EQ(cause_of_long_apply(0, 0, 9, 10), StallCause::index_growth);
  EXPECT_EQ(cause_of_long_apply(0, 0, 9, 9), StallCause::long_batch);
}

// Blocked in a system call (fdatasync, a wait for the batch in flight) is the phase's time,
// not preemption: the thread gave the CPU up itself.
// A turn that sleeps in a system call is counted under the phase that slept. On a loaded
// machine the scheduler may also preempt the thread in that turn (an involuntary switch), and
// the turn is then rightly `preempted`: so up to 5 turns, and one must be the phase's. A
// watch that never blamed the phase fails all 5.
TEST(StallWatch, ATurnBlockedInASystemCallIsItsPhasesNotPreempted) {
  bool blamed_the_phase = false;
  for (int attempt = 0; attempt < 5 && !blamed_the_phase; ++attempt) {
    StallMetrics m;
    StallWatch watch(m);
    watch.begin(0, 0, true);
    watch.lap(StallCause::long_batch);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    watch.lap(StallCause::log_submit);
    watch.end(0, 0);
    blamed_the_phase = stalls_of(m, StallCause::log_submit) == 1u &&
                       stalls_of(m, StallCause::preempted) == 0u;
  }
  EXPECT_TRUE(blamed_the_phase);
}

}  // namespace
}  // namespace paycore
