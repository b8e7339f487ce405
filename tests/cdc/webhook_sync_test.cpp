// Webhooks in a cluster (cdc/webhook_sync.hpp) against a real nats-server: two members, each
// with its own delivery store, exchange endpoints through the bucket and delivery changes
// through the stream. Neither sends (may_send false): what is tested is what each one's store
// holds, which is what a new primary would send.
#include "cdc/webhook_sync.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "base/time.hpp"
#include "tests/support/nats_cluster.hpp"

namespace paycore::cdc {
namespace {

using paycore::testing::NatsCluster;
using webhooks::Delivery;
using webhooks::DeliveryChange;
using webhooks::DeliveryState;

constexpr const char* kCluster = "whtest";
constexpr std::int64_t t0_us = 1'700'000'000'000'000;

bool wait_until(const std::function<bool()>& done, int timeout_ms = 10'000) {
  const std::int64_t end_ms = monotonic_ms() + timeout_ms;
  while (!done()) {
    if (monotonic_ms() > end_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

events::EndpointRecord endpoint_record(const std::string& id) {
  return {id, Id::of("m.1"), Id::of("req-" + id), "https://example.com/hook", {"*"}, "whsec_" + id, true, t0_us};
}

// One member: its dispatcher (never sending) and its sync, with the endpoints it was handed.
struct Member {
  std::unique_ptr<webhooks::Dispatcher> dispatcher;
  std::unique_ptr<WebhookSync> sync;
  std::mutex mutex;
  std::vector<events::EndpointRecord> endpoints;
  std::atomic<std::uint64_t> derived_lsn{0};  // the member's deriver: nothing derived yet
  std::atomic<bool> primary{false};

  std::vector<events::EndpointRecord> seen() {
    const std::lock_guard lock(mutex);
    return endpoints;
  }
  Delivery delivery(const std::string& event_id) {
    StatusOr<std::vector<Delivery>> all = dispatcher->deliveries_of(event_id);
    return all.is_ok() && !all->empty() ? all->front() : Delivery{};
  }
  void enqueue(const std::string& event_id) {
    const webhooks::Event e{event_id, "m.1", "payment.paid", R"({"id":")" + event_id + "\"}", t0_us};
    const webhooks::Endpoint to{"we_1", "https://example.com/hook", "whsec_1", true};
    ASSERT_TRUE(dispatcher->enqueue(e, {&to, 1}).is_ok());
  }
};

class WebhookSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    char pattern[] = "/tmp/paycore-whsync-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    ASSERT_NE(made, nullptr);
    dir_ = made;
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
  }
  void TearDown() override {
    for (auto& m : members_) stop(*m);
    members_.clear();
    std::filesystem::remove_all(dir_);
  }

  // Starts member `name` (its store in DIR/name, kept across restarts).
  Member& start(const std::string& name, std::int64_t absent_wait_ms = 30'000) {
    auto m = std::make_unique<Member>();
    webhooks::DispatcherConfig d;
    d.store.dir = dir_ + "/" + name;
    d.may_send = [] { return false; };
    auto dispatcher = webhooks::Dispatcher::start(d);
    EXPECT_TRUE(dispatcher.is_ok()) << dispatcher.status().to_string();
    m->dispatcher = std::move(*dispatcher);
    WebhookSyncConfig c;
    c.link.urls = nats_.urls();
    c.link.name = "paycore-whsync-test-" + name;
    c.link.timeout_ms = 2000;
    c.cluster = kCluster;
    c.replicas = 1;
    c.idle_wait_ms = 20;
    c.retry_wait_ms = 100;
    c.absent_retry_ms = 20;
    c.absent_wait_ms = absent_wait_ms;
    Member* raw = m.get();
    c.on_endpoint = [raw](const events::EndpointRecord& r) {
      const std::lock_guard lock(raw->mutex);
      raw->endpoints.push_back(r);
      return Status::ok();
    };
    c.derived_lsn = [raw] { return raw->derived_lsn.load(); };
    c.is_primary = [raw] { return raw->primary.load(); };
    auto sync = WebhookSync::start(*m->dispatcher, c);
    EXPECT_TRUE(sync.is_ok()) << sync.status().to_string();
    m->sync = std::move(*sync);
    EXPECT_TRUE(wait_until([raw] { return raw->sync->caught_up(); })) << "never connected";
    members_.push_back(std::move(m));
    return *members_.back();
  }
  static void stop(Member& m) {
    if (m.sync) m.sync->stop();
    m.dispatcher.reset();
    m.sync.reset();
  }

  // The delivery of `event_id` as a primary that made `attempts` attempts, the last a 200.
  static DeliveryChange delivered(Member& primary, const std::string& event_id, std::uint32_t attempts) {
    Delivery d = primary.delivery(event_id);
    d.secret = "whsec_1";  // deliveries_of hides it; a change carries it as stored
    for (std::uint32_t i = 0; i < attempts; ++i) {
      webhooks::add_attempt(d, {.started_at_us = t0_us + i, .duration_ms = 1,
                                .http_status = i + 1 == attempts ? 200 : 500, .error = ""});
    }
    d.state = DeliveryState::kDelivered;
    d.next_attempt_at_us = 0;
    d.finished_at_us = t0_us + attempts;
    return {d, std::nullopt};
  }
  // The same, its last attempt failed: PENDING, with its event.
  static DeliveryChange failed(Member& primary, const std::string& event_id) {
    DeliveryChange c = delivered(primary, event_id, 1);
    c.delivery.attempts.back().http_status = 500;
    c.delivery.state = DeliveryState::kPending;
    c.delivery.next_attempt_at_us = t0_us + 5'000'000;
    c.delivery.finished_at_us = 0;
    c.event = webhooks::StoredEvent{event_id, "m.1", "payment.paid", t0_us, R"({"id":")" + event_id + "\"}"};
    return c;
  }

