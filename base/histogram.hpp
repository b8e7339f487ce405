#pragma once
// Power-of-two histogram buckets, shared by every latency and size histogram that /metrics
// exports (the log's fsync latency and batch sizes, the archive lookups' latency).

#include <bit>
#include <cstddef>
#include <cstdint>

namespace paycore {

/// The bucket of `value` among `buckets` (>= 1): bucket i holds values below 2^i (0 -> 0,
/// 1 -> 1, 2..3 -> 2, ...); values from 2^(buckets - 1) up all go in the last bucket.
constexpr std::size_t log2_bucket(std::uint64_t value, std::size_t buckets) {
  const auto bucket = static_cast<std::size_t>(std::bit_width(value));
  return bucket < buckets ? bucket : buckets - 1;
}

static_assert(log2_bucket(0, 8) == 0 && log2_bucket(1, 8) == 1 && log2_bucket(3, 8) == 2);
static_assert(log2_bucket(UINT64_MAX, 8) == 7);

}  // namespace paycore
