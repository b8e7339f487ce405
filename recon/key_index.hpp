#pragma once
// The index of the reconciliation join (recon/reconciler.cpp): open addressing over indexes
// into a table the caller owns, on huge pages (base/memory.hpp), sized once.

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>

#include "base/assert.hpp"
#include "base/memory.hpp"

namespace paycore::recon {

// The hash of an id within its scope (the merchant for orders and refunds).
inline std::uint64_t key_hash(std::string_view scope, std::string_view id) {
  return XXH3_64bits_withSeed(id.data(), id.size(), XXH3_64bits(scope.data(), scope.size()));
}

// Open addressing over indexes into a table the caller owns; a slot holds the upper 32 bits of
// the key's hash (a cheap first comparison) and index + 1 (0 = empty). Sized once: load <= 0.7.
class KeyIndex {
 public:
  explicit KeyIndex(std::size_t count) {
    const std::size_t wanted = std::max<std::size_t>(16, count + count / 2 + 1);
    const std::size_t slots_count = std::bit_ceil(wanted);
    slots_ = allocate_huge<std::uint64_t>(slots_count);
    mask_ = slots_count - 1;
  }

  template <typename Equal>
  std::optional<std::uint32_t> find(std::uint64_t hash, const Equal& equal) const {
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const std::uint64_t slot = slots_[at];
      if (slot == 0) return std::nullopt;
      const auto index = static_cast<std::uint32_t>(slot) - 1;
      if (static_cast<std::uint32_t>(slot >> 32) == tag && equal(index)) return index;
    }
  }

  void prefetch(std::uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  // The first entry whose tag matches, unverified: a hint to prefetch and verify later. None
  // means the key is certainly absent.
  std::optional<std::uint32_t> first_tag_match(std::uint64_t hash) const {
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const std::uint64_t slot = slots_[at];
      if (slot == 0) return std::nullopt;
      if (static_cast<std::uint32_t>(slot >> 32) == tag)
        return static_cast<std::uint32_t>(slot) - 1;
    }
  }

  void insert(std::uint64_t hash, std::uint32_t index) {
    PAYCORE_ASSERT_LT(index, std::numeric_limits<std::uint32_t>::max());
    std::size_t at = hash & mask_;
    while (slots_[at] != 0) at = (at + 1) & mask_;
    slots_[at] = (hash >> 32 << 32) | (std::uint64_t{index} + 1);
  }

 private:
  std::unique_ptr<std::uint64_t[], FreeDeleter> slots_;  // zeroed: every slot empty
  std::size_t mask_ = 0;
};

}  // namespace paycore::recon
