#pragma once
// An open-addressing index from a 64-bit key hash to a 32-bit value (a row of some table).
// Keys are not stored: equality is decided by the caller, who looks the row up, so a hash
// collision can never merge two ids. Entries are never removed.
//
// Growth is incremental (as in Redis's dict): when the table passes its load limit a table of
// twice the size is allocated, new entries go there, and every insert moves a few slots of the
// old table across. Lookups consult the new table, then the old one. No insert ever rehashes
// more than `migrate_slots_per_insert` slots, so the core never pauses for a big rehash.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "assert.hpp"

namespace paycore {

class HashIndex {
 public:
  static constexpr std::uint32_t migrate_slots_per_insert = 16;

  explicit HashIndex(std::uint64_t capacity_hint = 1024) {
    std::uint64_t slots = 16;
    while (slots * 3 / 4 < capacity_hint) slots *= 2;
    current_ = Table(slots);
  }

  std::uint64_t size() const { return count_; }

  // `matches(value)` says whether the row `value` holds the key being looked for.
  template <class Matches>
  bool find(std::uint64_t hash, Matches&& matches, std::uint32_t* value_out) const {
    if (current_.find(hash, matches, value_out)) return true;
    return old_.slots_count != 0 && old_.find(hash, matches, value_out);
  }

  // The caller has checked that the key is absent. `hash_of(value)` recomputes the hash of an
  // existing row's key; it is needed to move rows into a grown table.
  template <class HashOf>
  void insert(std::uint64_t hash, std::uint32_t value, HashOf&& hash_of) {
    PAYCORE_ASSERT(value != UINT32_MAX);
    if (old_.slots_count != 0) migrate_some(hash_of);
    if ((current_.used + 1) * 4 > current_.slots_count * 3) grow(hash_of);
    current_.put(hash, value);
    ++count_;
  }

  std::size_t memory_bytes() const {
    return (current_.slots_count + old_.slots_count) * sizeof(Slot);
  }

 private:
  // tag: the high 32 bits of the hash (a cheap filter before the caller's comparison);
  // value_plus_one: 0 marks an empty slot.
  struct Slot {
    std::uint32_t tag;
    std::uint32_t value_plus_one;
  };
  static_assert(sizeof(Slot) == 8);

  struct Table {
    // calloc, not new[]: a large calloc is fresh zero pages from mmap, faulted in as they are
    // touched, so allocating a table of 2^26 slots does not stop the core to zero 512 MiB.
    struct Free {
      void operator()(Slot* p) const { std::free(p); }
    };
    std::unique_ptr<Slot[], Free> slots;
    std::uint64_t slots_count = 0;  // a power of two, or 0
    std::uint64_t used = 0;

    Table() = default;
    explicit Table(std::uint64_t count)
        : slots(static_cast<Slot*>(std::calloc(count, sizeof(Slot)))), slots_count(count) {
      PAYCORE_ASSERT(slots != nullptr);
    }

    template <class Matches>
    bool find(std::uint64_t hash, Matches& matches, std::uint32_t* value_out) const {
      const std::uint64_t mask = slots_count - 1;
      const auto tag = static_cast<std::uint32_t>(hash >> 32);
      for (std::uint64_t i = hash & mask;; i = (i + 1) & mask) {
        const Slot& slot = slots[i];
        if (slot.value_plus_one == 0) return false;
        if (slot.tag == tag && matches(slot.value_plus_one - 1)) {
          *value_out = slot.value_plus_one - 1;
          return true;
        }
      }
    }

    void put(std::uint64_t hash, std::uint32_t value) {
      PAYCORE_DEBUG_ASSERT(used < slots_count);
      const std::uint64_t mask = slots_count - 1;
      std::uint64_t i = hash & mask;
      while (slots[i].value_plus_one != 0) i = (i + 1) & mask;
      slots[i] = Slot{static_cast<std::uint32_t>(hash >> 32), value + 1};
      ++used;
    }
  };

  template <class HashOf>
  void grow(HashOf& hash_of) {
    // A migration finishes long before the new table fills: it starts at 3/4 load of the old
    // table and moves 16 slots per insert, so the new table is below 1/2 load when it ends.
    PAYCORE_ASSERT(old_.slots_count == 0);
    old_ = std::move(current_);
    current_ = Table(old_.slots_count * 2);
    migrate_cursor_ = 0;
    migrate_some(hash_of);
  }

  template <class HashOf>
  void migrate_some(HashOf& hash_of) {
    const std::uint64_t end = std::min(old_.slots_count, migrate_cursor_ + migrate_slots_per_insert);
    for (; migrate_cursor_ < end; ++migrate_cursor_) {
      const Slot slot = old_.slots[migrate_cursor_];
      if (slot.value_plus_one == 0) continue;
      const std::uint32_t value = slot.value_plus_one - 1;
      const std::uint64_t hash = hash_of(value);
      PAYCORE_DEBUG_ASSERT(static_cast<std::uint32_t>(hash >> 32) == slot.tag);
      current_.put(hash, value);
    }
    if (migrate_cursor_ == old_.slots_count) old_ = Table();
  }

  Table current_;
  Table old_;
  std::uint64_t migrate_cursor_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace paycore
