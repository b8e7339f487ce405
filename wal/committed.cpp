#include "wal/committed.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "base/mapped_file.hpp"
#include "wal/reader.hpp"

namespace paycore::wal {
namespace {

// Reads one segment's records from_lsn..to_lsn; *next_lsn becomes the LSN after its last.
Status read_segment(const detail::SegmentFile& segment, std::uint64_t expected_first_lsn,
                    std::uint64_t from_lsn, std::uint64_t to_lsn, CommittedVisitor visit,
                    bool* stopped, std::uint64_t* next_lsn) {
  MappedFile file;
  Status s = file.open(segment.path);
  if (s.code() == StatusCode::kNotFound || s.code() == StatusCode::kIoError) {
    // Removed between the listing and the open: the reader is behind the log's retention.
    if (::access(segment.path.c_str(), F_OK) != 0) {
      return Status(StatusCode::kNotFound, segment.path + " was removed while being read");
    }
  }
  if (!s.is_ok()) return s;
  format::SegmentHeader header;
  PAYCORE_RETURN_IF_ERROR(detail::check_segment_header(segment, file, &header));
  if (header.first_lsn != expected_first_lsn) {
    return Status::corruption(segment.path + " starts at LSN " + std::to_string(header.first_lsn) +
                              ", not " + std::to_string(expected_first_lsn));
  }
  auto visit_fn = [&](const detail::SegmentFile&, const detail::RecordView& r) {
    if (r.header.lsn < from_lsn) return true;
    if (!visit(r.header.lsn, r.header.type, r.payload)) {
      *stopped = true;
      return false;
    }
    return true;
  };
  detail::RecordVisitor visitor(visit_fn);
  detail::SegmentScan scan;
  PAYCORE_RETURN_IF_ERROR(detail::scan_records(segment, file, header, to_lsn, &visitor, &scan));
  *next_lsn = scan.next_lsn;
  return Status::ok();
}

}  // namespace

Status read_committed(const std::string& dir, std::uint64_t from_lsn, std::uint64_t to_lsn,
                      CommittedVisitor visit) {
  from_lsn = std::max<std::uint64_t>(from_lsn, 1);
  if (from_lsn > to_lsn) return Status::ok();
  std::vector<detail::SegmentFile> segments;
  PAYCORE_RETURN_IF_ERROR(detail::list_segments(dir, &segments, nullptr));
  if (segments.empty() || from_lsn < segments.front().first_lsn) {
    return Status(StatusCode::kNotFound,
                  dir + ": records before LSN " +
                      std::to_string(segments.empty() ? 0 : segments.front().first_lsn) +
                      " were removed; LSN " + std::to_string(from_lsn) + " was asked for");
  }
  // The last segment whose first LSN is <= from_lsn holds it.
  auto it = std::upper_bound(segments.begin(), segments.end(), from_lsn,
                             [](std::uint64_t lsn, const detail::SegmentFile& f) { return lsn < f.first_lsn; });
  std::size_t index = static_cast<std::size_t>(it - segments.begin()) - 1;
  std::uint64_t next = segments[index].first_lsn;
  bool stopped = false;
  for (; index < segments.size() && next <= to_lsn && !stopped; ++index) {
    PAYCORE_RETURN_IF_ERROR(
        read_segment(segments[index], next, from_lsn, to_lsn, visit, &stopped, &next));
  }
  if (!stopped && next <= to_lsn) {
    return Status::corruption(dir + ": LSN " + std::to_string(next) + " up to " +
                              std::to_string(to_lsn) + " is not readable");
  }
  return Status::ok();
}

StatusOr<std::uint64_t> first_committed_lsn(const std::string& dir) {
  std::vector<detail::SegmentFile> segments;
  PAYCORE_RETURN_IF_ERROR(detail::list_segments(dir, &segments, nullptr));
  return segments.empty() ? std::uint64_t{0} : segments.front().first_lsn;
}

}  // namespace paycore::wal
