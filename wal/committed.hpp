#pragma once
// Reading the committed log from outside its writer (issue 15: the event deriver follows the
// local log as the core writes it). The writer owns wal::Log; a reader opens the segment files
// by name, read-only, and reads records only up to an LSN the writer has made durable, whose
// bytes never change again (the log never rewrites nor shrinks a durable record). Segment
// files may be removed under the reader (after snapshots); a reader that must not lose records
// holds the writer's removal back (EngineConfig::log_readers_floor_lsn).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/function_ref.hpp"
#include "base/status.hpp"

namespace paycore::wal {

/// Called for each record in LSN order; return false to stop.
using CommittedVisitor =
    FunctionRef<bool(std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload)>;

/// Visits the records from_lsn..to_lsn (inclusive; to_lsn must be durable) of the log in `dir`.
/// Errors: kNotFound when from_lsn is below the first segment on disk (removed: the reader fell
/// behind the log's retention) or when a segment vanished while being read; kCorruption when a
/// record up to to_lsn cannot be read or a segment does not start where the one before ended;
/// the file system's errors, naming the file.
Status read_committed(const std::string& dir, std::uint64_t from_lsn, std::uint64_t to_lsn,
                      CommittedVisitor visit);

/// A reader that follows the log forward and keeps its place: a read from the LSN after the
/// previous read's last record resumes in the segment it has mapped, at that record's offset,
/// instead of listing the directory and checking the segment from its start again (which
/// made a follower's cost grow with the segment's size: docs/events.md "Cost"). Any other
/// from_lsn, or a read after an error, starts afresh. Records are checked as read_committed
/// checks them. Not thread safe: one per following thread.
class CommittedReader {
 public:
  explicit CommittedReader(std::string dir);
  ~CommittedReader();
  CommittedReader(const CommittedReader&) = delete;
  CommittedReader& operator=(const CommittedReader&) = delete;

  /// As read_committed (same arguments, order and errors).
  Status read(std::uint64_t from_lsn, std::uint64_t to_lsn, CommittedVisitor visit);

 private:
  struct Place;
  Status locate(std::uint64_t from_lsn);
  Status advance(std::uint64_t to_lsn, bool* remapped);
  std::string dir_;
  std::unique_ptr<Place> place_;  // the mapped segment and the next record in it
};

/// The first LSN of the log in `dir` still on disk (its oldest segment's first), or 0 when it
/// has no segment. Errors: the directory listing's.
StatusOr<std::uint64_t> first_committed_lsn(const std::string& dir);

}  // namespace paycore::wal
