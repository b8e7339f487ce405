#pragma once
// Storage that grows without ever moving what it holds: fixed-size chunks allocated one at a
// time. Growing costs one chunk allocation, never a copy of millions of entries (docs/design.md
// rule 6: no stop-the-world pause when a table grows).
//
// Both containers also shrink from the front, for tables whose rows leave memory in creation
// order (issue 12: archived payments, expired idempotency records): whole chunks below the
// first live item are unmapped, and the items after them keep their indices or offsets, which
// other rows and snapshots hold. Unmapping is O(chunks freed), never a copy.

#include <algorithm>
#include <cstddef>
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

  // One past the last index pushed (the end of the live window, not its length).
  std::uint32_t size() const { return size_; }
  // The first live index: 0 until release_front or start_at moves it.
  std::uint32_t begin() const { return begin_; }
  std::uint32_t live_count() const { return size_ - begin_; }
  // size() == 0: no index was ever handed out or skipped (a table emptied by release_front or
  // started at a nonzero index is not empty(); live_count() says whether rows remain).
  bool empty() const { return size_ == 0; }

  // `index` must be live: begin() <= index < size().
  T& operator[](std::uint32_t index) {
    PAYCORE_DEBUG_ASSERT(index >= begin_);
    PAYCORE_DEBUG_ASSERT(index < size_);
    return chunks_[index >> ChunkLog2][index & (chunk_items - 1)];
  }
  const T& operator[](std::uint32_t index) const {
    PAYCORE_DEBUG_ASSERT(index >= begin_);
    PAYCORE_DEBUG_ASSERT(index < size_);
    return chunks_[index >> ChunkLog2][index & (chunk_items - 1)];
  }

  // Returns the index of the new element (size() before the call). O(1); allocates one chunk
  // when `value` is the first item of its chunk.
  std::uint32_t push_back(const T& value) {
    PAYCORE_ASSERT(size_ < UINT32_MAX);
    const std::size_t slot = size_ >> ChunkLog2;
    // Slots past the end are missing, not null: the chunk of size_ exists unless size_ starts
    // a chunk (or start_at left the table without any chunk).
    if (slot >= chunks_.size()) allocate_chunk(slot);
    const std::uint32_t index = size_++;
    (*this)[index] = value;
    return index;
  }

  // Drops the items below `new_begin` (begin() <= new_begin <= size()): they become invalid and
  // every chunk lying wholly below `new_begin` is unmapped; the chunk holding `new_begin` stays,
  // and live items keep their indices. O(chunks freed): one munmap each, nothing is copied.
  void release_front(std::uint32_t new_begin) {
    PAYCORE_ASSERT_LE(begin_, new_begin);
    PAYCORE_ASSERT_LE(new_begin, size_);
    // Chunks below begin_'s were freed by earlier calls; begin_'s own chunk may be the first.
    const std::size_t end = std::min<std::size_t>(new_begin >> ChunkLog2, chunks_.size());
    for (std::size_t slot = begin_ >> ChunkLog2; slot < end; ++slot) free_chunk(slot);
    begin_ = new_begin;
  }

  // Makes an empty table (nothing ever pushed) begin and end at `index`, allocating nothing:
  // a loader rebuilding a table whose first live row is `index`. The next push_back returns
  // `index` and maps only the chunk it falls in. O(1).
  void start_at(std::uint32_t index) {
    PAYCORE_ASSERT_EQ(size_, 0u);
    PAYCORE_ASSERT_EQ(begin_, 0u);
    begin_ = index;
    size_ = index;
  }

  // Bytes of the chunks currently mapped (the address space; pages count once touched).
  std::size_t memory_bytes() const { return chunks_mapped_ * chunk_bytes; }

  void clear() {
    for (std::size_t slot = 0; slot < chunks_.size(); ++slot) free_chunk(slot);
    chunks_.clear();
    begin_ = 0;
    size_ = 0;
  }

 private:
  void allocate_chunk(std::size_t slot) {
    chunks_.resize(slot + 1, nullptr);  // slots below a start_at index stay null
    chunks_[slot] = static_cast<T*>(allocate_zeroed(chunk_bytes));
    ++chunks_mapped_;
  }

  // Null slots (released, or below a start_at index) are skipped.
  void free_chunk(std::size_t slot) {
    if (chunks_[slot] == nullptr) return;
    free_zeroed(chunks_[slot], chunk_bytes);
    chunks_[slot] = nullptr;
    --chunks_mapped_;
  }

  std::vector<T*> chunks_;  // null below the chunk of begin_
  std::uint32_t begin_ = 0;
  std::uint32_t size_ = 0;
  std::size_t chunks_mapped_ = 0;
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

  // `ref` is 0 or a live string (not below a release_below point).
  std::string_view get(StrRef ref) const {
    if (ref == 0) return {};
    PAYCORE_DEBUG_ASSERT(ref / chunk_bytes >= released_chunks_);
    const char* at = chunks_[ref / chunk_bytes] + ref % chunk_bytes;
    return {at + 1, static_cast<unsigned char>(at[0])};
  }

  // Unmaps every chunk lying wholly below the chunk holding `ref` (0: nothing; a ref at or
  // below an earlier call's: nothing more). Strings in that chunk and after it stay readable
  // at the same offsets. Only for an arena whose strings die in the order they were added.
  // O(chunks freed).
  void release_below(StrRef ref) {
    const std::uint64_t chunk = ref / chunk_bytes;
    // Ref 0 names chunk 0 even before the first add.
    const std::uint64_t chunks_count = std::max<std::uint64_t>(chunks_.size(), 1);
    PAYCORE_ASSERT_LT(chunk, chunks_count);
    for (; released_chunks_ < chunk; ++released_chunks_) {
      free_zeroed(chunks_[released_chunks_], chunk_bytes);
      chunks_[released_chunks_] = nullptr;
    }
  }

  // Bytes of the chunks currently mapped (the address space; pages count once touched).
  std::size_t memory_bytes() const { return (chunks_.size() - released_chunks_) * chunk_bytes; }

  void clear() {
    for (char* chunk : chunks_) free_zeroed(chunk, chunk_bytes);  // skips released (null) ones
    chunks_.clear();
    used_in_chunk_ = 0;
    released_chunks_ = 0;
  }

 private:
  std::vector<char*> chunks_;  // null below released_chunks_
  std::uint64_t used_in_chunk_ = 0;
  std::uint64_t released_chunks_ = 0;
};

}  // namespace paycore
