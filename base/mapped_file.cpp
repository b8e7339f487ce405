#include "base/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/assert.hpp"

namespace paycore {

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

Status MappedFile::open(const std::string& path) {
  PAYCORE_ASSERT(data_ == nullptr);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(path, errno);  // as read_file says it
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int saved = errno;
    ::close(fd);
    return errno_status("fstat " + path, saved);
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return Status::ok();
  }
  void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int saved = errno;
  ::close(fd);
  if (data == MAP_FAILED) {
    size_ = 0;
    return errno_status("mmap " + path, saved);
  }
  data_ = data;
  // Read once, front to back: the kernel may read ahead far and drop what is behind.
  (void)::madvise(data_, size_, MADV_SEQUENTIAL);
  return Status::ok();
}

void MappedFile::drop_below(std::size_t offset) {
  const std::size_t page_bytes = 4096;
  const std::size_t end = offset / page_bytes * page_bytes;
  if (data_ != nullptr && end > dropped_) {
    (void)::madvise(static_cast<char*>(data_) + dropped_, end - dropped_, MADV_DONTNEED);
    dropped_ = end;
  }
}

}  // namespace paycore
