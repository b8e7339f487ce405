// The fallback flush path (docs/design.md rule 8): fdatasync on a thread of its own, one at a
// time, for kernels or sandboxes that refuse io_uring (the Log has written the batch with pwrite
// already). The owner and the thread meet at one semaphore (go) and one atomic state word
// (done); the eventfd tells a sleeping engine that a flush finished.

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
    if (in_flight() > 0) {
      SyncDone ignored;
      wait(&ignored);
    }
    stop_.store(true, std::memory_order_relaxed);
    go_.release();
    thread_.join();
  }

  int start(const SyncRequest& request) override {
    PAYCORE_ASSERT(state_.load(std::memory_order_relaxed) == kIdle);
    PAYCORE_ASSERT_EQ(request.slot, 0U);
    PAYCORE_ASSERT_GE(request.fd, 0);
    fd_ = request.fd;
    state_.store(kPending, std::memory_order_relaxed);
    go_.release();  // release: the thread sees fd_
    return 0;
  }

  bool poll(SyncDone* done) override {
    if (state_.load(std::memory_order_acquire) != kDone) return false;
    take(done);
    return true;
  }

  void wait(SyncDone* done) override {
    PAYCORE_ASSERT_GT(in_flight(), 0U);
    while (state_.load(std::memory_order_acquire) == kPending) {
      state_.wait(kPending, std::memory_order_acquire);
    }
    take(done);
  }

  std::uint32_t in_flight() const override {
    return state_.load(std::memory_order_relaxed) != kIdle ? 1 : 0;
  }
  std::uint32_t slots_max() const override { return 1; }
  bool io_uring() const override { return false; }
  std::uint64_t fsyncs_count() const override { return fsyncs_.load(std::memory_order_relaxed); }

 private:
  void take(SyncDone* done) {
    // Drained here: one flush at a time, so no later completion's signal can be lost.
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(event_fd_, &count, sizeof count);
    *done = {0, error_, "fdatasync"};
    state_.store(kIdle, std::memory_order_relaxed);
  }

  void run() {
    for (;;) {
      go_.acquire();
      if (stop_.load(std::memory_order_relaxed)) return;
      error_ = sync();
      state_.store(kDone, std::memory_order_release);
      state_.notify_all();
      const std::uint64_t one = 1;
      // The counter cannot overflow (poll drains it), so this write cannot fail in practice.
      [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
    }
  }

  // The errno of the flush, or 0.
  int sync() {
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    if (faults_ != nullptr) {
      const FaultAction a = faults_->next(FaultOp::kFsync);
      if (a.error != 0) return a.error;
    }
    // Never retried, not even on EINTR: after a failed flush the page cache state is unknown.
    return ::fdatasync(fd_) != 0 ? errno : 0;
  }

  const int event_fd_;
  FaultInjector* const faults_;
  int fd_ = -1;
  int error_ = 0;
  std::atomic<int> state_{kIdle};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::binary_semaphore go_{0};
  std::thread thread_;  // last: starts after every member it uses exists
};

}  // namespace

std::unique_ptr<Writer> make_thread_writer(int event_fd, FaultInjector* faults) {
  return std::make_unique<ThreadWriter>(event_fd, faults);
}

}  // namespace paycore::wal::detail
