#pragma once
// Internal: the two ways a batch's bytes reach stable storage. The Log writes each batch into the
// page cache itself, in LSN order, with pwrite (write_batch below); a Writer only flushes: one
// fdatasync per batch, and on io_uring several of them in flight at once. Because the writes are
// in order and each fdatasync flushes everything written before it was issued, any fdatasync
// that succeeds makes every earlier batch durable too: answers ride on whichever flush covers
// them (docs/design.md "The log"). A Writer only says "slot s done" or "slot s failed, and why".

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "wal/fault.hpp"
#include "base/status.hpp"

namespace paycore::wal::detail {

struct Batch {
  std::unique_ptr<std::byte[]> storage;  // batch_bytes_max bytes, allocated at open
  std::byte* data = nullptr;             // storage.get()
  std::uint32_t bytes = 0;
  std::uint32_t records = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  int fd = -1;
  std::uint64_t file_offset = 0;
  std::string path;  // for error messages
};

// One fdatasync to start. `fd` must be an open file of its own for each slot in flight (not a
// dup): Linux reports a writeback error once per open file (errseq_t), so two flushes sharing
// one open file could each report success while one of them lost the error.
struct SyncRequest {
  std::uint32_t slot = 0;     // < Writer::slots_max(); the Log's bookkeeping index
  int fd = -1;
  const std::string* path = nullptr;  // for error messages; outlives the flush
  std::uint64_t file_offset = 0;      // the batch's, for error messages
};

struct SyncDone {
  std::uint32_t slot = 0;
  Status status;
};

class Writer {
 public:
  virtual ~Writer() = default;
  // Starts one fdatasync; requires in_flight() < slots_max() and the slot to be free.
  virtual Status start(const SyncRequest& request) = 0;
  // true when a flush finished, with its slot and outcome in *done. Never blocks.
  virtual bool poll(SyncDone* done) = 0;
  // Blocks until a flush finishes; requires in_flight() > 0.
  virtual void wait(SyncDone* done) = 0;
  virtual std::uint32_t in_flight() const = 0;
  virtual std::uint32_t slots_max() const = 0;
  virtual bool io_uring() const = 0;
  virtual std::uint64_t fsyncs_count() const = 0;
};

// Fails (with the reason) if the kernel refuses io_uring; the caller then falls back.
// `slots_max` flushes may be in flight at once (1..kSyncSlotsMax).
Status make_uring_writer(int event_fd, FaultInjector* faults, std::uint32_t slots_max,
                         std::unique_ptr<Writer>* out);
// One flush at a time, on a thread of its own.
std::unique_ptr<Writer> make_thread_writer(int event_fd, FaultInjector* faults);

// Writes the whole batch at its offset (a short pwrite is followed by another for the rest),
// consulting `faults` (may be null) before each pwrite. Adds the short writes seen to
// *short_writes_count.
Status write_batch(const Batch& batch, FaultInjector* faults, std::uint64_t* short_writes_count);

// "write failed on <path> at offset N: <strerror>", with kNoSpace for ENOSPC.
Status io_status(int error, const char* what, const std::string& path, std::uint64_t offset);

}  // namespace paycore::wal::detail
