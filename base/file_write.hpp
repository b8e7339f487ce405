#pragma once
// paycore::pwrite_full — one write of a whole buffer at an offset, for the journals' own files
// (the nonce journal, spare files). The write-ahead log has its own loop, with fault hooks
// between the pieces (wal/log.cpp).

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace paycore {

// Writes all `n` bytes of `data` at `offset`: a short pwrite goes on with the rest, EINTR is
// retried. true, or false with errno set (EIO for a pwrite that wrote nothing).
inline bool pwrite_full(int fd, const void* data, std::size_t n, std::uint64_t offset) {
  const auto* bytes = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t w = ::pwrite(fd, bytes + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    done += static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace paycore
