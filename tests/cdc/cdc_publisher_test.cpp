// Change-data capture (cdc/cdc_publisher.hpp) against a real nats-server: the primary
// publishes every event of its store once, in order, on its merchant's subject; a standby
// publishes nothing and, once it leads, goes on after the stream's last event; two publishers
// at once (a split brain) still put each event in once; NATS down and back loses nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <thread>

#include "cdc/cdc_publisher.hpp"
#include "repl/nats_link.hpp"
#include "tests/support/nats_cluster.hpp"

namespace paycore::cdc {
namespace {

using events::Event;
using events::EventStore;
using events::EventType;
using paycore::testing::NatsCluster;

constexpr const char* kCluster = "cdctest";

std::string temp_dir() {
  char pattern[] = "/tmp/paycore-cdc-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  EXPECT_NE(dir, nullptr);
  return dir ? dir : "";
}

Event payment_event(std::uint64_t lsn, std::string_view merchant) {
  Event e;
  e.lsn = lsn;
  e.type = lsn % 2 ? EventType::payment_created : EventType::payment_paid;
  e.created_at_us = 1'700'000'000'000'000 + static_cast<std::int64_t>(lsn);
  e.merchant_id = Id::of(merchant);
  e.resource = ResourceKind::payment;
  e.payment.merchant_id = Id::of(merchant);
  e.payment.order_id = Id::of("o-" + std::to_string(lsn));
  e.payment.request_id = Id::of("r");
  e.payment.channel = Id::of("balance");
  e.payment.amount = 10;
  e.payment.currency = *currency_from_code("CNY");
  e.payment.created_at_us = e.created_at_us;
  e.payment.status = lsn % 2 ? PaymentStatus::pending : PaymentStatus::paid;
  return e;
}

std::string render(const Event& e) { return R"({"id":")" + events::event_id(e.lsn, e.index) + R"("})"; }

struct Published {
  std::string subject;
  std::string event_id;
  std::string type;
  std::string body;
};

class Cdc : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = temp_dir();
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
    auto opened = EventStore::open({dir_ + "/events"});
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  void TearDown() override {
    publishers_.clear();
    store_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // Events for LSNs from..to, alternating merchants m1 and "m.2" (a '.' in an id).
  void add_events(std::uint64_t from, std::uint64_t to) {
    std::vector<Event> es;
    for (std::uint64_t lsn = from; lsn <= to; ++lsn) es.push_back(payment_event(lsn, lsn % 2 ? "m1" : "m.2"));
    auto batch = store_->begin();
    ASSERT_TRUE(EventStore::add(*batch, es).is_ok());
    ASSERT_TRUE(store_->commit(*batch, to).is_ok());
  }

  // A publisher's "am I primary" flag, owned by the fixture: a publisher's thread reads it
  // until TearDown stops the publisher, after the test body's locals are gone (ASan:
  // stack-use-after-return when it was a local).
  std::atomic<bool>& lead_flag(bool leads) { return lead_flags_.emplace_back(leads); }

  CdcPublisher& start_publisher(std::atomic<bool>* primary) {
    CdcConfig c;
    c.link.urls = nats_.urls();
    c.link.name = "paycore-cdc-test";
    c.link.timeout_ms = 1000;
    c.cluster = kCluster;
    c.replicas = 1;
    c.is_primary = [primary] { return primary->load(); };
    c.render = render;
    c.events_per_round_max = 4;  // several rounds per test
    c.idle_wait_ms = 10;
    c.retry_wait_ms = 100;
    auto started = CdcPublisher::start(*store_, c);
    EXPECT_TRUE(started.is_ok()) << started.status().to_string();
    publishers_.push_back(std::move(*started));
    return *publishers_.back();
  }

  // Every message the stream holds, in order.
  std::vector<Published> stream() {
    std::vector<Published> out;
    repl::LinkConfig l;
    l.urls = nats_.urls();
    l.timeout_ms = 1000;
    auto link = repl::NatsLink::connect(l);
    if (!link.is_ok()) return out;
    auto position = repl::read_position((*link)->js(), events_stream_name(kCluster));
    if (!position.is_ok()) return out;
    for (std::uint64_t seq = position->first_sequence; seq != 0 && seq <= position->last_sequence; ++seq) {
      natsMsg* msg = nullptr;
      jsErrCode error{};
      if (js_GetMsg(&msg, (*link)->js(), events_stream_name(kCluster).c_str(), seq, nullptr, &error) != NATS_OK) break;
      Published p;
      p.subject = natsMsg_GetSubject(msg);
      const char* v = nullptr;
      if (natsMsgHeader_Get(msg, "Paycore-Event-Id", &v) == NATS_OK) p.event_id = v;
      if (natsMsgHeader_Get(msg, "Paycore-Event-Type", &v) == NATS_OK) p.type = v;
      p.body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      natsMsg_Destroy(msg);
      out.push_back(std::move(p));
    }
    return out;
  }

  // Waits until the stream holds `count` messages (or 20 s), and returns them.
  std::vector<Published> stream_of(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::vector<Published> got = stream();
    while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      got = stream();
    }
    return got;
  }