  std::string dir_;
  NatsCluster nats_;
  std::vector<std::unique_ptr<Member>> members_;
};

TEST(WebhookChanges, AMessageDecodesToTheChangesItWasMadeOf) {
  Delivery d{.event_id = "evt_1_0", .endpoint_id = "we_1", .state = DeliveryState::kPending,
             .event_created_at_us = t0_us, .next_attempt_at_us = t0_us + 5, .finished_at_us = 0,
             .attempts_count = 1, .url = "https://example.com/", .secret = "s", .last_error = "",
             .attempts = {{.started_at_us = t0_us, .duration_ms = 2, .http_status = 503, .error = ""}}};
  Delivery e = d;
  e.event_id = "evt_2_0";
  const webhooks::StoredEvent event{"evt_1_0", "m.1", "payment.paid", t0_us, R"({"id":"evt_1_0"})"};
  const DeliveryChange both[] = {{d, event}, {e, std::nullopt}};
  std::vector<DeliveryChange> got;
  ASSERT_TRUE(webhooks::format::decode_changes(webhooks::format::encode_changes(both), &got).is_ok());
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[1].delivery.event_id, "evt_2_0");
  EXPECT_EQ(got[0].delivery.attempts.at(0).http_status, 503);
  EXPECT_EQ(got[0].delivery.next_attempt_at_us, t0_us + 5);
  ASSERT_TRUE(got[0].event.has_value());
  EXPECT_EQ(got[0].event->body, event.body);
  EXPECT_FALSE(got[1].event.has_value());
}

TEST(WebhookChanges, ATruncatedOrDamagedMessageIsRefusedNamingTheEntry) {
  const Delivery d{.event_id = "evt_1_0", .endpoint_id = "we_1", .state = DeliveryState::kDelivered,
                   .event_created_at_us = t0_us, .next_attempt_at_us = 0, .finished_at_us = t0_us + 1,
                   .attempts_count = 0, .url = "https://example.com/", .secret = "s", .last_error = "",
                   .attempts = {}};
  const DeliveryChange two[] = {{d, std::nullopt}, {d, std::nullopt}};
  const std::string whole = webhooks::format::encode_changes(two);
  std::vector<DeliveryChange> got;
  const Status cut = webhooks::format::decode_changes(std::string_view(whole).substr(0, whole.size() - 3), &got);
  EXPECT_EQ(cut.code(), StatusCode::kCorruption);
  EXPECT_NE(cut.message().find("entry 2"), std::string::npos) << cut.message();
  std::string flipped = whole;
  flipped[flipped.size() - 1] ^= 1;  // the value's checksum no longer holds
  EXPECT_EQ(webhooks::format::decode_changes(flipped, &got).code(), StatusCode::kCorruption);
}

