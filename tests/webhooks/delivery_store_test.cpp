// The delivery store (webhooks/delivery_store.hpp) on a RocksDB directory under /tmp.
#include "webhooks/delivery_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>

namespace paycore::webhooks {
namespace {

class DeliveryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("paycore-webhooks-store-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    StatusOr<std::unique_ptr<DeliveryStore>> opened = DeliveryStore::open({.dir = dir_.string()});
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  static StoredEvent event(const std::string& id) {
    return {.id = id, .merchant_id = "m_001", .type = "payment.paid", .created_at_us = 1'000,
            .body = R"({"id":")" + id + R"("})"};
  }
  static std::vector<NewDelivery> endpoints(std::initializer_list<const char*> ids) {
    std::vector<NewDelivery> out;
    for (const char* id : ids) out.push_back({id, "https://shop.example.com/hook", "secret"});
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<DeliveryStore> store_;
};

TEST_F(DeliveryStoreTest, AddIsIdempotent) {
  EXPECT_EQ(*store_->add(event("evt_1"), endpoints({"we_1", "we_2"}), 5'000), 2U);
  EXPECT_EQ(*store_->add(event("evt_1"), endpoints({"we_1", "we_2"}), 9'000), 0U);
  EXPECT_EQ(*store_->add(event("evt_1"), endpoints({"we_2", "we_3"}), 9'000), 1U);
  EXPECT_EQ(store_->pending_count(), 3U);
  StatusOr<std::vector<Delivery>> deliveries = store_->deliveries_of("evt_1");
  ASSERT_TRUE(deliveries.is_ok());
  ASSERT_EQ(deliveries->size(), 3U);
  EXPECT_EQ((*deliveries)[0].next_attempt_at_us, 5'000);  // the repeat changed nothing
  EXPECT_EQ((*deliveries)[2].next_attempt_at_us, 9'000);
}

TEST_F(DeliveryStoreTest, TooManyEndpointsAreRefusedAndNothingIsWritten) {
  std::vector<NewDelivery> many;
  for (std::size_t i = 0; i <= deliveries_per_event_max; ++i) {
    many.push_back({"we_" + std::to_string(i), "https://x.example/", "s"});
  }
  EXPECT_EQ(store_->add(event("evt_1"), many, 5'000).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store_->event("evt_1")->has_value());
}

TEST_F(DeliveryStoreTest, StateSurvivesReopening) {
  ASSERT_TRUE(store_->add(event("evt_1"), endpoints({"we_1", "we_2"}), 5'000).is_ok());
  const DeliveryKey key[] = {{"evt_1", "we_1"}};
  ASSERT_TRUE(store_->update(key, [](Delivery& d) {
    add_attempt(d, {.started_at_us = 5'000, .duration_ms = 3, .http_status = 500, .error = {}});
    d.next_attempt_at_us = 10'000;
  }, /*sync=*/false).is_ok());
  reopen();
  EXPECT_EQ(store_->pending_count(), 2U);
  StatusOr<std::optional<Delivery>> d = store_->delivery("evt_1", "we_1");
  ASSERT_TRUE(d.is_ok() && d->has_value());
  EXPECT_EQ((*d)->state, DeliveryState::kPending);
  EXPECT_EQ((*d)->next_attempt_at_us, 10'000);
  ASSERT_EQ((*d)->attempts.size(), 1U);
  EXPECT_EQ((*d)->attempts[0].http_status, 500);
  EXPECT_EQ((*store_->event("evt_1"))->body, R"({"id":"evt_1"})");
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> due = store_->due_endpoints();
  ASSERT_TRUE(due.is_ok());
  EXPECT_EQ(*due, (std::vector<std::pair<std::string, std::int64_t>>{{"we_1", 10'000},
                                                                     {"we_2", 5'000}}));
}

// The caller's handed-over position: none until noted, then kept (after the unsynced adds it
// covers) across reopening, and moved by later notes.
TEST_F(DeliveryStoreTest, TheHandedOverPositionIsKeptWithTheDeliveries) {
  EXPECT_FALSE(store_->handed_over()->has_value());
  const StoredEvent e = event("evt_7_0");
  const std::vector<NewDelivery> to = endpoints({"we_1"});
  const DeliveryStore::EventToAdd adds[] = {{&e, to}};
  ASSERT_TRUE(store_->add_many(adds, 5'000, /*sync=*/false).is_ok());
  ASSERT_TRUE(store_->note_handed_over(7).is_ok());
  ASSERT_TRUE(store_->sync().is_ok());
  reopen();
  EXPECT_EQ(**store_->handed_over(), 7U);
  EXPECT_TRUE(store_->delivery("evt_7_0", "we_1")->has_value());
  ASSERT_TRUE(store_->note_handed_over(9).is_ok());
  EXPECT_EQ(**store_->handed_over(), 9U);
}

TEST_F(DeliveryStoreTest, AnAbsentDeliveryIsPutAsGivenOnceWithItsIndexAndEvent) {
  Delivery d{.event_id = "evt_1", .endpoint_id = "we_1", .state = DeliveryState::kPending,
             .event_created_at_us = 1'000, .next_attempt_at_us = 8'000, .finished_at_us = 0,
             .attempts_count = 2, .url = "https://shop.example.com/hook", .secret = "secret",
             .last_error = "", .attempts = {}};
  EXPECT_EQ(*store_->put_absent(event("evt_1"), d), true);
  EXPECT_EQ(*store_->put_absent(event("evt_1"), d), false);  // held now: left as it is
  EXPECT_EQ(store_->pending_count(), 1U);
  std::int64_t next_us = 0;
  StatusOr<std::vector<format::DueKey>> due = store_->due_of("we_1", {}, 7'999, 10, &next_us);
  ASSERT_TRUE(due.is_ok());
  EXPECT_TRUE(due->empty());
  EXPECT_EQ(next_us, 8'000);  // due when the change said, not now
  EXPECT_EQ((*store_->delivery("evt_1", "we_1"))->attempts_count, 2U);
  EXPECT_EQ((*store_->event("evt_1"))->body, event("evt_1").body);
  d.endpoint_id = "we_2";
  d.event_id = "evt_2";
  EXPECT_EQ(store_->put_absent(event("evt_1"), d).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DeliveryStoreTest, DueIndexFollowsTheState) {
  ASSERT_TRUE(store_->add(event("evt_1"), endpoints({"we_1"}), 5'000).is_ok());
  ASSERT_TRUE(store_->add(event("evt_2"), endpoints({"we_1"}), 6'000).is_ok());
  std::int64_t next_us = 0;
  StatusOr<std::vector<format::DueKey>> due = store_->due_of("we_1", {}, 5'500, 10, &next_us);
  ASSERT_TRUE(due.is_ok());
  ASSERT_EQ(due->size(), 1U);
  EXPECT_EQ((*due)[0].event_id, "evt_1");
  EXPECT_EQ(next_us, 6'000);
  const DeliveryKey key[] = {{"evt_1", "we_1"}};
  ASSERT_TRUE(store_->update(key, [](Delivery& d) {
    d.state = DeliveryState::kDelivered;
    d.next_attempt_at_us = 0;
    d.finished_at_us = 7'000;
  }, false).is_ok());
  due = store_->due_of("we_1", {}, 10'000, 10, &next_us);
  ASSERT_EQ(due->size(), 1U);
  EXPECT_EQ((*due)[0].event_id, "evt_2");
  EXPECT_EQ(store_->pending_count(), 1U);
}

TEST_F(DeliveryStoreTest, DueScanStartsAtItsLowerBound) {
  ASSERT_TRUE(store_->add(event("evt_1"), endpoints({"we_1"}), 5'000).is_ok());
  ASSERT_TRUE(store_->add(event("evt_2"), endpoints({"we_1"}), 6'000).is_ok());
  ASSERT_TRUE(store_->add(event("evt_3"), endpoints({"we_2"}), 5'000).is_ok());
  std::int64_t next_us = 0;
  ASSERT_TRUE(store_->add(event("evt_4"), endpoints({"we_1"}), 6'000).is_ok());
  StatusOr<std::vector<format::DueKey>> due = store_->due_of("we_1", {6'000, ""}, 10'000, 10, &next_us);
  ASSERT_TRUE(due.is_ok());
  ASSERT_EQ(due->size(), 2U);  // evt_1, due before the bound, is not read
  EXPECT_EQ((*due)[0].event_id, "evt_2");
  EXPECT_EQ((*due)[1].event_id, "evt_4");
  EXPECT_EQ(next_us, std::numeric_limits<std::int64_t>::max());  // and not another endpoint's
  due = store_->due_of("we_1", {6'000, "evt_4"}, 10'000, 10, &next_us);  // from that key on
  ASSERT_TRUE(due.is_ok());
  ASSERT_EQ(due->size(), 1U);
  EXPECT_EQ((*due)[0].event_id, "evt_4");
  due = store_->due_of("we_1", {6'001, ""}, 10'000, 10, &next_us);
  ASSERT_TRUE(due.is_ok());
  EXPECT_TRUE(due->empty());
  EXPECT_EQ(store_->due_of("we_1", {-1, ""}, 10'000, 10, &next_us).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(DeliveryStoreTest, AttemptsKeptAreCapped) {
  ASSERT_TRUE(store_->add(event("evt_1"), endpoints({"we_1"}), 5'000).is_ok());
  const DeliveryKey key[] = {{"evt_1", "we_1"}};
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store_->update(key, [&](Delivery& d) {
      add_attempt(d, {.started_at_us = i + 1, .duration_ms = 1, .http_status = 500,
                      .error = std::string(500, 'e')});
    }, false).is_ok());
  }
  StatusOr<std::optional<Delivery>> d = store_->delivery("evt_1", "we_1");
  EXPECT_EQ((*d)->attempts_count, 40U);
  ASSERT_EQ((*d)->attempts.size(), attempts_kept_max);
  EXPECT_EQ((*d)->attempts.front().started_at_us, 9);  // the 8 oldest went
  EXPECT_EQ((*d)->attempts.back().error.size(), attempt_error_bytes_max);
}

TEST_F(DeliveryStoreTest, RetentionDeletesFinishedDeliveriesAndThenTheirEvent) {
  ASSERT_TRUE(store_->add(event("evt_1"), endpoints({"we_1", "we_2"}), 5'000).is_ok());
  const auto finish_at = [&](const char* endpoint, std::int64_t at_us) {
    const DeliveryKey key[] = {{"evt_1", endpoint}};
    ASSERT_TRUE(store_->update(key, [&](Delivery& d) {
      d.state = DeliveryState::kDelivered;
      d.next_attempt_at_us = 0;
      d.finished_at_us = at_us;
    }, false).is_ok());
  };
  finish_at("we_1", 10'000);
  EXPECT_EQ(*store_->purge_finished(20'000, 100), 1U);
  EXPECT_FALSE(store_->delivery("evt_1", "we_1")->has_value());
  EXPECT_TRUE(store_->event("evt_1")->has_value());  // we_2 still needs it
  finish_at("we_2", 30'000);
  EXPECT_EQ(*store_->purge_finished(30'000, 100), 0U);  // finished at, not before
  EXPECT_EQ(*store_->purge_finished(30'001, 100), 1U);
  EXPECT_FALSE(store_->event("evt_1")->has_value());
}

TEST_F(DeliveryStoreTest, DisabledEndpointsAreRemembered) {
  ASSERT_TRUE(store_->disable_endpoint("we_9").is_ok());
  reopen();
  EXPECT_EQ(*store_->disabled_endpoints(), std::vector<std::string>{"we_9"});
}

TEST(DeliveryFormat, AFlippedByteIsCorruption) {
  Delivery d;
  d.event_id = "evt_1";
  d.endpoint_id = "we_1";
  d.next_attempt_at_us = 5;
  d.url = "https://x.example/";
  d.secret = "s";
  add_attempt(d, {.started_at_us = 1, .duration_ms = 2, .http_status = 500, .error = "boom"});
  std::string value = format::encode_delivery(d);
  Delivery back;
  ASSERT_TRUE(format::decode_delivery(value, "evt_1", "we_1", &back).is_ok());
  EXPECT_EQ(back.attempts[0].error, "boom");
  value[20] ^= 1;
  EXPECT_EQ(format::decode_delivery(value, "evt_1", "we_1", &back).code(), StatusCode::kCorruption);
  EXPECT_EQ(format::decode_delivery(value.substr(0, 30), "evt_1", "we_1", &back).code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace paycore::webhooks
