#include "bench/loadgen/sampling.hpp"

#include <algorithm>
#include <cmath>

#include "base/assert.hpp"

namespace paycore::loadgen {
namespace {
std::uint64_t splitmix64(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& word : s_) word = splitmix64(&seed);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::below(std::uint64_t bound) {
  PAYCORE_ASSERT(bound > 0);
  __extension__ using u128 = unsigned __int128;  // GCC/Clang; pedantic-clean
  const u128 product = static_cast<u128>(next()) * bound;
  return static_cast<std::uint64_t>(product >> 64);
}

ZipfSampler::ZipfSampler(std::uint64_t n, double skew) : n_(n), skew_(skew) {
  PAYCORE_ASSERT_GE(n, 1u);
  PAYCORE_ASSERT_LE(n, zipf_ranks_max);
  const bool finite = std::isfinite(skew);
  PAYCORE_ASSERT(finite);
  PAYCORE_ASSERT_GE(skew, 0.0);
  if (skew == 0.0) return;
  cdf_.resize(n);
  double sum = 0.0;
  for (std::uint64_t k = 0; k < n; ++k) {
    sum += std::pow(static_cast<double>(k + 1), -skew);
    cdf_[k] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;  // rounding must not leave a gap at the top
}

std::uint64_t ZipfSampler::sample(Rng& rng) const {
  if (cdf_.empty()) return rng.below(n_);
  const double u = rng.unit();
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  const auto rank = static_cast<std::uint64_t>(it - cdf_.begin());
  PAYCORE_ASSERT(rank < n_);
  return rank;
}

double ZipfSampler::probability(std::uint64_t rank) const {
  PAYCORE_ASSERT(rank < n_);
  if (cdf_.empty()) return 1.0 / static_cast<double>(n_);
  return rank == 0 ? cdf_[0] : cdf_[rank] - cdf_[rank - 1];
}

}  // namespace paycore::loadgen
