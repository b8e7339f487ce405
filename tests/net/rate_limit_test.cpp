// Token buckets per principal and route class (net/rate_limit.hpp). Time is passed in, so no
// test depends on the clock.
#include "net/rate_limit.hpp"

#include <gtest/gtest.h>

#include <string>

namespace paycore::net {
namespace {

constexpr std::int64_t second_us = 1'000'000;

RateLimitConfig writes(std::uint32_t per_s, std::uint32_t burst) {
  RateLimitConfig config;
  config.classes[static_cast<std::size_t>(RateClass::write)] = RateLimit{per_s, burst};
  return config;
}

TEST(RateLimit, OffByDefaultTakesEverything) {
  RateLimiter limiter{RateLimitConfig{}};
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(RateLimit, OverTheBurstIsRefusedWithSecondsToWait) {
  RateLimiter limiter{writes(2, 5)};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 0u) << i;
  // Empty: one token refills in half a second, so Retry-After rounds up to 1.
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 1u);
  // A refusal takes nothing: still refused at the same instant.
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 1u);
}

TEST(RateLimit, RetryAfterCoversTheWholeCost) {
  RateLimiter limiter{writes(2, 10)};
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 10, 0), 0u);
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 7, 0), 4u);  // 7 tokens at 2/s: 3.5 s -> 4
}

TEST(RateLimit, BucketRefills) {
  RateLimiter limiter{writes(10, 10)};
  for (int i = 0; i < 10; ++i) ASSERT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 1, second_us / 10), 0u);  // one token back
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, second_us / 10), 0u);
  // Never more than the burst, however long it rested.
  const std::int64_t later = 1000 * second_us;
  for (int i = 0; i < 10; ++i) ASSERT_EQ(limiter.take("m_001", RateClass::write, 1, later), 0u);
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, later), 0u);
}

TEST(RateLimit, OtherPrincipalUnaffected) {
  RateLimiter limiter{writes(1, 3)};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_EQ(limiter.take("m_002", RateClass::write, 1, 0), 0u);
}

TEST(RateLimit, OtherClassUnaffectedAndUnlimitedClassIsFree) {
  RateLimitConfig config = writes(1, 1);
  config.classes[static_cast<std::size_t>(RateClass::read)] = RateLimit{100, 0};  // burst = per_s
  RateLimiter limiter{config};
  ASSERT_EQ(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, 0), 0u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limiter.take("m_001", RateClass::read, 1, 0), 0u) << i;
  EXPECT_NE(limiter.take("m_001", RateClass::read, 1, 0), 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(limiter.take("m_001", RateClass::admin, 1, 0), 0u);
}

TEST(RateLimit, CostAboveTheBurstTakesTheWholeBucket) {
  RateLimiter limiter{writes(1, 5)};
  EXPECT_EQ(limiter.take("m_001", RateClass::write, 1000, 0), 0u);
  EXPECT_NE(limiter.take("m_001", RateClass::write, 1, 0), 0u);
}

// A batch gets the tokens that are there, one per item, never more: the items beyond are
// refused, and the bucket is then empty, not in debt.
TEST(RateLimit, BatchGetsAtMostTheTokensThere) {
  RateLimiter limiter{writes(1, 5)};
  EXPECT_EQ(limiter.take_up_to("m_001", RateClass::write, 200, 0), 5u);
  EXPECT_EQ(limiter.take_up_to("m_001", RateClass::write, 200, 0), 0u);
  EXPECT_EQ(limiter.take_up_to("m_001", RateClass::write, 200, 2 * second_us), 2u);
  EXPECT_EQ(limiter.take_up_to("m_002", RateClass::write, 3, 2 * second_us), 3u);
  EXPECT_EQ(limiter.take_up_to("m_001", RateClass::read, 200, 0), 200u);  // no read limit
}

TEST(RateLimit, TrackedPrincipalsAreBounded) {
  RateLimitConfig config = writes(1, 1);
  config.principals_max = 32;
  RateLimiter limiter{config};
  for (int i = 0; i < 10'000; ++i) {
    (void)limiter.take("p" + std::to_string(i), RateClass::write, 1, 0);
    ASSERT_LE(limiter.tracked(), 32u);
  }
}

TEST(RateLimit, PrincipalsBeyondTheBoundAreStillLimited) {
  RateLimitConfig config = writes(1, 1);
  config.principals_max = 16;  // one per shard
  RateLimiter limiter{config};
  // Fill every shard with a principal whose bucket is empty (cannot be dropped).
  for (int i = 0; i < 1000; ++i) (void)limiter.take("p" + std::to_string(i), RateClass::write, 1, 0);
  // Every newcomer now shares an overflow bucket: at most one request per shard passes.
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += limiter.take("q" + std::to_string(i), RateClass::write, 1, 0) == 0;
  EXPECT_LE(passed, 16);
}

TEST(RateLimit, RefilledBucketsAreDroppedToMakeRoom) {
  RateLimitConfig config = writes(1, 1);
  config.principals_max = 16;
  RateLimiter limiter{config};
  for (int i = 0; i < 1000; ++i) (void)limiter.take("p" + std::to_string(i), RateClass::write, 1, 0);
  // Ten seconds later every bucket is full again: newcomers get buckets of their own.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(limiter.take("q" + std::to_string(i), RateClass::write, 1, 10 * second_us + i * 2 * second_us), 0u);
  }
}

TEST(RateLimit, ClassOfRoute) {
  EXPECT_EQ(rate_class_of(Route::payment_create, false), RateClass::write);
  EXPECT_EQ(rate_class_of(Route::payment_get, true), RateClass::read);
  EXPECT_EQ(rate_class_of(Route::admin_snapshot, false), RateClass::admin);
  EXPECT_EQ(rate_class_of(Route::account_open, false), RateClass::admin);
}

}  // namespace
}  // namespace paycore::net
