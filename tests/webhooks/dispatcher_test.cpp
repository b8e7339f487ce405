// The dispatcher (webhooks/dispatcher.hpp) against real receivers on 127.0.0.1, with a test
// clock for the schedule.
#include "webhooks/dispatcher.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <span>
#include <thread>

#include "base/time.hpp"
#include "tests/webhooks/test_receiver.hpp"
#include "webhooks/signature.hpp"

namespace paycore::webhooks {
namespace {

using test::Reply;
using test::TestReceiver;

constexpr std::int64_t t0_us = 1'700'000'000'000'000;

bool wait_until(const std::function<bool()>& done, int timeout_ms) {
  const std::int64_t end_ms = monotonic_ms() + timeout_ms;
  while (!done()) {
    if (monotonic_ms() > end_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("paycore-webhooks-dispatcher-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    config_.store.dir = dir_.string();
    config_.sender.policy.http_hosts_allowed = {"127.0.0.1"};
    config_.sender.policy.addresses_allowed = {*parse_ip_network("127.0.0.0/8")};
    config_.sender.timeout_ms = 2'000;
    config_.backoff.jitter_permille = 0;
    config_.idle_wait_ms = 20;
    config_.jitter_seed = 1;
    config_.clock_us = [this] { return clock_us_.load(); };
  }
  void TearDown() override {
    dispatcher_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start() {
    StatusOr<std::unique_ptr<Dispatcher>> started = Dispatcher::start(config_);
    ASSERT_TRUE(started.is_ok()) << started.status().to_string();
    dispatcher_ = std::move(*started);
  }
  void step_to(std::int64_t at_us) {
    clock_us_ = at_us;
    dispatcher_->wake();
  }
  static Event event(const std::string& id) {
    return {.id = id, .merchant_id = "m_001", .type = "payment.paid",
            .body = R"({"id":")" + id + R"(","type":"payment.paid"})", .created_at_us = t0_us};
  }
  Delivery delivery(const std::string& event_id, std::size_t index = 0) {
    StatusOr<std::vector<Delivery>> all = dispatcher_->deliveries_of(event_id);
    EXPECT_TRUE(all.is_ok());
    EXPECT_GT(all->size(), index);
    return all->size() > index ? (*all)[index] : Delivery{};
  }
  // Waits until the delivery has `attempts` attempts recorded.
  bool wait_attempts(const std::string& event_id, std::uint32_t attempts, int timeout_ms = 3'000) {
    return wait_until([&] { return delivery(event_id).attempts_count >= attempts; }, timeout_ms);
  }

  std::filesystem::path dir_;
  std::atomic<std::int64_t> clock_us_{t0_us};
  DispatcherConfig config_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, A200IsDeliveredOnceAndSigned) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  const Delivery d = delivery("evt_1");
  EXPECT_EQ(d.state, DeliveryState::kDelivered);
  EXPECT_EQ(d.attempts[0].http_status, 200);
  EXPECT_TRUE(d.secret.empty());  // never handed out
  test::ReceivedRequest got = receiver.requests().at(0);
  EXPECT_EQ(verify_signature(got.headers["paycore-signature"], "whsec_1", got.body,
                             t0_us / us_per_second),
            SignatureCheck::kValid);
  EXPECT_EQ(dispatcher_->stats().delivered, 1U);
  EXPECT_EQ(dispatcher_->stats().pending, 0U);
  // The same event again (a replay by the events area) sends nothing more.
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  EXPECT_FALSE(receiver.wait_for_count(2, 200));
}

TEST_F(DispatcherTest, RetriesFollowTheScheduleWithTheTestClock) {
  TestReceiver receiver([](std::size_t i) { return i < 2 ? Reply::kServerError : Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  EXPECT_EQ(delivery("evt_1").next_attempt_at_us, t0_us + 5'000'000);  // 5 s after the failure
  step_to(t0_us + 4'999'999);
  EXPECT_FALSE(receiver.wait_for_count(2, 150));  // not due yet
  step_to(t0_us + 5'000'000);
  ASSERT_TRUE(wait_attempts("evt_1", 2));
  EXPECT_EQ(delivery("evt_1").next_attempt_at_us, t0_us + 15'000'000);  // then 10 s
  step_to(t0_us + 15'000'000);
  ASSERT_TRUE(wait_attempts("evt_1", 3));
  const Delivery d = delivery("evt_1");
  EXPECT_EQ(d.state, DeliveryState::kDelivered);
  ASSERT_EQ(d.attempts.size(), 3U);
  EXPECT_EQ(d.attempts[0].started_at_us, t0_us);
  EXPECT_EQ(d.attempts[1].started_at_us, t0_us + 5'000'000);
  EXPECT_EQ(d.attempts[2].started_at_us, t0_us + 15'000'000);
  EXPECT_EQ(d.attempts[1].http_status, 500);
  EXPECT_EQ(dispatcher_->stats().attempts_failed, 2U);
}

TEST_F(DispatcherTest, PastTheHorizonTheDeliveryIsGivenUp) {
  config_.backoff.horizon_ms = 10'000;
  TestReceiver receiver([](std::size_t) { return Reply::kServerError; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  step_to(t0_us + 5'000'000);  // attempt 2; the next would be at +15 s, past +10 s
  ASSERT_TRUE(wait_attempts("evt_1", 2));
  const Delivery d = delivery("evt_1");
  EXPECT_EQ(d.state, DeliveryState::kFailed);
  EXPECT_EQ(d.last_error, "retry horizon passed");
  EXPECT_EQ(dispatcher_->stats().given_up, 1U);
  // Redeliver: exactly one more attempt, then FAILED again.
  ASSERT_TRUE(dispatcher_->redeliver("evt_1").is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 3));
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kFailed);
  EXPECT_FALSE(receiver.wait_for_count(4, 150));
}

TEST_F(DispatcherTest, AnEndpointDownThenUpIsDeliveredByARetry) {
  const std::uint16_t port = test::unused_port();
  start();
  const Endpoint endpoint{.id = "we_1", .url = "http://127.0.0.1:" + std::to_string(port) + "/hook",
                          .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  EXPECT_EQ(delivery("evt_1").attempts[0].http_status, 0);
  EXPECT_FALSE(delivery("evt_1").attempts[0].error.empty());
  TestReceiver receiver([](std::size_t) { return Reply::kOk; }, port);
  step_to(t0_us + 5'000'000);
  ASSERT_TRUE(wait_attempts("evt_1", 2));
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kDelivered);
}

TEST_F(DispatcherTest, PendingDeliveriesAreSentAfterARestart) {
  const std::uint16_t port = test::unused_port();
  start();
  std::vector<Endpoint> endpoints{{.id = "we_1", .url = "http://127.0.0.1:" + std::to_string(port) + "/hook",
                                   .secret = "whsec_1"}};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(dispatcher_->enqueue(event("evt_" + std::to_string(i)), endpoints).is_ok());
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(wait_attempts("evt_" + std::to_string(i), 1));
  EXPECT_EQ(dispatcher_->stats().pending, 5U);
  dispatcher_.reset();  // the process stops with 5 deliveries PENDING
  TestReceiver receiver([](std::size_t) { return Reply::kOk; }, port);
  clock_us_ = t0_us + 5'000'000;
  start();  // a new process on the same store
  ASSERT_TRUE(receiver.wait_for_count(5, 3'000));
  ASSERT_TRUE(wait_until([&] { return dispatcher_->stats().pending == 0; }, 3'000));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(delivery("evt_" + std::to_string(i)).state, DeliveryState::kDelivered);
  }
}

TEST_F(DispatcherTest, ADeadEndpointDoesNotDelayAnotherEndpoint) {
  config_.sender.timeout_ms = 3'000;
  TestReceiver slow([](std::size_t) { return Reply::kHang; });
  TestReceiver fast([](std::size_t) { return Reply::kOk; });
  start();
  const Endpoint slow_endpoint{.id = "we_slow", .url = slow.url(), .secret = "s1"};
  const Endpoint fast_endpoint{.id = "we_fast", .url = fast.url(), .secret = "s2"};
  constexpr int events_count = 40;
  const std::int64_t started_ms = monotonic_ms();
  for (int i = 0; i < events_count; ++i) {  // the slow endpoint's work is enqueued first
    const std::string id = "evt_" + std::to_string(i);
    ASSERT_TRUE(dispatcher_->enqueue(event(id + "_slow"), {&slow_endpoint, 1}).is_ok());
    ASSERT_TRUE(dispatcher_->enqueue(event(id + "_fast"), {&fast_endpoint, 1}).is_ok());
  }
  ASSERT_TRUE(fast.wait_for_count(events_count, 2'500));
  ASSERT_TRUE(wait_until([&] { return dispatcher_->stats().delivered == events_count; }, 2'500));
  const std::int64_t fast_done_ms = monotonic_ms() - started_ms;
  // The slow endpoint holds its in-flight slots and nothing of it has finished yet.
  EXPECT_EQ(slow.count(), config_.in_flight_per_endpoint_max);
  EXPECT_EQ(dispatcher_->stats().attempts_failed, 0U);
  EXPECT_LT(fast_done_ms, config_.sender.timeout_ms);
  std::printf("[ figure ] %d deliveries to a fast endpoint done in %lld ms while a dead one hangs "
              "(timeout %lld ms)\n",
              events_count, static_cast<long long>(fast_done_ms),
              static_cast<long long>(config_.sender.timeout_ms));
  slow.stop();
}

TEST_F(DispatcherTest, RedeliverQueuesOneMoreAttempt) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  ASSERT_TRUE(dispatcher_->redeliver("evt_1").is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 2));
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kDelivered);
  EXPECT_EQ(receiver.count(), 2U);
  EXPECT_EQ(dispatcher_->redeliver("evt_unknown").code(), StatusCode::kNotFound);
}

// In a cluster, an event handed over older than the changes stream keeps (event_age_max_us)
// gets no delivery: no member could learn it was finished. It is kept for a redeliver, which
// takes any age.
TEST_F(DispatcherTest, AnEventOlderThanTheAgeLimitGetsNoDeliveryUntilRedelivered) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  config_.event_age_max_us = 3'600'000'000;
  clock_us_ = t0_us + config_.event_age_max_us + 1;  // event() is made at t0_us
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  Event fresh = event("evt_fresh");
  fresh.created_at_us = t0_us + 2;
  const Event old = event("evt_old");
  const Dispatcher::EventToDeliver batch[] = {{&old, {&endpoint, 1}}, {&fresh, {&endpoint, 1}}};
  ASSERT_TRUE(dispatcher_->enqueue_batch(batch, /*sync=*/true).is_ok());
  ASSERT_TRUE(wait_attempts("evt_fresh", 1));
  EXPECT_TRUE(dispatcher_->deliveries_of("evt_old")->empty());
  EXPECT_EQ(dispatcher_->stats().events_too_old, 1U);
  EXPECT_EQ(dispatcher_->stats().enqueued, 1U);
  ASSERT_TRUE(dispatcher_->enqueue(old, {&endpoint, 1}).is_ok());  // as a redeliver does
  ASSERT_TRUE(wait_attempts("evt_old", 1));
  EXPECT_EQ(delivery("evt_old").state, DeliveryState::kDelivered);
}

TEST_F(DispatcherTest, ADisabledEndpointGetsNothingMore) {
  const std::uint16_t port = test::unused_port();
  start();
  const Endpoint endpoint{.id = "we_1", .url = "http://127.0.0.1:" + std::to_string(port) + "/",
                          .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));  // refused: PENDING, due in 5 s
  ASSERT_TRUE(dispatcher_->disable_endpoint("we_1").is_ok());
  step_to(t0_us + 5'000'000);
  ASSERT_TRUE(wait_until([&] { return delivery("evt_1").state == DeliveryState::kFailed; }, 3'000));
  EXPECT_EQ(delivery("evt_1").last_error, "endpoint disabled");
  EXPECT_EQ(delivery("evt_1").attempts_count, 1U);
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_2"), {&endpoint, 1}).is_ok());
  EXPECT_TRUE(dispatcher_->deliveries_of("evt_2")->empty());
}

TEST_F(DispatcherTest, AFullNoticeQueueLosesNothing) {
  config_.notices_max = 1;
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  start();
  std::vector<Endpoint> endpoints;
  for (int i = 0; i < 3; ++i) {
    endpoints.push_back({.id = "we_" + std::to_string(i), .url = receiver.url(), .secret = "s"});
  }
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(dispatcher_->enqueue(event("evt_" + std::to_string(i)), endpoints).is_ok());
  }
  ASSERT_TRUE(wait_until([&] { return dispatcher_->stats().delivered == 90; }, 5'000));
  EXPECT_EQ(receiver.count(), 90U);
}

TEST_F(DispatcherTest, APolicyChangedSinceCreationFailsTheAttemptWithoutSending) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  config_.sender.policy.http_hosts_allowed.clear();  // http no longer allowed
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  EXPECT_EQ(delivery("evt_1").attempts[0].error.rfind("url_http_not_allowed", 0), 0U);
  EXPECT_EQ(receiver.count(), 0U);
}

// A figure, not a timed assertion: events enqueued one by one and in batches of 100 (the
// enqueue rate: one synced RocksDB batch per call), with the dispatcher's thread delivering
// them meanwhile; then the delivery rate of a restart that resumes them all.
TEST_F(DispatcherTest, DeliveriesPerSecondToALocalReceiver) {
  config_.clock_us = {};  // the wall clock: this is a measurement
  config_.in_flight_per_endpoint_max = 8;
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  constexpr int events_count = 1000;
  constexpr int endpoints_count = 4;
  std::vector<Endpoint> endpoints;
  for (int i = 0; i < endpoints_count; ++i) {
    endpoints.push_back({.id = "we_" + std::to_string(i), .url = receiver.url(), .secret = "s"});
  }
  std::vector<Event> events;
  for (int i = 0; i < events_count; ++i) {
    events.push_back(event("evt_" + std::to_string(i)));
    events.back().created_at_us = wall_clock_us();
  }
  start();
  const std::int64_t one_by_one_ns = monotonic_ns();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(dispatcher_->enqueue(events[static_cast<std::size_t>(i)], endpoints).is_ok());
  const std::int64_t batched_ns = monotonic_ns();
  for (std::size_t first = 200; first < events.size(); first += 100) {
    std::vector<Dispatcher::EventToDeliver> batch;
    for (std::size_t i = first; i < first + 100; ++i) batch.push_back({&events[i], endpoints});
    ASSERT_TRUE(dispatcher_->enqueue_batch(batch, /*sync=*/true).is_ok());
  }
  const std::int64_t enqueued_ns = monotonic_ns();
  constexpr std::uint64_t deliveries_count = std::uint64_t{events_count} * endpoints_count;
  ASSERT_TRUE(wait_until([&] { return dispatcher_->stats().delivered == deliveries_count; }, 60'000));
  const std::int64_t delivered_ns = monotonic_ns();
  EXPECT_EQ(receiver.count(), deliveries_count);
  std::printf("[ figure ] enqueue one by one: %.0f events/s; in batches of 100: %.0f events/s "
              "(%d endpoints each)\n",
              200 / (static_cast<double>(batched_ns - one_by_one_ns) / 1e9),
              800 / (static_cast<double>(enqueued_ns - batched_ns) / 1e9), endpoints_count);
  std::printf("[ figure ] %llu deliveries done %.2f s after the first enqueue: %.0f deliveries/s "
              "(in flight <= %zu per endpoint, keep-alive receiver on 127.0.0.1)\n",
              static_cast<unsigned long long>(deliveries_count),
              static_cast<double>(delivered_ns - one_by_one_ns) / 1e9,
              static_cast<double>(deliveries_count) /
                  (static_cast<double>(delivered_ns - one_by_one_ns) / 1e9),
              config_.in_flight_per_endpoint_max);
}

// ---- In a cluster: a member that may not send, and the changes the members exchange ----------

TEST_F(DispatcherTest, AMemberThatMayNotSendSendsNothingUntilItMay) {
  std::atomic<bool> may_send{false};
  config_.may_send = [&may_send] { return may_send.load(); };
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  EXPECT_FALSE(receiver.wait_for_count(1, 300));
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kPending);
  may_send = true;  // it became primary: what its store holds PENDING goes now
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kDelivered);
  EXPECT_EQ(receiver.requests().size(), 1U);
  dispatcher_.reset();  // before may_send goes
}

TEST_F(DispatcherTest, EveryAttemptAndRedeliverIsReportedAsStored) {
  std::mutex mutex;
  std::vector<Delivery> reported;
  std::vector<bool> with_event;
  config_.on_changed = [&](std::span<const DeliveryChange> changed) {
    const std::lock_guard lock(mutex);
    for (const DeliveryChange& c : changed) {
      reported.push_back(c.delivery);
      with_event.push_back(c.event.has_value() && c.event->body == event("evt_1").body);
    }
  };
  TestReceiver receiver([](std::size_t i) { return i == 0 ? Reply::kServerError : Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  step_to(t0_us + 5'000'000);
  ASSERT_TRUE(wait_attempts("evt_1", 2));
  ASSERT_TRUE(dispatcher_->redeliver("evt_1").is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 3));
  dispatcher_.reset();
  ASSERT_EQ(reported.size(), 4U);  // failed attempt, delivered, redeliver, delivered again
  EXPECT_EQ(reported[0].state, DeliveryState::kPending);
  EXPECT_EQ(reported[0].attempts_count, 1U);
  EXPECT_EQ(reported[0].next_attempt_at_us, t0_us + 5'000'000);
  EXPECT_EQ(reported[1].state, DeliveryState::kDelivered);
  EXPECT_EQ(reported[2].state, DeliveryState::kPending);
  EXPECT_EQ(reported[2].attempts_count, 2U);
  EXPECT_EQ(reported[3].attempts_count, 3U);
  EXPECT_EQ(reported[3].secret, "whsec_1");  // as stored: check_delivery holds for it
  // A PENDING one carries its event (another member may not hold it), a finished one not.
  EXPECT_EQ(with_event, (std::vector<bool>{true, false, true, false}));
}

TEST_F(DispatcherTest, AnAppliedRedeliverIsSentByTheMemberThatSends) {
  TestReceiver receiver([](std::size_t) { return Reply::kOk; });
  start();
  const Endpoint endpoint{.id = "we_1", .url = receiver.url(), .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  ASSERT_TRUE(wait_attempts("evt_1", 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its slot's bound moves past it
  // A redeliver taken by the old primary reaches this one (now sending) late: the same
  // attempts, PENDING and due before what its slot looks at.
  Delivery change = delivery("evt_1");
  change.secret = "whsec_1";
  change.state = DeliveryState::kPending;
  change.next_attempt_at_us = t0_us - 1;
  change.finished_at_us = 0;
  const DeliveryChange applied{change, std::nullopt};
  ASSERT_TRUE(dispatcher_->apply_changes({&applied, 1}).is_ok());
  ASSERT_TRUE(receiver.wait_for_count(2, 3'000)) << "the applied redeliver was never sent";
  ASSERT_TRUE(wait_attempts("evt_1", 2));
}

TEST_F(DispatcherTest, AnotherMembersChangeIsAppliedUnlessItIsOlder) {
  config_.may_send = [] { return false; };  // a standby: its store follows the primary's
  start();
  const Endpoint endpoint{.id = "we_1", .url = "http://127.0.0.1:9/", .secret = "whsec_1"};
  ASSERT_TRUE(dispatcher_->enqueue(event("evt_1"), {&endpoint, 1}).is_ok());
  Delivery change = delivery("evt_1");
  change.secret = "whsec_1";
  add_attempt(change, Attempt{.started_at_us = t0_us, .duration_ms = 3, .http_status = 500, .error = ""});
  add_attempt(change, Attempt{.started_at_us = t0_us + 5'000'000, .duration_ms = 2, .http_status = 200, .error = ""});
  change.state = DeliveryState::kDelivered;
  change.next_attempt_at_us = 0;
  change.finished_at_us = t0_us + 5'000'002;
  Delivery absent = change;
  absent.event_id = "evt_2";
  const DeliveryChange changes[] = {{change, std::nullopt}, {absent, std::nullopt}};
  StatusOr<std::vector<DeliveryKey>> missing = dispatcher_->apply_changes(changes);
  ASSERT_TRUE(missing.is_ok()) << missing.status().to_string();
  ASSERT_EQ(missing->size(), 1U);  // evt_2 is not derived here
  EXPECT_EQ((*missing)[0].event_id, "evt_2");
  Delivery d = delivery("evt_1");
  EXPECT_EQ(d.state, DeliveryState::kDelivered);
  EXPECT_EQ(d.attempts_count, 2U);
  EXPECT_EQ(d.attempts[1].http_status, 200);
  EXPECT_EQ(dispatcher_->stats().pending, 0U);
  // An older change (one attempt) arriving late does not undo it.
  Delivery older = change;
  older.attempts.resize(1);
  older.attempts_count = 1;
  older.state = DeliveryState::kPending;
  older.next_attempt_at_us = t0_us + 5'000'000;
  older.finished_at_us = 0;
  const DeliveryChange late{older, std::nullopt};
  ASSERT_TRUE(dispatcher_->apply_changes({&late, 1}).is_ok());
  EXPECT_EQ(delivery("evt_1").state, DeliveryState::kDelivered);
  EXPECT_EQ(dispatcher_->stats().pending, 0U);
}

TEST_F(DispatcherTest, TheChangesAppliedPositionSurvivesARestart) {
  start();
  EXPECT_FALSE(dispatcher_->changes_applied()->has_value());
  ASSERT_TRUE(dispatcher_->note_changes_applied(41).is_ok());
  dispatcher_.reset();
  start();
  ASSERT_TRUE(dispatcher_->changes_applied()->has_value());
  EXPECT_EQ(**dispatcher_->changes_applied(), 41U);
}

}  // namespace
}  // namespace paycore::webhooks
