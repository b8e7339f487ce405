#include "net/nonce_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "base/assert.hpp"
#include "base/file_write.hpp"
#include "base/log.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_store.hpp"

namespace paycore::net {
namespace {

constexpr std::string_view file_magic = "PCNONCE1";
constexpr std::size_t record_head_bytes = 4 + 8 + 1 + 1;
constexpr std::string_view file_prefix = "nonces-";
constexpr std::string_view file_suffix = ".log";

std::int64_t wall_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Temp names, not *.log: loading ignores them, and the next start overwrites them.
constexpr std::string_view spare_name = "nonces-spare.tmp";  // a spare being made
constexpr std::string_view new_file_name = "nonces-new.tmp";  // a new file without a spare

bool write_all(int fd, std::string_view bytes, std::uint64_t offset) {
  return pwrite_full(fd, bytes.data(), bytes.size(), offset);
}

bool all_zero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

struct LoadedFile {
  std::int64_t newest_timestamp_s = 0;
  bool torn = false;
  std::size_t good_bytes = 0;
};

// Parses one journal file's bytes; calls `take` for each intact record.
template <typename Take>
LoadedFile parse_file(std::string_view bytes, Take&& take) {
  LoadedFile result;
  if (bytes.size() < file_magic.size() || bytes.substr(0, file_magic.size()) != file_magic) {
    result.torn = !bytes.empty();
    return result;
  }
  std::size_t at = file_magic.size();
  while (at < bytes.size()) {
    // Only zeros left: the unwritten rest of a file made from a spare, a clean end.
    if (bytes[at] == 0 && all_zero(bytes.substr(at))) {
      result.good_bytes = at;
      return result;
    }
    if (bytes.size() - at < record_head_bytes) break;
    const char* p = bytes.data() + at;
    const auto principal_len = static_cast<unsigned char>(p[12]);
    const auto nonce_len = static_cast<unsigned char>(p[13]);
    const std::size_t record_bytes = record_head_bytes + principal_len + nonce_len;
    if (bytes.size() - at < record_bytes) break;
    const auto checksum = static_cast<std::uint32_t>(get_le(p, 4));
    if (XXH32(p + 4, record_bytes - 4, 0) != checksum) break;
    const auto timestamp_s = static_cast<std::int64_t>(get_le(p + 4, 8));
    const std::string_view principal(p + record_head_bytes, principal_len);
    const std::string_view nonce(p + record_head_bytes + principal_len, nonce_len);
    take(principal, nonce, timestamp_s);
    result.newest_timestamp_s = std::max(result.newest_timestamp_s, timestamp_s);
    at += record_bytes;
  }
  result.good_bytes = at;
  result.torn = at != bytes.size();
  return result;
}

// Creates `dir` if needed and lists its journal files, sorted (oldest first).
Status list_journal_files(const std::string& dir, std::vector<std::string>* paths) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::io_error(dir + ": " + ec.message());
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(file_prefix) && name.ends_with(file_suffix)) {
      paths->push_back(entry.path().string());
    }
  }
  if (ec) return Status::io_error(dir + ": " + ec.message());
  std::sort(paths->begin(), paths->end());
  return Status::ok();
}

}  // namespace

void load_nonce(auth::NonceCache& cache, std::string_view principal, std::string_view nonce,
                std::int64_t timestamp_s, std::int64_t now_s, NonceJournalLoad* load) {
  ++load->records;
  // Expired: the timestamp check refuses it anyway.
  if (timestamp_s + cache.window_s() < now_s) return;
  if (principal.size() > id_bytes_max || !auth::nonce_is_valid(nonce)) return;
  ++load->live;
  if (cache.insert(principal, nonce, timestamp_s, now_s) == auth::NonceCache::Insert::full) {
    ++load->cache_full;
  }
}

NonceJournal::NonceJournal(std::string dir, std::int64_t window_s)
    : dir_(std::move(dir)), window_s_(window_s) {}