TEST_F(WebhookSyncTest, AnEndpointWrittenByOneMemberReachesEveryMemberEvenOneStartedLater) {
  Member& a = start("a");
  Member& b = start("b");
  ASSERT_TRUE(a.sync->put_endpoint(endpoint_record("we_1")).is_ok());
  ASSERT_TRUE(wait_until([&] { return b.seen().size() == 1 && a.seen().size() == 1; }));
  EXPECT_EQ(b.seen()[0], endpoint_record("we_1"));
  events::EndpointRecord disabled = endpoint_record("we_1");
  disabled.enabled = false;
  ASSERT_TRUE(a.sync->put_endpoint(disabled).is_ok());
  ASSERT_TRUE(wait_until([&] { return b.seen().size() == 2; }));
  EXPECT_FALSE(b.seen()[1].enabled);
  Member& c = start("c");  // the bucket holds the endpoint as it is now
  ASSERT_EQ(c.seen().size(), 1U);
  EXPECT_EQ(c.seen()[0], disabled);
}

TEST_F(WebhookSyncTest, AChangeOfOneMemberIsAppliedByTheOtherAndNotByItself) {
  Member& a = start("a");
  Member& b = start("b");
  a.enqueue("evt_1_0");
  b.enqueue("evt_1_0");
  const DeliveryChange change = delivered(a, "evt_1_0", 2);
  a.sync->publish_changes({&change, 1});
  ASSERT_TRUE(wait_until([&] { return b.delivery("evt_1_0").state == DeliveryState::kDelivered; }));
  EXPECT_EQ(b.delivery("evt_1_0").attempts_count, 2U);
  EXPECT_EQ(b.dispatcher->stats().pending, 0U);
  ASSERT_TRUE(wait_until([&] { return a.sync->metrics().applied_sequence.load() == 1; }));
  EXPECT_EQ(a.delivery("evt_1_0").state, DeliveryState::kPending);  // its own: skipped
  EXPECT_EQ(a.sync->metrics().changes_published.load(), 1U);
  EXPECT_EQ(**b.dispatcher->changes_applied(), 1U);
}

