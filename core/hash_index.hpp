#pragma once
// An open-addressing index from a 64-bit key hash to a 32-bit value (a row of some table).
// Keys are not stored: equality is decided by the caller, who looks the row up, so a hash
// collision can never merge two ids. Entries are never removed. Slots keep the full hash, so
// that a probe almost never touches a row that does not match, and growing never reads rows.
//
// Growth is incremental (as in Redis's dict): when the table passes its load limit a table of
// twice the size is allocated, new entries go there, and every insert moves a few slots of the
// old table across. Lookups consult the new table, then the old one. No insert ever rehashes
// more than `migrate_slots_per_insert` slots, so the core never pauses for a big rehash.
//
// The new table's memory is faulted in ahead of time, off the core thread: when a large table
// passes half load, a helper thread allocates the doubled table and touches every page; at 3/4
// load the core takes it (joining the helper only if it is not done yet). First touches of
// fresh huge pages cost milliseconds each on a VM, and the random inserts of one batch would
// otherwise hit dozens of them at once (a measured 350 ms stall per growth).

#include <algorithm>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "base/assert.hpp"
#include "base/memory.hpp"

namespace paycore {

class HashIndex {
 public:
  static constexpr std::uint32_t migrate_slots_per_insert = 16;

  explicit HashIndex(std::uint64_t capacity_hint = 1024) {
    std::uint64_t slots = 16;
    while (slots * 3 / 4 < capacity_hint) slots *= 2;
    current_ = Table(slots);
  }
  HashIndex(const HashIndex&) = delete;
  HashIndex& operator=(const HashIndex&) = delete;
  ~HashIndex() {
    if (next_) next_->thread.join();
  }

  std::uint64_t size() const { return count_; }

  // `matches(value)` says whether the row `value` holds the key being looked for.
  // Hash 0 is reserved for empty slots, so callers' hashes are folded with `stored_hash`.
  template <class Matches>
  bool find(std::uint64_t hash, Matches&& matches, std::uint32_t* value_out) const {
    if (current_.find(hash, matches, value_out)) return true;
    return old_.slots_count != 0 && old_.find(hash, matches, value_out);
  }

  // The caller has checked that the key is absent.
  void insert(std::uint64_t hash, std::uint32_t value) {
    if (old_.slots_count != 0) migrate_some();
    if (!next_ && old_.slots_count == 0 && (current_.used + 1) * 2 > current_.slots_count &&
        current_.slots_count * sizeof(Slot) >= prepared_table_bytes_min) {
      prepare_next();
    }
    if ((current_.used + 1) * 4 > current_.slots_count * 3) grow();
    current_.put(stored_hash(hash), value);
    ++count_;
  }

  // Starts loading the slot where `hash` would be found (the new table during a migration).
  void prefetch(std::uint64_t hash) const {
    hash = stored_hash(hash);
    __builtin_prefetch(&current_.slots[hash & (current_.slots_count - 1)]);
  }

  // The first value stored under exactly `hash`, without the caller's comparison: a hint for
  // prefetching the row a lookup will compare (full 64-bit hashes almost never collide).
  bool peek(std::uint64_t hash, std::uint32_t* value_out) const {
    hash = stored_hash(hash);
    const std::uint64_t mask = current_.slots_count - 1;
    for (std::uint64_t i = hash & mask, probes = 0; probes < 16; i = (i + 1) & mask, ++probes) {
      const Slot& slot = current_.slots[i];
      if (slot.hash == 0) return false;
      if (slot.hash == hash) {
        *value_out = slot.value;
        return true;
      }
    }
    return false;
  }

  std::size_t memory_bytes() const {
    return (current_.slots_count + old_.slots_count) * sizeof(Slot);
  }

 private:
  static std::uint64_t stored_hash(std::uint64_t hash) { return hash == 0 ? 1 : hash; }

  // hash 0 marks an empty slot.
  struct Slot {
    std::uint64_t hash;
    std::uint32_t value;
    std::uint32_t unused;
  };
  static_assert(sizeof(Slot) == 16);

