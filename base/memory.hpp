#pragma once
// Large zeroed allocations on transparent huge pages, the one place that knows the huge page
// size and asks for them. Tables read at random (the core's hash indexes and chunks, recon's
// key index and id bytes) miss the TLB on nearly every probe with 4 KiB pages; at 10M
// payments that costs more than the cache miss itself (in a VM, a two-level page walk).
// madvise(MADV_HUGEPAGE) is advice only: where THP is off, nothing changes.
//
// Two forms: allocate_zeroed (fresh pages from mmap: zero, faulted in as they are touched, so a
// big allocation costs no memset pause; the core's tables) and allocate_huge (aligned to a huge
// page and zeroed at once; recon's tables, filled right after).

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "base/assert.hpp"

namespace paycore {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

// Advises the whole huge pages inside [data, data + bytes); nothing if there is none.
inline void advise_huge_pages(const void* data, std::size_t bytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  const std::uintptr_t last = (begin + bytes) & ~(huge_page_bytes - 1);
  if (last > first) {
    (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advice only
  }
}

// `bytes` (> 0) of zeroed memory from mmap, huge pages advised; aborts if the kernel refuses
// (start-up sizing makes that a configuration error). Release with free_zeroed(p, bytes).
inline void* allocate_zeroed(std::size_t bytes) {
  PAYCORE_ASSERT_GT(bytes, std::size_t{0});
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  PAYCORE_ASSERT(p != MAP_FAILED);
  advise_huge_pages(p, bytes);
  return p;
}

inline void free_zeroed(void* p, std::size_t bytes) {
  if (p == nullptr) return;
  const int unmapped = ::munmap(p, bytes);
  PAYCORE_ASSERT_EQ(unmapped, 0);
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `count` zeroed T, the bytes rounded up to whole huge pages, aligned to one and advised.
// Throws std::bad_alloc when memory is short.
template <typename T>
std::unique_ptr<T[], FreeDeleter> allocate_huge(std::size_t count) {
  const std::size_t bytes = (count * sizeof(T) + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  void* memory = std::aligned_alloc(huge_page_bytes, bytes);
  if (memory == nullptr) throw std::bad_alloc();
  advise_huge_pages(memory, bytes);
  std::memset(memory, 0, bytes);
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(memory));
}

}  // namespace paycore
