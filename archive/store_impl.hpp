#pragma once
// ArchiveStore's insides, shared by its files (store.cpp: open, write, point reads; list.cpp:
// the listing). Not for use outside archive/.

#include <rocksdb/db.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "archive/store.hpp"
#include "base/status.hpp"

namespace paycore {

struct ArchiveStore::Impl {
  std::string dir;
  bool read_only = false;
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mutex;  // one write() at a time: the position check and its write are one step
  mutable std::mutex position_mutex;
  ArchivePosition position;  // guarded by position_mutex
};

namespace archive {

/// RocksDB's status as paycore's: corruption, no space, not found and invalid argument keep
/// their meaning, anything else is kIoError; the message is "`what`: RocksDB's text".
inline Status from_rocksdb(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::ok();
  StatusCode code = StatusCode::kIoError;
  if (status.IsCorruption()) code = StatusCode::kCorruption;
  if (status.IsNoSpace()) code = StatusCode::kNoSpace;
  if (status.IsNotFound()) code = StatusCode::kNotFound;
  if (status.IsInvalidArgument()) code = StatusCode::kInvalidArgument;
  return Status(code, std::string(what) + ": " + status.ToString());
}

inline rocksdb::Slice slice(std::string_view bytes) { return {bytes.data(), bytes.size()}; }
inline std::string_view view(const rocksdb::Slice& bytes) { return {bytes.data(), bytes.size()}; }

}  // namespace archive
}  // namespace paycore
