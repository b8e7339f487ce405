#include "bench/loadgen/sampling.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace paycore::loadgen {
namespace {

std::vector<std::uint64_t> histogram_of(const ZipfSampler& zipf, std::uint64_t draws, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint64_t> counts(zipf.ranks_count());
  for (std::uint64_t i = 0; i < draws; ++i) ++counts.at(zipf.sample(rng));
  return counts;
}

TEST(Zipf, ZeroSkewIsUniform) {
  const ZipfSampler zipf(10, 0.0);
  const auto counts = histogram_of(zipf, 100'000, 7);
  for (std::uint64_t c : counts) EXPECT_NEAR(static_cast<double>(c), 10'000.0, 500.0);
}

TEST(Zipf, SkewOneFollowsTheHarmonicLaw) {
  const ZipfSampler zipf(100, 1.0);
  double harmonic = 0;
  for (int k = 1; k <= 100; ++k) harmonic += 1.0 / k;
  EXPECT_NEAR(zipf.probability(0), 1.0 / harmonic, 1e-9);
  EXPECT_NEAR(zipf.probability(1), 0.5 / harmonic, 1e-9);
  const auto counts = histogram_of(zipf, 200'000, 11);
  const double top = static_cast<double>(counts[0]) / 200'000.0;
  EXPECT_NEAR(top, 1.0 / harmonic, 0.01);
  EXPECT_NEAR(static_cast<double>(counts[0]) / static_cast<double>(counts[1]), 2.0, 0.1);
  EXPECT_NEAR(static_cast<double>(counts[0]) / static_cast<double>(counts[9]), 10.0, 1.0);
}

TEST(Zipf, HigherSkewConcentratesOnTopRanks) {
  const ZipfSampler mild(1000, 0.5);
  const ZipfSampler steep(1000, 1.5);
  EXPECT_GT(steep.probability(0), 3 * mild.probability(0));
}

TEST(Zipf, SameSeedSameSequence) {
  const ZipfSampler zipf(1000, 1.2);
  Rng a(42);
  Rng b(42);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(zipf.sample(a), zipf.sample(b));
}

TEST(Zipf, SamplesStayInRange) {
  for (double skew : {0.0, 0.99, 1.0, 3.0}) {
    const ZipfSampler zipf(3, skew);
    Rng rng(5);
    for (int i = 0; i < 10'000; ++i) ASSERT_LT(zipf.sample(rng), 3u);
  }
  const ZipfSampler one(1, 2.0);
  Rng rng(1);
  EXPECT_EQ(one.sample(rng), 0u);
}

TEST(Rng, BelowIsUniformOverSmallBounds) {
  Rng rng(3);
  std::vector<int> counts(6);
  for (int i = 0; i < 60'000; ++i) ++counts.at(rng.below(6));
  for (int c : counts) EXPECT_NEAR(c, 10'000, 400);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace paycore::loadgen
