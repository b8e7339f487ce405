#include "net/rate_limit.hpp"

#include <xxhash.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/assert.hpp"

namespace paycore::net {
namespace {

constexpr std::size_t shards_count = 16;
constexpr std::int64_t micro = 1'000'000;  // tokens are counted in millionths

struct Bucket {
  std::int64_t tokens_micro = 0;  // negative: in debt after a batch larger than the burst
  std::int64_t updated_us = 0;
  bool used = false;              // false: never used (full)
};

struct Buckets {
  std::array<Bucket, rate_classes_count> by_class{};
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return XXH3_64bits(text.data(), text.size()); }
};

std::int64_t capacity_micro(const RateLimit& limit) {
  return std::int64_t{limit.burst == 0 ? limit.per_s : limit.burst} * micro;
}

// Refills `bucket` up to `now_us`; returns its tokens (millionths).
std::int64_t refill(Bucket& bucket, const RateLimit& limit, std::int64_t now_us) {
  const std::int64_t capacity = capacity_micro(limit);
  if (!bucket.used) {
    bucket.used = true;
    bucket.tokens_micro = capacity;
  } else if (now_us > bucket.updated_us) {
    // Bounded so that elapsed * per_s cannot overflow: past this the bucket is full anyway (a
    // bucket in debt after a large batch needs its debt refilled too).
    const std::int64_t elapsed_us =
        std::min(now_us - bucket.updated_us, (capacity - bucket.tokens_micro) / limit.per_s + 1);
    bucket.tokens_micro = std::min(capacity, bucket.tokens_micro + elapsed_us * limit.per_s);
  }
  bucket.updated_us = std::max(bucket.updated_us, now_us);
  return bucket.tokens_micro;
}

}  // namespace

struct RateLimiter::Shard {
  alignas(64) std::mutex mutex;
  std::unordered_map<std::string, Buckets, StringHash, std::equal_to<>> principals;
  Buckets overflow;
};

std::string_view rate_class_name(RateClass rate_class) {
  switch (rate_class) {
    case RateClass::write: return "write";
    case RateClass::read: return "read";
    case RateClass::admin: return "admin";
  }
  return "write";
}

RateClass rate_class_of(Route route, bool is_get) {
  if (route_access(route) == RouteAccess::operator_only) return RateClass::admin;
  return is_get ? RateClass::read : RateClass::write;
}

RateLimiter::RateLimiter(const RateLimitConfig& config)
    : config_(config), enabled_(config.enabled()), shards_(new Shard[shards_count]) {
  PAYCORE_ASSERT(config.principals_max > 0);
  shard_principals_max_ = std::max<std::size_t>(1, config.principals_max / shards_count);
}

RateLimiter::~RateLimiter() = default;

std::uint32_t RateLimiter::take(std::string_view principal, RateClass rate_class, std::uint32_t cost,
                                std::int64_t now_us) {
  const RateLimit& limit = config_.classes[static_cast<std::size_t>(rate_class)];
  if (limit.per_s == 0) return 0;
  const std::int64_t capacity = capacity_micro(limit);
  // A cost above the bucket could never be paid: it takes the whole bucket instead (batches use
  // take_up_to, which refuses the items beyond the tokens there).
  const std::int64_t need = std::min(std::int64_t{cost} * micro, capacity);
  Shard& shard = shards_[StringHash{}(principal) % shards_count];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto found = shard.principals.find(principal);
  Buckets* buckets = nullptr;
  if (found != shard.principals.end()) {
    buckets = &found->second;
  } else {
    if (shard.principals.size() >= shard_principals_max_) {
      // Drop buckets that have refilled: they are the same as fresh ones.
      for (auto it = shard.principals.begin(); it != shard.principals.end();) {
        bool full = true;
        for (std::size_t i = 0; i < rate_classes_count && full; ++i) {
          const RateLimit& l = config_.classes[i];
          Bucket& b = it->second.by_class[i];
          full = l.per_s == 0 || !b.used || refill(b, l, now_us) >= capacity_micro(l);
        }
        it = full ? shard.principals.erase(it) : std::next(it);
      }
    }
    buckets = shard.principals.size() < shard_principals_max_
                  ? &shard.principals.emplace(std::string(principal), Buckets{}).first->second
                  : &shard.overflow;
  }
  Bucket& bucket = buckets->by_class[static_cast<std::size_t>(rate_class)];
  const std::int64_t have = refill(bucket, limit, now_us);
  if (have >= need) {
    bucket.tokens_micro = have - need;
    return 0;
  }
  const std::int64_t missing = need - have;
  const std::int64_t per_s_micro = std::int64_t{limit.per_s} * micro;
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, (missing + per_s_micro - 1) / per_s_micro));
}

// One token at a time: a batch is at most batch_items_max items, and each take is a short
// critical section, so this costs microseconds and keeps one code path for the buckets.
std::uint32_t RateLimiter::take_up_to(std::string_view principal, RateClass rate_class, std::uint32_t wanted,
                                      std::int64_t now_us) {
  if (config_.classes[static_cast<std::size_t>(rate_class)].per_s == 0) return wanted;
  std::uint32_t granted = 0;
  while (granted < wanted && take(principal, rate_class, 1, now_us) == 0) ++granted;
  return granted;
}

std::size_t RateLimiter::tracked() const {
  std::size_t total = 0;
  for (std::size_t i = 0; i < shards_count; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mutex);
    total += shards_[i].principals.size();
  }
  return total;
}

}  // namespace paycore::net
