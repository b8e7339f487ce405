#pragma once
// The on-disk format of the write-ahead log. Everything that knows where a byte lives is here;
// docs/wal-format.md says the same for readers outside the code.
//
// A log is a directory of segment files named <first-lsn, 20 decimal digits>.log, e.g.
// 00000000000000000001.log. Each is preallocated to a fixed size, either with fallocate or (a
// "spare", base/spare_file.hpp) by writing zeros over all of it, and filled from the front; a
// record never spans two files. A segment may end early, before its file does: the log moves to
// a spare as soon as one is ready. All integers are little-endian.
//
// Temp files, <20 digits>.log.tmp, are segments being made: a new segment gets its header and
// is flushed under that name, then renamed into place. 00000000000000000000.log.tmp (LSN 0, which
// no record has) is the spare being written. Recovery deletes every temp file.
//
//   segment file
//   +----------------------+ 0
//   | SegmentHeader  40 B  |
//   +----------------------+ 40
//   | record               |  each record starts at a multiple of 8
//   | record               |
//   | ...                  |
//   | zeros                |  preallocated, never written: a header of 32 zero bytes ends the data
//   +----------------------+ file size (segment_bytes when the file was created)
//
//   SegmentHeader
//    0  u64 magic          "PAYCWAL\0" as bytes
//    8  u32 version        1
//   12  u32 header_bytes   40
//   16  u64 first_lsn      LSN of the file's first record; equals the number in the file name
//   24  u64 prev_checksum  checksum of record first_lsn-1 (0 when the log started at first_lsn)
//   32  u64 checksum       XXH3_64bits of bytes 0..32
//
//   record
//    0  u64 checksum       XXH3_64bits of bytes 8 .. 32+length (the rest of the header + payload)
//    8  u64 prev_checksum  checksum of the record before it (a hash chain across files)
//   16  u64 lsn            1, 2, 3, ... strictly consecutive over the whole log
//   24  u32 length         payload bytes (0 allowed)
//   28  u16 type           the caller's record type; the log does not interpret it
//   30  u16 reserved       0
//   32  payload[length]
//       zero padding to the next multiple of 8 (not covered by the checksum; must be zero)
//
// A valid record never has an all-zero header (its lsn is >= 1), so the preallocated zeros after
// the last record read as "end of data", never as a record.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <xxhash.h>

