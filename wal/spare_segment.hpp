#pragma once
// paycore::wal::detail::SpareSegment — the log's next segment file, written full of zeros on a
// thread of its own before the log needs it.
//
// Why: on ext4 (and XFS) a file made with fallocate holds *unwritten* extents. The first write
// into each block converts it to written, and that conversion is metadata that every fdatasync
// must commit to the journal: measured here, a 4 KiB write + fdatasync into fallocated space
// costs ~2x one into space that was already written (p50 ~500 us vs ~245 us;
// docs/benchmarks.md "Flushes in flight at once"). A segment whose every byte was written once
// makes each later fdatasync a pure data flush.
//
// The spare is `<dir>/00000000000000000000.log.tmp`: a temp name with LSN 0, which no real
// segment has, so recovery removes a spare left by a crash like any half-made segment
// (wal/format.hpp). The log claims it at rotation, writes the segment header into it, flushes
// and renames it into place; the thread then starts the next one.
//
// Threads: the log's owner calls ready/take/release; the spare's thread only makes files. A
// failure to make a spare (ENOSPC, EIO) is logged once per run of failures and tried again after
// `retry_ms`; meanwhile the log goes on with fallocated segments, which are correct, only slower
// to flush. A full disk thus gets its spares back once space is freed, without a restart.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace paycore::wal::detail {

class SpareSegment {
 public:
  static constexpr std::uint32_t kRetryMsDefault = 10'000;

  // Starts the thread, which begins at once to write a spare of `segment_bytes` in `dir`.
  SpareSegment(const std::string& dir, std::uint64_t segment_bytes,
               std::uint32_t retry_ms = kRetryMsDefault);
  SpareSegment(const SpareSegment&) = delete;
  SpareSegment& operator=(const SpareSegment&) = delete;
  ~SpareSegment();  // stops the thread (mid-file if need be); a spare left on disk is harmless

  // A whole, flushed spare is waiting to be taken.
  bool ready() const;
  // Hands the ready spare's open file (O_RDWR) to the caller, who owns it from then on; the file
  // keeps the spare's name until the caller renames or unlinks it and calls release().
  // Requires ready().
  int take();
  // The caller is done with the spare's name (renamed or unlinked): the thread makes the next.
  void release();

  // The last attempt to make a spare failed (logged); the next is `retry_ms` after it.
  bool failed() const;

  const std::string& path() const { return path_; }

 private:
  void run();
  int make();  // one spare: its fd, or -1 (logged) when it could not be made or stop was asked

  const std::string path_;
  const std::uint64_t segment_bytes_;
  const std::chrono::milliseconds retry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int ready_fd_ = -1;     // guarded by mu_
  bool wanted_ = true;    // guarded by mu_: make one (false while the caller holds the name)
  bool stop_ = false;     // guarded by mu_
  bool failed_ = false;   // guarded by mu_: the last attempt failed
  bool failure_logged_ = false;  // the thread's own: said once per run of failures
  std::thread thread_;
};

}  // namespace paycore::wal::detail
