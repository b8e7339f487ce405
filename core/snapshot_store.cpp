#include "snapshot_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace paycore {

std::string snapshot_path(const std::string& dir, std::uint64_t lsn) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020" PRIu64 ".snap", lsn);
  return dir + "/" + name;
}

std::vector<SnapshotFile> list_snapshots(const std::string& dir) {
  std::vector<SnapshotFile> files;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return files;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() != 25 || !name.ends_with(".snap")) continue;
    std::uint64_t lsn = 0;
    bool digits = true;
    for (char c : name.substr(0, 20)) {
      if (c < '0' || c > '9') digits = false;
      lsn = lsn * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (digits) files.push_back({lsn, dir + "/" + std::string(name)});
  }
  ::closedir(d);
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.lsn < b.lsn; });
  return files;
}

int fsync_directory(const char* dir) {
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int write_snapshot_temp(const char* temp_path, const State& state, std::uint64_t lsn,
                        std::int64_t created_at_us, std::span<std::byte> buffer) {
  const int fd = ::open(temp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  FdSink sink(fd, buffer);
  int rc = 0;
  if (!write_snapshot(state, lsn, created_at_us, sink) || !sink.flush()) rc = sink.error() ? sink.error() : EIO;
  if (rc == 0 && ::fsync(fd) != 0) rc = errno;
  if (::close(fd) != 0 && rc == 0) rc = errno;
  if (rc != 0) ::unlink(temp_path);
  return rc;
}

int publish_snapshot(const char* dir, const char* temp_path, const char* final_path) {
  if (::rename(temp_path, final_path) != 0) {
    const int rc = errno;
    ::unlink(temp_path);
    return rc;
  }
  return fsync_directory(dir);
}

int write_snapshot_atomically(const char* dir, const char* temp_path, const char* final_path,
                              const State& state, std::uint64_t lsn, std::int64_t created_at_us,
                              std::span<std::byte> buffer) {
  const int rc = write_snapshot_temp(temp_path, state, lsn, created_at_us, buffer);
  return rc != 0 ? rc : publish_snapshot(dir, temp_path, final_path);
}

void load_newest_snapshot(const std::string& dir, const StateConfig& config,
                          std::unique_ptr<State>* state, SnapshotInfo* info,
                          std::vector<std::string>* skipped) {
  const std::vector<SnapshotFile> files = list_snapshots(dir);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    std::string bytes, why;
    if (!read_file(it->path, &bytes, &why) ||
        !check_snapshot(std::as_bytes(std::span(bytes)), info, &why)) {
      skipped->push_back(why.starts_with(it->path) ? why : it->path + ": " + why);
      continue;
    }
    if (info->lsn != it->lsn) {
      skipped->push_back(it->path + ": holds LSN " + std::to_string(info->lsn) + ", not the LSN of its name");
      continue;
    }
    // The header knows the counts: size the indexes once instead of growing them while loading.
    StateConfig sized = config;
    sized.accounts_expected = std::max<std::uint64_t>(config.accounts_expected, info->accounts);
    sized.payments_expected = std::max<std::uint64_t>(config.payments_expected, info->idempotency);
    auto candidate = std::make_unique<State>(sized);
    if (!load_snapshot(std::as_bytes(std::span(bytes)), candidate.get(), info, &why)) {
      skipped->push_back(it->path + ": " + why);
      continue;
    }
    *state = std::move(candidate);
    return;
  }
  *info = SnapshotInfo{};
  *state = std::make_unique<State>(config);
}

std::uint64_t retain_snapshots(const std::string& dir, std::uint32_t keep) {
  std::vector<SnapshotFile> files = list_snapshots(dir);
  while (files.size() > keep) {
    ::unlink(files.front().path.c_str());
    files.erase(files.begin());
  }
  return files.empty() ? 0 : files.front().lsn;
}

bool make_directories(const std::string& path, std::string* error) {
  std::string partial;
  std::size_t at = 0;
  while (at != std::string::npos) {
    at = path.find('/', at + 1);
    partial = path.substr(0, at);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = partial + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

}  // namespace paycore
