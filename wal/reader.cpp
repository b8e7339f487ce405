#include "wal/reader.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::wal::detail {
namespace {

using format::kRecordHeaderBytes;
using format::kSegmentHeaderBytes;

constexpr std::string_view kLogSuffix = ".log";
constexpr std::string_view kTempSuffix = ".log.tmp";

Status errno_status(const char* what, const std::string& path) {
  const int e = errno;
  return Status(e == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                std::string(what) + " " + path + ": " + std::strerror(e));
}

Status corruption(const std::string& path, std::uint64_t offset, const std::string& reason) {
  return Status(StatusCode::kCorruption,
                path + " offset " + std::to_string(offset) + ": " + reason);
}

// Parses "<20 digits><suffix>"; false for anything else.
bool parse_name(std::string_view name, std::string_view suffix, std::uint64_t* lsn) {
  if (name.size() != format::kFileNameDigits + suffix.size()) return false;
  if (name.substr(format::kFileNameDigits) != suffix) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < format::kFileNameDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *lsn = v;
  return true;
}

}  // namespace

std::string segment_file_name(std::uint64_t first_lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".log", first_lsn);
  return buf;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

Status list_segments(const std::string& dir, std::vector<SegmentFile>* segments,
                     std::vector<std::string>* temp_paths) {
  segments->clear();
  if (temp_paths != nullptr) temp_paths->clear();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_status("opendir", dir);
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    std::uint64_t lsn = 0;
    if (parse_name(name, kLogSuffix, &lsn)) {
      segments->push_back({lsn, join_path(dir, std::string(name))});
    } else if (temp_paths != nullptr && parse_name(name, kTempSuffix, &lsn)) {
      temp_paths->push_back(join_path(dir, std::string(name)));
    }
  }
  ::closedir(d);
  std::sort(segments->begin(), segments->end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.first_lsn < b.first_lsn; });
  return Status::ok();
}

Status check_segment_header(const SegmentFile& segment, const MappedFile& file,
                            format::SegmentHeader* header) {
  if (file.size() < kSegmentHeaderBytes) {
    return corruption(segment.path, 0, "file of " + std::to_string(file.size()) +
                                           " bytes is too short for a segment header");
  }
  if (!format::segment_header_valid(file.data())) {
    return corruption(segment.path, 0, "bad segment header (magic, version or checksum)");
  }
  *header = format::decode_segment_header(file.data());
  if (header->first_lsn != segment.first_lsn) {
    return corruption(segment.path, format::kSegFirstLsnOffset,
                      "header says first LSN " + std::to_string(header->first_lsn) +
                          " but the file name says " + std::to_string(segment.first_lsn));
  }
  return Status::ok();
}

namespace {

// What the bytes at `off` hold: zeros (the end of the records), a record that is incomplete or
// fails its checksum (`reason`: a tear or damage, decided by the caller), or an intact record.
enum class RecordAt { kEnd, kBad, kIntact };

RecordAt read_record_at(const std::byte* data, std::size_t size, std::uint64_t off,
                        format::RecordHeader* h, std::string* reason) {
  const std::size_t left = size - off;
  if (left < kRecordHeaderBytes) {
    if (format::all_zero(data + off, left)) return RecordAt::kEnd;
    *reason = "incomplete record header at the end of the file";
    return RecordAt::kBad;
  }
  const std::byte* rec = data + off;
  *h = format::decode_record_header(rec);
  if (h->checksum == 0 && h->lsn == 0 && format::all_zero(rec, kRecordHeaderBytes)) {
    return RecordAt::kEnd;
  }
  if (h->length > left - kRecordHeaderBytes) {
    *reason = "record length " + std::to_string(h->length) + " runs past the end of the file";
    return RecordAt::kBad;
  }
  if (format::compute_record_checksum(rec, h->length) != h->checksum) {
    *reason = "record checksum mismatch";
    return RecordAt::kBad;
  }
  return RecordAt::kIntact;
}

// An intact record (its checksum matches) that disagrees with the chain is damage, not a tear.
Status check_intact_record(const SegmentFile& segment, const std::byte* data, std::size_t size,
                           std::uint64_t off, const format::RecordHeader& h, std::uint64_t lsn,
                           std::uint64_t prev) {
  if (h.lsn != lsn) {
    return corruption(segment.path, off, "expected LSN " + std::to_string(lsn) + ", found " +
                                             std::to_string(h.lsn));
  }
  if (h.prev_checksum != prev) {
    return corruption(segment.path, off, "broken hash chain at LSN " + std::to_string(lsn) +
                                             ": prev_checksum does not match the record before");
  }
  const std::size_t total = format::record_bytes(h.length);
  const std::size_t body_end = kRecordHeaderBytes + h.length;
  const std::byte* rec = data + off;
  if (h.reserved != 0 || total > size - off ||
      !format::all_zero(rec + body_end, total - body_end)) {
    return corruption(segment.path, off, "non-zero reserved or padding bytes");
  }
  return Status::ok();
}

}  // namespace