  struct Table {
    Slot* slots = nullptr;
    std::uint64_t slots_count = 0;  // a power of two, or 0
    std::uint64_t used = 0;

    Table() = default;
    explicit Table(std::uint64_t count)
        : slots(static_cast<Slot*>(allocate_zeroed(count * sizeof(Slot)))), slots_count(count) {}
    Table(Table&& other) noexcept { swap(other); }
    Table& operator=(Table&& other) noexcept {
      Table(std::move(other)).swap(*this);
      return *this;
    }
    ~Table() { free_zeroed(slots, slots_count * sizeof(Slot)); }
    void swap(Table& other) noexcept {
      std::swap(slots, other.slots);
      std::swap(slots_count, other.slots_count);
      std::swap(used, other.used);
    }

    template <class Matches>
    bool find(std::uint64_t hash, Matches& matches, std::uint32_t* value_out) const {
      const std::uint64_t mask = slots_count - 1;
      hash = stored_hash(hash);
      for (std::uint64_t i = hash & mask, probes = 0;; i = (i + 1) & mask, ++probes) {
        // The load stays below 3/4 (insert grows first), so an empty slot ends every probe
        // before it wraps around the table.
        PAYCORE_DEBUG_ASSERT(probes < slots_count);
        const Slot& slot = slots[i];
        if (slot.hash == 0) return false;
        if (slot.hash == hash && matches(slot.value)) {
          *value_out = slot.value;
          return true;
        }
      }
    }

    void put(std::uint64_t hash, std::uint32_t value) {
      PAYCORE_DEBUG_ASSERT(used * 4 < slots_count * 3);  // the load limit, checked by insert
      PAYCORE_DEBUG_ASSERT(hash != 0);
      const std::uint64_t mask = slots_count - 1;
      std::uint64_t i = hash & mask;
      for (std::uint64_t probes = 0; slots[i].hash != 0; i = (i + 1) & mask, ++probes) {
        PAYCORE_DEBUG_ASSERT(probes < slots_count);
      }
      slots[i] = Slot{hash, value, 0};
      ++used;
    }
  };

  // Tables smaller than this grow synchronously: their faults are few and cheap.
  static constexpr std::size_t prepared_table_bytes_min = 8u << 20;

  struct Prepared {
    std::thread thread;
    Table table;
  };

  void prepare_next() {
    next_ = std::make_unique<Prepared>();
    Prepared* prepared = next_.get();
    const std::uint64_t count = current_.slots_count * 2;
    prepared->thread = std::thread([prepared, count] {
      prepared->table = Table(count);
      // A write to each 4 KiB page makes the kernel back it now (the bytes stay zero).
      auto* bytes = reinterpret_cast<volatile char*>(prepared->table.slots);
      for (std::size_t at = 0; at < count * sizeof(Slot); at += 4096) bytes[at] = 0;
    });
  }

  void grow() {
    // A migration finishes long before the new table fills: it starts at 3/4 load of the old
    // table and moves 16 slots per insert, so the new table is below 1/2 load when it ends.
    PAYCORE_ASSERT(old_.slots_count == 0);
    Table fresh;
    if (next_) {
      next_->thread.join();  // usually long done: half load came a quarter of a table ago
      fresh = std::move(next_->table);
      next_.reset();
      PAYCORE_ASSERT(fresh.slots_count == current_.slots_count * 2);
    } else {
      fresh = Table(current_.slots_count * 2);
    }
    old_ = std::move(current_);
    current_ = std::move(fresh);
    migrate_cursor_ = 0;
    migrate_some();
  }

  void migrate_some() {
    const std::uint64_t end = std::min(old_.slots_count, migrate_cursor_ + migrate_slots_per_insert);
    for (; migrate_cursor_ < end; ++migrate_cursor_) {
      const Slot slot = old_.slots[migrate_cursor_];
      if (slot.hash != 0) current_.put(slot.hash, slot.value);
    }
    if (migrate_cursor_ == old_.slots_count) old_ = Table();
  }

  Table current_;
  Table old_;
  std::unique_ptr<Prepared> next_;  // the next table, being faulted in by a helper thread
  std::uint64_t migrate_cursor_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace paycore
