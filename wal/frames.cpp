#include "wal/frames.hpp"

#include <string>

#include "wal/format.hpp"

namespace paycore::wal {
namespace fmt = format;

std::size_t frame_bytes(std::span<const std::byte> rest) {
  if (rest.size() < fmt::kRecordHeaderBytes) return 0;
  const fmt::RecordHeader h = fmt::decode_record_header(rest.data());
  const std::size_t bytes = fmt::record_bytes(h.length);
  return bytes <= rest.size() ? bytes : 0;
}

namespace {

Status corrupt_at(std::size_t offset, const std::string& what) {
  return Status::corruption("frames offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

Status parse_frame(std::span<const std::byte> rest, std::size_t offset, std::uint64_t next_lsn,
                   std::uint64_t prev_checksum, FrameView* out) {
  const std::size_t bytes = frame_bytes(rest);
  if (bytes == 0) return corrupt_at(offset, "record runs past the end");
  const fmt::RecordHeader h = fmt::decode_record_header(rest.data());
  if (h.checksum != fmt::compute_record_checksum(rest.data(), h.length)) {
    return corrupt_at(offset, "record checksum mismatch");
  }
  if (h.lsn != next_lsn) {
    return corrupt_at(offset, "record LSN " + std::to_string(h.lsn) + " where " +
                                  std::to_string(next_lsn) + " was expected");
  }
  const std::size_t used = fmt::kRecordHeaderBytes + h.length;
  if (h.reserved != 0 || !fmt::all_zero(rest.data() + used, bytes - used)) {
    return corrupt_at(offset, "non-zero reserved bytes or padding");
  }
  if (h.prev_checksum != prev_checksum) {
    return Status(StatusCode::kConflict,
                  "record LSN " + std::to_string(h.lsn) +
                      " does not follow this process's record " + std::to_string(h.lsn - 1) +
                      " (another history)");
  }
  out->lsn = h.lsn;
  out->type = h.type;
  out->checksum = h.checksum;
  out->prev_checksum = h.prev_checksum;
  out->payload = rest.subspan(fmt::kRecordHeaderBytes, h.length);
  out->frame = rest.first(bytes);
  return Status::ok();
}

}  // namespace paycore::wal
