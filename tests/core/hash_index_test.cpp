#include <gtest/gtest.h>

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
