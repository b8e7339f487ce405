#pragma once
// The retry schedule of a delivery (API.md: "retried with exponential backoff for up to 3 days
// (configurable)"). A pure function of the attempt number and a random draw, so tests check the
// schedule exactly and the dispatcher supplies the randomness.
//
//   nominal(n) = min(first_wait_ms * 2^(n-1), wait_max_ms)   after the n-th failed attempt
//   wait(n)    = nominal(n) - nominal(n) * jitter_permille/1000 * draw/2^32   (jitter downward,
//                so that no wait exceeds its nominal value nor the cap)
//
// With the defaults (5 s, doubling, 1 h cap, 20 % jitter) the nominal waits are 5, 10, 20, 40,
// 80, 160, 320, 640, 1280, 2560 s, then 3600 s each; the 10 first add up to 85 min, and a
// delivery that never succeeds is tried about 80 times before its horizon of 3 days after the
// event's creation, when it is given up (FAILED).

#include <cstdint>
#include <optional>

namespace paycore::webhooks {

struct BackoffPolicy {
  std::int64_t first_wait_ms = 5'000;
  std::int64_t wait_max_ms = 3'600'000;                // one hour per wait at most
  std::int64_t horizon_ms = std::int64_t{3} * 86'400'000;  // no attempt starts later than this
                                                           // after the event's creation
  std::int32_t jitter_permille = 200;                  // 0..1000: how much of a wait is random
};

/// Checks the policy: first_wait_ms in 1..wait_max_ms, wait_max_ms <= 30 days, horizon_ms in
/// 0..365 days, jitter_permille in 0..1000. (Bounds that keep every product below in int64.)
[[nodiscard]] bool backoff_policy_valid(const BackoffPolicy& policy);

/// The wait after the `failed_attempts`-th failed attempt (>= 1), for a draw uniform in
/// [0, 2^32). Milliseconds, in [nominal - nominal * jitter, nominal].
std::int64_t retry_wait_ms(const BackoffPolicy& policy, std::uint32_t failed_attempts,
                           std::uint32_t draw);

/// When the next attempt starts (unix microseconds), given the event's creation and the end of
/// the `failed_attempts`-th failed attempt; nullopt when that is past the horizon: the delivery
/// is then given up.
std::optional<std::int64_t> next_attempt_at_us(const BackoffPolicy& policy,
                                               std::int64_t event_created_at_us,
                                               std::int64_t failed_at_us,
                                               std::uint32_t failed_attempts, std::uint32_t draw);

}  // namespace paycore::webhooks