Status scan_records(const SegmentFile& segment, const MappedFile& file,
                    const format::SegmentHeader& header, std::uint64_t to_lsn,
                    RecordVisitor* visit, SegmentScan* out) {
  return scan_records_from(segment, file, {kSegmentHeaderBytes, header.first_lsn, header.prev_checksum},
                           to_lsn, visit, out);
}

Status scan_records_from(const SegmentFile& segment, const MappedFile& file, ScanFrom from,
                         std::uint64_t to_lsn, RecordVisitor* visit, SegmentScan* out) {
  const std::byte* data = file.data();
  const std::size_t size = file.size();
  std::uint64_t off = from.offset;
  std::uint64_t lsn = from.lsn;
  std::uint64_t prev = from.prev_checksum;
  std::uint64_t count = 0;
  ScanStop stop = ScanStop::kEnd;
  std::string reason;
  for (;;) {
    // Every record starts aligned (format.hpp): the writer pads each one to kRecordAlignBytes.
    PAYCORE_ASSERT_EQ(off % format::kRecordAlignBytes, 0U);
    format::RecordHeader h{};
    const RecordAt at = read_record_at(data, size, off, &h, &reason);
    if (at == RecordAt::kEnd) break;
    if (at == RecordAt::kBad) {
      stop = ScanStop::kBad;
      break;
    }
    PAYCORE_RETURN_IF_ERROR(check_intact_record(segment, data, size, off, h, lsn, prev));
    if (lsn > to_lsn) {
      stop = ScanStop::kLimit;
      break;
    }
    const bool go_on =
        visit == nullptr ||
        (*visit)(segment, RecordView{off, h, {data + off + kRecordHeaderBytes, h.length}});
    // A visited record counts as read, even the one the visitor stopped at: the caller resumes
    // after it.
    ++count;
    prev = h.checksum;
    ++lsn;
    off += format::record_bytes(h.length);
    if (!go_on) {
      stop = ScanStop::kVisitor;
      break;
    }
  }
  out->records_count = count;
  out->next_lsn = lsn;
  out->last_checksum = prev;
  out->end_offset = off;
  out->stop = stop;
  out->bad_reason = std::move(reason);
  return Status::ok();
}

std::uint64_t find_valid_record(const MappedFile& file, std::uint64_t from) {
  const std::byte* data = file.data();
  const std::size_t size = file.size();
  for (std::uint64_t off = format::align_up(from); off + kRecordHeaderBytes <= size;
       off += format::kRecordAlignBytes) {
    const format::RecordHeader h = format::decode_record_header(data + off);
    if (h.lsn == 0 || h.reserved != 0 || h.length > size - off - kRecordHeaderBytes) continue;
    if (format::compute_record_checksum(data + off, h.length) == h.checksum) return off;
  }
  return 0;
}

