// The event model: ids, type names and the store's encoding.
#include <gtest/gtest.h>

#include "commands.hpp"
#include "events/event.hpp"

namespace paycore::testing {
namespace {

using events::Event;
using events::EventType;

TEST(EventId, RoundTripsAndIsCanonical) {
  EXPECT_EQ(events::event_id(123, 4), "evt_123_4");
  const auto key = events::parse_event_id("evt_123_4");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->lsn, 123U);
  EXPECT_EQ(key->index, 4);
  for (const char* bad : {"evt_0123_4", "evt_123_04", "evt_123", "evt__4", "evt_123_", "evt_-1_0",
                          "evt_0_0", "ev_123_4", "evt_123_4x", "evt_123_70000", "evt_99999999999999999999_0"}) {
    EXPECT_FALSE(events::parse_event_id(bad)) << bad;
  }
}

TEST(EventType, NamesAreTheApisAndReadBack) {
  for (std::uint8_t n = 1; n <= events::event_type_max; ++n) {
    const auto type = static_cast<EventType>(n);
    EXPECT_EQ(events::event_type_from(events::to_string(type)), type);
  }
  EXPECT_EQ(events::to_string(EventType::payment_refunded), "payment.refunded");
  EXPECT_EQ(events::to_string(EventType::mandate_revoked), "mandate.revoked");
  EXPECT_FALSE(events::event_type_from("payment.Paid"));
  EXPECT_FALSE(events::event_type_from("*"));
}

Event sample_payment_event(EventType type) {
  Event e;
  e.type = type;
  e.created_at_us = 1'795'651'200'000'001;
  e.merchant_id = Id::of("m_001");
  e.resource = ResourceKind::payment;
  e.payment.merchant_id = Id::of("m_001");
  e.payment.order_id = Id::of("o-1");
  e.payment.request_id = Id::of("r-1");
  e.payment.channel = Id::of("alipay");
  e.payment.amount = 1234;
  e.payment.refunded_amount = 34;
  e.payment.currency = *currency_from_code("CNY");
  e.payment.status = PaymentStatus::paid;
  return e;
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(EventEncoding, EachKindRoundTrips) {
  Event refunded = sample_payment_event(EventType::payment_refunded);
  refunded.refund = RefundView{Id::of("r-9"), 34, 1'795'651'300'000'000};
  Event anomaly;
  anomaly.type = EventType::payment_anomaly;
  anomaly.merchant_id = Id::of("m_001");
  anomaly.anomaly = events::AnomalyNotice{Id::of("alipay"), Id::of("t-1"), Id::of("o-404"), 99,
                                          *currency_from_code("USD"), NotificationStatus::success,
                                          AnomalyReason::unknown_order};
  Event revoked;
  revoked.type = EventType::mandate_revoked;
  revoked.merchant_id = Id::of("m_001");
  revoked.resource = ResourceKind::mandate;
  revoked.mandate.mandate_id = Id::of("md-1");
  revoked.mandate.status = MandateStatus::revoked;
  revoked.mandate.single_use = true;
  for (const Event& e : {sample_payment_event(EventType::payment_paid), refunded, anomaly, revoked}) {
    Event back;
    ASSERT_TRUE(events::decode_event(bytes_of(events::encode_event(e)), &back).is_ok()) << events::to_string(e.type);
    EXPECT_EQ(back, e) << events::to_string(e.type);
  }
}

TEST(EventEncoding, DamageIsCorruption) {
  const std::string good = events::encode_event(sample_payment_event(EventType::payment_paid));
  for (std::size_t size = 0; size < good.size(); ++size) {
    Event e;
    EXPECT_EQ(events::decode_event(bytes_of(good.substr(0, size)), &e).code(), StatusCode::kCorruption) << size;
  }
  Event e;
  EXPECT_EQ(events::decode_event(bytes_of(good + "x"), &e).code(), StatusCode::kCorruption);
  std::string bad_type = good;
  bad_type[1] = 42;
  EXPECT_EQ(events::decode_event(bytes_of(bad_type), &e).code(), StatusCode::kCorruption);
  std::string bad_version = good;
  bad_version[0] = 9;
  EXPECT_EQ(events::decode_event(bytes_of(bad_version), &e).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace paycore::testing
