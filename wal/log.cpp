#include "wal/log.hpp"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/assert.hpp"
#include "base/histogram.hpp"
#include "base/log.hpp"
#include "base/spare_file.hpp"
#include "base/time.hpp"
#include "wal/format.hpp"
#include "wal/reader.hpp"
#include "wal/writer.hpp"

namespace paycore::wal {
namespace detail {

// The batch being filled. It lies in the active segment, from file_offset on: a batch never
// spans two segments, and rotation happens only when it is empty.
struct Batch {
  std::unique_ptr<std::byte[]> storage;  // batch_bytes_max bytes, allocated at open
  std::byte* data = nullptr;             // storage.get()
  std::uint32_t bytes = 0;
  std::uint32_t records = 0;
  std::uint64_t last_lsn = 0;
  std::uint64_t file_offset = 0;
};

}  // namespace detail

namespace {

using detail::Batch;

// "<what> failed on <path> at offset N: <strerror>", with kNoSpace for ENOSPC.
Status io_status(int error, const char* what, const std::string& path, std::uint64_t offset) {
  const StatusCode code = error == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIoError;
  return Status(code, std::string(what) + " failed on " + path + " at offset " +
                          std::to_string(offset) + ": " + std::strerror(error));
}

constexpr std::uint32_t kBatchBytesMin = 4096;
constexpr std::uint64_t kSegmentBytesMin = 4096;

Status errno_status(const char* what, const std::string& path) {
  const int e = errno;
  return Status(e == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIoError,
                std::string(what) + " " + path + ": " + std::strerror(e));
}

Status check_options(const Options& o) {
  if (o.dir.empty()) return Status(StatusCode::kInvalidArgument, "wal: empty directory name");
  if (o.batch_bytes_max < kBatchBytesMin || o.batch_bytes_max % format::kRecordAlignBytes != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "wal: batch_bytes_max must be a multiple of 8 and at least 4096");
  }
  if (o.segment_bytes < kSegmentBytesMin || o.segment_bytes % format::kRecordAlignBytes != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "wal: segment_bytes must be a multiple of 8 and at least 4096");
  }
  if (o.first_lsn_if_empty == 0) {
    return Status(StatusCode::kInvalidArgument, "wal: first_lsn_if_empty must be >= 1");
  }
  if (o.syncs_in_flight_max < 1 || o.syncs_in_flight_max > kSyncSlotsMax) {
    return Status(StatusCode::kInvalidArgument, "wal: syncs_in_flight_max must be 1.." +
                                                    std::to_string(kSyncSlotsMax));
  }
  return Status::ok();
}

// Writes all of buf at offset (a short pwrite is followed by another for the rest). With
// `faults` (the batches' writes in the fault tests), each pwrite first asks it what to do, and
// the short writes seen are added to *short_writes_count.
Status pwrite_all(int fd, const std::byte* buf, std::size_t n, std::uint64_t offset,
                  const std::string& path, FaultInjector* faults = nullptr,
                  std::uint64_t* short_writes_count = nullptr) {
  std::size_t done = 0;
  while (done < n) {
    std::size_t len = n - done;
    if (faults != nullptr) {
      const FaultAction a = faults->next(FaultOp::kWrite);
      if (a.error != 0) return io_status(a.error, "pwrite", path, offset + done);
      if (a.short_bytes > 0 && a.short_bytes < len) len = a.short_bytes;
    }
    const ssize_t w = ::pwrite(fd, buf + done, len, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return io_status(w < 0 ? errno : EIO, "pwrite", path, offset + done);
    if (short_writes_count != nullptr && static_cast<std::size_t>(w) < n - done) ++*short_writes_count;
    done += static_cast<std::size_t>(w);
  }
  return Status::ok();
}

// True when every byte of the file's first `bytes` lies in a written extent: no hole and no
// extent still marked unwritten (FIEMAP_EXTENT_UNWRITTEN, what fallocate leaves; the ioctl is
// documented in the kernel's Documentation/filesystems/fiemap.rst). False when the filesystem
// cannot say, which only costs one early move to a spare.
bool all_blocks_written(int fd, std::uint64_t bytes) {
  constexpr std::uint32_t kExtentsPerCall = 32;
  alignas(struct fiemap) std::byte buffer[sizeof(struct fiemap) + kExtentsPerCall * sizeof(struct fiemap_extent)];
  auto* map = reinterpret_cast<struct fiemap*>(buffer);
  std::uint64_t covered = 0;  // every byte below this is in a written extent
  for (int calls = 0; covered < bytes && calls < 1024; ++calls) {
    std::memset(buffer, 0, sizeof buffer);
    map->fm_start = covered;
    map->fm_length = bytes - covered;
    map->fm_extent_count = kExtentsPerCall;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0 || map->fm_mapped_extents == 0) return false;
    for (std::uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
      const struct fiemap_extent& e = map->fm_extents[i];
      if (e.fe_logical > covered || (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0) return false;
      covered = std::max<std::uint64_t>(covered, e.fe_logical + e.fe_length);
      if ((e.fe_flags & FIEMAP_EXTENT_LAST) != 0 && covered < bytes) return false;
    }
  }
  return covered >= bytes;
}

}  // namespace

