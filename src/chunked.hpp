#pragma once
// Storage that grows without ever moving what it holds: fixed-size chunks allocated one at a
// time. Growing costs one chunk allocation, never a copy of millions of entries (DESIGN.md
// rule 6: no stop-the-world pause when a table grows).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "assert.hpp"

namespace paycore {

template <class T, unsigned ChunkLog2 = 14>
class ChunkedVector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  static constexpr std::uint32_t chunk_items = 1u << ChunkLog2;

  std::uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](std::uint32_t index) {
    PAYCORE_DEBUG_ASSERT(index < size_);
    return chunks_[index >> ChunkLog2][index & (chunk_items - 1)];
  }
  const T& operator[](std::uint32_t index) const {
    PAYCORE_DEBUG_ASSERT(index < size_);
    return chunks_[index >> ChunkLog2][index & (chunk_items - 1)];
  }

  // Returns the index of the new element.
  std::uint32_t push_back(const T& value) {
    PAYCORE_ASSERT(size_ < UINT32_MAX);
    if ((size_ & (chunk_items - 1)) == 0 && (size_ >> ChunkLog2) == chunks_.size()) {
      chunks_.push_back(std::make_unique_for_overwrite<T[]>(chunk_items));
    }
    const std::uint32_t index = size_++;
    (*this)[index] = value;
    return index;
  }

  void clear() {
    chunks_.clear();
    size_ = 0;
  }

  std::size_t memory_bytes() const {
    return chunks_.size() * chunk_items * sizeof(T) + chunks_.capacity() * sizeof(void*);
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::uint32_t size_ = 0;
};

// Interned short strings (ids of at most 255 bytes): [u8 length][bytes], never spanning a
// chunk. A StrRef is the global byte offset of the length byte; 0 means "no string".
using StrRef = std::uint64_t;

class StringArena {
 public:
  static constexpr std::uint64_t chunk_bytes = 1u << 20;

  StrRef add(std::string_view text) {
    PAYCORE_ASSERT(text.size() <= 255);
    const std::uint64_t need = text.size() + 1;
    if (chunks_.empty() || used_in_chunk_ + need > chunk_bytes) {
      chunks_.push_back(std::make_unique_for_overwrite<char[]>(chunk_bytes));
      // Offset 0 of the first chunk is never handed out, so that 0 can mean "none".
      used_in_chunk_ = chunks_.size() == 1 ? 1 : 0;
    }
    const StrRef ref = (chunks_.size() - 1) * chunk_bytes + used_in_chunk_;
    char* at = chunks_.back().get() + used_in_chunk_;
    at[0] = static_cast<char>(static_cast<unsigned char>(text.size()));
    std::memcpy(at + 1, text.data(), text.size());
    used_in_chunk_ += need;
    return ref;
  }

  std::string_view get(StrRef ref) const {
    if (ref == 0) return {};
    const char* at = chunks_[ref / chunk_bytes].get() + ref % chunk_bytes;
    return {at + 1, static_cast<unsigned char>(at[0])};
  }

  void clear() {
    chunks_.clear();
    used_in_chunk_ = 0;
  }
  std::size_t memory_bytes() const { return chunks_.size() * chunk_bytes; }

 private:
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::uint64_t used_in_chunk_ = 0;
};

}  // namespace paycore
