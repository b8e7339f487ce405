#pragma once
// A small pool of worker threads for calls that may block on disk, which an I/O thread must
// never make itself (issue 15: the events and webhook routes, net/events_call.hpp). The shape
// is the archive lookups' (net/archive_lookup.hpp): workers take jobs from one bounded queue,
// run `work` on each, and hand each answer back to the I/O thread that asked (its client
// index) through that thread's completion queue and eventfd, which the thread has in its epoll
// set. A full queue refuses the job at once (the caller answers 503); nothing waits for room.
//
// Workers touch only their job: the connections and slots a job's token names are touched by
// their I/O thread alone. Lifetime: stop() (or the destructor) joins the workers after their
// current job; jobs still queued are dropped unanswered (their connections are closing then).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/assert.hpp"
#include "base/status.hpp"

namespace paycore::net {

/// Limits of a pool; validated by WorkerPool::create.
struct WorkerPoolConfig {
  std::uint32_t threads = 2;            // workers (1..worker_pool_threads_max)
  std::uint32_t queue_jobs_max = 1024;  // jobs waiting for a worker (1..worker_pool_queue_limit)
};
inline constexpr std::uint32_t worker_pool_threads_max = 64;
inline constexpr std::uint32_t worker_pool_queue_limit = 1u << 20;

/// Counters for /metrics and tests (relaxed atomics, any reader).
struct WorkerPoolMetrics {
  std::atomic<std::uint64_t> done{0};        // jobs run to their answer
  std::atomic<std::uint64_t> queue_full{0};  // refused at submit: answered 503 at once
};

namespace worker_pool_detail {
/// "<what> must be 1..N" for a limit out of range; ok otherwise.
Status check_config(std::string_view what, const WorkerPoolConfig& config, std::uint32_t clients);
/// A non-blocking eventfd, or an io error naming `what`.
StatusOr<int> make_event_fd(std::string_view what);
void close_fd(int fd);
void signal_fd(int fd);
void drain_fd(int fd);
}  // namespace worker_pool_detail

/// Runs `work(job)` for jobs submitted by `clients` threads (0..clients-1) and gives each
/// answer back to its client. `Done` carries whatever the client needs to find its request
/// again (work copies the job's token into it).
template <class Job, class Done>
class WorkerPool {
 public:
  using Work = std::function<Done(const Job&)>;

  /// A pool named `what` (in errors) for `clients` threads; workers start at start().
  /// invalid_argument if a limit is out of range, an io error if an eventfd fails.
  static StatusOr<std::unique_ptr<WorkerPool>> create(std::string_view what,
                                                      const WorkerPoolConfig& config,
                                                      std::uint32_t clients, Work work) {
    PAYCORE_RETURN_IF_ERROR(worker_pool_detail::check_config(what, config, clients));
    std::unique_ptr<WorkerPool> pool(new WorkerPool(config, std::move(work)));
    for (std::uint32_t i = 0; i < clients; ++i) {
      StatusOr<int> fd = worker_pool_detail::make_event_fd(what);
      if (!fd.is_ok()) return fd.status();
      pool->clients_.push_back(std::make_unique<Client>());
      pool->clients_.back()->event_fd = *fd;
    }
    return pool;
  }
  ~WorkerPool() {
    stop();
    for (const auto& client : clients_) worker_pool_detail::close_fd(client->event_fd);
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void start() {
    for (std::uint32_t i = 0; i < config_.threads; ++i) workers_.emplace_back([this] { run(); });
  }
  /// Joins the workers (each after its current job); idempotent.
  void stop() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
      queue_.clear();
    }
    ready_.notify_all();
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    workers_.clear();
  }

  /// Queues `job` for `client`; false (counted as queue_full) when the queue holds
  /// queue_jobs_max jobs or the pool is stopped: the caller answers 503 at once.
  bool submit(std::uint32_t client, Job&& job) {
    PAYCORE_ASSERT_LT(client, clients_.size());
    {
      const std::lock_guard lock(mutex_);
      if (!stopping_ && queue_.size() < config_.queue_jobs_max) {
        queue_.push_back(Queued{client, std::move(job)});
        ready_.notify_one();
        return true;
      }
    }
    metrics_.queue_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  /// Readable (EPOLLIN) when `client` has answers to take.
  int completion_fd(std::uint32_t client) const { return clients_[client]->event_fd; }
  /// Moves every answer for `client` to `out` (cleared first); returns how many.
  std::size_t take(std::uint32_t client, std::vector<Done>* out) {
    Client& c = *clients_[client];
    worker_pool_detail::drain_fd(c.event_fd);
    out->clear();
    const std::lock_guard lock(c.mutex);
    out->swap(c.done);
    return out->size();
  }

  const WorkerPoolMetrics& metrics() const { return metrics_; }

 private:
  struct Client {
    int event_fd = -1;
    std::mutex mutex;
    std::vector<Done> done;
  };
  struct Queued {
    std::uint32_t client = 0;
    Job job;
  };

  WorkerPool(const WorkerPoolConfig& config, Work work) : config_(config), work_(std::move(work)) {}

  void run() {
    while (true) {
      Queued queued;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        queued = std::move(queue_.front());
        queue_.pop_front();
      }
      Done done = work_(queued.job);
      metrics_.done.fetch_add(1, std::memory_order_relaxed);
      Client& c = *clients_[queued.client];
      {
        const std::lock_guard lock(c.mutex);
        c.done.push_back(std::move(done));
      }
      worker_pool_detail::signal_fd(c.event_fd);
    }
  }

  WorkerPoolConfig config_;
  Work work_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Queued> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  WorkerPoolMetrics metrics_;
};

}  // namespace paycore::net
