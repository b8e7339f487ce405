#pragma once
// A log-linear latency histogram (the HdrHistogram layout, fixed at compile time).
//
// Values are nanoseconds. Below 2^sub_bucket_bits every value has its own bucket (exact);
// above, each power of two [2^e, 2^(e+1)) is cut into 2^sub_bucket_bits equal buckets, so a
// bucket's width is 2^(e - sub_bucket_bits) and the relative error of any value read back is
// below 2^-sub_bucket_bits (0.8% with 7 bits). Values at or above 2^value_bits_max (about 18
// minutes) land in the top bucket; max() stays exact.
//
//   index:  0 .. 127  | 128 .. 255 | 256 .. 383  | 384 .. 511  | ...
//   value:  0 .. 127  | 128 .. 255 | 256 .. 510  | 512 .. 1020 | ...   (step 1, 1, 2, 4, ...)
//
// Fixed size (34 KiB of counters), no allocation after construction, merge is a vector add.

#include <array>
#include <cstddef>
#include <cstdint>

namespace paycore::loadgen {

class Histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 7;
  static constexpr unsigned value_bits_max = 40;
  static constexpr std::size_t sub_buckets_count = std::size_t{1} << sub_bucket_bits;
  static constexpr std::size_t buckets_count =
      sub_buckets_count + (value_bits_max - sub_bucket_bits) * sub_buckets_count;
  static constexpr std::uint64_t value_clamp = (std::uint64_t{1} << value_bits_max) - 1;
  static_assert(sub_bucket_bits < value_bits_max && value_bits_max < 63);

  void record(std::uint64_t value_ns, std::uint64_t count = 1);
  void merge(const Histogram& other);
  void clear();

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const;
  // The smallest recorded bucket's upper bound at or below which `percent` (0..100] of the
  // values lie, never above max(); 0 for an empty histogram.
  std::uint64_t percentile(double percent) const;

  static std::size_t bucket_index(std::uint64_t value);
  static std::uint64_t bucket_lower(std::size_t index);
  static std::uint64_t bucket_upper(std::size_t index);
  std::uint64_t bucket_count(std::size_t index) const { return counts_[index]; }

 private:
  std::array<std::uint64_t, buckets_count> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  // Sum in nanoseconds; 2^64 ns is 584 years of total latency, far beyond any bounded run.
  std::uint64_t sum_ = 0;
};

// The percentiles every report shows, in this order.
inline constexpr std::array<double, 5> report_percentiles = {50.0, 90.0, 99.0, 99.9, 99.99};

}  // namespace paycore::loadgen