  // The stream holds exactly the events of LSNs 1..last, in order, each once.
  static void expect_events_1_to(const std::vector<Published>& got, std::uint64_t last) {
    ASSERT_EQ(got.size(), last);
    for (std::uint64_t lsn = 1; lsn <= last; ++lsn) {
      const Published& p = got[lsn - 1];
      EXPECT_EQ(p.event_id, events::event_id(lsn, 0));
      EXPECT_EQ(p.subject, lsn % 2 ? "paycore.cdctest.events.m1" : "paycore.cdctest.events.m%2E2");
      EXPECT_EQ(p.type, lsn % 2 ? "payment.created" : "payment.paid");
      EXPECT_EQ(p.body, render(payment_event(lsn, "")));
    }
  }

  std::string dir_;
  NatsCluster nats_;
  std::unique_ptr<EventStore> store_;
  std::deque<std::atomic<bool>> lead_flags_;  // stable addresses; outlive publishers_
  std::vector<std::unique_ptr<CdcPublisher>> publishers_;
};

TEST_F(Cdc, ThePrimaryPublishesEveryEventOnceInOrderOnItsMerchantsSubject) {
  add_events(1, 10);
  std::atomic<bool>& primary = lead_flag(true);
  CdcPublisher& p = start_publisher(&primary);
  expect_events_1_to(stream_of(10), 10);
  add_events(11, 13);
  expect_events_1_to(stream_of(13), 13);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(stream().size(), 13U);  // nothing more, nothing twice
  EXPECT_EQ(p.metrics().published.load(), 13U);
  EXPECT_EQ(p.metrics().position_lsn.load(), 13U);
}

TEST_F(Cdc, AStandbyPublishesNothingAndGoesOnAfterTheStreamsLastEventOnceItLeads) {
  add_events(1, 5);
  std::atomic<bool>& first_primary = lead_flag(true);
  start_publisher(&first_primary);
  expect_events_1_to(stream_of(5), 5);
  publishers_.clear();  // the old primary is gone
  add_events(6, 9);
  std::atomic<bool>& second_primary = lead_flag(false);
  CdcPublisher& second = start_publisher(&second_primary);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(stream().size(), 5U);
  EXPECT_EQ(second.metrics().published.load(), 0U);
  second_primary = true;
  expect_events_1_to(stream_of(9), 9);
  EXPECT_EQ(second.metrics().published.load(), 4U);
}

// Two members that both believe they lead (a split brain): each message expects the stream's
// last sequence, so neither can put an event in twice or out of order.
TEST_F(Cdc, TwoPublishersAtOncePutEachEventInOnce) {
  std::atomic<bool>& primary = lead_flag(true);
  start_publisher(&primary);
  start_publisher(&primary);
  for (std::uint64_t from = 1; from <= 40; from += 8) {
    add_events(from, from + 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  expect_events_1_to(stream_of(40), 40);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(stream().size(), 40U);
}

TEST_F(Cdc, NatsDownAndBackLosesNothing) {
  add_events(1, 3);
  std::atomic<bool>& primary = lead_flag(true);
  CdcPublisher& p = start_publisher(&primary);
  expect_events_1_to(stream_of(3), 3);
  nats_.kill(0);  // libnats buffers what is published meanwhile, or the round fails: either way
  add_events(4, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(nats_.restart(0)) << nats_.error();
  expect_events_1_to(stream_of(8), 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(stream().size(), 8U);
  EXPECT_EQ(p.metrics().position_lsn.load(), 8U);
}

}  // namespace
}  // namespace paycore::cdc
