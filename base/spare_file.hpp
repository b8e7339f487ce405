#pragma once
// paycore::SpareFile — the next file of an append-only journal (the write-ahead log's segments,
// the nonce journal's files), written full of zeros on a thread of its own before it is needed.
//
// Why: on ext4 (and XFS) a file made with fallocate holds *unwritten* extents, and a file that
// grows gets a new size and new blocks. Either way the fdatasync after each write must commit
// that metadata to the filesystem's journal: measured here, a 4 KiB write + fdatasync into
// fallocated space costs ~2x one into space that was already written (p50 ~500 us vs ~245 us;
// docs/benchmarks.md "Flushes in flight at once"). In a file whose every byte was written once,
// each later fdatasync is a pure data flush.
//
// The owner takes the spare, writes its own header into it, flushes it and renames it into
// place; then it releases the spare's name and the thread starts the next one. The name is the
// owner's choice: one that its recovery deletes or ignores, so that a spare left by a crash is
// harmless.
//
// Threads: the owner calls ready/take/release; the spare's thread only makes files. A failure
// to make a spare (ENOSPC, EIO) is logged once per run of failures and tried again after
// `retry_ms`; meanwhile the owner makes its files without one, which is correct, only slower to
// flush. A full disk thus gets its spares back once space is freed, without a restart.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace paycore {

class SpareFile {
 public:
  static constexpr std::uint32_t kRetryMsDefault = 10'000;

  // Starts the thread, which begins at once to write a spare of `bytes` at `path`.
  SpareFile(std::string path, std::uint64_t bytes, std::uint32_t retry_ms = kRetryMsDefault);
  SpareFile(const SpareFile&) = delete;
  SpareFile& operator=(const SpareFile&) = delete;
  ~SpareFile();  // stops the thread (mid-file if need be); a spare left on disk is harmless

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
  std::uint64_t bytes() const { return bytes_; }

 private:
  void run();
  int make();  // one spare: its fd, or -1 (logged) when it could not be made or stop was asked

  const std::string path_;
  const std::uint64_t bytes_;
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

}  // namespace paycore
