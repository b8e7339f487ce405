#include "webhooks/backoff.hpp"

#include "base/assert.hpp"

namespace paycore::webhooks {
namespace {
constexpr std::int64_t day_ms = 86'400'000;
}  // namespace

bool backoff_policy_valid(const BackoffPolicy& policy) {
  return policy.first_wait_ms >= 1 && policy.first_wait_ms <= policy.wait_max_ms &&
         policy.wait_max_ms <= 30 * day_ms && policy.horizon_ms >= 0 &&
         policy.horizon_ms <= 365 * day_ms && policy.jitter_permille >= 0 &&
         policy.jitter_permille <= 1000;
}

std::int64_t retry_wait_ms(const BackoffPolicy& policy, std::uint32_t failed_attempts,
                           std::uint32_t draw) {
  const bool policy_valid = backoff_policy_valid(policy);
  PAYCORE_ASSERT(policy_valid);
  PAYCORE_ASSERT_GE(failed_attempts, 1U);
  std::int64_t nominal_ms = policy.first_wait_ms;
  // Doubling stops at the cap, so the loop runs at most log2(30 days / 1 ms) ~ 32 times.
  for (std::uint32_t i = 1; i < failed_attempts && nominal_ms < policy.wait_max_ms; ++i) {
    nominal_ms *= 2;
  }
  if (nominal_ms > policy.wait_max_ms) nominal_ms = policy.wait_max_ms;
  // nominal_ms <= 30 days = 2.6e9 ms < 2^32, so the span times a draw < 2^32 fits in a u64.
  const std::int64_t jitter_span_ms = nominal_ms * policy.jitter_permille / 1000;
  const auto cut_ms =
      static_cast<std::int64_t>((static_cast<std::uint64_t>(jitter_span_ms) * draw) >> 32);
  static_assert(std::int64_t{30} * 86'400'000 < (std::int64_t{1} << 32));
  const std::int64_t wait_ms = nominal_ms - cut_ms;
  PAYCORE_ASSERT_GE(wait_ms, nominal_ms - jitter_span_ms);
  PAYCORE_ASSERT_LE(wait_ms, policy.wait_max_ms);
  return wait_ms;
}

std::optional<std::int64_t> next_attempt_at_us(const BackoffPolicy& policy,
                                               std::int64_t event_created_at_us,
                                               std::int64_t failed_at_us,
                                               std::uint32_t failed_attempts, std::uint32_t draw) {
  const std::int64_t next_us = failed_at_us + retry_wait_ms(policy, failed_attempts, draw) * 1000;
  const std::int64_t horizon_us = event_created_at_us + policy.horizon_ms * 1000;
  if (next_us > horizon_us) return std::nullopt;
  return next_us;
}

}  // namespace paycore::webhooks
