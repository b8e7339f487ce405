#pragma once
// An open-addressing index from a 64-bit key hash to a 32-bit value (a row of some table).
// Keys are not stored: equality is decided by the caller, who looks the row up, so a hash
// collision can never merge two ids. Slots keep the full hash, so that a probe almost never
// touches a row that does not match, and growing never reads rows.
//
// Erasing leaves a tombstone: the slot's hash becomes `tombstone_hash`, a value no stored hash
// takes (stored_hash folds it away), so probe chains stay unbroken and find and peek pass over
// tombstones without an extra test. Inserts reuse the first tombstone on their probe path. The
// load limit counts live entries and tombstones; when it is reached with most entries live the
// table doubles, otherwise it is rebuilt at the size the live entries need (the same size, or
// smaller after a mass erase), which drops the tombstones. A sliding window (insert the new,
// erase the oldest) therefore keeps the table at a fixed size.
//
// Growth is incremental (as in Redis's dict): when the table passes its load limit a new table
// (twice the size, or a rebuild) is allocated, new entries go there, and every insert moves a
// few slots of the old table across. Lookups consult the new table, then the old one. No
// insert ever rehashes more than `migrate_slots_per_insert` slots, so the core never pauses
// for a big rehash.
//
// The new table's memory is faulted in ahead of time, off the core thread: when a large table
// passes half load, a helper thread allocates the next table (doubled or rebuilt, as the live
// count then says) and touches every page; at 3/4 load the core takes it (joining the helper
// only if it is not done yet). First touches of fresh huge pages cost milliseconds each on a
// VM, and the random inserts of one batch would otherwise hit dozens of them at once (a
// measured 350 ms stall per growth).