TEST_F(WebhookSyncTest, AChangeWaitsForItsDeliveryToBeDerivedThenApplies) {
  Member& a = start("a");
  Member& b = start("b");
  a.enqueue("evt_1_0");
  a.enqueue("evt_2_0");
  b.enqueue("evt_1_0");  // b's deriver has not reached evt_2 yet
  const DeliveryChange changes[] = {delivered(a, "evt_1_0", 1), delivered(a, "evt_2_0", 1)};
  a.sync->publish_changes(changes);
  ASSERT_TRUE(wait_until([&] { return b.delivery("evt_1_0").state == DeliveryState::kDelivered; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(b.sync->metrics().applied_sequence.load(), 0U);  // held: not done yet
  b.enqueue("evt_2_0");
  ASSERT_TRUE(wait_until([&] { return b.delivery("evt_2_0").state == DeliveryState::kDelivered; }));
  ASSERT_TRUE(wait_until([&] { return b.sync->metrics().applied_sequence.load() == 1; }));
  EXPECT_EQ(b.sync->metrics().changes_unmatched.load(), 0U);
}

TEST_F(WebhookSyncTest, AChangeWhoseDeliveryNeverComesIsGivenUpAndTheNextIsApplied) {
  Member& a = start("a");
  Member& b = start("b", /*absent_wait_ms=*/300);
  a.enqueue("evt_1_0");
  a.enqueue("evt_2_0");
  b.enqueue("evt_2_0");
  const DeliveryChange first = delivered(a, "evt_1_0", 1);  // b never derives evt_1
  a.sync->publish_changes({&first, 1});
  ASSERT_TRUE(wait_until([&] { return a.sync->metrics().changes_published.load() == 1; }));
  const DeliveryChange second = delivered(a, "evt_2_0", 1);  // in the next message
  a.sync->publish_changes({&second, 1});
  ASSERT_TRUE(wait_until([&] { return b.delivery("evt_2_0").state == DeliveryState::kDelivered; }));
  EXPECT_EQ(b.sync->metrics().changes_unmatched.load(), 1U);
  EXPECT_EQ(b.sync->metrics().applied_sequence.load(), 2U);
}

TEST_F(WebhookSyncTest, AChangeOfAnEventDerivedWithoutItsDeliveryIsPassedOverAtOnce) {
  Member& a = start("a");
  Member& b = start("b");  // absent_wait_ms 30 s: this test ends long before unless passed over
  b.derived_lsn = 10;      // e.g. started from a snapshot: evt_5_0 came before its store
  a.enqueue("evt_5_0");
  a.enqueue("evt_6_0");
  b.enqueue("evt_6_0");
  const DeliveryChange changes[] = {delivered(a, "evt_5_0", 1), delivered(a, "evt_6_0", 1)};
  a.sync->publish_changes(changes);
  ASSERT_TRUE(wait_until([&] { return b.sync->metrics().applied_sequence.load() == 1; }, 5'000));
  EXPECT_EQ(b.sync->metrics().changes_unmatched.load(), 1U);
  EXPECT_EQ(b.delivery("evt_6_0").state, DeliveryState::kDelivered);
}

TEST_F(WebhookSyncTest, ARestartedMemberAppliesWhatItMissedAndNothingTwice) {
  Member& a = start("a");
  Member* b = &start("b");
  a.enqueue("evt_1_0");
  a.enqueue("evt_2_0");
  b->enqueue("evt_1_0");
  b->enqueue("evt_2_0");
  const DeliveryChange one = delivered(a, "evt_1_0", 1);
  a.sync->publish_changes({&one, 1});
  ASSERT_TRUE(wait_until([&] { return b->sync->metrics().applied_sequence.load() == 1; }));
  stop(*b);
  const DeliveryChange two = delivered(a, "evt_2_0", 3);
  a.sync->publish_changes({&two, 1});
  ASSERT_TRUE(wait_until([&] { return a.sync->metrics().changes_published.load() == 2; }));
  members_.pop_back();
  b = &start("b");
  ASSERT_TRUE(wait_until([&] { return b->delivery("evt_2_0").state == DeliveryState::kDelivered; }));
  EXPECT_EQ(b->delivery("evt_2_0").attempts_count, 3U);
  EXPECT_EQ(b->sync->metrics().changes_applied.load(), 1U);  // only the one it missed
}

TEST_F(WebhookSyncTest, APendingChangeOfADeliveryNeverDerivedHereIsStoredFromIt) {
  Member& a = start("a");
  Member& b = start("b");
  b.derived_lsn = 10;  // started from a snapshot: it never saw evt_5_0
  a.enqueue("evt_5_0");
  const DeliveryChange change = failed(a, "evt_5_0");  // the primary retries it later
  a.sync->publish_changes({&change, 1});
  ASSERT_TRUE(wait_until([&] { return b.sync->metrics().applied_sequence.load() == 1; }));
  const Delivery held = b.delivery("evt_5_0");
  EXPECT_EQ(held.state, DeliveryState::kPending);  // b sends it, should it become primary
  EXPECT_EQ(held.attempts_count, 1U);
  EXPECT_EQ(held.next_attempt_at_us, t0_us + 5'000'000);
  EXPECT_EQ(b.sync->metrics().deliveries_inserted.load(), 1U);
  EXPECT_EQ(b.sync->metrics().changes_unmatched.load(), 0U);
}

TEST_F(WebhookSyncTest, OnlyTheNewestChangeOfADeliveryNeverDerivedHereDecidesWhetherItIsStored) {
  Member& a = start("a");
  Member& b = start("b");
  b.derived_lsn = 10;
  a.enqueue("evt_5_0");
  a.enqueue("evt_6_0");
  // evt_5_0: redelivered, then delivered at once, in one message: nothing left to send.
  DeliveryChange redelivered = failed(a, "evt_5_0");
  const DeliveryChange done = delivered(a, "evt_5_0", 1);
  // evt_6_0: delivered by an attempt, then redelivered: to be sent (with 1 attempt made).
  DeliveryChange again = failed(a, "evt_6_0");
  const DeliveryChange first = delivered(a, "evt_6_0", 1);
  const DeliveryChange changes[] = {redelivered, done, first, again};
  a.sync->publish_changes(changes);
  ASSERT_TRUE(wait_until([&] { return b.sync->metrics().applied_sequence.load() == 1; }));
  EXPECT_TRUE(b.dispatcher->deliveries_of("evt_5_0")->empty());
  EXPECT_EQ(b.delivery("evt_6_0").state, DeliveryState::kPending);
  EXPECT_EQ(b.delivery("evt_6_0").attempts_count, 1U);
  EXPECT_EQ(b.sync->metrics().deliveries_inserted.load(), 1U);
}

TEST_F(WebhookSyncTest, ANewPrimaryIsReadyOnlyOnceItHasReadTheStreamAsOfItsPromotion) {
  Member& a = start("a");
  a.enqueue("evt_1_0");
  const DeliveryChange one = delivered(a, "evt_1_0", 1);
  a.sync->publish_changes({&one, 1});
  ASSERT_TRUE(wait_until([&] { return a.sync->metrics().changes_published.load() == 1; }));
  Member& b = start("b");
  b.enqueue("evt_1_0");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(b.sync->ready_to_send());  // a standby never is
  b.primary = true;
  ASSERT_TRUE(wait_until([&] { return b.sync->ready_to_send(); }));
  EXPECT_GE(b.sync->metrics().applied_sequence.load(), 1U);  // the old primary's change first
  EXPECT_EQ(b.delivery("evt_1_0").state, DeliveryState::kDelivered);
  b.primary = false;
  ASSERT_TRUE(wait_until([&] { return !b.sync->ready_to_send(); }));
}

TEST_F(WebhookSyncTest, AfterNatsComesBackNothingIsAppliedTwice) {
  Member& a = start("a");
  Member* b = &start("b");
  a.enqueue("evt_1_0");
  b->enqueue("evt_1_0");
  const DeliveryChange one = delivered(a, "evt_1_0", 1);
  a.sync->publish_changes({&one, 1});
  ASSERT_TRUE(wait_until([&] { return b->sync->metrics().changes_applied.load() == 1; }));
  // Restarted, b reads from sequence 2 and has read nothing yet when NATS goes: libnats then
  // starts its ordered consumer over from the stream's first message.
  stop(*b);
  members_.pop_back();
  b = &start("b");
  nats_.kill(0);
  ASSERT_TRUE(nats_.restart(0)) << nats_.error();  // its files kept: the stream holds the change
  a.enqueue("evt_2_0");
  b->enqueue("evt_2_0");
  const DeliveryChange two = delivered(a, "evt_2_0", 1);
  a.sync->publish_changes({&two, 1});
  ASSERT_TRUE(wait_until([&] { return b->delivery("evt_2_0").state == DeliveryState::kDelivered; }, 20'000));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(b->sync->metrics().changes_applied.load(), 1U);  // the second only, not the first again
  EXPECT_EQ(**b->dispatcher->changes_applied(), 2U);
}

TEST_F(WebhookSyncTest, WithoutNatsAnEndpointWriteFailsUnavailable) {
  Member& a = start("a");
  nats_.kill(0);
  const Status s = a.sync->put_endpoint(endpoint_record("we_9"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
}

}  // namespace
}  // namespace paycore::cdc
