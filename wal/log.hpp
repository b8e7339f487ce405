#pragma once
// paycore::wal::Log — a write-ahead log of byte records with group commit.
//
// One thread (the engine's core thread) owns a Log and calls everything except completion_fd()
// waiting, which may happen in its epoll. Usage:
//
//   append(...) xN          fill the open batch; each record gets the next LSN
//   submit()                pwrite the whole batch (page cache, in LSN order), then start one
//                           fdatasync for it; returns at once on io_uring
//   append(...) xN          the next batch fills while earlier ones are being flushed
//   submit()                on io_uring up to syncs_in_flight_max flushes run at once
//   poll() / wait()         the durable LSN advances when a flush completes: to the last record
//                           written before that flush was issued (it covers every earlier batch)
//
// A failed write or fdatasync makes the log read-only for the rest of the process's life
// (docs/design.md rule 7): the fsync is never retried, append/submit return kReadOnly, replay still
// works, and a restart recovers from what is on disk.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "wal/fault.hpp"
#include "base/function_ref.hpp"
#include "base/status.hpp"

namespace paycore {
class MappedFile;
class SpareFile;
}

namespace paycore::wal {

// Flushes in flight at once, at most (Options::syncs_in_flight_max).
inline constexpr std::uint32_t kSyncSlotsMax = 8;

struct Options {
  std::string dir;
  std::uint64_t segment_bytes = 64ULL << 20;  // size each segment file is preallocated to
  std::uint32_t batch_bytes_max = 4U << 20;   // size of the batch buffer: a batch's bytes at most
  // fdatasyncs in flight at once on io_uring, 1..kSyncSlotsMax (the fallback thread has one).
  // 1 is classic group commit: the next batch's flush starts when the previous one completes.
  std::uint32_t syncs_in_flight_max = 1;
  // LSN of the first record when the directory holds no segment: after a snapshot at LSN s
  // whose log segments were all removed, pass s + 1 so that LSNs keep increasing.
  std::uint64_t first_lsn_if_empty = 1;
  // The hash chain such a log starts from (its first segment's prev_checksum): the checksum of
  // record first_lsn_if_empty - 1 when it is known (a cluster member started from a published
  // snapshot, whose records come from the shared log: repl/bootstrap.hpp); 0 otherwise.
  std::uint64_t prev_checksum_if_empty = 0;
  // Write each next segment full of zeros on a thread ahead of need (base/spare_file.hpp says
  // why) and leave a fallocated segment for such a spare as soon as one is ready. Off: every
  // segment is fallocated at rotation, on the caller's thread.
  bool spare_segments = true;
  bool force_fallback = false;        // use the pwrite+fdatasync thread even if io_uring works
  // Called by submit() once a batch is written (before its flush completes), on the caller's
  // thread: LSNs first_lsn..last_lsn, the record frames exactly as written (format.hpp). The
  // view is valid during the call only. Replication sends it to the shared log from here.
  std::function<void(std::uint64_t first_lsn, std::uint64_t last_lsn,
                     std::span<const std::byte> records)>
      on_batch_written;
  FaultInjector* faults = nullptr;    // tests only
};

struct RecoveryReport {
  std::uint64_t segments_count = 0;
  std::uint64_t records_count = 0;
  std::uint64_t first_lsn = 0;  // first record on disk; 0 when there is none
  std::uint64_t last_lsn = 0;   // last valid record on disk; 0 when there is none
  bool fresh = false;           // no segment was found: a new log was started
  bool torn_tail_truncated = false;
  std::string torn_file;             // the file whose tail was zeroed
  std::uint64_t torn_offset = 0;     // byte offset of the first dropped byte
  std::uint64_t torn_bytes = 0;      // bytes zeroed
  std::string torn_reason;
  std::uint32_t temp_files_removed = 0;  // half-created segments (*.log.tmp) from a crash
};

inline constexpr std::size_t kHistogramBuckets = 24;

struct Stats {
  std::uint64_t appends_count = 0;
  std::uint64_t append_payload_bytes = 0;
  std::uint64_t batches_count = 0;      // batches made durable
  std::uint64_t write_bytes = 0;        // bytes written by those batches
  std::uint64_t fsyncs_count = 0;       // fdatasync calls / SQEs issued, segment creation included
  std::uint64_t short_writes_count = 0;
  std::uint64_t segments_created_count = 0;
  std::uint64_t segments_from_spares_count = 0;  // of those, made from a zero-filled spare
  std::uint64_t batch_records_max = 0;
  // Bucket i counts batches whose submit-to-durable time was < 2^i microseconds (the last
  // bucket takes the rest). On io_uring the time includes any delay before poll() saw it.
  std::array<std::uint64_t, kHistogramBuckets> sync_latency_us_log2{};
  // Bucket i counts batches of < 2^i records (the last bucket takes the rest).
  std::array<std::uint64_t, kHistogramBuckets> batch_records_log2{};
};

// Called once per record by replay(), in LSN order. The payload view is valid during the call only.
using ReplayFn = FunctionRef<void(std::uint64_t lsn, std::uint16_t type,
                                  std::span<const std::byte> payload)>;

// Called once per record by replay_frames(), in LSN order: the record's frame exactly as the
// file holds it (header, payload, padding; format.hpp). Valid during the call only.
using FrameFn = FunctionRef<void(std::uint64_t lsn, std::span<const std::byte> frame)>;

namespace detail {
class Writer;
struct RecordView;
struct Batch;
struct SyncDone;
}  // namespace detail

class Log {
 public:
  // Opens or creates `options.dir`, runs recovery (truncating a torn tail, refusing corruption)
  // and positions the writer after the last valid record. Logs one line (base/log.hpp) naming
  // the write path in use. A truncated torn tail is not logged here: it is in `*report`, and
  // the caller says it once (docs/style.md rule 2).
  static Status open(const Options& options, std::unique_ptr<Log>* out, RecoveryReport* report);

  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  ~Log();  // waits for the flushes in flight; does not submit a batch still being filled

