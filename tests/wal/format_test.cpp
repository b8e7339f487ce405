#include <array>

#include <gtest/gtest.h>

#include "wal/format.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace format;

TEST(WalFormat, RecordRoundTrips) {
  const auto payload = testing::payload_for(7);
  std::vector<std::byte> buf(record_bytes(payload.size()));
  const std::uint64_t checksum = encode_record(buf.data(), 7, 3, 0x1234, payload);
  const RecordHeader h = decode_record_header(buf.data());
  EXPECT_EQ(h.checksum, checksum);
  EXPECT_EQ(h.prev_checksum, 0x1234u);
  EXPECT_EQ(h.lsn, 7u);
  EXPECT_EQ(h.type, 3u);
  EXPECT_EQ(h.length, payload.size());
  EXPECT_EQ(h.reserved, 0u);
  EXPECT_EQ(compute_record_checksum(buf.data(), h.length), checksum);
  EXPECT_EQ(buf.size() % kRecordAlignBytes, 0u);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), buf.begin() + kRecordHeaderBytes));
}

TEST(WalFormat, ChecksumCoversEveryByteAfterItself) {
  const auto payload = testing::payload_for(9);
  std::vector<std::byte> buf(record_bytes(payload.size()));
  const std::uint64_t checksum = encode_record(buf.data(), 9, 1, 42, payload);
  for (std::size_t i = kRecChecksumCoverageOffset; i < kRecordHeaderBytes + payload.size(); ++i) {
    buf[i] ^= std::byte{1};
    EXPECT_NE(compute_record_checksum(buf.data(), static_cast<std::uint32_t>(payload.size())), checksum)
        << "byte " << i;
    buf[i] ^= std::byte{1};
  }
}

TEST(WalFormat, ZeroedSpaceIsNotARecord) {
  std::array<std::byte, kRecordHeaderBytes> zeros{};
  const RecordHeader h = decode_record_header(zeros.data());
  EXPECT_EQ(h.lsn, 0u);  // a valid record has lsn >= 1
  EXPECT_NE(compute_record_checksum(zeros.data(), 0), h.checksum);
}

TEST(WalFormat, SegmentHeaderRoundTrips) {
  std::array<std::byte, kSegmentHeaderBytes> buf{};
  SegmentHeader h;
  h.first_lsn = 1001;
  h.prev_checksum = 77;
  encode_segment_header(buf.data(), h);
  EXPECT_TRUE(segment_header_valid(buf.data()));
  const SegmentHeader d = decode_segment_header(buf.data());
  EXPECT_EQ(d.first_lsn, 1001u);
  EXPECT_EQ(d.prev_checksum, 77u);
  buf[kSegFirstLsnOffset] ^= std::byte{1};
  EXPECT_FALSE(segment_header_valid(buf.data()));
}

}  // namespace
}  // namespace paycore::wal
