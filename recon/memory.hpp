#pragma once
// Large tables the join reads at random (the key index, the payments, the id bytes) are asked
// to live on transparent huge pages: at 10M payments a 4 KiB page per random read is a TLB
// miss per read, which costs more than the cache miss itself (in a VM, a two-level page walk).
// Only advice: where THP is off, nothing changes.

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace paycore::recon {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

// Advises the whole 2 MiB pages inside [data, data + bytes).
inline void advise_huge_pages(const void* data, std::size_t bytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  const std::uintptr_t last = (begin + bytes) & ~(huge_page_bytes - 1);
  if (last > first) {
    (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // advice only
  }
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `bytes` rounded up to whole huge pages, aligned to one, advised, zeroed.
template <typename T>
std::unique_ptr<T[], FreeDeleter> allocate_huge(std::size_t count) {
  const std::size_t bytes = (count * sizeof(T) + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  void* memory = std::aligned_alloc(huge_page_bytes, bytes);
  if (memory == nullptr) throw std::bad_alloc();
  advise_huge_pages(memory, bytes);
  std::memset(memory, 0, bytes);
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(memory));
}

}  // namespace paycore::recon