  // Calls fn for every durable record with from_lsn <= LSN <= to_lsn, in order. kNotFound if
  // from_lsn is below the first record still on disk (its segment was removed), kCorruption on
  // bad bytes.
  Status replay(std::uint64_t from_lsn, ReplayFn fn,
                std::uint64_t to_lsn = std::numeric_limits<std::uint64_t>::max());

  // replay() for those who ship records elsewhere: each record's whole frame (replication
  // sends the frames its shared log is missing). Same range and errors as replay().
  Status replay_frames(std::uint64_t from_lsn, FrameFn fn,
                       std::uint64_t to_lsn = std::numeric_limits<std::uint64_t>::max());

  // Copies one record into the batch being filled and returns its LSN in *lsn_out.
  // kFull: no room in the batch buffer (or the segment): submit(), then append again.
  // kReadOnly after a storage fault; kInvalidArgument if the record could never fit;
  // kNoSpace if a new segment could not be preallocated (the log stays writable).
  Status append(std::uint16_t type, std::span<const std::byte> payload, std::uint64_t* lsn_out);

  // Writes the filled batch with pwrite and starts one fdatasync for it. Returns without waiting
  // for the flush; if syncs_in_flight_max flushes are in flight it first waits for one of them.
  // A failed pwrite or flush makes the log read-only (kIoError, kNoSpace).
  Status submit();

  // Reaps the completed flushes without blocking; returns the durable LSN.
  std::uint64_t poll();
  // Blocks until no flush is in flight; returns the durable LSN.
  std::uint64_t wait();

  // Readable when a flush completes (poll() drains it). Level-triggered in epoll. It can stay
  // readable after the last completion was taken (one counted after the writer's read, e.g.
  // the CQE a blocking wait() took): call settle_completion_fd() before sleeping on it.
  int completion_fd() const { return event_fd_; }
  // With no flush in flight, empties completion_fd (no completion can be missed then), so that
  // a sleep on it lasts until the next flush completes. With flushes in flight: nothing.
  void settle_completion_fd();