namespace paycore::wal::format {

static_assert(std::endian::native == std::endian::little,
              "the log is little-endian on disk and encoded with memcpy");

inline constexpr std::uint64_t kSegmentMagic = 0x004C415743594150ULL;  // "PAYCWAL\0"
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kSegmentHeaderBytes = 40;
inline constexpr std::size_t kRecordHeaderBytes = 32;
inline constexpr std::size_t kRecordAlignBytes = 8;
inline constexpr std::size_t kFileNameDigits = 20;  // enough for any u64 LSN

// Segment header field offsets.
inline constexpr std::size_t kSegMagicOffset = 0;
inline constexpr std::size_t kSegVersionOffset = 8;
inline constexpr std::size_t kSegHeaderBytesOffset = 12;
inline constexpr std::size_t kSegFirstLsnOffset = 16;
inline constexpr std::size_t kSegPrevChecksumOffset = 24;
inline constexpr std::size_t kSegChecksumOffset = 32;

// Record header field offsets.
inline constexpr std::size_t kRecChecksumOffset = 0;
inline constexpr std::size_t kRecPrevChecksumOffset = 8;
inline constexpr std::size_t kRecLsnOffset = 16;
inline constexpr std::size_t kRecLengthOffset = 24;
inline constexpr std::size_t kRecTypeOffset = 28;
inline constexpr std::size_t kRecReservedOffset = 30;
inline constexpr std::size_t kRecChecksumCoverageOffset = kRecPrevChecksumOffset;

static_assert(kSegChecksumOffset + sizeof(std::uint64_t) == kSegmentHeaderBytes);
static_assert(kRecReservedOffset + sizeof(std::uint16_t) == kRecordHeaderBytes);
static_assert(kRecChecksumOffset == 0 && kRecChecksumCoverageOffset == sizeof(std::uint64_t),
              "the record checksum covers every byte after itself");
static_assert(kSegmentHeaderBytes % kRecordAlignBytes == 0, "first record is aligned");
static_assert(kRecordHeaderBytes % kRecordAlignBytes == 0, "payload starts aligned");
static_assert(std::has_single_bit(kRecordAlignBytes));
static_assert(kRecLsnOffset % 8 == 0 && kRecPrevChecksumOffset % 8 == 0);

struct SegmentHeader {
  std::uint64_t magic = kSegmentMagic;
  std::uint32_t version = kVersion;
  std::uint32_t header_bytes = kSegmentHeaderBytes;
  std::uint64_t first_lsn = 0;
  std::uint64_t prev_checksum = 0;
  std::uint64_t checksum = 0;
};

struct RecordHeader {
  std::uint64_t checksum = 0;
  std::uint64_t prev_checksum = 0;
  std::uint64_t lsn = 0;
  std::uint32_t length = 0;
  std::uint16_t type = 0;
  std::uint16_t reserved = 0;
};

template <typename T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

inline constexpr std::size_t align_up(std::size_t n) {
  return (n + kRecordAlignBytes - 1) & ~(kRecordAlignBytes - 1);
}
// Bytes a record with `payload_bytes` of payload takes in a file, padding included.
inline constexpr std::size_t record_bytes(std::size_t payload_bytes) {
  return align_up(kRecordHeaderBytes + payload_bytes);
}
static_assert(record_bytes(0) == kRecordHeaderBytes && record_bytes(1) == 40);

inline std::uint64_t hash(const std::byte* p, std::size_t n) { return XXH3_64bits(p, n); }

inline void encode_segment_header(std::byte* out, SegmentHeader h) {
  store(out + kSegMagicOffset, h.magic);
  store(out + kSegVersionOffset, h.version);
  store(out + kSegHeaderBytesOffset, h.header_bytes);
  store(out + kSegFirstLsnOffset, h.first_lsn);
  store(out + kSegPrevChecksumOffset, h.prev_checksum);
  store(out + kSegChecksumOffset, hash(out, kSegChecksumOffset));
}

inline SegmentHeader decode_segment_header(const std::byte* in) {
  SegmentHeader h;
  h.magic = load<std::uint64_t>(in + kSegMagicOffset);
  h.version = load<std::uint32_t>(in + kSegVersionOffset);
  h.header_bytes = load<std::uint32_t>(in + kSegHeaderBytesOffset);
  h.first_lsn = load<std::uint64_t>(in + kSegFirstLsnOffset);
  h.prev_checksum = load<std::uint64_t>(in + kSegPrevChecksumOffset);
  h.checksum = load<std::uint64_t>(in + kSegChecksumOffset);
  return h;
}

inline bool segment_header_valid(const std::byte* in) {
  const SegmentHeader h = decode_segment_header(in);
  return h.magic == kSegmentMagic && h.version == kVersion &&
         h.header_bytes == kSegmentHeaderBytes && h.first_lsn >= 1 &&
         h.checksum == hash(in, kSegChecksumOffset);
}

// Writes header + payload + padding at `out` (record_bytes(payload.size()) bytes) and returns
// the record's checksum, which the next record stores as its prev_checksum.
inline std::uint64_t encode_record(std::byte* out, std::uint64_t lsn, std::uint16_t type,
                                   std::uint64_t prev_checksum,
                                   std::span<const std::byte> payload) {
  const std::size_t total = record_bytes(payload.size());
  store(out + kRecPrevChecksumOffset, prev_checksum);
  store(out + kRecLsnOffset, lsn);
  store(out + kRecLengthOffset, static_cast<std::uint32_t>(payload.size()));
  store(out + kRecTypeOffset, type);
  store(out + kRecReservedOffset, std::uint16_t{0});
  if (!payload.empty()) std::memcpy(out + kRecordHeaderBytes, payload.data(), payload.size());
  const std::size_t end = kRecordHeaderBytes + payload.size();
  if (total > end) std::memset(out + end, 0, total - end);
  const std::uint64_t checksum =
      hash(out + kRecChecksumCoverageOffset, end - kRecChecksumCoverageOffset);
  store(out + kRecChecksumOffset, checksum);
  return checksum;
}

inline RecordHeader decode_record_header(const std::byte* in) {
  RecordHeader h;
  h.checksum = load<std::uint64_t>(in + kRecChecksumOffset);
  h.prev_checksum = load<std::uint64_t>(in + kRecPrevChecksumOffset);
  h.lsn = load<std::uint64_t>(in + kRecLsnOffset);
  h.length = load<std::uint32_t>(in + kRecLengthOffset);
  h.type = load<std::uint16_t>(in + kRecTypeOffset);
  h.reserved = load<std::uint16_t>(in + kRecReservedOffset);
  return h;
}

// The checksum the header at `in` should carry, given that its payload is in memory after it.
inline std::uint64_t compute_record_checksum(const std::byte* in, std::uint32_t length) {
  return hash(in + kRecChecksumCoverageOffset,
              kRecordHeaderBytes - kRecChecksumCoverageOffset + length);
}

inline bool all_zero(const std::byte* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return false;
  }
  return true;
}

}  // namespace paycore::wal::format
