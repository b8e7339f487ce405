// The fallback write path (docs/design.md rule 8): pwrite + fdatasync on a thread of its own, for
// kernels or sandboxes that refuse io_uring. The owner and the thread meet at one semaphore (go)
// and one atomic state word (done); the eventfd tells a sleeping engine that a batch finished.

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <semaphore>
#include <thread>

#include "base/assert.hpp"
#include "wal/writer.hpp"

namespace paycore::wal::detail {
namespace {

enum State : int { kIdle = 0, kPending = 1, kDone = 2 };

class ThreadWriter final : public Writer {
 public:
  ThreadWriter(int event_fd, FaultInjector* faults)
      : event_fd_(event_fd), faults_(faults), thread_([this] { run(); }) {}
  ThreadWriter(const ThreadWriter&) = delete;
  ThreadWriter& operator=(const ThreadWriter&) = delete;

  ~ThreadWriter() override {
    if (busy()) {
      Status ignored;
      wait(&ignored);
    }
    stop_.store(true, std::memory_order_relaxed);
    go_.release();
    thread_.join();
  }

  Status start(const Batch& batch) override {
    PAYCORE_ASSERT(state_.load(std::memory_order_relaxed) == kIdle);
    PAYCORE_ASSERT_GT(batch.bytes, 0U);
    PAYCORE_ASSERT_GE(batch.fd, 0);
    batch_ = &batch;
    state_.store(kPending, std::memory_order_relaxed);
    go_.release();  // release: the thread sees batch_ and the batch's bytes
    return Status::ok();
  }

  bool poll(Status* result) override {
    if (state_.load(std::memory_order_acquire) != kDone) return false;
    take(result);
    return true;
  }

  void wait(Status* result) override {
    PAYCORE_ASSERT(busy());
    while (state_.load(std::memory_order_acquire) == kPending) {
      state_.wait(kPending, std::memory_order_acquire);
    }
    take(result);
  }

  bool busy() const override { return state_.load(std::memory_order_relaxed) != kIdle; }
  bool io_uring() const override { return false; }
  WriterCounters counters() const override {
    return {fsyncs_.load(std::memory_order_relaxed), shorts_.load(std::memory_order_relaxed)};
  }

 private:
  void take(Status* result) {
    *result = std::move(result_);
    result_ = Status::ok();
    state_.store(kIdle, std::memory_order_relaxed);
  }

  void run() {
    for (;;) {
      go_.acquire();
      if (stop_.load(std::memory_order_relaxed)) return;
      result_ = write_and_sync(*batch_);
      state_.store(kDone, std::memory_order_release);
      state_.notify_all();
      const std::uint64_t one = 1;
      // The counter cannot overflow (poll drains it), so this write cannot fail in practice.
      [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
    }
  }

  Status write_and_sync(const Batch& b) {
    std::uint32_t written = 0;
    while (written < b.bytes) {
      std::uint32_t len = b.bytes - written;
      const std::uint64_t at = b.file_offset + written;
      if (faults_ != nullptr) {
        const FaultAction a = faults_->next(FaultOp::kWrite);
        if (a.error != 0) return io_status(a.error, "pwrite", b.path, at);
        if (a.short_bytes > 0 && a.short_bytes < len) len = a.short_bytes;
      }
      const ssize_t n = ::pwrite(b.fd, b.data + written, len, static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return io_status(errno, "pwrite", b.path, at);
      if (n == 0) return io_status(EIO, "pwrite (no progress)", b.path, at);
      if (static_cast<std::uint32_t>(n) < b.bytes - written) {
        shorts_.fetch_add(1, std::memory_order_relaxed);
      }
      written += static_cast<std::uint32_t>(n);
    }
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    if (faults_ != nullptr) {
      const FaultAction a = faults_->next(FaultOp::kFsync);
      if (a.error != 0) return io_status(a.error, "fdatasync", b.path, b.file_offset);
    }
    // Never retried, not even on EINTR: after a failed flush the page cache state is unknown.
    if (::fdatasync(b.fd) != 0) return io_status(errno, "fdatasync", b.path, b.file_offset);
    return Status::ok();
  }

  const int event_fd_;
  FaultInjector* const faults_;
  const Batch* batch_ = nullptr;
  Status result_;
  std::atomic<int> state_{kIdle};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> shorts_{0};
  std::binary_semaphore go_{0};
  std::thread thread_;  // last: starts after every member it uses exists
};

}  // namespace

std::unique_ptr<Writer> make_thread_writer(int event_fd, FaultInjector* faults) {
  return std::make_unique<ThreadWriter>(event_fd, faults);
}

}  // namespace paycore::wal::detail
