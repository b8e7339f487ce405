#pragma once
// Randomness for workloads: a small fast generator (xoshiro256**, seeded by splitmix64) and
// a Zipf sampler over ranks 0..n-1 (rank 0 the most popular: P(k) ~ 1 / (k+1)^s).
//
// The Zipf sampler precomputes the cumulative distribution once (n doubles, n <= 1e6 is 8 MB)
// and samples by binary search; it is immutable afterwards, so threads share it. s == 0 is
// uniform and needs no table.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace paycore::loadgen {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, bound), bound > 0 (Lemire's multiply-shift; bias below 2^-64 * bound).
  std::uint64_t below(std::uint64_t bound);

 private:
  std::uint64_t s_[4];
};

inline constexpr std::uint64_t zipf_ranks_max = 1'000'000;

class ZipfSampler {
 public:
  // n in 1..zipf_ranks_max, skew >= 0 (0 = uniform).
  ZipfSampler(std::uint64_t n, double skew);
  std::uint64_t sample(Rng& rng) const;
  // P(rank), for tests and reports.
  double probability(std::uint64_t rank) const;
  std::uint64_t ranks_count() const { return n_; }
  double skew() const { return skew_; }

 private:
  std::uint64_t n_ = 1;
  double skew_ = 0.0;
  std::vector<double> cdf_;  // cdf_[k] = P(rank <= k); empty when uniform
};

}  // namespace paycore::loadgen
