#pragma once
// The snapshots directory: `<dir>/<lsn, 20 digits>.snap`, written atomically (temporary file,
// fsync, rename, fsync of the directory), newest few kept.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

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

// Writes the snapshot of `state` at `lsn` to `final_path` atomically. Allocation-free (paths
// are prepared by the caller, the buffer is the caller's), so it may run in a forked child.
// Returns 0 or the errno of the step that failed.
int write_snapshot_atomically(const char* dir, const char* temp_path, const char* final_path,
                              const State& state, std::uint64_t lsn, std::int64_t created_at_us,
                              std::span<std::byte> buffer);

// The two halves of the above, for a snapshot whose LSN is not yet durable when it is written:
// the image goes to `temp_path` (fsynced; allocation-free, for a forked child), and is published
// under its final name only once the log is durable past its LSN.
int write_snapshot_temp(const char* temp_path, const State& state, std::uint64_t lsn,
                        std::int64_t created_at_us, std::span<std::byte> buffer);
int publish_snapshot(const char* dir, const char* temp_path, const char* final_path);

// Loads the newest snapshot that is whole; a damaged one is reported through `skipped` (path:
// reason) and the one before it is tried. No whole snapshot at all: info->lsn = 0 and the
// state is fresh (recovery then needs the log from LSN 1, which the caller checks).
void load_newest_snapshot(const std::string& dir, const StateConfig& config,
                          std::unique_ptr<State>* state, SnapshotInfo* info,
                          std::vector<std::string>* skipped);

// Deletes all but the newest `keep` snapshots (and stray temporary files); returns the LSN of
// the oldest one kept (0 if none).
std::uint64_t retain_snapshots(const std::string& dir, std::uint32_t keep);

// Creates a directory and its parents (mkdir -p). Returns false with the error.
bool make_directories(const std::string& path, std::string* error);
// fsync of a directory, after a rename in it.
int fsync_directory(const char* dir);

}  // namespace paycore
