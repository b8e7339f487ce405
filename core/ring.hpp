#pragma once
// A bounded lock-free single-producer/single-consumer ring (docs/design.md rule 1: threads meet only
// here). Capacity is a power of two fixed at construction. The producer owns `tail_`, the
// consumer owns `head_`; each keeps a cached copy of the other's index so that it touches the
// shared cache line only when the cached value says the ring looks full (or empty).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>

#include "base/assert.hpp"

namespace paycore {

inline constexpr std::size_t cache_line_bytes = 64;

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit SpscRing(std::uint32_t capacity)
      : capacity_(capacity), mask_(capacity - 1), slots_(std::make_unique<T[]>(capacity)) {
    PAYCORE_ASSERT_GE(capacity, 2U);
    PAYCORE_ASSERT_EQ(capacity & (capacity - 1), 0U);  // a power of two
  }

  std::uint32_t capacity() const { return capacity_; }

  // Producer side.
  [[nodiscard]] bool try_push(const T& item) {
    const std::uint64_t tail = producer_.index.load(std::memory_order_relaxed);
    if (tail - producer_.other_cached >= capacity_) {
      producer_.other_cached = consumer_.index.load(std::memory_order_acquire);
      if (tail - producer_.other_cached >= capacity_) return false;
    }
    slots_[tail & mask_] = item;
    producer_.index.store(tail + 1, std::memory_order_release);
    return true;
  }
  // Free slots as the producer sees them (may be stale low, never high).
  std::uint32_t free_slots() {
    producer_.other_cached = consumer_.index.load(std::memory_order_acquire);
    return capacity_ - static_cast<std::uint32_t>(producer_.index.load(std::memory_order_relaxed) -
                                                  producer_.other_cached);
  }

  // Consumer side: pops up to out.size() items; returns how many.
  std::size_t pop(std::span<T> out) {
    const std::uint64_t head = consumer_.index.load(std::memory_order_relaxed);
    if (consumer_.other_cached == head) {
      consumer_.other_cached = producer_.index.load(std::memory_order_acquire);
      if (consumer_.other_cached == head) return 0;
    }
    const std::size_t n = std::min<std::size_t>(out.size(), consumer_.other_cached - head);
    for (std::size_t i = 0; i < n; ++i) out[i] = slots_[(head + i) & mask_];
    consumer_.index.store(head + n, std::memory_order_release);
    return n;
  }
  // Items waiting, as the consumer sees them.
  std::size_t size() const {
    return static_cast<std::size_t>(producer_.index.load(std::memory_order_acquire) -
                                    consumer_.index.load(std::memory_order_acquire));
  }
  bool empty() const { return size() == 0; }

 private:
  struct alignas(cache_line_bytes) Side {
    std::atomic<std::uint64_t> index{0};
    std::uint64_t other_cached = 0;  // this side's last view of the other side's index
  };

  const std::uint32_t capacity_;
  const std::uint64_t mask_;
  std::unique_ptr<T[]> slots_;
  Side producer_;
  Side consumer_;
};

}  // namespace paycore
