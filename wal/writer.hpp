#pragma once
// Internal: the two ways a batch reaches stable storage once the Log has written it into the
// page cache (pwrite, in LSN order). A Writer only flushes: one fdatasync per batch, and on
// io_uring several of them in flight at once. Because the writes are in order and each
// fdatasync flushes everything written before it was issued, any fdatasync that succeeds makes
// every earlier batch durable too: answers ride on whichever flush covers them (docs/design.md
// "The log"). A Writer only says "slot s done" or "slot s failed with this errno"; the Log,
// which knows the file and offset, turns that into the Status.

#include <cstdint>
#include <memory>

#include "wal/fault.hpp"
#include "base/status.hpp"

namespace paycore::wal::detail {

// One fdatasync to start. `fd` must be an open file of its own for each slot in flight (not a
// dup): Linux reports a writeback error once per open file (errseq_t), so two flushes sharing
// one open file could each report success while one of them lost the error.
struct SyncRequest {
  std::uint32_t slot = 0;  // < Writer::slots_max(); the Log's bookkeeping index
  int fd = -1;
};

struct SyncDone {
  std::uint32_t slot = 0;
  int error = 0;                   // an errno; 0 when the flush succeeded
  const char* what = "fdatasync";  // the call that failed, for the Log's message
};

class Writer {
 public:
  virtual ~Writer() = default;
  // Starts one fdatasync; requires in_flight() < slots_max() and the slot to be free. Returns 0,
  // or the errno of a flush that could not be started.
  virtual int start(const SyncRequest& request) = 0;
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

}  // namespace paycore::wal::detail
