#pragma once
// Per-principal rate limits (docs/api.md "Conventions": `429 rate_limited` with `Retry-After`).
//
// A token bucket per (principal, route class): `burst` tokens at most, refilled at `per_s`
// tokens a second; a request takes `cost` tokens (1; a batch takes one per item, at most the
// burst) or is refused with the whole seconds until enough have refilled (Retry-After, >= 1).
// Decided on the I/O thread after the signature, timestamp and nonce checks (so a forger
// cannot drain a merchant's bucket, and a replay is refused as a replay, for free) and before
// the command reaches the core.
//
// One table shared by every I/O thread (sharded by principal, a small mutex per shard): a
// principal flooding over many connections, spread over several I/O threads, gets its limit
// once, not once per thread.
//
// Memory: at most `principals_max` principals are tracked. Only authenticated principals (from
// the keys file) get here, so the keys file bounds them anyway; when a shard is at its share,
// buckets that have refilled completely (equal to a fresh bucket) are dropped; if none can be,
// the new principal shares that shard's overflow bucket (it is still limited, possibly more
// than it should be, never less).

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "net/routes.hpp"

namespace paycore::net {

// payments-write: merchant mutations (payments, batch, captures, refunds, ...);
// reads: GET routes; admin: operator-only routes (accounts, deposits, snapshot).
enum class RateClass : std::uint8_t { write, read, admin };
inline constexpr std::size_t rate_classes_count = 3;

std::string_view rate_class_name(RateClass rate_class);
// The class of a signed request on `route` with method GET (`is_get`) or another.
RateClass rate_class_of(Route route, bool is_get);

struct RateLimit {
  std::uint32_t per_s = 0;  // tokens added a second; 0: no limit for this class
  std::uint32_t burst = 0;  // bucket size; 0 means per_s
};

struct RateLimitConfig {
  std::array<RateLimit, rate_classes_count> classes{};  // indexed by RateClass
  std::size_t principals_max = 100'000;
  bool enabled() const {
    for (const RateLimit& limit : classes) {
      if (limit.per_s != 0) return true;
    }
    return false;
  }
};

class RateLimiter {
 public:
  explicit RateLimiter(const RateLimitConfig& config);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes `cost` tokens from the bucket of (principal, class) at `now_us` (a monotonic clock).
  // 0 when taken; otherwise nothing is taken and the result is the seconds to wait (>= 1).
  [[nodiscard]] std::uint32_t take(std::string_view principal, RateClass rate_class,
                                   std::uint32_t cost, std::int64_t now_us);
  // For a batch: takes as many whole tokens as are there, up to `wanted`, and returns how many
  // (0..wanted). The items beyond are refused one by one; the bucket never goes below empty,
  // so a batch cannot carry a principal past its burst.
  [[nodiscard]] std::uint32_t take_up_to(std::string_view principal, RateClass rate_class,
                                         std::uint32_t wanted, std::int64_t now_us);
  bool enabled() const { return enabled_; }
  // Principals tracked (every shard's lock).
  std::size_t tracked() const;

 private:
  struct Shard;
  RateLimitConfig config_;
  bool enabled_ = false;
  std::size_t shard_principals_max_ = 0;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace paycore::net
