#include "wal/committed.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "base/mapped_file.hpp"
#include "wal/reader.hpp"

namespace paycore::wal {

struct CommittedReader::Place {
  detail::SegmentFile segment;
  MappedFile file;
  detail::ScanFrom next;  // the record the next read starts at

  // Maps `s` with the next record at its first, which must be `expected_first_lsn`.
  Status open(const detail::SegmentFile& s, std::uint64_t expected_first_lsn) {
    segment = s;
    Status status = file.open(segment.path);
    if (status.code() == StatusCode::kNotFound || status.code() == StatusCode::kIoError) {
      // Removed between the listing and the open: the reader is behind the log's retention.
      if (::access(segment.path.c_str(), F_OK) != 0) {
        return Status(StatusCode::kNotFound, segment.path + " was removed while being read");
      }
    }
    if (!status.is_ok()) return status;
    format::SegmentHeader header;
    PAYCORE_RETURN_IF_ERROR(detail::check_segment_header(segment, file, &header));
    if (header.first_lsn != expected_first_lsn) {
      return Status::corruption(segment.path + " starts at LSN " + std::to_string(header.first_lsn) +
                                ", not " + std::to_string(expected_first_lsn));
    }
    next = {format::kSegmentHeaderBytes, header.first_lsn, header.prev_checksum};
    return Status::ok();
  }
};

CommittedReader::CommittedReader(std::string dir) : dir_(std::move(dir)) {}
CommittedReader::~CommittedReader() = default;

// Maps the segment that holds from_lsn, at its first record.
Status CommittedReader::locate(std::uint64_t from_lsn) {
  std::vector<detail::SegmentFile> segments;
  PAYCORE_RETURN_IF_ERROR(detail::list_segments(dir_, &segments, nullptr));
  if (segments.empty() || from_lsn < segments.front().first_lsn) {
    return Status(StatusCode::kNotFound,
                  dir_ + ": records before LSN " +
                      std::to_string(segments.empty() ? 0 : segments.front().first_lsn) +
                      " were removed; LSN " + std::to_string(from_lsn) + " was asked for");
  }
  // The last segment whose first LSN is <= from_lsn holds it.
  auto it = std::upper_bound(segments.begin(), segments.end(), from_lsn,
                             [](std::uint64_t lsn, const detail::SegmentFile& f) { return lsn < f.first_lsn; });
  --it;
  auto place = std::make_unique<Place>();
  PAYCORE_RETURN_IF_ERROR(place->open(*it, it->first_lsn));
  place_ = std::move(place);
  return Status::ok();
}

// The mapped segment ended before to_lsn: the segment that starts at the next LSN, or, when
// there is none yet, the same file mapped again once (a mapping shows what was written after
// it was made, but a reader must not call a record missing on that alone).
Status CommittedReader::advance(std::uint64_t to_lsn, bool* remapped) {
  const std::uint64_t next = place_->next.lsn;
  std::vector<detail::SegmentFile> segments;
  PAYCORE_RETURN_IF_ERROR(detail::list_segments(dir_, &segments, nullptr));
  auto place = std::make_unique<Place>();
  for (const detail::SegmentFile& segment : segments) {
    if (segment.first_lsn == next) {
      PAYCORE_RETURN_IF_ERROR(place->open(segment, next));
      place_ = std::move(place);
      return Status::ok();
    }
  }
  if (*remapped) {
    return Status::corruption(dir_ + ": LSN " + std::to_string(next) + " up to " +
                              std::to_string(to_lsn) + " is not readable");
  }
  *remapped = true;
  PAYCORE_RETURN_IF_ERROR(place->open(place_->segment, place_->segment.first_lsn));
  place->next = place_->next;
  place_ = std::move(place);
  return Status::ok();
}

Status CommittedReader::read(std::uint64_t from_lsn, std::uint64_t to_lsn, CommittedVisitor visit) {
  from_lsn = std::max<std::uint64_t>(from_lsn, 1);
  if (from_lsn > to_lsn) return Status::ok();
  if (place_ == nullptr || place_->next.lsn != from_lsn) {
    place_.reset();
    PAYCORE_RETURN_IF_ERROR(locate(from_lsn));
  }
  bool stopped = false;
  bool remapped = false;
  auto visit_fn = [&](const detail::SegmentFile&, const detail::RecordView& r) {
    if (r.header.lsn < from_lsn) return true;
    stopped = !visit(r.header.lsn, r.header.type, r.payload);
    return !stopped;
  };
  detail::RecordVisitor visitor(visit_fn);
  while (!stopped && place_->next.lsn <= to_lsn) {
    detail::SegmentScan scan;
    Status s = detail::scan_records_from(place_->segment, place_->file, place_->next, to_lsn, &visitor, &scan);
    if (s.is_ok()) {
      place_->next = {scan.end_offset, scan.next_lsn, scan.last_checksum};
      if (!stopped && scan.next_lsn <= to_lsn) s = advance(to_lsn, &remapped);
    }
    if (!s.is_ok()) {
      place_.reset();
      return s;
    }
  }
  return Status::ok();
}

Status read_committed(const std::string& dir, std::uint64_t from_lsn, std::uint64_t to_lsn,
                      CommittedVisitor visit) {
  CommittedReader reader(dir);
  return reader.read(from_lsn, to_lsn, visit);
}

StatusOr<std::uint64_t> first_committed_lsn(const std::string& dir) {
  std::vector<detail::SegmentFile> segments;
  PAYCORE_RETURN_IF_ERROR(detail::list_segments(dir, &segments, nullptr));
  return segments.empty() ? std::uint64_t{0} : segments.front().first_lsn;
}

}  // namespace paycore::wal
