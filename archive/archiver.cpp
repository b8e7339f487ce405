// The archiver's thread: take the queued job, wait for its LSN to be durable, write it, answer.
#include "archive/archiver.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

#include "base/thread_priority.hpp"

namespace paycore {

Archiver::Archiver(ArchiveStore* store, const std::atomic<std::uint64_t>* durable_lsn,
                   std::chrono::microseconds durable_poll_interval, bool low_priority)
    : store_(store),
      durable_lsn_(durable_lsn),
      durable_poll_interval_(durable_poll_interval),
      low_priority_(low_priority) {
  PAYCORE_ASSERT(store_ != nullptr);
  PAYCORE_ASSERT(durable_lsn_ != nullptr);
  PAYCORE_ASSERT_GT(durable_poll_interval_.count(), 0);
  ready_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  PAYCORE_ASSERT_GE(ready_fd_, 0);
  thread_ = std::thread([this] { run(); });
  // Named for `top -H` and perf: the archive's writer is the one background thread that
  // competes with the payments' threads for CPU (docs/design.md "Hot and cold").
  (void)::pthread_setname_np(thread_.native_handle(), "paycore-archive");
}

Archiver::~Archiver() {
  stop();
  ::close(ready_fd_);
}

void Archiver::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true, std::memory_order_relaxed);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Archiver::submit(ArchiveJob&& job) {
  PAYCORE_ASSERT_LE(job.rows_begin, job.rows_end);
  PAYCORE_ASSERT_EQ(job.payments.size(), std::size_t{job.rows_end} - job.rows_begin);
  {
    std::lock_guard lock(mutex_);
    if (stopping_.load(std::memory_order_relaxed) || queued_.has_value()) return false;
    // Room for this job's answer beside the one in progress and those not yet polled.
    const std::size_t answers_owed = done_.size() + (in_progress_ ? 1 : 0);
    if (answers_owed >= done_capacity) return false;
    queued_.emplace(std::move(job));
  }
  wake_.notify_one();
  return true;
}

bool Archiver::poll(ArchiveDone* done) {
  // Drained before the queue is read: a job finished after this read writes the eventfd
  // again, so the core never sleeps past an answer it has not taken.
  std::uint64_t count = 0;
  (void)::read(ready_fd_, &count, sizeof(count));  // non-blocking; EAGAIN when nothing is new
  std::lock_guard lock(mutex_);
  if (done_.empty()) return false;
  *done = std::move(done_.front());
  done_.pop_front();
  return true;
}

void Archiver::run() {
  const pid_t tid = ::gettid();
  if (low_priority_) (void)set_this_thread_priority(ThreadPriority::low);
  thread_id_.store(tid, std::memory_order_release);
  ArchiveJob job;
  while (next_job(&job)) {
    if (!wait_until_durable(job.lsn)) break;  // stopping: the job is dropped
    ArchiveDone done = write_job(job);
    {
      std::lock_guard lock(mutex_);
      in_progress_ = false;
      PAYCORE_ASSERT_LT(done_.size(), done_capacity);  // submit() keeps room for it
      done_.push_back(std::move(done));
    }
    const std::uint64_t one = 1;
    (void)::write(ready_fd_, &one, sizeof(one));  // wakes a sleeping core (Engine::attach_archive)
  }
}

// Waits for a queued job and takes it; false when stopping.
bool Archiver::next_job(ArchiveJob* job) {
  std::unique_lock lock(mutex_);
  wake_.wait(lock,
             [this] { return stopping_.load(std::memory_order_relaxed) || queued_.has_value(); });
  if (stopping_.load(std::memory_order_relaxed)) return false;
  *job = std::move(*queued_);
  queued_.reset();
  in_progress_ = true;
  return true;
}

// Polls the durable-LSN counter with a short sleep rather than being woken by the log writer:
// archiving is not latency-bound (a job is thousands of payments that went cold minutes or days
// ago, and the log is durable within a few milliseconds of them), so a millisecond of delay
// costs nothing, and the log writer's hot path stays free of a notification it would need for
// one waiter. False when stopping.
bool Archiver::wait_until_durable(std::uint64_t lsn) {
  while (durable_lsn_->load(std::memory_order_acquire) < lsn) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    std::this_thread::sleep_for(durable_poll_interval_);
  }
  return !stopping_.load(std::memory_order_relaxed);
}

ArchiveDone Archiver::write_job(const ArchiveJob& job) {
  ArchivePosition position;
  position.rows_end = job.rows_end;
  position.lsn = job.lsn;
  position.as_of_us = job.as_of_us;
  position.jobs = store_->position().jobs + 1;
  ArchiveDone done;
  done.sequence = job.sequence;
  done.rows_begin = job.rows_begin;
  done.rows_end = job.rows_end;
  done.as_of_us = job.as_of_us;
  done.status = store_->write(job.payments, position);
  return done;
}

}  // namespace paycore
