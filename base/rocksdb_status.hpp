#pragma once
// RocksDB's status and slices as paycore's (header only: included by the areas that link
// RocksDB, archive/, events/ and webhooks/, never by base/'s own sources).

#include <rocksdb/slice.h>
#include <rocksdb/status.h>

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

}  // namespace paycore
