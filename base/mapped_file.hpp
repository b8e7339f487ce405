#pragma once
// A read-only mapping of a whole file, unmapped when it goes: how recovery and recon read a
// snapshot (hundreds of MB) without copying it into the heap first. The bytes are the page
// cache's; a file truncated by someone else while mapped would fault (SIGBUS) on access, so
// only files nothing else writes are mapped (a published snapshot is never written again;
// the log reads its segments this way at start-up, before it writes).

#include <cstddef>
#include <span>
#include <string>

#include "base/status.hpp"

namespace paycore {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  /// Maps `path` for reading, advised sequential. An empty file maps to no bytes (the caller's
  /// format check then says it is too short). Errors: open's, fstat's or mmap's, naming the
  /// file (errno_status); calling it twice is a programming error.
  Status open(const std::string& path);
  std::span<const std::byte> bytes() const { return {data(), size_}; }
  const std::byte* data() const { return static_cast<const std::byte*>(data_); }
  std::size_t size() const { return size_; }
  /// Returns the pages below `offset` (already decoded) to the kernel, so that a reader's peak
  /// memory is not the file plus what it decoded from it.
  void drop_below(std::size_t offset);

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t dropped_ = 0;
};

}  // namespace paycore
