#pragma once
// The snapshots directory: `<dir>/<lsn, 20 digits>.snap`, written atomically (temporary file,
// fsync, rename, fsync of the directory), newest few kept.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "snapshot.hpp"
#include "state.hpp"

namespace paycore {

struct SnapshotFile {
  std::uint64_t lsn = 0;
  std::string path;
};

/// "<dir>/<lsn, 20 digits>.snap": the one place a snapshot's file name is formatted (the core
/// writes the file; net names it in the answer to POST /v1/admin/snapshot).
std::string snapshot_path(const std::string& dir, std::uint64_t lsn);
// Ascending by LSN; temporary files are not listed.
std::vector<SnapshotFile> list_snapshots(const std::string& dir);

/// Writes the image of `state` at `lsn` to `temp_path` and fsyncs it; a failed write removes
/// the file. It allocates nothing (the path is prepared by the caller, the buffer is the
/// caller's) because it runs in a forked child of a multi-threaded process, where malloc is not
/// safe: for the same reason it returns 0 or the errno of the step that failed rather than a
/// Status (whose message would allocate). The caller turns that into a Status.
int write_snapshot_temp(const char* temp_path, const State& state, std::uint64_t lsn,
                        std::int64_t created_at_us, std::span<std::byte> buffer);
/// Gives the image at `temp_path` its final name (rename, then fsync of `dir`), once the log
/// is durable past its LSN. On a failed rename the temporary file is removed. Errors: the
/// system call's, through errno_status.
Status publish_snapshot(const std::string& dir, const std::string& temp_path,
                        const std::string& final_path);

// Loads the newest snapshot that is whole; a damaged one is reported through `skipped` (path:
// reason) and the one before it is tried. No whole snapshot at all: info->lsn = 0 and the
// state is fresh (recovery then needs the log from LSN 1, which the caller checks).
void load_newest_snapshot(const std::string& dir, const StateConfig& config,
                          std::unique_ptr<State>* state, SnapshotInfo* info,
                          std::vector<std::string>* skipped);

// Deletes all but the newest `keep` snapshots (and stray temporary files). Returns the LSN below
// which the log is no longer needed: that of the oldest snapshot kept, once `keep` of them exist;
// 0 while fewer exist, because recovery falls back from a damaged snapshot to the one before it
// and, past the oldest, to an empty state and the whole log (load_newest_snapshot).
std::uint64_t retain_snapshots(const std::string& dir, std::uint32_t keep);

/// Creates a directory and its parents (mkdir -p). Errors: mkdir's, naming the directory.
Status make_directories(const std::string& path);
/// fsync of a directory, after a rename in it. Errors: open's or fsync's, naming `dir`.
Status fsync_directory(const std::string& dir);

}  // namespace paycore
