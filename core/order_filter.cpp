#include "order_filter.hpp"

#include <cstring>
#include <utility>

#include "base/assert.hpp"
#include "base/memory.hpp"

namespace paycore {
namespace {

constexpr std::uint64_t words_per_block = OrderFilter::bits_per_block / 64;

// The k bit positions of a key inside its block: seven 9-bit slices of the hash, remixed
// (the high 32 bits chose the block). Double hashing of 32 bits (a start and an odd step)
// looked enough but gives only 18 bits of entropy per block: two keys of one block then share
// all their bits once in ~130,000, a false positive rate of 1e-5 even in an almost empty filter
// (the archive crash test met one in 33,000 payments).
template <class Visit>
void for_each_bit(std::uint64_t hash, Visit&& visit) {
  std::uint64_t mixed = (hash ^ (hash >> 31)) * 0x9E3779B97F4A7C15ull;
  mixed ^= mixed >> 29;
  for (std::uint32_t i = 0; i < OrderFilter::bits_per_key_set; ++i) {
    visit(static_cast<std::uint32_t>(mixed >> (9 * i)) % OrderFilter::bits_per_block);
  }
}

}  // namespace

OrderFilter::Partition::Partition(Partition&& other) noexcept
    : capacity_keys(other.capacity_keys),
      count_keys(other.count_keys),
      blocks(other.blocks),
      words(std::exchange(other.words, nullptr)) {}

OrderFilter::Partition::~Partition() { free_zeroed(words, blocks * bits_per_block / 8); }

std::uint64_t OrderFilter::blocks_for(std::uint64_t capacity_keys) {
  return (capacity_keys * bits_per_key + bits_per_block - 1) / bits_per_block;
}

std::uint64_t OrderFilter::next_capacity() const {
  if (partitions_.empty()) return partition_keys_min;
  return std::min(partitions_.back().capacity_keys * 2, partition_keys_max);
}

void OrderFilter::add_partition() {
  Partition p;
  p.capacity_keys = next_capacity();
  p.blocks = blocks_for(p.capacity_keys);
  p.words = static_cast<std::uint64_t*>(allocate_zeroed(p.blocks * bits_per_block / 8));
  partitions_.push_back(std::move(p));
}

const std::uint64_t* OrderFilter::block_of(const Partition& p, std::uint64_t hash) {
  // Multiply-shift maps the high 32 bits onto [0, blocks) without a division (Lemire).
  const std::uint64_t block = ((hash >> 32) * p.blocks) >> 32;
  return p.words + block * words_per_block;
}

void OrderFilter::insert(std::uint64_t hash) {
  if (partitions_.empty() || partitions_.back().count_keys >= partitions_.back().capacity_keys) {
    add_partition();
  }
  Partition& p = partitions_.back();
  auto* block = const_cast<std::uint64_t*>(block_of(p, hash));
  for_each_bit(hash, [&](std::uint32_t bit) { block[bit / 64] |= std::uint64_t{1} << (bit % 64); });
  ++p.count_keys;
}

bool OrderFilter::may_contain(std::uint64_t hash) const {
  for (const Partition& p : partitions_) {
    const std::uint64_t* block = block_of(p, hash);
    bool all = true;
    for_each_bit(hash, [&](std::uint32_t bit) {
      all = all && (block[bit / 64] & (std::uint64_t{1} << (bit % 64))) != 0;
    });
    if (all) return true;
  }
  return false;
}

void OrderFilter::prefetch(std::uint64_t hash) const {
  for (const Partition& p : partitions_) __builtin_prefetch(block_of(p, hash));
}

std::uint64_t OrderFilter::keys() const {
  std::uint64_t n = 0;
  for (const Partition& p : partitions_) n += p.count_keys;
  return n;
}

std::size_t OrderFilter::memory_bytes() const {
  std::size_t n = 0;
  for (const Partition& p : partitions_) n += p.blocks * bits_per_block / 8;
  return n;
}

OrderFilter::PartitionImage OrderFilter::partition(std::size_t index) const {
  PAYCORE_ASSERT_LT(index, partitions_.size());
  const Partition& p = partitions_[index];
  return {p.capacity_keys, p.count_keys,
          std::as_bytes(std::span(p.words, p.blocks * words_per_block))};
}

bool OrderFilter::restore_partition(const PartitionImage& image) {
  if (image.capacity_keys != next_capacity() || image.count_keys > image.capacity_keys) return false;
  if (image.blocks.size() != blocks_for(image.capacity_keys) * bits_per_block / 8) return false;
  // Only the newest partition may be below its capacity.
  if (!partitions_.empty() && partitions_.back().count_keys != partitions_.back().capacity_keys) {
    return false;
  }
  add_partition();
  Partition& p = partitions_.back();
  std::memcpy(p.words, image.blocks.data(), image.blocks.size());
  p.count_keys = image.count_keys;
  return true;
}

}  // namespace paycore
