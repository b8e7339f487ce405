#pragma once
// Large zeroed allocations for the core's tables: fresh pages from mmap (zero, faulted in as
// they are touched, so a big allocation costs no memset pause), marked for transparent huge
// pages where they are big enough, which cuts TLB misses on random index probes.

#include <sys/mman.h>

#include <cstddef>

#include "base/assert.hpp"

namespace paycore {

inline constexpr std::size_t huge_page_bytes = 2u << 20;

inline void* allocate_zeroed(std::size_t bytes) {
  PAYCORE_ASSERT(bytes > 0);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  PAYCORE_ASSERT(p != MAP_FAILED);
  if (bytes >= huge_page_bytes) (void)::madvise(p, bytes, MADV_HUGEPAGE);  // advice only
  return p;
}

inline void free_zeroed(void* p, std::size_t bytes) {
  if (p == nullptr) return;
  const int unmapped = ::munmap(p, bytes);
  PAYCORE_ASSERT(unmapped == 0);
}

}  // namespace paycore
