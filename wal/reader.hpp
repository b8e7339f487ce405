#pragma once
// Internal: reading segment files. Used by recovery (Log::open), replay and the tools, so that
// all three agree on what a valid record, a torn tail and corruption are.
//
// Files are read through read-only mmap with MADV_SEQUENTIAL: the kernel reads ahead in large
// chunks, and parsing a record costs no system call and no allocation. The log never shrinks a
// file (a torn tail is zeroed in place), so a mapping cannot fault past the end.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "wal/format.hpp"
#include "base/function_ref.hpp"
#include "base/mapped_file.hpp"
#include "base/status.hpp"

namespace paycore::wal::detail {

struct SegmentFile {
  std::uint64_t first_lsn = 0;
  std::string path;
};

std::string segment_file_name(std::uint64_t first_lsn);
std::string join_path(const std::string& dir, const std::string& name);

// Lists <dir>/<20 digits>.log in LSN order, and any half-created <20 digits>.log.tmp.
Status list_segments(const std::string& dir, std::vector<SegmentFile>* segments,
                     std::vector<std::string>* temp_paths);

struct RecordView {
  std::uint64_t offset = 0;  // of the record header in its file
  format::RecordHeader header;
  std::span<const std::byte> payload;
};

// Return false to stop the scan.
using RecordVisitor = FunctionRef<bool(const SegmentFile&, const RecordView&)>;

enum class ScanStop : std::uint8_t {
  kEnd,      // zeros (or the end of the file) where the next record would start
  kBad,      // a record that is incomplete or fails its checksum: torn write or damage
  kLimit,    // the next record's LSN is past to_lsn
  kVisitor,  // the visitor returned false
};

struct SegmentScan {
  std::uint64_t records_count = 0;
  std::uint64_t next_lsn = 0;       // LSN the next record must have
  std::uint64_t last_checksum = 0;  // checksum of the last valid record (header's prev if none)
  std::uint64_t end_offset = 0;     // just after the last valid record
  ScanStop stop = ScanStop::kEnd;
  std::string bad_reason;
};

// Checks the header of a mapped segment against its name; fills *header.
Status check_segment_header(const SegmentFile& segment, const MappedFile& file,
                            format::SegmentHeader* header);

// Walks the records of one mapped segment. A record with a valid checksum but the wrong LSN,
// a broken hash chain or non-zero padding is corruption (an error), never a torn write.
Status scan_records(const SegmentFile& segment, const MappedFile& file,
                    const format::SegmentHeader& header, std::uint64_t to_lsn,
                    RecordVisitor* visit, SegmentScan* out);

// Where a scan resumes inside a segment: a record's offset, and the LSN and previous checksum
// the chain expects there (a SegmentScan's next_lsn, last_checksum and end_offset).
struct ScanFrom {
  std::uint64_t offset = 0;
  std::uint64_t lsn = 0;
  std::uint64_t prev_checksum = 0;
};
// As scan_records, from `from` instead of the segment's first record (wal::CommittedReader).
Status scan_records_from(const SegmentFile& segment, const MappedFile& file, ScanFrom from,
                         std::uint64_t to_lsn, RecordVisitor* visit, SegmentScan* out);

// Offset of the first valid-looking record (checksum matches) at or after `from`, or 0.
std::uint64_t find_valid_record(const MappedFile& file, std::uint64_t from);
// One past the last non-zero byte at or after `from`, rounded up to 8; `from` if all zero.
std::uint64_t nonzero_end(const MappedFile& file, std::uint64_t from);

struct ScanResult {
  std::vector<SegmentFile> segments;
  std::vector<std::string> temp_paths;
  std::uint64_t records_count = 0;
  std::uint64_t first_lsn = 0;  // of the first record; 0 when none
  std::uint64_t last_lsn = 0;   // of the last valid record; 0 when none
  std::uint64_t next_lsn = 0;   // LSN the next record gets; 0 when there is no segment
  std::uint64_t last_checksum = 0;
  std::uint64_t tail_offset = 0;      // in the last segment, where the next record goes
  std::uint64_t last_file_bytes = 0;  // size of the last segment
  bool torn = false;                  // the last segment ends in a torn write
  std::uint64_t torn_offset = 0;      // first byte to drop
  std::uint64_t torn_end = 0;         // one past the last non-zero byte to drop
  std::string torn_reason;
};

// Reads the whole log in `dir` without changing it. Errors: corruption (file and offset),
// missing segment, I/O. A torn tail is not an error: it is described in *out.
Status scan_log(const std::string& dir, RecordVisitor* visit, ScanResult* out);

}  // namespace paycore::wal::detail
