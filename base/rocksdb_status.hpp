#pragma once
// RocksDB's status and slices as paycore's (header only: included by the areas that link
// RocksDB, archive/, events/ and webhooks/, never by base/'s own sources).

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <cstdint>

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

/// The options of a small store (the event store, the webhook delivery store): the archive's
/// settings (archive/store.cpp) scaled down: created when missing, paranoid checks, a torn WAL
/// tail dropped (point-in-time recovery), 16 MiB memtables, RocksDB's own LOG files capped, a
/// block cache of `block_cache_bytes` for data blocks. Index and filter blocks stay with the
/// open tables (RocksDB's default; at most max_open_files tables, ~10 bytes of index and filter
/// per key): in the shared cache a backlog of deliveries read from the tables pushed them out,
/// and every read fetched and decompressed an index block again (the dispatcher fell to ~100
/// deliveries/s and the deriver's handover to ~7,000 events/s after an 8 s load).
/// `bloom_bits_per_key` > 0: a Bloom filter in every table and the memtable, for stores whose
/// point reads mostly ask for keys that are not there (RocksDB wiki "RocksDB Bloom Filter").
inline rocksdb::Options rocksdb_small_store_options(std::size_t block_cache_bytes, int background_jobs,
                                                   int bloom_bits_per_key = 0) {
  rocksdb::Options db;
  db.create_if_missing = true;
  db.paranoid_checks = true;
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db.max_background_jobs = background_jobs;
  db.write_buffer_size = std::size_t{16} << 20;
  db.max_write_buffer_number = 2;
  db.max_open_files = 256;
  db.max_log_file_size = std::size_t{4} << 20;
  db.keep_log_file_num = 2;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.cache_index_and_filter_blocks = false;
  if (bloom_bits_per_key > 0) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(bloom_bits_per_key));
    db.memtable_whole_key_filtering = true;
    db.memtable_prefix_bloom_size_ratio = 0.02;
  }
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return db;
}

/// A store's writes, kept away from a full disk and stopped at the first that fails
/// (docs/design.md rule 7, fail-stop on storage faults, as the log does).
/// - Before each write it looks at the free space of the store's file system: below
///   `reserve_bytes` the write is refused (kNoSpace, nothing written, tried again later by the
///   caller), so that RocksDB never meets ENOSPC in the usual way a disk fills (the log, which
///   writes far more, reaches the limit first and refuses payments with 503 by itself).
///   Debian's RocksDB 7.8 aborts the whole process on a failed WAL write in some paths
///   ('Assertion sync_without_flush_called_ failed', facebook/rocksdb#12448, fixed in 9.x):
///   a full disk under DATA_DIR must not take payments down with it.
/// - A write that fails anyway stops the store's writes for the life of the process: the state
///   of its files after a failed write or sync is unknown; a restart reopens it.
/// Thread safe.
class RocksdbWriteGate {
 public:
  static constexpr std::uint64_t reserve_bytes_default = std::uint64_t{64} << 20;
  explicit RocksdbWriteGate(std::uint64_t reserve_bytes = reserve_bytes_default)
      : reserve_bytes_(reserve_bytes) {}

  /// Writes `batch` to `db`, whose files are in `dir`. Errors: kNoSpace when fewer than
  /// reserve_bytes are free there (nothing written); RocksDB's (then every later call fails).
  Status write(rocksdb::DB& db, const std::string& dir, const rocksdb::WriteOptions& options,
               rocksdb::WriteBatch* batch, std::string_view what) {
    const std::lock_guard lock(mutex_);
    if (!failed_.is_ok()) return failed_;
    struct statvfs fs {};
    if (::statvfs(dir.c_str(), &fs) == 0 &&
        static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < reserve_bytes_) {
      return Status(StatusCode::kNoSpace, std::string(what) + ": fewer than " +
                                              std::to_string(reserve_bytes_) + " bytes free in " +
                                              dir + "; not written (the disk is kept for the log)");
    }
    return remember(from_rocksdb(db.Write(options, batch), what));
  }

  /// Syncs `db`'s WAL (what earlier unsynced writes put there). A failure stops every later
  /// write and sync, as a failed write does: after a failed fsync the kernel may have dropped
  /// the dirty pages, and a second fsync that succeeds would prove nothing.
  /// The fsync runs outside the gate's mutex: writes go on meanwhile (RocksDB allows Write
  /// beside SyncWAL), and a write that lands during a sync that fails is no worse than one
  /// just before it.
  Status sync_wal(rocksdb::DB& db, std::string_view what) {
    {
      const std::lock_guard lock(mutex_);
      if (!failed_.is_ok()) return failed_;
    }
    const Status synced = from_rocksdb(db.SyncWAL(), what);
    const std::lock_guard lock(mutex_);
    return remember(synced);
  }

 private:
  // A failure becomes sticky (mutex_ held).
  Status remember(Status s) {
    if (!s.is_ok()) failed_ = Status(s.code(), s.message() + " (no more writes to this store until a restart)");
    return s;
  }

  std::uint64_t reserve_bytes_;
  std::mutex mutex_;
  Status failed_;
};

}  // namespace paycore
