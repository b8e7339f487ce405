// ChunkedVector and StringArena as sliding windows (issue 12): the front is released in whole
// chunks, and what stays keeps its index or offset.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/chunked.hpp"

namespace paycore {
namespace {

// 1 KiB rows: a chunk holds 2048 of them, so a few chunks take few pushes.
struct Row {
  std::uint32_t index;
  std::uint8_t padding[1020];
};
using Rows = ChunkedVector<Row>;
static_assert(Rows::chunk_items == 2048);

void push_rows(Rows& rows, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    Row row{};
    row.index = rows.size();
    ASSERT_EQ(rows.push_back(row), row.index);
  }
}

void expect_live_rows_intact(const Rows& rows) {
  for (std::uint32_t i = rows.begin(); i < rows.size(); ++i) ASSERT_EQ(rows[i].index, i);
}

TEST(Chunked, ReleaseFrontFreesWholeChunksOnly) {
  Rows rows;
  push_rows(rows, Rows::chunk_items * 3 + 10);  // four chunks, the last one barely used
  ASSERT_EQ(rows.memory_bytes(), 4 * Rows::chunk_bytes);

  // Inside the first chunk: it still holds live rows, so nothing is freed.
  rows.release_front(Rows::chunk_items - 1);
  EXPECT_EQ(rows.memory_bytes(), 4 * Rows::chunk_bytes);
  EXPECT_EQ(rows.begin(), Rows::chunk_items - 1);

  // Exactly at a chunk's start: the chunk below goes, the one holding new_begin stays.
  rows.release_front(Rows::chunk_items);
  EXPECT_EQ(rows.memory_bytes(), 3 * Rows::chunk_bytes);

  // Into the third chunk: the second goes whole, the third stays partly live.
  rows.release_front(Rows::chunk_items * 2 + 5);
  EXPECT_EQ(rows.memory_bytes(), 2 * Rows::chunk_bytes);
  EXPECT_EQ(rows.live_count(), Rows::chunk_items + 5);
  expect_live_rows_intact(rows);
}

TEST(Chunked, IndicesNeverShift) {
  Rows rows;
  push_rows(rows, Rows::chunk_items + 100);
  rows.release_front(Rows::chunk_items + 50);
  EXPECT_EQ(rows.size(), Rows::chunk_items + 100);  // size() stays the end index
  EXPECT_EQ(rows[Rows::chunk_items + 50].index, Rows::chunk_items + 50);
  // New rows continue the numbering, in the surviving chunk and the next one.
  push_rows(rows, Rows::chunk_items);
  EXPECT_EQ(rows.size(), 2 * Rows::chunk_items + 100);
  expect_live_rows_intact(rows);
}

TEST(Chunked, StartAtThenPushBackAllocatesOnlyTheChunkOfTheIndex) {
  Rows rows;
  const std::uint32_t first = Rows::chunk_items * 5 + 7;
  rows.start_at(first);
  EXPECT_EQ(rows.begin(), first);
  EXPECT_EQ(rows.size(), first);
  EXPECT_EQ(rows.live_count(), 0u);
  EXPECT_EQ(rows.memory_bytes(), 0u);

  push_rows(rows, Rows::chunk_items);  // fills the sixth chunk and spills into the seventh
  EXPECT_EQ(rows.begin(), first);
  EXPECT_EQ(rows.memory_bytes(), 2 * Rows::chunk_bytes);
  expect_live_rows_intact(rows);
  rows.clear();  // skips the null slots below the start
  EXPECT_EQ(rows.memory_bytes(), 0u);
  EXPECT_EQ(rows.size(), 0u);
}

TEST(Chunked, StartAtAChunkBoundaryThenPushBack) {
  Rows rows;
  rows.start_at(Rows::chunk_items * 2);
  push_rows(rows, 1);
  EXPECT_EQ(rows[Rows::chunk_items * 2].index, Rows::chunk_items * 2);
  EXPECT_EQ(rows.memory_bytes(), Rows::chunk_bytes);
}

TEST(Chunked, ReleaseEverythingThenPushBackContinues) {
  Rows rows;
  push_rows(rows, Rows::chunk_items * 2);  // ends exactly on a chunk boundary
  rows.release_front(rows.size());
  EXPECT_EQ(rows.live_count(), 0u);
  EXPECT_EQ(rows.memory_bytes(), 0u);
  push_rows(rows, 3);
  EXPECT_EQ(rows.begin(), Rows::chunk_items * 2);
  EXPECT_EQ(rows.live_count(), 3u);
  EXPECT_EQ(rows.memory_bytes(), Rows::chunk_bytes);
  expect_live_rows_intact(rows);

  // Mid-chunk: the chunk holding the end stays for the next push.
  rows.release_front(rows.size());
  EXPECT_EQ(rows.memory_bytes(), Rows::chunk_bytes);
  push_rows(rows, 1);
  expect_live_rows_intact(rows);
}

TEST(Chunked, ReleasingTheSameFrontTwiceFreesNothingMore) {
  Rows rows;
  push_rows(rows, Rows::chunk_items * 2 + 1);
  rows.release_front(Rows::chunk_items * 2);
  rows.release_front(Rows::chunk_items * 2);
  EXPECT_EQ(rows.memory_bytes(), Rows::chunk_bytes);
  expect_live_rows_intact(rows);
}

// The repository has no death tests (assertions abort the whole test binary), so releasing
// below begin() or past size() is not exercised here; both are PAYCORE_ASSERT_LE in release_front.

std::string id_of(std::uint32_t i) {
  return "payment-" + std::to_string(i) + std::string(200, 'x');
}

TEST(Chunked, ArenaReleaseBelowKeepsTheChunkHoldingRef) {
  StringArena arena;
  std::vector<StrRef> refs;
  // ~210-byte strings: about ten thousand per 2 MiB chunk; fill a bit over three chunks.
  while (refs.empty() || refs.back() < 3 * StringArena::chunk_bytes + 1000) {
    refs.push_back(arena.add(id_of(static_cast<std::uint32_t>(refs.size()))));
  }
  ASSERT_EQ(arena.memory_bytes(), 4 * StringArena::chunk_bytes);

  // The first string of the third chunk, and one before it in the second chunk.
  std::size_t kept = 0;
  while (refs[kept] < 2 * StringArena::chunk_bytes) ++kept;
  arena.release_below(refs[kept - 1]);
  EXPECT_EQ(arena.memory_bytes(), 3 * StringArena::chunk_bytes);
  EXPECT_EQ(arena.get(refs[kept - 1]), id_of(static_cast<std::uint32_t>(kept - 1)));

  arena.release_below(refs[kept]);
  EXPECT_EQ(arena.memory_bytes(), 2 * StringArena::chunk_bytes);
  for (std::size_t i = kept; i < refs.size(); ++i) {
    ASSERT_EQ(arena.get(refs[i]), id_of(static_cast<std::uint32_t>(i)));
  }

  // Later strings go on at later offsets, readable like the rest.
  const StrRef later = arena.add("later");
  EXPECT_GT(later, refs.back());
  EXPECT_EQ(arena.get(later), "later");
  EXPECT_EQ(arena.get(0), "");
}

TEST(Chunked, ArenaReleaseBelowNoneOrAnOlderRefFreesNothing) {
  StringArena arena;
  std::vector<StrRef> refs;
  while (refs.empty() || refs.back() < 2 * StringArena::chunk_bytes) {
    refs.push_back(arena.add(id_of(static_cast<std::uint32_t>(refs.size()))));
  }
  arena.release_below(0);
  EXPECT_EQ(arena.memory_bytes(), 3 * StringArena::chunk_bytes);
  arena.release_below(refs.back());
  EXPECT_EQ(arena.memory_bytes(), StringArena::chunk_bytes);
  arena.release_below(refs.front());  // already below the released point
  EXPECT_EQ(arena.memory_bytes(), StringArena::chunk_bytes);
  EXPECT_EQ(arena.get(refs.back()), id_of(static_cast<std::uint32_t>(refs.size() - 1)));
}

}  // namespace
}  // namespace paycore
