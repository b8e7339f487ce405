#pragma once
// Internal: the two ways a batch reaches stable storage. Each does exactly one thing at a time:
// write `bytes` at `offset` of `fd` (completing short writes), then one fdatasync. The Log owns
// the batches and the durable LSN; a Writer only says "done" or "failed, and why".

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
  std::chrono::steady_clock::time_point submitted_at;
};

struct WriterCounters {
  std::uint64_t fsyncs_count = 0;
  std::uint64_t short_writes_count = 0;
};

class Writer {
 public:
  virtual ~Writer() = default;
  // Starts writing the batch; it must stay untouched until poll/wait report it done.
  virtual Status start(const Batch& batch) = 0;
  // true when the batch is done, with its outcome in *result. Never blocks.
  virtual bool poll(Status* result) = 0;
  // Blocks until the batch is done.
  virtual void wait(Status* result) = 0;
  virtual bool busy() const = 0;
  virtual bool io_uring() const = 0;
  virtual WriterCounters counters() const = 0;
};

// Fails (with the reason) if the kernel refuses io_uring; the caller then falls back.
Status make_uring_writer(int event_fd, FaultInjector* faults, std::unique_ptr<Writer>* out);
std::unique_ptr<Writer> make_thread_writer(int event_fd, FaultInjector* faults);

// "write failed on <path> at offset N: <strerror>", with kNoSpace for ENOSPC.
Status io_status(int error, const char* what, const std::string& path, std::uint64_t offset);

}  // namespace paycore::wal::detail
