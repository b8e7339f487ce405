#include "bench/loadgen/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace paycore::loadgen {
namespace {

TEST(Histogram, SmallValuesHaveExactBuckets) {
  for (std::uint64_t v = 0; v < 2 * Histogram::sub_buckets_count; ++v) {
    const std::size_t i = Histogram::bucket_index(v);
    EXPECT_EQ(Histogram::bucket_lower(i), v);
    EXPECT_EQ(Histogram::bucket_upper(i), v);
  }
}

TEST(Histogram, BucketsAreContiguousAndOrdered) {
  for (std::size_t i = 0; i + 1 < Histogram::buckets_count; ++i) {
    ASSERT_EQ(Histogram::bucket_upper(i) + 1, Histogram::bucket_lower(i + 1)) << i;
  }
  EXPECT_EQ(Histogram::bucket_upper(Histogram::buckets_count - 1), Histogram::value_clamp);
}

TEST(Histogram, EveryValueFallsInsideItsBucketWithBoundedRelativeError) {
  for (std::uint64_t v = 1; v < (std::uint64_t{1} << 39); v = v * 3 + 1) {
    const std::size_t i = Histogram::bucket_index(v);
    ASSERT_LE(Histogram::bucket_lower(i), v);
    ASSERT_GE(Histogram::bucket_upper(i), v);
    const double width = static_cast<double>(Histogram::bucket_upper(i) - Histogram::bucket_lower(i) + 1);
    // Exact below sub_buckets_count; above, a bucket is at most 1/128 of its values.
    ASSERT_LE(width, std::max(1.0, static_cast<double>(v) / Histogram::sub_buckets_count)) << v;
  }
}

TEST(Histogram, PercentilesOfUniformValues) {
  Histogram h;
  for (std::uint64_t us = 1; us <= 10'000; ++us) h.record(us * 1000);  // 1 us .. 10 ms
  EXPECT_EQ(h.count(), 10'000u);
  const auto near = [](std::uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want / Histogram::sub_buckets_count + 1;
  };
  EXPECT_TRUE(near(h.percentile(50), 5'000'000)) << h.percentile(50);
  EXPECT_TRUE(near(h.percentile(90), 9'000'000)) << h.percentile(90);
  EXPECT_TRUE(near(h.percentile(99), 9'900'000)) << h.percentile(99);
  EXPECT_TRUE(near(h.percentile(99.9), 9'990'000)) << h.percentile(99.9);
  EXPECT_EQ(h.percentile(100), 10'000'000u);
  EXPECT_EQ(h.max(), 10'000'000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_NEAR(h.mean(), 5'000'500, 1);
}

TEST(Histogram, PercentileNeverExceedsMax) {
  Histogram h;
  h.record(1'000'001);  // in a bucket whose upper bound is larger
  EXPECT_EQ(h.percentile(99.99), 1'000'001u);
  EXPECT_EQ(h.percentile(1), 1'000'001u);
}

TEST(Histogram, OneOutlierShowsOnlyInTheTail) {
  Histogram h;
  h.record(1'000, 999);
  h.record(5'000'000'000);
  // 1000 lies in the bucket 1000..1003, which is reported by its upper end.
  EXPECT_EQ(h.percentile(99.9), 1'003u);
  EXPECT_GE(h.percentile(99.99), 4'900'000'000u);
  EXPECT_EQ(h.max(), 5'000'000'000u);
}

TEST(Histogram, MergeAddsCounts) {
  Histogram a;
  Histogram b;
  a.record(100, 3);
  b.record(1'000'000, 1);
  a.merge(b);
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.min(), 100u);
  EXPECT_EQ(a.max(), 1'000'000u);
  EXPECT_EQ(a.percentile(75), 100u);
}

TEST(Histogram, HugeValuesClampToTheTopBucketButKeepMax) {
  Histogram h;
  h.record(UINT64_MAX / 4);
  EXPECT_EQ(Histogram::bucket_index(UINT64_MAX / 4), Histogram::buckets_count - 1);
  EXPECT_EQ(h.max(), UINT64_MAX / 4);
}

TEST(Histogram, EmptyHistogramReportsZeros) {
  const Histogram h;
  EXPECT_EQ(h.percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

}  // namespace
}  // namespace paycore::loadgen
