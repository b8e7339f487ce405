#include "net/worker_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace paycore::net::worker_pool_detail {

Status check_config(std::string_view what, const WorkerPoolConfig& config, std::uint32_t clients) {
  if (config.threads == 0 || config.threads > worker_pool_threads_max) {
    return Status::invalid_argument(std::string(what) + ": threads must be 1..64");
  }
  if (config.queue_jobs_max == 0 || config.queue_jobs_max > worker_pool_queue_limit) {
    return Status::invalid_argument(std::string(what) + ": the queue must hold 1..1048576 jobs");
  }
  if (clients == 0) return Status::invalid_argument(std::string(what) + ": no client thread");
  return Status::ok();
}

StatusOr<int> make_event_fd(std::string_view what) {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return errno_status(std::string(what) + ": eventfd", errno);
  return fd;
}

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

// The counter only says "look": its value does not matter, and a full counter (never: it holds
// 2^64 - 2) would leave it readable anyway.
void signal_fd(int fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(fd, &one, sizeof(one));
}

void drain_fd(int fd) {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t read_bytes = ::read(fd, &value, sizeof(value));
}

}  // namespace paycore::net::worker_pool_detail