  std::uint64_t durable_lsn() const { return durable_lsn_; }
  std::uint64_t next_lsn() const { return next_lsn_; }
  // Checksum of record next_lsn() - 1 (the chain's head; format.hpp), 0 if the log started here.
  std::uint64_t last_checksum() const { return prev_checksum_; }
  std::uint64_t first_lsn() const;  // first record still on disk (or next_lsn() when none)
  bool read_only() const { return !failure_.is_ok(); }
  const Status& failure() const { return failure_; }  // the fault that made it read-only
  bool using_io_uring() const;
  bool batch_in_flight() const;     // a flush is in flight
  bool sync_slot_free() const;      // submit() would start its flush without waiting
  std::size_t batch_pending_bytes() const;  // bytes appended but not yet submitted

  // Deletes the segment files whose records all have LSN < lsn, oldest first, stopping at the
  // first one written to at or after wall time keep_written_since_us (microseconds since the
  // epoch; a segment found at open counts as written then). Never the segment being written.
  Status remove_segments_below(std::uint64_t lsn,
                               std::int64_t keep_written_since_us =
                                   std::numeric_limits<std::int64_t>::max());
  // The first LSN of every segment on disk, oldest first (the last is the one being written).
  std::vector<std::uint64_t> segment_first_lsns() const;

  Stats stats() const;
  // Segments created so far (stats().segments_created_count without copying the histograms).
  std::uint64_t segments_created_count() const { return stats_.segments_created_count; }

 private:
  struct Segment {
    std::uint64_t first_lsn = 0;
    std::string path;
    // Wall time (us) after which nothing was written to it: its rotation, or the log's open for
    // a segment found there. Unused for the segment being written.
    std::int64_t written_until_us = 0;
  };

  explicit Log(const Options& options);
  Status recover(RecoveryReport* report);
  using WalkFn = FunctionRef<void(const MappedFile& file, const detail::RecordView& record)>;
  Status walk(std::uint64_t from_lsn, std::uint64_t to_lsn, WalkFn fn);
  Status start_writer();
  Status create_segment(std::uint64_t first_lsn, std::uint64_t prev_checksum);
  Status prepare_fallocated(const std::string& tmp, int* fd_out);
  bool leave_segment_early() const;
  Status rotate();
  Status open_sync_fds();
  void close_sync_fds();
  std::uint32_t free_slot() const;
  void complete_flush(const detail::SyncDone& done);
  void enter_read_only(const Status& cause);
  std::uint64_t reap(bool block);

  // A batch between its pwrite and the end of its flush, by writer slot.
  struct Flight {
    bool busy = false;
    std::uint64_t last_lsn = 0;
    std::uint32_t bytes = 0;
    std::uint32_t records = 0;
    std::uint64_t file_offset = 0;  // the batch's, for error messages
    std::chrono::steady_clock::time_point submitted_at;
  };

  Options options_;
  int dir_fd_ = -1;
  int event_fd_ = -1;
  int active_fd_ = -1;              // the segment being appended to
  std::uint64_t active_bytes_ = 0;  // its file size
  std::uint64_t tail_offset_ = 0;   // where the next record goes in it
  bool active_written_ = false;     // every byte of it was written once (made from a spare)
  bool early_moves_stopped_ = false;  // a move to a spare before the segment was full failed
  std::vector<Segment> segments_;   // in LSN order; the last one is active
  std::uint64_t next_lsn_ = 1;
  std::uint64_t durable_lsn_ = 0;
  std::uint64_t prev_checksum_ = 0;
  std::size_t record_bytes_max_ = 0;
  Status failure_;
  std::unique_ptr<detail::Batch> fill_;
  std::vector<Flight> flights_;  // writer_->slots_max() entries
  std::vector<int> sync_fds_;    // the active segment opened once per slot (writer.hpp says why)
  std::unique_ptr<detail::Writer> writer_;
  std::unique_ptr<SpareFile> spare_;  // null without Options::spare_segments
  Stats stats_;
};

}  // namespace paycore::wal
