#pragma once
// The nonce journal: accepted (principal, nonce, timestamp) triples on disk, so that a request
// answered before a restart or a crash is still refused as `replayed_nonce` after it
// (docs/api.md "Replays across restarts", docs/operations.md `nonce_journal`).
//
// Why a journal and not a time fence. A rule such as "after a restart refuse every X-Timestamp
// older than the restart" needs no disk writes but refuses honest clients whose clocks are
// behind the server's for as long as they are behind, after every restart; a fence on the
// highest timestamp seen before the crash refuses them for the whole distance to it. Only a
// record of the nonces themselves refuses exactly the replays and nothing else.
//
// Why answers wait for it. A nonce lost in a crash is a replay accepted after it, so an answer
// is sent only once its nonce is on stable storage: the I/O thread appends the record
// (append() -> sequence number), one journal thread writes and fdatasyncs whatever has
// accumulated (group commit: one fdatasync for every request that arrived during the previous
// one), publishes durable_seq() and wakes the I/O threads, and a slot is rendered only when
// durable_seq() >= its sequence number. A single write that changes state does not come here:
// its nonce is durable in its own log record (docs/design.md "Who may move whose money"), since
// a second flush run beside the log's made the answer wait for the slower of the two. Reads,
// batches and writes that the log has no record of come here (measured in docs/benchmarks.md).
//
// Files: DIR/nonces-<first unix second>-<n>.log, a new one every `window_s`, at every start and
// when the current one is full; a file is deleted once every entry in it has expired (its newest
// timestamp + window has passed). Each file starts with the 8 bytes "PCNONCE1"; each record is
//   u32 xxh32(rest, seed 0) | i64 timestamp_s | u8 principal_len | u8 nonce_len | principal | nonce
// little-endian. A file is normally a spare (base/spare_file.hpp, DIR/nonces-spare.tmp while it
// is being made) of nonce_file_bytes written full of zeros ahead of need: its records are
// written in place, so each fdatasync flushes data only, with no size or extent change for the
// filesystem to commit (before, every batch's fdatasync had one, and answers waited for it:
// docs/benchmarks.md). Without a ready spare, a file grows as it is written. Loading stops at
// the first record that is incomplete or fails its checksum (a torn tail after a crash: that
// record was never acknowledged, since its fdatasync had not completed), or cleanly where only
// zeros are left (a record never has principal_len 0).
//
// Failure: a batch whose write or fdatasync fails (a full disk, an I/O error) is dropped and its
// answers are released: the requests were executed, and reads must keep working on a full disk
// (docs/api.md "Operations"); the memory cache still refuses their replays in this run, only a
// restart forgets them (logged, counted by batches_failed()). The next batch starts a new file,
// so the journal heals by itself when the disk takes writes again.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/spare_file.hpp"
#include "base/status.hpp"
#include "net/credentials.hpp"

namespace paycore::net {

struct NonceJournalLoad {
  std::size_t files = 0;
  std::size_t records = 0;       // read from disk
  std::size_t live = 0;          // still within their window: put into the cache
  std::size_t torn = 0;          // files whose tail was cut off (incomplete or bad checksum)
  std::size_t cache_full = 0;    // live records the cache had no room for
};

/// Puts one accepted nonce read back at a start (from a journal file, or from a command in the
/// log: EngineConfig::on_recovered_nonce) into `cache`, unless it expired (timestamp_s +
/// window_s < now_s) or is not a nonce a signed request can carry; counts into `load` (records,
/// live, cache_full).
void load_nonce(auth::NonceCache& cache, std::string_view principal, std::string_view nonce,
                std::int64_t timestamp_s, std::int64_t now_s, NonceJournalLoad* load);

// Size of each journal file made from a spare: ~250k records of a 40-byte nonce.
inline constexpr std::uint64_t nonce_file_bytes = 16ULL << 20;

class NonceJournal {
 public:
  /// Creates DIR if needed, loads every journal file in it into `cache` (entries whose
  /// timestamp + window has passed at `now_s` are skipped; counts into `load`), deletes expired
  /// files and starts a new file and the journal thread. An io error naming DIR or the file
  /// (and the reason) if DIR cannot be used or a file cannot be read. `spare_files` false: every
  /// file grows as it is written (tests that edit the files).
  static StatusOr<std::unique_ptr<NonceJournal>> open(const std::string& dir,
                                                      std::int64_t window_s, std::int64_t now_s,
                                                      auth::NonceCache& cache, NonceJournalLoad* load,
                                                      bool spare_files = true);
  ~NonceJournal();
  NonceJournal(const NonceJournal&) = delete;
  NonceJournal& operator=(const NonceJournal&) = delete;

  // Called by the journal thread after each fdatasync (wake the I/O threads). Set before the
  // first append.
  void set_on_durable(std::function<void()> on_durable) { on_durable_ = std::move(on_durable); }

  // Queues a record; returns its sequence number (>= 1). Thread-safe, no system call.
  std::uint64_t append(std::string_view principal, std::string_view nonce, std::int64_t timestamp_s);
  // Every record with a sequence number <= this is on stable storage (or the journal failed).
  std::uint64_t durable_seq() const { return durable_seq_.load(std::memory_order_acquire); }
  std::uint64_t batches_failed() const { return batches_failed_.load(std::memory_order_relaxed); }
  // Writes and syncs what is queued, then stops the thread. Idempotent.
  void stop();

  const std::string& dir() const { return dir_; }

 private:
  NonceJournal(std::string dir, std::int64_t window_s);
  void run();
  void write_batch(std::string_view records, std::int64_t newest_s, std::int64_t now_s);
  // A new file when one is due (none open, a window old, or no room for `batch_bytes` more); an
  // io error naming the directory (errno kept for the log).
  Status rotate_if_due(std::int64_t now_s, std::size_t batch_bytes);
  // A new journal file at a free name: the ready spare (header written, flushed, renamed) if one
  // can hold `batch_bytes`, else an empty file that grows. *capacity_bytes: 0 when it grows.
  Status create_file(std::int64_t now_s, std::size_t batch_bytes, int* fd, std::string* path,
                     std::uint64_t* capacity_bytes);
  void drop_expired_files(std::int64_t now_s);

  struct File {
    std::string path;
    std::int64_t newest_timestamp_s = 0;  // the file can go once this + window has passed
  };

  std::string dir_;
  std::int64_t window_s_;
  std::function<void()> on_durable_;

  std::mutex mutex_;
  std::condition_variable wanted_;
  std::string pending_;            // records not yet written
  std::int64_t pending_newest_s_ = 0;
  std::uint64_t appended_seq_ = 0;
  bool stopping_ = false;

  std::atomic<std::uint64_t> durable_seq_{0};
  std::atomic<std::uint64_t> batches_failed_{0};

  // Journal thread only (and open()).
  int fd_ = -1;
  File current_;
  std::int64_t current_started_s_ = 0;
  std::size_t current_bytes_ = 0;  // whole records written (and synced) to current_
  std::uint64_t current_capacity_bytes_ = 0;  // its preallocated size; 0: it grows
  bool failing_ = false;           // the last batch failed (log the change, not every batch)
  std::vector<File> closed_;
  std::unique_ptr<SpareFile> spare_;
  std::thread thread_;
};

}  // namespace paycore::net