#include <sys/mman.h>

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

  // Live entries (tombstones not counted).
  std::uint64_t size() const { return count_; }
  // Times a new table was started (doubled or rebuilt): the core's stall detector names index
  // growth as the cause of a slow turn when this moved during it.
  std::uint64_t growths_count() const { return growths_; }

  // `matches(value)` says whether the row `value` holds the key being looked for.
  // Hashes 0 and 1 are reserved (empty slot, tombstone), so callers' hashes are folded with
  // `stored_hash`.
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

  // Removes the entry stored under `hash` whose value satisfies `matches(value)` (the caller's
  // key comparison, as for find); false if there is none. Leaves a tombstone, reclaimed by the
  // next rebuild. Cost: one probe of each table, like find. During a migration an entry already
  // copied is in both tables (migrate_some copies, it does not clear), so both lose it.
  template <class Matches>
  bool erase(std::uint64_t hash, Matches&& matches) {
    const bool in_current = current_.erase(hash, matches);
    const bool in_old = old_.slots_count != 0 && old_.erase(hash, matches);
    if (!in_current && !in_old) return false;
    PAYCORE_ASSERT_GT(count_, 0u);
    --count_;
    return true;
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
      if (slot.hash == empty_hash) return false;
      if (slot.hash == hash) {  // never a tombstone's
        *value_out = slot.value;
        return true;
      }
    }
    return false;
  }

  std::size_t memory_bytes() const {
    return (current_.slots_count + old_.slots_count) * sizeof(Slot);
  }

  // Backs the whole current table with memory now (MADV_POPULATE_WRITE: the kernel faults the
  // pages in as a write would, without touching the bytes), so that inserts do not each stop
  // for the kernel to zero a fresh page. Safe to run on another thread while this one inserts:
  // it changes no byte the inserts see. Advice only: a kernel without it (before Linux 5.14)
  // leaves the faults to the inserts.
  void populate() const {
    (void)::madvise(current_.slots, current_.slots_count * sizeof(Slot), MADV_POPULATE_WRITE);
  }

 private:
  // Slot hashes 0 (empty) and 1 (tombstone) are never stored for an entry; folding them to 2
  // only adds a collision, which callers' comparisons resolve.
  static constexpr std::uint64_t empty_hash = 0;
  static constexpr std::uint64_t tombstone_hash = 1;
  static std::uint64_t stored_hash(std::uint64_t hash) { return hash <= tombstone_hash ? 2 : hash; }

  // hash 0 marks an empty slot, hash 1 an erased one (its value is stale).
  struct Slot {
    std::uint64_t hash;
    std::uint32_t value;
    std::uint32_t unused;
  };
  static_assert(sizeof(Slot) == 16);

  struct Table {
    Slot* slots = nullptr;
    std::uint64_t slots_count = 0;  // a power of two, or 0
    std::uint64_t used = 0;         // occupied slots: live entries and tombstones

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
      const Slot* slot = locate(stored_hash(hash), matches);
      if (slot == nullptr) return false;
      *value_out = slot->value;
      return true;
    }

    template <class Matches>
    bool erase(std::uint64_t hash, Matches& matches) {
      Slot* slot = locate(stored_hash(hash), matches);
      if (slot == nullptr) return false;
      slot->hash = tombstone_hash;  // still occupied: probes continue past it, `used` stays
      return true;
    }

    // The live slot holding (stored) `hash` whose value matches, or null.
    template <class Matches>
    Slot* locate(std::uint64_t hash, Matches& matches) const {
      const std::uint64_t mask = slots_count - 1;
      for (std::uint64_t i = hash & mask, probes = 0;; i = (i + 1) & mask, ++probes) {
        // Live entries and tombstones stay below 3/4 of the slots (insert grows first), so an
        // empty slot ends every probe before it wraps around the table.
        PAYCORE_DEBUG_ASSERT(probes < slots_count);
        Slot& slot = slots[i];
        if (slot.hash == empty_hash) return nullptr;
        // A tombstone's hash never equals a stored hash: no separate test for it.
        if (slot.hash == hash && matches(slot.value)) return &slot;
      }
    }

    // The caller knows `hash`'s key is absent, so the first tombstone on the path may take it.
    void put(std::uint64_t hash, std::uint32_t value) {
      PAYCORE_DEBUG_ASSERT(used * 4 < slots_count * 3);  // the load limit, checked by insert
      PAYCORE_DEBUG_ASSERT(hash > tombstone_hash);
      const std::uint64_t mask = slots_count - 1;
      std::uint64_t i = hash & mask;
      for (std::uint64_t probes = 0; slots[i].hash > tombstone_hash; ++probes) {
        PAYCORE_DEBUG_ASSERT(probes < slots_count);
        i = (i + 1) & mask;
      }
      if (slots[i].hash == empty_hash) ++used;
      slots[i] = Slot{hash, value, 0};
    }
  };

  // Tables smaller than this grow synchronously: their faults are few and cheap.
  static constexpr std::size_t prepared_table_bytes_min = 8u << 20;

  struct Prepared {
    std::thread thread;
    Table table;
  };

  // Pre-faults the table grow() will most likely want, doubled or rebuilt: in a sliding window
  // the live count barely moves between half and 3/4 load, and a rebuilt table's fresh pages
  // would stall inserts just as a doubled one's would. grow() discards a wrong guess.
  void prepare_next() {
    next_ = std::make_unique<Prepared>();
    Prepared* prepared = next_.get();
    const std::uint64_t count = next_slots_count();
    prepared->thread = std::thread([prepared, count] {
      prepared->table = Table(count);
      // A write to each 4 KiB page makes the kernel back it now (the bytes stay zero).
      auto* bytes = reinterpret_cast<volatile char*>(prepared->table.slots);
      for (std::size_t at = 0; at < count * sizeof(Slot); at += 4096) bytes[at] = 0;
    });
  }

  // The size of the table that replaces a full one. Doubling when at least 3/4 of the load limit
  // (9/16 of the slots) is live; otherwise the live entries fit after dropping the tombstones:
  // the same size, or halved while they would stay under 9/32 of the smaller table. A sliding
  // window of L entries thus settles at 1.8 to 3.6 slots per entry (doubling at half the limit,
  // as first written, let it settle at up to 5.3: 85 B per entry, measured by hot_memory_bench
  // as 140 B of the 314 B a hot payment cost). A same-size rebuild leaves 3/16 of the slots for
  // tombstones, more than the 1/16 inserted while the migration runs. Never below a quarter of
  // the old size, so that the 1/16 of it inserted during the migration still fits.
  std::uint64_t next_slots_count() const {
    const std::uint64_t slots = current_.slots_count;
    if (count_ * 16 >= slots * 9) return slots * 2;
    const std::uint64_t smallest = std::max<std::uint64_t>(16, slots / 4);
    std::uint64_t next = slots;
    while (next / 2 >= smallest && count_ * 32 < next / 2 * 9) next /= 2;
    return next;
  }

  void grow() {
    ++growths_;
    // A migration finishes long before the new table fills: it starts at 3/4 load of the old
    // table and moves 16 slots per insert. Doubled, the new table is below 1/2 load when it
    // ends; rebuilt, under 3/8 of its slots are live and the migration's inserts add at most
    // 1/4 (next_slots_count).
    PAYCORE_ASSERT(old_.slots_count == 0);
    const std::uint64_t count = next_slots_count();
    Table fresh;
    if (next_) {
      next_->thread.join();  // usually long done: half load came a quarter of a table ago
      if (next_->table.slots_count == count) fresh = std::move(next_->table);
      next_.reset();
    }
    if (fresh.slots_count == 0) fresh = Table(count);
    PAYCORE_ASSERT_EQ(fresh.slots_count, count);
    old_ = std::move(current_);
    current_ = std::move(fresh);
    migrate_cursor_ = 0;
    migrate_some();
  }

  void migrate_some() {
    const std::uint64_t end = std::min(old_.slots_count, migrate_cursor_ + migrate_slots_per_insert);
    for (; migrate_cursor_ < end; ++migrate_cursor_) {
      const Slot slot = old_.slots[migrate_cursor_];
      // Tombstones stay behind: the new table holds live entries only.
      if (slot.hash > tombstone_hash) current_.put(slot.hash, slot.value);
    }
    if (migrate_cursor_ == old_.slots_count) old_ = Table();
  }

  Table current_;
  Table old_;
  std::unique_ptr<Prepared> next_;  // the next table, being faulted in by a helper thread
  std::uint64_t migrate_cursor_ = 0;
  std::uint64_t count_ = 0;  // live entries; one copied by a migration counts once
  std::uint64_t growths_ = 0;
};

}  // namespace paycore
