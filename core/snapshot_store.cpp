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
#include <thread>

#include "base/mapped_file.hpp"

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

Status fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + dir, errno);
  const int synced = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (synced != 0) return errno_status("fsync " + dir, fsync_errno);
  return Status::ok();
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

Status publish_snapshot(const std::string& dir, const std::string& temp_path,
                        const std::string& final_path) {
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    const int rename_errno = errno;
    ::unlink(temp_path.c_str());
    return errno_status("rename " + temp_path + " to " + final_path, rename_errno);
  }
  return fsync_directory(dir);
}

void load_newest_snapshot(const std::string& dir, const StateConfig& config,
                          std::unique_ptr<State>* state, SnapshotInfo* info,
                          std::vector<std::string>* skipped) {
  const std::vector<SnapshotFile> files = list_snapshots(dir);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    // Mapped, not read: a copy of a file of hundreds of MB into a growing heap buffer was a
    // third of a 10M-payment recovery.
    MappedFile file;
    Status whole = file.open(it->path);
    if (whole.is_ok()) whole = check_snapshot(file.bytes(), info);
    if (!whole.is_ok()) {
      const std::string& why = whole.message();
      skipped->push_back(why.starts_with(it->path) ? why : it->path + ": " + why);
      continue;
    }
    if (info->lsn != it->lsn) {
      skipped->push_back(it->path + ": holds LSN " + std::to_string(info->lsn) + ", not the LSN of its name");
      continue;
    }
    // The header knows the counts: size the indexes once instead of growing them while loading.
    auto candidate = std::make_unique<State>(sized_for(config, *info));
    // The other core zeroes the index tables' pages while this one loads (destroyed, and so
    // joined, before the state is used or dropped).
    Status loaded;
    {
      const State* filling = candidate.get();
      const std::jthread populate([filling] { filling->populate_indexes(); });
      loaded = load_snapshot(file.bytes(), candidate.get(), info);
    }
    if (!loaded.is_ok()) {
      skipped->push_back(it->path + ": " + loaded.message());
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
  return files.empty() || files.size() < keep ? 0 : files.front().lsn;
}

Status make_directories(const std::string& path) {
  std::size_t at = 0;
  while (at != std::string::npos) {
    at = path.find('/', at + 1);
    const std::string partial = path.substr(0, at);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_status("mkdir " + partial, errno);
    }
  }
  return Status::ok();
}

}  // namespace paycore