StatusOr<std::unique_ptr<NonceJournal>> NonceJournal::open(const std::string& dir,
                                                           std::int64_t window_s,
                                                           std::int64_t now_s, auth::NonceCache& cache,
                                                           NonceJournalLoad* load, bool spare_files) {
  PAYCORE_ASSERT_GT(window_s, 0);
  std::vector<std::string> paths;
  PAYCORE_RETURN_IF_ERROR(list_journal_files(dir, &paths));
  std::unique_ptr<NonceJournal> journal(new NonceJournal(dir, window_s));
  std::string bytes;
  for (const std::string& path : paths) {
    StatusOr<std::string> read = read_file(path);
    if (!read.is_ok()) return read.status();
    bytes = std::move(*read);
    ++load->files;
    const LoadedFile loaded = parse_file(
        bytes, [&](std::string_view principal, std::string_view nonce, std::int64_t timestamp_s) {
          load_nonce(cache, principal, nonce, timestamp_s, now_s, load);
        });
    if (loaded.torn) {
      ++load->torn;
      log_line(LogLevel::warn, "nonce journal: a torn tail was ignored",
               {{"file", path}, {"offset", std::to_string(loaded.good_bytes)}});
    }
    journal->closed_.push_back(File{path, loaded.newest_timestamp_s});
  }
  journal->drop_expired_files(now_s);
  PAYCORE_RETURN_IF_ERROR(journal->rotate_if_due(now_s, 0));
  if (spare_files) {
    journal->spare_ = std::make_unique<SpareFile>(dir + "/" + std::string(spare_name), nonce_file_bytes);
  }
  journal->thread_ = std::thread([j = journal.get()] { j->run(); });
  return journal;
}

NonceJournal::~NonceJournal() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t NonceJournal::append(std::string_view principal, std::string_view nonce,
                                   std::int64_t timestamp_s) {
  PAYCORE_ASSERT_LE(principal.size(), 255u);
  PAYCORE_ASSERT_LE(nonce.size(), 255u);
  // Built on the stack: no allocation per request (pending_ keeps its capacity between batches).
  char record[record_head_bytes + 255 + 255];
  const auto ts = static_cast<std::uint64_t>(timestamp_s);
  for (int i = 0; i < 8; ++i) record[4 + i] = static_cast<char>((ts >> (8 * i)) & 0xff);
  record[12] = static_cast<char>(principal.size());
  record[13] = static_cast<char>(nonce.size());
  std::memcpy(record + record_head_bytes, principal.data(), principal.size());
  std::memcpy(record + record_head_bytes + principal.size(), nonce.data(), nonce.size());
  const std::size_t record_bytes = record_head_bytes + principal.size() + nonce.size();
  const std::uint32_t checksum = XXH32(record + 4, record_bytes - 4, 0);
  for (int i = 0; i < 4; ++i) record[i] = static_cast<char>((checksum >> (8 * i)) & 0xff);
  std::uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.append(record, record_bytes);
    pending_newest_s_ = std::max(pending_newest_s_, timestamp_s);
    seq = ++appended_seq_;
  }
  wanted_.notify_one();
  return seq;
}

// A new file when none is open, the current one has been written for a window, or the batch
// does not fit in it; and, as soon as a spare is ready, in place of a file that grows (its
// flushes each commit a size change).
Status NonceJournal::rotate_if_due(std::int64_t now_s, std::size_t batch_bytes) {
  const bool full = current_capacity_bytes_ > 0 && current_bytes_ + batch_bytes > current_capacity_bytes_;
  const bool growing_and_spare_ready = current_capacity_bytes_ == 0 && spare_ != nullptr && spare_->ready();
  if (fd_ >= 0 && now_s - current_started_s_ < window_s_ && !full && !growing_and_spare_ready) {
    return Status::ok();
  }
  int fd = -1;
  std::string path;
  std::uint64_t capacity_bytes = 0;
  PAYCORE_RETURN_IF_ERROR(create_file(now_s, batch_bytes, &fd, &path, &capacity_bytes));
  if (fd_ >= 0) {
    ::close(fd_);
    closed_.push_back(current_);
  }
  fd_ = fd;
  current_ = File{path, 0};
  current_started_s_ = now_s;
  current_bytes_ = file_magic.size();
  current_capacity_bytes_ = capacity_bytes;
  return Status::ok();
}

