#pragma once
// Reading a buffer of record frames outside a segment file: a batch as the log writes it, as
// replication ships it (repl/stream_format.hpp) and as a standby applies it. Checks each
// record's checksum, LSN, padding and hash chain (format.hpp).

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "base/status.hpp"
#include "wal/format.hpp"

namespace paycore::wal {

/// One record of a buffer of frames, as a reader sees it.
struct FrameView {
  std::uint64_t lsn = 0;
  std::uint16_t type = 0;
  std::uint64_t checksum = 0;
  std::uint64_t prev_checksum = 0;  // the record before it, as this one names it
  std::span<const std::byte> payload;
  std::span<const std::byte> frame;  // the whole frame, as a local log would write it
};

/// Walks the frames of a buffer (a batch, a replicated message) whose first record must have
/// LSN `next_lsn` and chain from `prev_checksum`; calls fn(const FrameView&) for each (fn may
/// return a Status: a non-ok one stops the walk and is returned) and leaves *next_lsn /
/// *prev_checksum after the last.
/// kCorruption naming the byte offset: a bad checksum, a wrong LSN, non-zero padding, a length
/// past the end. kConflict: the chain does not continue from *prev_checksum (another history).
template <typename Fn>
Status for_each_frame(std::span<const std::byte> message, std::uint64_t* next_lsn,
                      std::uint64_t* prev_checksum, Fn fn);

/// Bytes of the frame at the start of `rest` (header, payload, padding), or 0 if `rest` is
/// too short to hold it.
std::size_t frame_bytes(std::span<const std::byte> rest);

/// Checks one frame at the start of `rest` (see for_each_frame) and returns its view.
Status parse_frame(std::span<const std::byte> rest, std::size_t offset, std::uint64_t next_lsn,
                   std::uint64_t prev_checksum, FrameView* out);

template <typename Fn>
Status for_each_frame(std::span<const std::byte> message, std::uint64_t* next_lsn,
                      std::uint64_t* prev_checksum, Fn fn) {
  std::size_t offset = 0;
  while (offset < message.size()) {
    FrameView view;
    if (Status s = parse_frame(message.subspan(offset), offset, *next_lsn, *prev_checksum, &view);
        !s.is_ok()) {
      return s;
    }
    if constexpr (std::is_same_v<decltype(fn(view)), Status>) {
      if (Status s = fn(view); !s.is_ok()) return s;
    } else {
      fn(view);
    }
    offset += view.frame.size();
    *next_lsn = view.lsn + 1;
    *prev_checksum = view.checksum;
  }
  return Status::ok();
}

/// for_each_frame over a whole buffer of records from LSN first_lsn whose chain is taken from
/// its first record's own prev_checksum (a reader that must check that link does it itself).
/// *end_lsn and *last_checksum (optional) are left after the last record. kCorruption for a
/// buffer that holds no record.
template <typename Fn>
Status for_each_frame_in(std::span<const std::byte> frames, std::uint64_t first_lsn, Fn fn,
                         std::uint64_t* end_lsn = nullptr, std::uint64_t* last_checksum = nullptr) {
  if (frames.size() < format::kRecordHeaderBytes) return Status::corruption("no record in frames");
  std::uint64_t next = first_lsn;
  std::uint64_t prev = format::decode_record_header(frames.data()).prev_checksum;
  const Status s = for_each_frame(frames, &next, &prev, fn);
  if (end_lsn != nullptr) *end_lsn = next;
  if (last_checksum != nullptr) *last_checksum = prev;
  return s;
}

}  // namespace paycore::wal
