#pragma once
// RocksDB's status and slices as paycore's (header only: included by the areas that link
// RocksDB, archive/, events/ and webhooks/, never by base/'s own sources).

#include <rocksdb/db.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <mutex>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace paycore {

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

inline rocksdb::Slice rocksdb_slice(std::string_view bytes) { return {bytes.data(), bytes.size()}; }
inline std::string_view rocksdb_view(const rocksdb::Slice& bytes) { return {bytes.data(), bytes.size()}; }

/// A store's writes, stopped at the first that fails (docs/design.md rule 7, fail-stop on
/// storage faults, as the log does): every later write returns that failure, and a restart
/// reopens the store. Two reasons: the state of files after a failed write or sync is unknown,
/// and Debian's RocksDB 7.8 asserts (aborting the process) when written again after a failed
/// WAL write (facebook/rocksdb#12448, fixed in 9.x): a full disk under DATA_DIR would
/// otherwise take payments down with it. Thread safe.
class RocksdbWriteGate {
 public:
  Status write(rocksdb::DB& db, const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
               std::string_view what) {
    const std::lock_guard lock(mutex_);
    if (!failed_.is_ok()) return failed_;
    const Status s = from_rocksdb(db.Write(options, batch), what);
    if (!s.is_ok()) {
      failed_ = Status(s.code(), s.message() + " (no more writes to this store until a restart)");
    }
    return s;
  }

 private:
  std::mutex mutex_;
  Status failed_;
};

}  // namespace paycore
