// The shared log's message format (repl/stream_format.hpp): how batches split into messages
// and what a reader refuses. No NATS needed.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "repl/stream_format.hpp"
#include "wal/format.hpp"

namespace paycore::repl {
namespace {
namespace fmt = wal::format;

// Frames of records first_lsn.. with payloads of the given sizes, chained from `prev`.
std::vector<std::byte> frames(std::uint64_t first_lsn, std::vector<std::size_t> sizes,
                              std::uint64_t prev = 0, std::uint64_t* last_checksum = nullptr) {
  std::vector<std::byte> out;
  std::uint64_t lsn = first_lsn;
  for (const std::size_t size : sizes) {
    std::vector<std::byte> payload(size, std::byte{0x5a});
    const std::size_t at = out.size();
    out.resize(at + fmt::record_bytes(size));
    prev = fmt::encode_record(out.data() + at, lsn++, 7, prev, payload);
  }
  if (last_checksum != nullptr) *last_checksum = prev;
  return out;
}

TEST(StreamFormat, SplitsAtRecordBoundariesUnderTheLimit) {
  const std::vector<std::byte> batch = frames(10, {100, 100, 100, 100});  // 136 bytes each
  std::vector<MessageSlice> slices;
  ASSERT_TRUE(split_frames(batch, 10, 300, &slices).is_ok());
  ASSERT_EQ(slices.size(), 2U);
  EXPECT_EQ(slices[0].first_lsn, 10U);
  EXPECT_EQ(slices[0].last_lsn, 11U);
  EXPECT_EQ(slices[0].offset, 0U);
  EXPECT_EQ(slices[0].bytes, 272U);
  EXPECT_EQ(slices[1].first_lsn, 12U);
  EXPECT_EQ(slices[1].last_lsn, 13U);
  EXPECT_EQ(slices[1].offset, 272U);
  EXPECT_EQ(slices[1].bytes, 272U);
}

TEST(StreamFormat, OneMessageWhenTheBatchFits) {
  const std::vector<std::byte> batch = frames(1, {8, 0, 64});
  std::vector<MessageSlice> slices;
  ASSERT_TRUE(split_frames(batch, 1, kMessageBytesMaxDefault, &slices).is_ok());
  ASSERT_EQ(slices.size(), 1U);
  EXPECT_EQ(slices[0].last_lsn, 3U);
  EXPECT_EQ(slices[0].bytes, batch.size());
}

TEST(StreamFormat, RefusesARecordOverTheLimit) {
  const std::vector<std::byte> batch = frames(1, {8, 500});
  std::vector<MessageSlice> slices;
  const Status s = split_frames(batch, 1, 300, &slices);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("LSN 2"), std::string::npos) << s.message();
}

TEST(StreamFormat, ReadsBackEveryRecordAndTheChainHead) {
  std::uint64_t last = 0;
  const std::vector<std::byte> message = frames(5, {3, 17, 0}, 99, &last);
  std::uint64_t next = 5;
  std::uint64_t prev = 99;
  std::vector<std::uint64_t> lsns;
  ASSERT_TRUE(for_each_frame(message, &next, &prev, [&](const FrameView& f) {
                lsns.push_back(f.lsn);
                EXPECT_EQ(f.type, 7);
              }).is_ok());
  EXPECT_EQ(lsns, (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_EQ(next, 8U);
  EXPECT_EQ(prev, last);
}

TEST(StreamFormat, AChainFromAnotherHistoryIsAConflict) {
  const std::vector<std::byte> message = frames(5, {3}, 99);
  std::uint64_t next = 5;
  std::uint64_t prev = 98;  // this reader's record 4 is another one
  const Status s = for_each_frame(message, &next, &prev, [](const FrameView&) {});
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.to_string();
}

TEST(StreamFormat, ABadChecksumIsCorruptionAtItsOffset) {
  std::vector<std::byte> message = frames(5, {16, 16}, 0);
  message[fmt::record_bytes(16) + fmt::kRecordHeaderBytes + 3] ^= std::byte{1};
  std::uint64_t next = 5;
  std::uint64_t prev = 0;
  const Status s = for_each_frame(message, &next, &prev, [](const FrameView&) {});
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("offset " + std::to_string(fmt::record_bytes(16))),
            std::string::npos)
      << s.message();
}

TEST(StreamFormat, AWrongLsnIsCorruption) {
  const std::vector<std::byte> message = frames(5, {16});
  std::uint64_t next = 6;
  std::uint64_t prev = 0;
  const Status s = for_each_frame(message, &next, &prev, [](const FrameView&) {});
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("LSN 5 where 6"), std::string::npos) << s.message();
}

TEST(StreamFormat, ATruncatedMessageIsCorruption) {
  std::vector<std::byte> message = frames(5, {40});
  message.resize(message.size() - 8);
  std::uint64_t next = 5;
  std::uint64_t prev = 0;
  EXPECT_EQ(for_each_frame(message, &next, &prev, [](const FrameView&) {}).code(),
            StatusCode::kCorruption);
}

TEST(StreamFormat, ClusterNamesAreChecked) {
  EXPECT_TRUE(check_cluster_name("prod-eu_1").is_ok());
  EXPECT_FALSE(check_cluster_name("").is_ok());
  EXPECT_FALSE(check_cluster_name("a.b").is_ok());  // would change the subject's tokens
  EXPECT_FALSE(check_cluster_name("a*").is_ok());
  EXPECT_FALSE(check_cluster_name(std::string(65, 'a')).is_ok());
  EXPECT_EQ(log_stream_name("prod"), "PAYCORE_LOG_prod");
  EXPECT_EQ(log_subject("prod"), "paycore.prod.log");
}

}  // namespace
}  // namespace paycore::repl
