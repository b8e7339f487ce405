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
#include "base/rocksdb_status.hpp"
#include "base/status.hpp"

namespace paycore {

struct ArchiveStore::Impl {
  std::string dir;
  bool read_only = false;
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mutex;  // one write() at a time: the position check and its write are one step
  mutable std::mutex position_mutex;
  ArchivePosition position;  // guarded by position_mutex
  RocksdbWriteGate gate;     // no write after a failed one (base/rocksdb_status.hpp)
};

namespace archive {

using paycore::from_rocksdb;
inline rocksdb::Slice slice(std::string_view bytes) { return rocksdb_slice(bytes); }
inline std::string_view view(const rocksdb::Slice& bytes) { return rocksdb_view(bytes); }

}  // namespace archive
}  // namespace paycore