// Always a file of its own (RENAME_NOREPLACE, a counter after the second): appending to an
// older file could put new records after a torn tail, where loading never reaches them. Either
// source gets its header and is flushed under a temp name (not *.log: loading ignores it), then
// renamed into place.
Status NonceJournal::create_file(std::int64_t now_s, std::size_t batch_bytes, int* fd_out,
                                 std::string* path_out, std::uint64_t* capacity_bytes) {
  const bool from_spare = spare_ != nullptr && spare_->ready() &&
                          file_magic.size() + batch_bytes <= spare_->bytes();
  const std::string from = from_spare ? spare_->path() : dir_ + "/" + std::string(new_file_name);
  const int fd = from_spare ? spare_->take()
                            : ::open(from.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write_all(fd, file_magic, 0) && ::fdatasync(fd) == 0;
  bool placed = false;
  std::string path;
  for (int attempt = 0; ok && !placed && attempt < 1000; ++attempt) {
    path = dir_ + "/" + std::string(file_prefix) + std::to_string(now_s) + "-" + std::to_string(attempt) +
           std::string(file_suffix);
    placed = ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0;
    ok = placed || errno == EEXIST;
  }
  if (ok && !placed) errno = EEXIST;
  int error_number = errno;
  if (!placed) ::unlink(from.c_str());
  if (from_spare) spare_->release();  // its name is free again: renamed or unlinked
  if (placed && !fsync_directory(dir_).is_ok()) {
    error_number = errno;
    ::unlink(path.c_str());
    placed = false;
  }
  if (!placed) {
    if (fd >= 0) ::close(fd);
    errno = error_number;  // write_batch logs strerror(errno)
    return errno_status(dir_ + ": cannot create a nonce journal file", error_number);
  }
  *fd_out = fd;
  *path_out = path;
  *capacity_bytes = from_spare ? spare_->bytes() : 0;
  return Status::ok();
}

void NonceJournal::drop_expired_files(std::int64_t now_s) {
  std::erase_if(closed_, [&](const File& file) {
    if (file.path == current_.path || file.newest_timestamp_s + window_s_ >= now_s) return false;
    ::unlink(file.path.c_str());
    return true;
  });
}

// Writes and syncs one batch. On a failure (a full disk, an I/O error) the batch is dropped:
// its requests are answered anyway (they were executed; the memory cache still refuses their
// replays in this run, only a restart forgets them), the file is cut back to its last whole
// record and closed, and the next batch starts a new file: the journal heals by itself once the
// disk takes writes again, like the write-ahead log.
void NonceJournal::write_batch(std::string_view records, std::int64_t newest_s, std::int64_t now_s) {
  bool ok = rotate_if_due(now_s, records.size()).is_ok();
  if (ok && !records.empty()) {
    ok = write_all(fd_, records, current_bytes_) && ::fdatasync(fd_) == 0;
    if (ok) {
      current_bytes_ += records.size();
      current_.newest_timestamp_s = std::max(current_.newest_timestamp_s, newest_s);
    }
  }
  if (ok) {
    if (failing_) {
      failing_ = false;
      log_line(LogLevel::info, "nonce journal: writing again", {{"dir", dir_}});
    }
    return;
  }
  const std::string reason = std::strerror(errno);
  if (fd_ >= 0) {
    const int cut = ::ftruncate(fd_, static_cast<off_t>(current_bytes_));  // best effort
    (void)cut;
    ::close(fd_);
    fd_ = -1;
    closed_.push_back(current_);
  }
  batches_failed_.fetch_add(1, std::memory_order_relaxed);
  if (!failing_) {
    failing_ = true;
    log_line(LogLevel::error,
             "nonce journal: write or fdatasync failed; answers go out without it (their nonces "
             "are forgotten at a restart) until it works again",
             {{"dir", dir_}, {"error", reason}});
  }
}

void NonceJournal::run() {
  std::string writing;
  for (;;) {
    std::uint64_t seq = 0;
    std::int64_t newest_s = 0;
    bool stop_now = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wanted_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !pending_.empty(); });
      writing.swap(pending_);
      pending_.clear();
      seq = appended_seq_;
      newest_s = pending_newest_s_;
      pending_newest_s_ = 0;
      stop_now = stopping_;
    }
    const std::int64_t now_s = wall_seconds();
    write_batch(writing, newest_s, now_s);
    drop_expired_files(now_s);
    writing.clear();
    if (seq > durable_seq_.load(std::memory_order_relaxed)) {
      durable_seq_.store(seq, std::memory_order_release);
      if (on_durable_) on_durable_();
    }
    if (stop_now) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (pending_.empty()) return;
    }
  }
}

void NonceJournal::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wanted_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace paycore::net
