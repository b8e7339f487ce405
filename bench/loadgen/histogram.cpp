#include "bench/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/assert.hpp"

namespace paycore::loadgen {

std::size_t Histogram::bucket_index(std::uint64_t value) {
  value = std::min(value, value_clamp);
  if (value < sub_buckets_count) return static_cast<std::size_t>(value);
  const unsigned exponent = static_cast<unsigned>(std::bit_width(value)) - 1;  // >= sub_bits
  const unsigned shift = exponent - sub_bucket_bits;
  const std::uint64_t sub = (value >> shift) - sub_buckets_count;  // 0 .. sub_buckets - 1
  const std::size_t index =
      sub_buckets_count + std::size_t{shift} * sub_buckets_count + static_cast<std::size_t>(sub);
  PAYCORE_ASSERT(index < buckets_count);
  return index;
}

std::uint64_t Histogram::bucket_lower(std::size_t index) {
  PAYCORE_ASSERT(index < buckets_count);
  if (index < sub_buckets_count) return index;
  const std::size_t shift = (index - sub_buckets_count) / sub_buckets_count;
  const std::size_t sub = (index - sub_buckets_count) % sub_buckets_count;
  return (std::uint64_t{sub_buckets_count} + sub) << shift;
}

std::uint64_t Histogram::bucket_upper(std::size_t index) {
  if (index < sub_buckets_count) return index;
  const std::size_t shift = (index - sub_buckets_count) / sub_buckets_count;
  return bucket_lower(index) + (std::uint64_t{1} << shift) - 1;
}

void Histogram::record(std::uint64_t value_ns, std::uint64_t count) {
  if (count == 0) return;
  counts_[bucket_index(value_ns)] += count;
  count_ += count;
  sum_ += value_ns * count;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void Histogram::merge(const Histogram& other) {
  for (std::size_t i = 0; i < buckets_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::clear() { *this = Histogram{}; }

double Histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

std::uint64_t Histogram::percentile(double percent) const {
  if (count_ == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  // The rank of the value asked for, 1-based: at least the first value. 99.9% of 1000 is
  // 999.0000000000001 in doubles; shaving a relative 1e-12 keeps it 999 (counts < 2^40).
  const double exact_rank =
      std::ceil(percent / 100.0 * static_cast<double>(count_) * (1.0 - 1e-12));
  const std::uint64_t rank =
      std::clamp<std::uint64_t>(static_cast<std::uint64_t>(exact_rank), 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_upper(i), max_);
  }
  PAYCORE_ASSERT(false && "histogram counts do not add up to count_");
  return max_;
}

}  // namespace paycore::loadgen