Log::Log(const Options& options) : options_(options) {
  record_bytes_max_ = static_cast<std::size_t>(std::min<std::uint64_t>(
      options.batch_bytes_max, options.segment_bytes - format::kSegmentHeaderBytes));
  fill_ = std::make_unique<Batch>();
  fill_->storage = std::make_unique_for_overwrite<std::byte[]>(options.batch_bytes_max);
  fill_->data = fill_->storage.get();
}

Log::~Log() {
  spare_.reset();  // stops its thread, mid-file if need be
  if (writer_) wait();
  writer_.reset();  // joins the fallback thread / tears down the ring before fds close
  close_sync_fds();
  if (active_fd_ >= 0) ::close(active_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (event_fd_ >= 0) ::close(event_fd_);
}

Status Log::open(const Options& options, std::unique_ptr<Log>* out, RecoveryReport* report) {
  PAYCORE_ASSERT(out != nullptr);
  PAYCORE_ASSERT(report != nullptr);
  *report = RecoveryReport{};
  Status s = check_options(options);
  if (!s.is_ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return Status(StatusCode::kIoError, "wal: create directory " + options.dir + ": " + ec.message());

  std::unique_ptr<Log> log(new Log(options));
  log->dir_fd_ = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return errno_status("wal: open directory", options.dir);
  log->event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (log->event_fd_ < 0) return errno_status("wal: eventfd for", options.dir);
  s = log->recover(report);
  if (!s.is_ok()) return s;
  s = log->start_writer();
  if (!s.is_ok()) return s;
  // After recovery, which removes a spare left by a crash with the other temp files.
  if (options.spare_segments) {
    // LSN 0, which no segment has: recovery deletes it like any half-made segment.
    log->spare_ = std::make_unique<SpareFile>(
        detail::join_path(options.dir, detail::segment_file_name(0)) + ".tmp", options.segment_bytes);
  }
  PAYCORE_ASSERT(log->durable_lsn_ + 1 == log->next_lsn_);
  *out = std::move(log);
  return Status::ok();
}

Status Log::recover(RecoveryReport* report) {
  detail::ScanResult scan;
  Status s = detail::scan_log(options_.dir, nullptr, &scan);
  if (!s.is_ok()) return s;
  for (const std::string& tmp : scan.temp_paths) {
    // A segment whose creation did not finish (it is renamed into place only once complete).
    if (::unlink(tmp.c_str()) != 0) return errno_status("wal: unlink", tmp);
    ++report->temp_files_removed;
  }
  if (scan.segments.empty()) {
    report->fresh = true;
    next_lsn_ = options_.first_lsn_if_empty;
    durable_lsn_ = next_lsn_ - 1;
    prev_checksum_ = next_lsn_ > 1 ? options_.prev_checksum_if_empty : 0;
    return create_segment(next_lsn_, prev_checksum_);
  }
  const std::string& last_path = scan.segments.back().path;
  active_fd_ = ::open(last_path.c_str(), O_RDWR | O_CLOEXEC);
  if (active_fd_ < 0) return errno_status("wal: open", last_path);
  if (scan.torn) {
    PAYCORE_ASSERT_GE(scan.torn_end, scan.torn_offset);
    PAYCORE_ASSERT_EQ(scan.torn_offset, scan.tail_offset);
    const std::vector<std::byte> zeros(scan.torn_end - scan.torn_offset, std::byte{0});
    s = pwrite_all(active_fd_, zeros.data(), zeros.size(), scan.torn_offset, last_path);
    if (s.is_ok() && ::fdatasync(active_fd_) != 0) s = io_status(errno, "fdatasync", last_path, 0);
    if (!s.is_ok()) return s;
    report->torn_tail_truncated = true;
    report->torn_file = last_path;
    report->torn_offset = scan.torn_offset;
    report->torn_bytes = zeros.size();
    report->torn_reason = scan.torn_reason;
  }
  segments_.reserve(scan.segments.size());
  const std::int64_t opened_us = wall_clock_us();
  for (const auto& seg : scan.segments) segments_.push_back({seg.first_lsn, seg.path, opened_us});
  active_bytes_ = scan.last_file_bytes;
  tail_offset_ = scan.tail_offset;
  // A segment made from a spare before the restart need not be left for a new one.
  active_written_ = all_blocks_written(active_fd_, active_bytes_);
  next_lsn_ = scan.next_lsn;
  durable_lsn_ = next_lsn_ - 1;
  prev_checksum_ = scan.last_checksum;
  report->segments_count = scan.segments.size();
  report->records_count = scan.records_count;
  report->first_lsn = scan.first_lsn;
  report->last_lsn = scan.last_lsn;
  return Status::ok();
}

Status Log::start_writer() {
  std::string why = "forced by options";
  if (!options_.force_fallback) {
    Status s = detail::make_uring_writer(event_fd_, options_.faults, options_.syncs_in_flight_max,
                                         &writer_);
    if (s.is_ok()) {
      log_line(LogLevel::info, "wal: write path pwrite + fdatasync on io_uring",
               {{"dir", options_.dir},
                {"syncs_in_flight_max", std::to_string(options_.syncs_in_flight_max)}});
      return open_sync_fds();
    }
    why = "io_uring unavailable: " + s.message();
  }
  writer_ = detail::make_thread_writer(event_fd_, options_.faults);
  // Said once, at start-up (docs/design.md rule 8).
  log_line(LogLevel::warn, "wal: write path pwrite + fdatasync thread",
           {{"dir", options_.dir}, {"reason", why}});
  return open_sync_fds();
}

// One open file of the active segment per flush slot: a writeback error is reported once per
// open file, so each flush in flight must have its own to be sure to hear of it (writer.hpp).
Status Log::open_sync_fds() {
  PAYCORE_ASSERT(writer_ != nullptr);
  PAYCORE_ASSERT_EQ(writer_->in_flight(), 0U);
  close_sync_fds();
  flights_.resize(writer_->slots_max());
  const std::string& path = segments_.back().path;
  for (std::uint32_t i = 0; i < writer_->slots_max(); ++i) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno_status("wal: open", path);
    sync_fds_.push_back(fd);
  }
  return Status::ok();
}

void Log::close_sync_fds() {
  for (const int fd : sync_fds_) ::close(fd);
  sync_fds_.clear();
}

// A fresh segment file under `tmp`, fallocated to segment_bytes (its blocks unwritten).
Status Log::prepare_fallocated(const std::string& tmp, int* fd_out) {
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("wal: create", tmp);
  const FaultAction falloc =
      options_.faults != nullptr ? options_.faults->next(FaultOp::kFallocate) : FaultAction{};
  int rc = 0;
  if (falloc.error != 0) {
    errno = falloc.error;
    rc = -1;
  } else {
    rc = ::fallocate(fd, 0, 0, static_cast<off_t>(options_.segment_bytes));
    // Filesystems without fallocate still give a file of the right size that reads as zeros.
    if (rc != 0 && errno == EOPNOTSUPP) rc = ::ftruncate(fd, static_cast<off_t>(options_.segment_bytes));
  }
  if (rc != 0) {
    const Status s = errno_status("wal: fallocate", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  *fd_out = fd;
  return Status::ok();
}

// The next segment: a ready spare when there is one, else a fallocated file. Either way it gets
// its header, is flushed, and only then renamed into place.
Status Log::create_segment(std::uint64_t first_lsn, std::uint64_t prev_checksum) {
  const std::string path = detail::join_path(options_.dir, detail::segment_file_name(first_lsn));
  const bool from_spare = spare_ != nullptr && spare_->ready();
  const std::string tmp = from_spare ? spare_->path() : path + ".tmp";
  int fd = -1;
  if (from_spare) {
    fd = spare_->take();
  } else {
    PAYCORE_RETURN_IF_ERROR(prepare_fallocated(tmp, &fd));
  }
  // The spare's name is free again once renamed or unlinked: then the next spare may start.
  auto release_name = [&] {
    if (from_spare) spare_->release();
  };
  auto fail = [&](Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    release_name();
    return s;
  };

  std::byte header[format::kSegmentHeaderBytes];
  format::SegmentHeader h;
  h.first_lsn = first_lsn;
  h.prev_checksum = prev_checksum;
  format::encode_segment_header(header, h);
  Status s = pwrite_all(fd, header, sizeof header, 0, tmp);
  if (!s.is_ok()) return fail(s);
  ++stats_.fsyncs_count;
  const int fsync_fault =
      options_.faults != nullptr ? options_.faults->next(FaultOp::kFsync).error : 0;
  if (fsync_fault != 0 || ::fdatasync(fd) != 0) {
    s = io_status(fsync_fault != 0 ? fsync_fault : errno, "fdatasync", tmp, 0);
    enter_read_only(s);
    return fail(s);
  }
  // Renamed into place only when complete, so a segment with its real name always has a valid
  // header; the directory fsync makes the new name durable.
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno_status("wal: rename", tmp));
  release_name();
  ++stats_.fsyncs_count;
  if (::fsync(dir_fd_) != 0) {
    s = errno_status("wal: fsync directory", options_.dir);
    enter_read_only(s);
    ::close(fd);
    return s;
  }
  if (active_fd_ >= 0) ::close(active_fd_);
  active_fd_ = fd;
  active_bytes_ = options_.segment_bytes;
  tail_offset_ = format::kSegmentHeaderBytes;
  active_written_ = from_spare;
  if (!segments_.empty()) segments_.back().written_until_us = wall_clock_us();
  segments_.push_back({first_lsn, path, 0});
  ++stats_.segments_created_count;
  if (from_spare) ++stats_.segments_from_spares_count;
  return Status::ok();
}

// A batch about to start in a fallocated segment moves to a ready spare instead: its flushes
// would each commit extent conversions (base/spare_file.hpp). Only once the active segment holds
// a record, since a segment is named after its first LSN and two must not share a name.
bool Log::leave_segment_early() const {
  return !active_written_ && !early_moves_stopped_ && spare_ != nullptr && fill_->bytes == 0 &&
         tail_offset_ > format::kSegmentHeaderBytes && spare_->ready();
}

Status Log::rotate() {
  PAYCORE_ASSERT(fill_->bytes == 0);
  // The previous segment must be complete on disk before the next one exists: then a torn
  // write can only ever be at the end of the last segment, which is what recovery assumes.
  wait();
  if (read_only()) return Status(StatusCode::kReadOnly, failure_.message());
  Status s = create_segment(next_lsn_, prev_checksum_);
  if (!s.is_ok()) return s;
  s = open_sync_fds();
  if (!s.is_ok()) enter_read_only(s);
  return s;
}

Status Log::append(std::uint16_t type, std::span<const std::byte> payload,
                   std::uint64_t* lsn_out) {
  if (read_only()) [[unlikely]] return Status::read_only();
  const std::size_t need = format::record_bytes(payload.size());
  if (payload.size() > record_bytes_max_ || need > record_bytes_max_) [[unlikely]] {
    return Status(StatusCode::kInvalidArgument,
                  "wal: record of " + std::to_string(payload.size()) +
                      " payload bytes exceeds the limit of " +
                      std::to_string(record_bytes_max_ - format::kRecordHeaderBytes));
  }
  if (fill_->bytes + need > options_.batch_bytes_max) return Status::full();
  const bool fits = tail_offset_ + need <= active_bytes_;
  if (!fits || leave_segment_early()) {
    if (fill_->bytes > 0) return Status::full();  // a batch never spans two segments
    Status s = rotate();
    if (!s.is_ok() && (!fits || read_only())) return s;
    if (!s.is_ok()) {
      // The move was optional: stay in this segment, and do not try again (said once).
      early_moves_stopped_ = true;
      log_line(LogLevel::warn, "wal: could not move to a spare segment; staying in this one",
               {{"dir", options_.dir}, {"error", s.message()}});
    }
    PAYCORE_ASSERT(tail_offset_ + need <= active_bytes_);
  }
  Batch& b = *fill_;
  if (b.bytes == 0) {
    b.file_offset = tail_offset_;
    b.records = 0;
  }
  PAYCORE_DEBUG_ASSERT(b.file_offset + b.bytes == tail_offset_);
  prev_checksum_ = format::encode_record(b.data + b.bytes, next_lsn_, type, prev_checksum_, payload);
  b.bytes += static_cast<std::uint32_t>(need);
  b.records += 1;
  b.last_lsn = next_lsn_;
  tail_offset_ += need;
  ++stats_.appends_count;
  stats_.append_payload_bytes += payload.size();
  *lsn_out = next_lsn_++;
  return Status::ok();
}

Status Log::submit() {
  if (read_only()) return Status(StatusCode::kReadOnly, failure_.message());
  if (fill_->bytes == 0) return Status::ok();
  if (!sync_slot_free()) {
    reap(true);
    if (read_only()) return Status(StatusCode::kReadOnly, failure_.message());
  }
  // In LSN order into the page cache: every later flush covers this batch too.
  const Batch& b = *fill_;
  Status s = pwrite_all(active_fd_, b.data, b.bytes, b.file_offset, segments_.back().path,
                        options_.faults, &stats_.short_writes_count);
  if (!s.is_ok()) {
    enter_read_only(s);
    return s;
  }
  if (options_.on_batch_written) {
    options_.on_batch_written(b.last_lsn - b.records + 1, b.last_lsn,
                              std::span<const std::byte>(b.data, b.bytes));
  }
  const std::uint32_t slot = free_slot();
  Flight& f = flights_[slot];
  f.last_lsn = b.last_lsn;
  f.bytes = b.bytes;
  f.records = b.records;
  f.file_offset = b.file_offset;
  f.submitted_at = std::chrono::steady_clock::now();
  if (const int error = writer_->start({slot, sync_fds_[slot]}); error != 0) {
    s = io_status(error, "io_uring_submit", segments_.back().path, f.file_offset);
    enter_read_only(s);
    return s;
  }
  f.busy = true;
  fill_->bytes = 0;
  fill_->records = 0;
  return Status::ok();
}

std::uint32_t Log::free_slot() const {
  for (std::uint32_t i = 0; i < flights_.size(); ++i) {
    if (!flights_[i].busy) return i;
  }
  PAYCORE_ASSERT(false);  // called only when sync_slot_free()
  return 0;
}

std::uint64_t Log::reap(bool block) {
  detail::SyncDone done;
  if (block && writer_->in_flight() > 0) {
    writer_->wait(&done);
    complete_flush(done);
  }
  while (writer_->poll(&done)) complete_flush(done);
  return durable_lsn_;
}

std::uint64_t Log::poll() { return reap(false); }

std::uint64_t Log::wait() {
  while (writer_->in_flight() > 0) reap(true);
  return durable_lsn_;
}

void Log::complete_flush(const detail::SyncDone& done) {
  PAYCORE_ASSERT_LT(done.slot, flights_.size());
  Flight& f = flights_[done.slot];
  PAYCORE_ASSERT(f.busy);
  f.busy = false;
  if (done.error != 0) {
    // Every flight is in the active segment: rotation waits for them all.
    enter_read_only(io_status(done.error, done.what, segments_.back().path, f.file_offset));
    return;
  }
  // After a fault nothing more becomes durable: the engine rebuilds from what was.
  if (read_only()) return;
  // Flushes may complete out of order; a later one has already made this batch durable.
  durable_lsn_ = std::max(durable_lsn_, f.last_lsn);
  ++stats_.batches_count;
  stats_.write_bytes += f.bytes;
  stats_.batch_records_max = std::max<std::uint64_t>(stats_.batch_records_max, f.records);
  ++stats_.batch_records_log2[log2_bucket(f.records, kHistogramBuckets)];
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - f.submitted_at);
  ++stats_.sync_latency_us_log2[log2_bucket(static_cast<std::uint64_t>(us.count()), kHistogramBuckets)];
}

void Log::enter_read_only(const Status& cause) {
  if (read_only()) return;
  // Not logged here: failure() is returned to the caller, who reports it once.
  failure_ = cause.is_ok() ? Status(StatusCode::kIoError, "unknown failure") : cause;
}

std::uint64_t Log::first_lsn() const {
  return segments_.empty() ? next_lsn_ : segments_.front().first_lsn;
}
bool Log::using_io_uring() const { return writer_->io_uring(); }
bool Log::batch_in_flight() const { return writer_->in_flight() > 0; }

void Log::settle_completion_fd() {
  if (batch_in_flight()) return;
  std::uint64_t count = 0;
  (void)::read(event_fd_, &count, sizeof count);  // non-blocking: EAGAIN when already empty
}
bool Log::sync_slot_free() const { return writer_->in_flight() < writer_->slots_max(); }
std::size_t Log::batch_pending_bytes() const { return fill_->bytes; }

Status Log::replay(std::uint64_t from_lsn, ReplayFn fn, std::uint64_t to_lsn) {
  auto each = [&](const MappedFile&, const detail::RecordView& r) {
    fn(r.header.lsn, r.header.type, r.payload);
  };
  return walk(from_lsn, to_lsn, WalkFn(each));
}

Status Log::replay_frames(std::uint64_t from_lsn, FrameFn fn, std::uint64_t to_lsn) {
  auto each = [&](const MappedFile& file, const detail::RecordView& r) {
    fn(r.header.lsn, file.bytes().subspan(r.offset, format::record_bytes(r.header.length)));
  };
  return walk(from_lsn, to_lsn, WalkFn(each));
}

// Calls fn for every durable record in [from_lsn, to_lsn], with the mapped file it lies in.
Status Log::walk(std::uint64_t from_lsn, std::uint64_t to_lsn, WalkFn fn) {
  from_lsn = std::max<std::uint64_t>(from_lsn, 1);
  const std::uint64_t limit = std::min(durable_lsn_, to_lsn);
  if (from_lsn > limit) return Status::ok();
  if (segments_.empty() || from_lsn < segments_.front().first_lsn) {
    return Status(StatusCode::kNotFound, "wal: records before LSN " +
                                             std::to_string(first_lsn()) + " were removed");
  }
  // The last segment whose first LSN is <= from_lsn holds it.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from_lsn,
                             [](std::uint64_t lsn, const Segment& s) { return lsn < s.first_lsn; });
  std::size_t index = static_cast<std::size_t>(it - segments_.begin()) - 1;
  std::uint64_t next = segments_[index].first_lsn;
  for (; index < segments_.size() && next <= limit; ++index) {
    const detail::SegmentFile seg{segments_[index].first_lsn, segments_[index].path};
    MappedFile file;
    auto visit_fn = [&](const detail::SegmentFile&, const detail::RecordView& r) {
      if (r.header.lsn >= from_lsn) fn(file, r);
      return true;
    };
    detail::RecordVisitor visit(visit_fn);
    Status s = file.open(seg.path);
    if (!s.is_ok()) return s;
    format::SegmentHeader header;
    s = detail::check_segment_header(seg, file, &header);
    if (!s.is_ok()) return s;
    if (header.first_lsn != next) {
      return Status(StatusCode::kMissingSegment, "wal: expected " + seg.path + " to start at LSN " + std::to_string(next));
    }
    detail::SegmentScan scan;
    s = detail::scan_records(seg, file, header, limit, &visit, &scan);
    if (!s.is_ok()) return s;
    next = scan.next_lsn;
    const bool more_segments = index + 1 < segments_.size();
    if (next <= limit && !more_segments) {
      return Status(StatusCode::kCorruption,
                    seg.path + " offset " + std::to_string(scan.end_offset) +
                        ": durable LSN " + std::to_string(next) + " is not readable (" +
                        (scan.bad_reason.empty() ? "end of data" : scan.bad_reason) + ")");
    }
  }
  return Status::ok();
}

Status Log::remove_segments_below(std::uint64_t lsn, std::int64_t keep_written_since_us) {
  std::size_t removable = 0;
  // Segment i holds LSNs [first_i, first_{i+1}); never remove the last (active) one.
  while (removable + 1 < segments_.size() && segments_[removable + 1].first_lsn <= lsn &&
         segments_[removable].written_until_us < keep_written_since_us) {
    ++removable;
  }
  for (std::size_t i = 0; i < removable; ++i) {
    if (::unlink(segments_[i].path.c_str()) != 0 && errno != ENOENT) {
      Status s = errno_status("wal: unlink", segments_[i].path);
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(i));
      return s;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(removable));
  if (removable > 0 && ::fsync(dir_fd_) != 0) return errno_status("wal: fsync directory", options_.dir);
  return Status::ok();
}

std::vector<std::uint64_t> Log::segment_first_lsns() const {
  std::vector<std::uint64_t> lsns;
  lsns.reserve(segments_.size());
  for (const Segment& segment : segments_) lsns.push_back(segment.first_lsn);
  return lsns;
}

Stats Log::stats() const {
  Stats s = stats_;
  s.fsyncs_count += writer_->fsyncs_count();
  return s;
}

}  // namespace paycore::wal
