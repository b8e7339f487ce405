// The event store (events/event_store.hpp): synced batches that survive reopening, a batch
// that reads its own PENDING changes, listings newest first by merchant and type with cursor
// pagination, and retention.
#include <gtest/gtest.h>

#include <cstdlib>

#include "events/event_store.hpp"

namespace paycore::testing {
namespace {

using events::Event;
using events::EventStore;
using events::EventType;

std::string temp_dir() {
  char pattern[] = "/tmp/paycore-events-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  EXPECT_NE(dir, nullptr);
  return dir ? dir : "";
}

Event payment_event(std::uint64_t lsn, std::uint16_t index, EventType type, std::string_view merchant,
                    std::string_view order, std::int64_t at_us) {
  Event e;
  e.lsn = lsn;
  e.index = index;
  e.type = type;
  e.created_at_us = at_us;
  e.merchant_id = Id::of(merchant);
  e.resource = ResourceKind::payment;
  e.payment.merchant_id = Id::of(merchant);
  e.payment.order_id = Id::of(order);
  e.payment.request_id = Id::of("r");
  e.payment.channel = Id::of("alipay");
  e.payment.amount = 10;
  e.payment.currency = *currency_from_code("CNY");
  e.payment.status = PaymentStatus::pending;
  e.payment.created_at_us = at_us;
  return e;
}

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    open();
  }
  void TearDown() override {
    store.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  void open() {
    store.reset();
    events::EventStoreOptions options;
    options.dir = dir;
    options.events_per_block_max = per_block;
    auto opened = EventStore::open(options);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store = std::move(*opened);
  }
  void commit(const std::vector<Event>& es, std::uint64_t through) {
    auto batch = store->begin();
    ASSERT_TRUE(EventStore::add(*batch, es).is_ok());
    ASSERT_TRUE(store->commit(*batch, through).is_ok());
  }
  // Ten events over LSNs 1..10: m1 and m2 alternate; every third is paid, the rest created.
  void ten() {
    std::vector<Event> es;
    for (std::uint64_t lsn = 1; lsn <= 10; ++lsn) {
      es.push_back(payment_event(lsn, 0, lsn % 3 == 0 ? EventType::payment_paid : EventType::payment_created,
                                 lsn % 2 ? "m1" : "m2", "o-" + std::to_string(lsn),
                                 1'000'000'000 + static_cast<std::int64_t>(lsn)));
    }
    commit(es, 10);
  }
  static std::vector<std::uint64_t> lsns(const events::EventListPage& page) {
    std::vector<std::uint64_t> out;
    for (const Event& e : page.events) out.push_back(e.lsn);
    return out;
  }

  // A fresh store with blocks of at most `n` events.
  void reopen_empty(std::uint32_t n) {
    TearDown();
    per_block = n;
    SetUp();
  }

  std::string dir;
  std::uint32_t per_block = 256;
  std::unique_ptr<EventStore> store;
};

TEST_F(Store, ACommittedBatchAndItsPositionSurviveReopening) {
  EXPECT_EQ(store->position(), 0U);
  ten();
  open();
  EXPECT_EQ(store->position(), 10U);
  const auto got = store->get({7, 0});
  ASSERT_TRUE(got.is_ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->payment.order_id.view(), "o-7");
  EXPECT_FALSE(store->get({11, 0})->has_value());
}

TEST_F(Store, ABatchReadsItsOwnPendingChangesOverTheStores) {
  auto first = store->begin();
  PaymentView a, b, c;
  for (PaymentView* p : {&a, &b, &c}) p->status = PaymentStatus::pending;
  a.created_at_us = 30;
  b.created_at_us = 10;
  c.created_at_us = 20;
  for (const PaymentView* p : {&a, &b}) ASSERT_TRUE(EventStore::pending(*first).add(*p).is_ok());
  ASSERT_TRUE(store->commit(*first, 1).is_ok());
  auto second = store->begin();
  ASSERT_TRUE(EventStore::pending(*second).add(c).is_ok());
  ASSERT_TRUE(EventStore::pending(*second).remove(10).is_ok());
  std::vector<PaymentView> oldest;
  ASSERT_TRUE(EventStore::pending(*second).oldest(5, &oldest).is_ok());
  ASSERT_EQ(oldest.size(), 2U);
  EXPECT_EQ(oldest[0].created_at_us, 20);
  EXPECT_EQ(oldest[1].created_at_us, 30);
  second.reset();  // never committed: the store still has the first batch's
  auto third = store->begin();
  ASSERT_TRUE(EventStore::pending(*third).oldest(1, &oldest).is_ok());
  ASSERT_EQ(oldest.size(), 1U);
  EXPECT_EQ(oldest[0].created_at_us, 10);
}

// Within one block, and across blocks of one and of three events (a cursor in the middle of
// a block, index entries that start before the cursor).
TEST_F(Store, ListsAreNewestFirstWithCursorsByMerchantAndType) {
  for (const std::uint32_t n : {256U, 1U, 3U}) {
    SCOPED_TRACE("events per block " + std::to_string(n));
    reopen_empty(n);
    ten();
    auto all = store->list({Id{}, std::nullopt, std::nullopt, 4});
    ASSERT_TRUE(all.is_ok());
    EXPECT_EQ(lsns(*all), (std::vector<std::uint64_t>{10, 9, 8, 7}));
    EXPECT_TRUE(all->has_more);
    auto next = store->list({Id{}, std::nullopt, events::EventKey{7, 0}, 4});
    EXPECT_EQ(lsns(*next), (std::vector<std::uint64_t>{6, 5, 4, 3}));
    auto last = store->list({Id{}, std::nullopt, events::EventKey{3, 0}, 4});
    EXPECT_EQ(lsns(*last), (std::vector<std::uint64_t>{2, 1}));
    EXPECT_FALSE(last->has_more);
    auto m1 = store->list({Id::of("m1"), std::nullopt, std::nullopt, 100});
    EXPECT_EQ(lsns(*m1), (std::vector<std::uint64_t>{9, 7, 5, 3, 1}));
    auto m1_after = store->list({Id::of("m1"), std::nullopt, events::EventKey{5, 0}, 1});
    EXPECT_EQ(lsns(*m1_after), (std::vector<std::uint64_t>{3}));
    EXPECT_TRUE(m1_after->has_more);
    auto m1_paid = store->list({Id::of("m1"), EventType::payment_paid, std::nullopt, 100});
    EXPECT_EQ(lsns(*m1_paid), (std::vector<std::uint64_t>{9, 3}));
    auto paid = store->list({Id{}, EventType::payment_paid, std::nullopt, 100});
    EXPECT_EQ(lsns(*paid), (std::vector<std::uint64_t>{9, 6, 3}));
    auto paid_after = store->list({Id{}, EventType::payment_paid, events::EventKey{6, 0}, 100});
    EXPECT_EQ(lsns(*paid_after), (std::vector<std::uint64_t>{3}));
    // A merchant with no events, a merchant id that prefixes another's.
    EXPECT_TRUE(store->list({Id::of("m"), std::nullopt, std::nullopt, 10})->events.empty());
    for (std::uint64_t lsn = 1; lsn <= 10; ++lsn) {
      auto got = store->get({lsn, 0});
      ASSERT_TRUE(got.is_ok() && got->has_value()) << lsn;
      EXPECT_EQ((*got)->payment.order_id.view(), "o-" + std::to_string(lsn));
      EXPECT_FALSE(store->get({lsn, 1})->has_value());
    }
  }
}

// Read forward (change-data capture): from the oldest, after any event, across blocks.
TEST_F(Store, EventsAfterAKeyComeOldestFirst) {
  for (const std::uint32_t n : {256U, 3U}) {
    SCOPED_TRACE("events per block " + std::to_string(n));
    reopen_empty(n);
    EXPECT_TRUE(store->events_after(std::nullopt, 10)->empty());
    ten();
    auto first = store->events_after(std::nullopt, 4);
    ASSERT_TRUE(first.is_ok());
    EXPECT_EQ(lsns({*first, false}), (std::vector<std::uint64_t>{1, 2, 3, 4}));
    EXPECT_EQ(lsns({*store->events_after(events::EventKey{4, 0}, 4), false}), (std::vector<std::uint64_t>{5, 6, 7, 8}));
    EXPECT_EQ(lsns({*store->events_after(events::EventKey{8, 0}, 4), false}), (std::vector<std::uint64_t>{9, 10}));
    EXPECT_TRUE(store->events_after(events::EventKey{10, 0}, 4)->empty());
    // A key that is no event: what comes after it.
    EXPECT_EQ(lsns({*store->events_after(events::EventKey{5, 7}, 2), false}), (std::vector<std::uint64_t>{6, 7}));
  }
}

TEST_F(Store, ACursorOutsideTheListIsNotFound) {
  ten();
  EXPECT_EQ(store->list({Id::of("m1"), std::nullopt, events::EventKey{2, 0}, 10}).status().code(),
            StatusCode::kNotFound);  // m2's
  EXPECT_EQ(store->list({Id{}, EventType::payment_paid, events::EventKey{2, 0}, 10}).status().code(),
            StatusCode::kNotFound);  // not paid
  EXPECT_EQ(store->list({Id{}, std::nullopt, events::EventKey{99, 0}, 10}).status().code(),
            StatusCode::kNotFound);
}

// Retention drops whole blocks (here of three events: LSNs 1-3, 4-6, 7-9, 10), the oldest
// first, each once all its events are old enough, with the index entries that point into it.
TEST_F(Store, RetentionDropsTheOldestBlocksAndTheirIndexEntries) {
  reopen_empty(3);
  ten();
  auto dropped = store->drop_older_than(1'000'000'000 + 5, 100);  // LSNs 1-4 are old enough
  ASSERT_TRUE(dropped.is_ok());
  EXPECT_EQ(*dropped, 3U);  // 4 shares its block with 5 and 6
  EXPECT_FALSE(store->get({3, 0})->has_value());
  EXPECT_TRUE(store->get({4, 0})->has_value());
  EXPECT_EQ(lsns(*store->list({Id::of("m1"), std::nullopt, std::nullopt, 100})),
            (std::vector<std::uint64_t>{9, 7, 5}));
  EXPECT_EQ(lsns(*store->list({Id{}, EventType::payment_paid, std::nullopt, 100})),
            (std::vector<std::uint64_t>{9, 6}));
  EXPECT_EQ(lsns(*store->list({Id::of("m2"), EventType::payment_created, std::nullopt, 100})),
            (std::vector<std::uint64_t>{10, 8, 4}));
  EXPECT_EQ(*store->drop_older_than(2'000'000'000, 2), 3U);  // bounded per call, whole blocks
  EXPECT_EQ(lsns(*store->list({Id{}, std::nullopt, std::nullopt, 100})),
            (std::vector<std::uint64_t>{10, 9, 8, 7}));
  EXPECT_EQ(*store->drop_older_than(2'000'000'000, 100), 4U);
  EXPECT_TRUE(store->list({Id::of("m2"), std::nullopt, std::nullopt, 100})->events.empty());
  EXPECT_EQ(*store->drop_older_than(2'000'000'000, 100), 0U);
}

// A redelivery request's event is kept (across reopening) per merchant, and dropped by
// retention once older than its cut-off, a bounded number of requests looked at per call.
TEST_F(Store, RedeliveryRequestsAreKeptPerMerchantUntilRetention) {
  ASSERT_TRUE(store->put_redelivery(Id::of("m1"), Id::of("rd-1"), {7, 0}, 100).is_ok());
  ASSERT_TRUE(store->put_redelivery(Id::of("m1"), Id::of("rd-2"), {8, 1}, 300).is_ok());
  open();
  EXPECT_EQ(**store->redelivery(Id::of("m1"), Id::of("rd-1")), (events::EventKey{7, 0}));
  EXPECT_FALSE(store->redelivery(Id::of("m2"), Id::of("rd-1"))->has_value());
  EXPECT_EQ(*store->drop_older_than(200, 1), 0U);  // no events; looks at rd-1 only: dropped
  EXPECT_FALSE(store->redelivery(Id::of("m1"), Id::of("rd-1"))->has_value());
  EXPECT_TRUE(store->redelivery(Id::of("m1"), Id::of("rd-2"))->has_value());
  EXPECT_EQ(*store->drop_older_than(400, 1), 0U);  // goes on from where it stopped
  EXPECT_FALSE(store->redelivery(Id::of("m1"), Id::of("rd-2"))->has_value());
}

TEST_F(Store, AGapMovesThePositionAndIsRemembered) {
  ten();
  ASSERT_TRUE(store->skip_gap(50, 123).is_ok());
  open();
  EXPECT_EQ(store->position(), 49U);
  EXPECT_EQ(store->gap_at_us(), 123);
}

TEST_F(Store, EndpointsSurviveReopeningAndAreFoundByRequestAndListedOldestFirst) {
  events::EndpointRecord a{"we_b", Id::of("m1"), Id::of("r1"), "https://a.example/hook",
                           {"payment.paid", "payment.failed"}, "whsec_x", true, 20};
  events::EndpointRecord b{"we_a", Id::of("m1"), Id::of("r2"), "https://b.example/hook", {"*"}, "whsec_y", true, 30};
  events::EndpointRecord other{"we_c", Id::of("m10"), Id::of("r1"), "https://c.example/", {"*"}, "s", true, 10};
  for (const auto* e : {&a, &b, &other}) ASSERT_TRUE(store->put_endpoint(*e).is_ok());
  open();
  const auto got = store->endpoint(Id::of("m1"), "we_b");
  ASSERT_TRUE(got.is_ok() && got->has_value());
  EXPECT_EQ(**got, a);
  EXPECT_FALSE(store->endpoint(Id::of("m10"), "we_b")->has_value());  // another merchant's id
  EXPECT_EQ(**store->endpoint_by_request(Id::of("m1"), Id::of("r2")), b);
  EXPECT_EQ(**store->endpoint_by_request(Id::of("m10"), Id::of("r1")), other);
  EXPECT_FALSE(store->endpoint_by_request(Id::of("m1"), Id::of("r3"))->has_value());
  const auto list = store->endpoints_of(Id::of("m1"), 10);
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 2U);  // not m10's, although "m1" prefixes it
  EXPECT_EQ((*list)[0].id, "we_b");
  EXPECT_EQ((*list)[1].id, "we_a");
  b.enabled = false;
  ASSERT_TRUE(store->put_endpoint(b).is_ok());
  EXPECT_FALSE((*store->endpoint(Id::of("m1"), "we_a"))->enabled);
}

TEST_F(Store, ANewEndpointsBackfillMarkLastsUntilFinishedAcrossReopening) {
  const events::EndpointRecord a{"we_a", Id::of("m1"), Id::of("r1"), "https://a.example/", {"*"}, "s", true, 10};
  const events::EndpointRecord b{"we_b", Id::of("m2"), Id::of("r1"), "https://b.example/", {"*"}, "s", true, 10};
  ASSERT_TRUE(store->put_endpoint(a, /*backfill_pending=*/true).is_ok());
  ASSERT_TRUE(store->put_endpoint(b).is_ok());
  open();  // a crash before the backfill: the mark is still there
  auto owed = store->endpoints_awaiting_backfill(10);
  ASSERT_TRUE(owed.is_ok()) << owed.status().to_string();
  ASSERT_EQ(owed->size(), 1U);
  EXPECT_EQ((*owed)[0], a);
  ASSERT_TRUE(store->finish_backfill(a.merchant_id, a.id).is_ok());
  open();
  EXPECT_TRUE(store->endpoints_awaiting_backfill(10)->empty());
  EXPECT_TRUE(store->endpoint(a.merchant_id, a.id)->has_value());  // the endpoint stays
}

}  // namespace
}  // namespace paycore::testing
