#pragma once
// eventfd(2) as paycore's threads use it to wake one another: a writer adds one, a reader
// sleeping in epoll (or reading) wakes up.

#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace paycore {

/// Adds one to the eventfd `fd` (retrying EINTR): wakes whoever waits on it.
inline void write_eventfd(int fd) {
  const std::uint64_t one = 1;
  while (::write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

}  // namespace paycore
