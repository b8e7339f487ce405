#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/hash_index.hpp"
#include "core/state.hpp"

namespace paycore {
namespace {

TEST(HashIndex, FindsEverythingAcrossManyGrowths) {
  std::vector<std::string> keys;
  HashIndex index(16);
  const auto hash_of = [&](std::uint32_t v) { return hash_key(1, keys[v]); };
  for (std::uint32_t i = 0; i < 200'000; ++i) {
    keys.push_back("key-" + std::to_string(i));
    index.insert(hash_of(i), i);
    // Every key inserted so far stays findable while migrations run.
    if (i % 997 == 0) {
      for (std::uint32_t j = 0; j <= i; j += 101) {
        std::uint32_t found = UINT32_MAX;
        ASSERT_TRUE(index.find(hash_of(j), [&](std::uint32_t v) { return keys[v] == keys[j]; }, &found));
        ASSERT_EQ(found, j);
      }
    }
  }
  EXPECT_EQ(index.size(), 200'000u);
  std::uint32_t found = 0;
  EXPECT_FALSE(index.find(hash_key(1, "absent"), [&](std::uint32_t v) { return keys[v] == "absent"; }, &found));
}

TEST(HashIndex, CollidingHashesNeverMergeTwoKeys) {
  // Every key gets the same hash: only the caller's comparison tells them apart.
  std::vector<std::string> keys = {"a", "b", "c", "d"};
  HashIndex index(4);
  for (std::uint32_t i = 0; i < keys.size(); ++i) index.insert(42, i);
  for (std::uint32_t i = 0; i < keys.size(); ++i) {
    std::uint32_t found = UINT32_MAX;
    ASSERT_TRUE(index.find(42, [&](std::uint32_t v) { return keys[v] == keys[i]; }, &found));
    EXPECT_EQ(found, i);
  }
}

TEST(HashIndex, GrowthIsIncremental) {
  // A stop-the-world rehash would go from a table of N slots straight to 2N. Incremental
  // growth keeps both (3N) for a while, then frees the old one (2N).
  std::vector<std::string> keys;
  HashIndex index(16);
  const auto hash_of = [&](std::uint32_t v) { return hash_key(7, keys[v]); };
  std::vector<std::size_t> sizes = {index.memory_bytes()};
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    keys.push_back(std::to_string(i));
    index.insert(hash_of(i), i);
    if (index.memory_bytes() != sizes.back()) sizes.push_back(index.memory_bytes());
  }
  ASSERT_GE(sizes.size(), 5u);
  for (std::size_t i = 0; i + 2 < sizes.size(); i += 2) {
    EXPECT_EQ(sizes[i + 1], sizes[i] * 3) << i;  // old and new table side by side
    EXPECT_EQ(sizes[i + 2], sizes[i] * 2) << i;
  }
}

// Keys for the erase tests: key i has a well-mixed hash (splitmix64) and is stored as value i,
// so the caller's comparison is `value == i`.
std::uint64_t mixed_hash(std::uint64_t i) {
  std::uint64_t z = i + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

bool holds(const HashIndex& index, std::uint64_t hash, std::uint32_t key) {
  std::uint32_t found = UINT32_MAX;
  const bool hit = index.find(
      hash, [&](std::uint32_t v) { return v == key; }, &found);
  return hit && found == key;
}
bool holds(const HashIndex& index, std::uint32_t key) { return holds(index, mixed_hash(key), key); }

bool erase(HashIndex& index, std::uint64_t hash, std::uint32_t key) {
  return index.erase(hash, [&](std::uint32_t v) { return v == key; });
}
bool erase(HashIndex& index, std::uint32_t key) { return erase(index, mixed_hash(key), key); }

TEST(HashIndex, ErasedKeyIsNotFound) {
  HashIndex index(16);
  for (std::uint32_t i = 0; i < 10; ++i) index.insert(mixed_hash(i), i);
  EXPECT_TRUE(erase(index, 3));
  EXPECT_FALSE(holds(index, 3));
  EXPECT_EQ(index.size(), 9u);
  for (std::uint32_t i = 0; i < 10; ++i) {
    if (i != 3) {
      EXPECT_TRUE(holds(index, i)) << i;
    }
  }
  // The same key inserted again is found again.
  index.insert(mixed_hash(3), 3);
  EXPECT_TRUE(holds(index, 3));
  EXPECT_EQ(index.size(), 10u);
}

TEST(HashIndex, EraseOfAnAbsentKeyReturnsFalse) {
  HashIndex index(16);
  for (std::uint32_t i = 0; i < 10; ++i) index.insert(mixed_hash(i), i);
  EXPECT_FALSE(erase(index, 99));
  // Same hash, but the caller's comparison refuses every row stored under it.
  EXPECT_FALSE(index.erase(mixed_hash(4), [](std::uint32_t) { return false; }));
  EXPECT_TRUE(erase(index, 4));
  EXPECT_FALSE(erase(index, 4));  // erased already
  EXPECT_EQ(index.size(), 9u);
}

TEST(HashIndex, TombstonesKeepProbeChainsIntact) {
  // Equal low bits put a, b and c on one probe chain, in that order; erasing b must not
  // cut c off from its home slot.
  HashIndex index(4);
  const std::uint64_t a = 0x100, b = 0x200, c = 0x300;
  index.insert(a, 0);
  index.insert(b, 1);
  index.insert(c, 2);
  EXPECT_TRUE(erase(index, b, 1));
  EXPECT_TRUE(holds(index, c, 2));
  EXPECT_TRUE(holds(index, a, 0));
  EXPECT_FALSE(holds(index, b, 1));
  // A new key on the same chain may take b's slot; c stays reachable past it.
  const std::uint64_t d = 0x400;
  index.insert(d, 3);
  EXPECT_TRUE(holds(index, d, 3));
  EXPECT_TRUE(holds(index, c, 2));
  EXPECT_EQ(index.size(), 3u);
}

TEST(HashIndex, ReservedHashesStayFindable) {
  // 0 and 1 mark empty slots and tombstones; callers may still pass them.
  HashIndex index(4);
  index.insert(0, 0);
  index.insert(1, 1);
  EXPECT_TRUE(holds(index, 0, 0));
  EXPECT_TRUE(holds(index, 1, 1));
  EXPECT_TRUE(erase(index, 1, 1));
  EXPECT_FALSE(holds(index, 1, 1));
  EXPECT_TRUE(holds(index, 0, 0));
}

TEST(HashIndex, PeekSkipsTombstones) {
  HashIndex index(16);
  index.insert(77, 0);
  std::uint32_t value = UINT32_MAX;
  ASSERT_TRUE(index.peek(77, &value));
  EXPECT_TRUE(erase(index, 77, 0));
  EXPECT_FALSE(index.peek(77, &value));
  // Two entries under one hash: with the first erased, peek hints the second.
  index.insert(88, 1);
  index.insert(88, 2);
  EXPECT_TRUE(erase(index, 88, 1));
  ASSERT_TRUE(index.peek(88, &value));
  EXPECT_EQ(value, 2u);
}

// Keys [0, end): the ones `erased` says are gone are not found, every other one is.
void expect_keys(const HashIndex& index, std::uint32_t end, bool (*erased)(std::uint32_t)) {
  for (std::uint32_t key = 0; key < end; ++key) ASSERT_EQ(holds(index, key), !erased(key)) << key;
}

TEST(HashIndex, EraseDuringMigrationRemovesFromBothTables) {
  HashIndex index(16);
  std::uint32_t next = 0;
  // Insert until the growth of a table of at least 4096 slots starts: the old table and the
  // doubled one side by side make three times the old size.
  std::size_t old_bytes = 0;
  for (;;) {
    old_bytes = index.memory_bytes();
    index.insert(mixed_hash(next), next);
    ++next;
    if (old_bytes >= 4096 * 16 && index.memory_bytes() == 3 * old_bytes) break;
  }
  // Each insert migrates 16 slots: this many more bring the cursor to the old table's middle,
  // so some keys are in both tables (copied) and some only in the old one (not yet reached).
  const std::size_t old_slots = old_bytes / 16;
  for (std::size_t k = 0; k < old_slots / 32; ++k, ++next) index.insert(mixed_hash(next), next);
  ASSERT_EQ(index.memory_bytes(), 3 * old_bytes);  // still migrating

  const auto even = [](std::uint32_t key) { return key % 2 == 0; };
  for (std::uint32_t key = 0; key < next; key += 2) ASSERT_TRUE(erase(index, key)) << key;
  EXPECT_EQ(index.size(), next / 2);
  expect_keys(index, next, even);

  // Finishing the migration must neither resurrect an erased key nor lose a kept one.
  const std::uint32_t before_finish = next;
  while (index.memory_bytes() != 2 * old_bytes) {
    index.insert(mixed_hash(next), next);
    ++next;
  }
  expect_keys(index, before_finish, even);
  for (std::uint32_t key = before_finish; key < next; ++key) ASSERT_TRUE(holds(index, key));
}

TEST(HashIndex, SlidingWindowStaysBounded) {
  // Insert one new key and erase the oldest, 20 windows over: tombstones must be dropped by
  // rebuilds at the same size instead of doubling the table again and again.
  constexpr std::uint32_t window = 4096;
  HashIndex index(16);
  for (std::uint32_t key = 0; key < window; ++key) index.insert(mixed_hash(key), key);
  // The table doubles only while at least 3/8 of its slots are live, so it never exceeds 16/3
  // slots (16 bytes each) per live entry; twice that while a rebuild migrates.
  const std::size_t bound_bytes = 2 * (window * 16 / 3) * 16;
  std::size_t max_bytes = 0;
  std::uint32_t rises = 0;  // rebuilds started
  for (std::uint32_t oldest = 0; oldest < 20 * window; ++oldest) {
    const std::size_t was_bytes = index.memory_bytes();
    index.insert(mixed_hash(oldest + window), oldest + window);
    ASSERT_TRUE(erase(index, oldest)) << oldest;
    if (index.memory_bytes() > was_bytes) ++rises;
    max_bytes = std::max(max_bytes, index.memory_bytes());
    if (oldest % 1021 == 0) {
      for (std::uint32_t key = oldest + 1; key <= oldest + window; key += 7) {
        ASSERT_TRUE(holds(index, key)) << key;
      }
      for (std::uint32_t key = 0; key <= oldest; key += 7) ASSERT_FALSE(holds(index, key)) << key;
    }
  }
  EXPECT_LE(max_bytes, bound_bytes);
  EXPECT_GE(rises, 3u);  // the bound held through rebuilds, not by never filling up
  EXPECT_EQ(index.size(), window);
  const std::uint32_t first_live = 20 * window;
  for (std::uint32_t key = 0; key < first_live; ++key) ASSERT_FALSE(holds(index, key)) << key;
  for (std::uint32_t key = first_live; key < first_live + window; ++key) {
    ASSERT_TRUE(holds(index, key)) << key;
  }
}

TEST(HashIndex, RebuildAfterMassEraseShrinksTheTable) {
  HashIndex index(16);
  std::uint32_t next = 0;
  for (; next < 40'000; ++next) index.insert(mixed_hash(next), next);
  const std::size_t big_bytes = index.memory_bytes();
  // Keep the newest 100 keys and go on as a sliding window of 100 until the tombstones fill
  // the table: the rebuild must not keep (or double) a table sized for 40000.
  std::uint32_t oldest = 0;
  for (; oldest < next - 100; ++oldest) ASSERT_TRUE(erase(index, oldest));
  while (index.memory_bytes() >= big_bytes && next < 1'000'000) {
    index.insert(mixed_hash(next), next);
    ++next;
    ASSERT_TRUE(erase(index, oldest));
    ++oldest;
  }
  // A rebuild shrinks to a quarter at most, so that the migration's inserts still fit.
  EXPECT_EQ(index.memory_bytes(), big_bytes / 4);
  EXPECT_EQ(index.size(), 100u);
  const auto erased = [](std::uint32_t) { return true; };
  expect_keys(index, oldest, erased);
  for (std::uint32_t key = oldest; key < next; ++key) ASSERT_TRUE(holds(index, key)) << key;
}

TEST(State, StringsWithSameHashPrefixStayDistinct) {
  State s;
  AccountRow row;
  row.currency = *currency_from_code("CNY");
  row.kind = AccountKind::customer;
  for (int i = 0; i < 1000; ++i) {
    row.id = Id::of("acct-" + std::to_string(i));
    s.add_account(row);
  }
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(s.find_account("acct-" + std::to_string(i)), static_cast<std::uint32_t>(i));
  }
  EXPECT_EQ(s.find_account("acct-1000"), row_none);
}

}  // namespace
}  // namespace paycore
