#include "base/spare_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "base/assert.hpp"
#include "base/file_write.hpp"
#include "base/log.hpp"

namespace paycore {
namespace {

constexpr std::size_t kZerosChunkBytes = 1U << 20;
// Flushed every this many bytes, so that the spare reaches the disk as a steady trickle beside
// the log's own flushes rather than as one burst of a whole segment at the end.
constexpr std::uint64_t kFlushEveryBytes = 8ULL << 20;

}  // namespace

SpareFile::SpareFile(std::string path, std::uint64_t bytes, std::uint32_t retry_ms)
    : path_(std::move(path)),
      bytes_(bytes),
      retry_(retry_ms),
      thread_([this] { run(); }) {}

SpareFile::~SpareFile() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (ready_fd_ >= 0) ::close(ready_fd_);
}

bool SpareFile::ready() const {
  const std::lock_guard lock(mu_);
  return ready_fd_ >= 0;
}

bool SpareFile::failed() const {
  const std::lock_guard lock(mu_);
  return failed_;
}

int SpareFile::take() {
  const std::lock_guard lock(mu_);
  PAYCORE_ASSERT_GE(ready_fd_, 0);
  const int fd = ready_fd_;
  ready_fd_ = -1;
  return fd;
}

void SpareFile::release() {
  {
    const std::lock_guard lock(mu_);
    PAYCORE_ASSERT(!wanted_);
    wanted_ = true;
  }
  cv_.notify_all();
}

void SpareFile::run() {
  ::pthread_setname_np(::pthread_self(), "paycore-spare");
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (failed_) cv_.wait_for(lock, retry_, [this] { return stop_; });
      cv_.wait(lock, [this] { return stop_ || wanted_; });
      if (stop_) return;
    }
    const int fd = make();
    const std::lock_guard lock(mu_);
    failed_ = fd < 0 && !stop_;
    if (fd < 0) continue;
    if (failure_logged_) {
      failure_logged_ = false;
      log_line(LogLevel::info, "spare files again", {{"path", path_}});
    }
    PAYCORE_ASSERT_EQ(ready_fd_, -1);
    ready_fd_ = fd;
    wanted_ = false;  // until the caller has taken it and freed the name
  }
}

int SpareFile::make() {
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  auto give_up = [&](const char* what) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(path_.c_str());
    if (!failure_logged_) {  // once per run of failures: the thread retries every retry_
      failure_logged_ = true;
      log_line(LogLevel::warn, "no spare file: new files are made without one until it is",
               {{"path", path_}, {"call", what}, {"error", std::strerror(error)},
                {"retry_ms", std::to_string(retry_.count())}});
    }
    return -1;
  };
  if (fd < 0) return give_up("open");
  const std::vector<std::byte> zeros(kZerosChunkBytes, std::byte{0});
  std::uint64_t done = 0;
  std::uint64_t flush_at = kFlushEveryBytes;
  while (done < bytes_) {
    {
      const std::lock_guard lock(mu_);
      if (stop_) {
        ::close(fd);
        ::unlink(path_.c_str());
        return -1;
      }
    }
    const std::size_t len =
        static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), bytes_ - done));
    if (!pwrite_full(fd, zeros.data(), len, done)) return give_up("pwrite");
    done += len;
    if (done >= flush_at || done == bytes_) {
      if (::fdatasync(fd) != 0) return give_up("fdatasync");
      flush_at = done + kFlushEveryBytes;
    }
  }
  return fd;
}

}  // namespace paycore
