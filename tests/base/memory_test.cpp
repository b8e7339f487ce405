// Zeroed huge-page allocations (base/memory.hpp).

#include "base/memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace paycore {
namespace {

TEST(BaseMemory, AllocateHugeIsZeroedAndAligned) {
  const auto slots = allocate_huge<std::uint64_t>(1000);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(slots.get()) % huge_page_bytes, 0u);
  for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(slots[i], 0u) << i;
}

TEST(BaseMemory, AllocateZeroedIsZeroedAndFreed) {
  const std::size_t bytes = huge_page_bytes * 2 + 4096;
  auto* p = static_cast<unsigned char*>(allocate_zeroed(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[bytes - 1], 0);
  free_zeroed(p, bytes);
}

}  // namespace
}  // namespace paycore