std::uint64_t nonzero_end(const MappedFile& file, std::uint64_t from) {
  const std::byte* data = file.data();
  std::uint64_t end = from;
  constexpr std::size_t kBlock = 4096;
  for (std::uint64_t off = from; off < file.size(); off += kBlock) {
    const std::size_t n = std::min<std::size_t>(kBlock, file.size() - off);
    if (format::all_zero(data + off, n)) continue;
    for (std::size_t i = n; i > 0; --i) {
      if (data[off + i - 1] != std::byte{0}) {
        end = off + i;
        break;
      }
    }
  }
  return std::min<std::uint64_t>(format::align_up(end), file.size());
}

namespace {

// A bad record, or stray bytes after the last record, in the last segment: a torn write if no
// valid record follows it, otherwise corruption.
Status classify_tail(const SegmentFile& segment, const MappedFile& file, std::uint64_t offset,
                     const std::string& reason, ScanResult* out) {
  const std::uint64_t next_valid = find_valid_record(file, offset + format::kRecordAlignBytes);
  if (next_valid != 0) {
    const format::RecordHeader h = format::decode_record_header(file.data() + next_valid);
    return corruption(segment.path, offset,
                      reason + ", and a valid record (LSN " + std::to_string(h.lsn) +
                          ") follows at offset " + std::to_string(next_valid));
  }
  out->torn = true;
  out->torn_offset = offset;
  out->torn_end = std::max(nonzero_end(file, offset), offset);
  out->torn_reason = reason;
  return Status::ok();
}

}  // namespace

Status scan_log(const std::string& dir, RecordVisitor* visit, ScanResult* out) {
  *out = ScanResult{};
  Status s = list_segments(dir, &out->segments, &out->temp_paths);
  if (!s.is_ok()) return s;
  const std::size_t count = out->segments.size();
  for (std::size_t i = 0; i < count; ++i) {
    const SegmentFile& seg = out->segments[i];
    const bool last = i + 1 == count;
    MappedFile file;
    s = file.open(seg.path);
    if (!s.is_ok()) return s;
    format::SegmentHeader header;
    s = check_segment_header(seg, file, &header);
    if (!s.is_ok()) return s;
    if (i > 0 && header.first_lsn > out->next_lsn) {
      return Status(StatusCode::kMissingSegment,
                    "missing segment " + segment_file_name(out->next_lsn) + ": " +
                        out->segments[i - 1].path + " ends before LSN " +
                        std::to_string(out->next_lsn) + " but the next file is " + seg.path);
    }
    if (i > 0 && header.first_lsn < out->next_lsn) {
      return corruption(seg.path, format::kSegFirstLsnOffset,
                        "segment starts at LSN " + std::to_string(header.first_lsn) +
                            ", overlapping the previous segment, which ends at LSN " +
                            std::to_string(out->next_lsn - 1));
    }
    if (i > 0 && header.prev_checksum != out->last_checksum) {
      return corruption(seg.path, format::kSegPrevChecksumOffset,
                        "broken hash chain: segment header's prev_checksum does not match the "
                        "last record of " + out->segments[i - 1].path);
    }
    SegmentScan scan;
    s = scan_records(seg, file, header, UINT64_MAX, visit, &scan);
    if (!s.is_ok()) return s;
    if (scan.records_count > 0 && out->first_lsn == 0) out->first_lsn = header.first_lsn;
    out->records_count += scan.records_count;
    out->next_lsn = scan.next_lsn;
    out->last_checksum = scan.last_checksum;
    if (scan.records_count > 0) out->last_lsn = scan.next_lsn - 1;
    if (scan.stop == ScanStop::kVisitor) return Status::ok();
    if (scan.stop == ScanStop::kBad && !last) {
      return corruption(seg.path, scan.end_offset,
                        scan.bad_reason + " (not in the last segment, so not a torn write)");
    }
    if (last) {
      out->tail_offset = scan.end_offset;
      out->last_file_bytes = file.size();
      if (scan.stop == ScanStop::kBad) {
        s = classify_tail(seg, file, scan.end_offset, scan.bad_reason, out);
      } else if (nonzero_end(file, scan.end_offset) > scan.end_offset) {
        s = classify_tail(seg, file, scan.end_offset, "non-zero bytes after the last record", out);
      }
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

}  // namespace paycore::wal::detail
