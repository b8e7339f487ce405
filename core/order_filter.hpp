#pragma once
// The filter in front of the archive (docs/design.md "Hot and cold"): every (merchant, order_id)
// that has left memory is added to it, so that a new payment's order id is checked against the
// archive only when the filter says "maybe" — about 1% of new orders — instead of always.
// It never says "no" for an order that was added: `(merchant_id, order_id)` stays unique across
// the two tiers.
//
// A blocked Bloom filter (Putze, Sanders, Singler, "Cache-, Hash- and Space-Efficient Bloom
// Filters", 2007): a key sets 7 bits inside one 64-byte block, so a probe costs one cache miss.
// It cannot grow in place, so it is a list of partitions: the newest takes inserts until it
// holds its capacity, then a partition twice as large (up to `partition_keys_max`) follows. A
// probe reads one block of each partition (log2 of the archive's size, bounded: 10 at 300M),
// which the core prefetches with the command's other lookups. About 10 bits per key: 1.25 bytes
// of memory per archived payment, the one thing in memory that grows with history (1.25 GB per
// billion payments).
//
// Deterministic: the same inserts in the same order set the same bits, so it is part of the
// state, of snapshots (section FILT) and of replay.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace paycore {

class OrderFilter {
 public:
  static constexpr std::uint64_t partition_keys_min = std::uint64_t{1} << 20;
  static constexpr std::uint64_t partition_keys_max = std::uint64_t{1} << 26;
  static constexpr std::uint64_t bits_per_key = 10;
  static constexpr std::uint32_t bits_per_block = 512;
  static constexpr std::uint32_t bits_per_key_set = 7;

  OrderFilter() = default;
  OrderFilter(const OrderFilter&) = delete;
  OrderFilter& operator=(const OrderFilter&) = delete;

  /// Adds a key hash (State's hash of merchant row and order id).
  void insert(std::uint64_t hash);
  /// False: the key was never added. True: it may have been (about 1% false positives).
  bool may_contain(std::uint64_t hash) const;
  /// Starts loading the blocks may_contain(hash) will read.
  void prefetch(std::uint64_t hash) const;

  std::uint64_t keys() const;
  std::size_t memory_bytes() const;

  /// One partition as the snapshot stores it: capacity and count of keys, then its blocks.
  struct PartitionImage {
    std::uint64_t capacity_keys = 0;
    std::uint64_t count_keys = 0;
    std::span<const std::byte> blocks;  // blocks_for(capacity_keys) * 64 bytes
  };
  std::size_t partitions() const { return partitions_.size(); }
  PartitionImage partition(std::size_t index) const;
  /// Appends a partition read from a snapshot; false if its shape is not one this filter makes
  /// (the capacity of the next partition, a count above it, bytes of the wrong size).
  [[nodiscard]] bool restore_partition(const PartitionImage& image);

  static std::uint64_t blocks_for(std::uint64_t capacity_keys);
  std::uint64_t next_capacity() const;

 private:
  struct Partition {
    std::uint64_t capacity_keys = 0;
    std::uint64_t count_keys = 0;
    std::uint64_t blocks = 0;
    std::uint64_t* words = nullptr;  // blocks * 8 words, allocate_zeroed
    Partition() = default;
    Partition(Partition&& other) noexcept;
    Partition& operator=(Partition&&) = delete;
    ~Partition();
  };
  static const std::uint64_t* block_of(const Partition& p, std::uint64_t hash);
  void add_partition();

  std::vector<Partition> partitions_;
};

}  // namespace paycore
