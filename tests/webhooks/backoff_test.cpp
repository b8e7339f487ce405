// The retry schedule (webhooks/backoff.hpp), checked exactly.
#include "webhooks/backoff.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace paycore::webhooks {
namespace {

constexpr std::uint32_t draw_max = 0xffffffff;

TEST(Backoff, WithoutJitterWaitsDoubleFromFiveSecondsToTheHourCap) {
  BackoffPolicy policy;
  policy.jitter_permille = 0;
  std::vector<std::int64_t> waits_s;
  for (std::uint32_t n = 1; n <= 13; ++n) waits_s.push_back(retry_wait_ms(policy, n, 12345) / 1000);
  EXPECT_EQ(waits_s, (std::vector<std::int64_t>{5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560,
                                                3600, 3600, 3600}));
  EXPECT_EQ(retry_wait_ms(policy, 4'000'000'000U, 0), 3'600'000);  // no overflow far out
}

TEST(Backoff, JitterOnlyShortensAWait) {
  const BackoffPolicy policy;  // 20 %
  EXPECT_EQ(retry_wait_ms(policy, 1, 0), 5'000);
  EXPECT_EQ(retry_wait_ms(policy, 1, draw_max), 4'001);  // 5000 - 999.99.. (rounded down)
  EXPECT_EQ(retry_wait_ms(policy, 1, 0x80000000), 4'500);
  EXPECT_EQ(retry_wait_ms(policy, 20, 0), 3'600'000);
  EXPECT_EQ(retry_wait_ms(policy, 20, 0x80000000), 3'240'000);
}

TEST(Backoff, ThePolicyIsChecked) {
  BackoffPolicy policy;
  EXPECT_TRUE(backoff_policy_valid(policy));
  policy.jitter_permille = 1001;
  EXPECT_FALSE(backoff_policy_valid(policy));
  policy = BackoffPolicy{.first_wait_ms = 0};
  EXPECT_FALSE(backoff_policy_valid(policy));
  policy = BackoffPolicy{.first_wait_ms = 10, .wait_max_ms = 5};
  EXPECT_FALSE(backoff_policy_valid(policy));
}

TEST(Backoff, PastTheHorizonTheDeliveryIsGivenUp) {
  BackoffPolicy policy;
  policy.jitter_permille = 0;
  policy.horizon_ms = 60'000;
  const std::int64_t created_us = 1'000'000'000;
  // Failed at +40 s after 3 failures: the wait is 20 s, so +60 s: exactly the horizon, allowed.
  EXPECT_EQ(next_attempt_at_us(policy, created_us, created_us + 40'000'000, 3, 0),
            created_us + 60'000'000);
  EXPECT_EQ(next_attempt_at_us(policy, created_us, created_us + 40'000'001, 3, 0), std::nullopt);
}

TEST(Backoff, ThreeDaysOfFailuresAreAboutEightyAttempts) {
  BackoffPolicy policy;
  policy.jitter_permille = 0;
  const std::int64_t created_us = 0;
  std::int64_t at_us = created_us;  // the first attempt, at once, takes no time here
  std::uint32_t attempts = 1;
  while (true) {
    const std::optional<std::int64_t> next = next_attempt_at_us(policy, created_us, at_us, attempts, 0);
    if (!next.has_value()) break;
    at_us = *next;
    ++attempts;
  }
  // 1 + 10 doubling waits (85 min) + 70 hourly ones before 72 h.
  EXPECT_EQ(attempts, 81U);
  EXPECT_LE(at_us, created_us + policy.horizon_ms * 1000);
}

}  // namespace
}  // namespace paycore::webhooks
