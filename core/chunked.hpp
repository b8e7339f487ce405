#pragma once
// Storage that grows without ever moving what it holds: fixed-size chunks allocated one at a
// time. Growing costs one chunk allocation, never a copy of millions of entries (docs/design.md
// rule 6: no stop-the-world pause when a table grows).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/assert.hpp"
#include "base/memory.hpp"

namespace paycore {

// Chunks are at least 2 MiB (a power-of-two number of items), mapped with huge-page advice:
// rows are reached at random (a payer's account), and 4 KiB pages would cost a TLB miss each.
template <class T>
class ChunkedVector {
  static_assert(std::is_trivially_copyable_v<T>);
  static constexpr unsigned chunk_log2_for_huge_pages() {
    unsigned log2 = 0;
    while ((std::size_t{1} << log2) * sizeof(T) < huge_page_bytes) ++log2;
    return log2;
  }
  static constexpr unsigned ChunkLog2 = chunk_log2_for_huge_pages();

 public:
  static constexpr std::uint32_t chunk_items = 1u << ChunkLog2;
  static constexpr std::size_t chunk_bytes = std::size_t{chunk_items} * sizeof(T);

  ChunkedVector() = default;
  ChunkedVector(const ChunkedVector&) = delete;
  ChunkedVector& operator=(const ChunkedVector&) = delete;
  ~ChunkedVector() { clear(); }

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
      chunks_.push_back(static_cast<T*>(allocate_zeroed(chunk_bytes)));
    }
    const std::uint32_t index = size_++;
    (*this)[index] = value;
    return index;
  }

  void clear() {
    for (T* chunk : chunks_) free_zeroed(chunk, chunk_bytes);
    chunks_.clear();
    size_ = 0;
  }

  // Address space reserved; pages count only once touched.

 private:
  std::vector<T*> chunks_;
  std::uint32_t size_ = 0;
};

// Interned short strings (ids of at most 255 bytes): [u8 length][bytes], never spanning a
// chunk. A StrRef is the global byte offset of the length byte; 0 means "no string".
using StrRef = std::uint64_t;

class StringArena {
 public:
  static constexpr std::uint64_t chunk_bytes = huge_page_bytes;

  StringArena() = default;
  StringArena(const StringArena&) = delete;
  StringArena& operator=(const StringArena&) = delete;
  ~StringArena() { clear(); }

  StrRef add(std::string_view text) {
    PAYCORE_ASSERT(text.size() <= 255);
    const std::uint64_t need = text.size() + 1;
    if (chunks_.empty() || used_in_chunk_ + need > chunk_bytes) {
      chunks_.push_back(static_cast<char*>(allocate_zeroed(chunk_bytes)));
      // Offset 0 of the first chunk is never handed out, so that 0 can mean "none".
      used_in_chunk_ = chunks_.size() == 1 ? 1 : 0;
    }
    const StrRef ref = (chunks_.size() - 1) * chunk_bytes + used_in_chunk_;
    char* at = chunks_.back() + used_in_chunk_;
    at[0] = static_cast<char>(static_cast<unsigned char>(text.size()));
    std::memcpy(at + 1, text.data(), text.size());
    used_in_chunk_ += need;
    return ref;
  }

  std::string_view get(StrRef ref) const {
    if (ref == 0) return {};
    const char* at = chunks_[ref / chunk_bytes] + ref % chunk_bytes;
    return {at + 1, static_cast<unsigned char>(at[0])};
  }

  void clear() {
    for (char* chunk : chunks_) free_zeroed(chunk, chunk_bytes);
    chunks_.clear();
    used_in_chunk_ = 0;
  }

 private:
  std::vector<char*> chunks_;
  std::uint64_t used_in_chunk_ = 0;
};

}  // namespace paycore
