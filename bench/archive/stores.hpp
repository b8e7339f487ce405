#pragma once
// The two embedded stores measured for issue 12, behind one small interface so that the
// workload code (archive_bench.cpp) is the same for both. Each is opened with its durable
// settings: a batch is on stable storage when write_batch returns.
//
// Errors stop the benchmark (fail_stop): a measurement that lost a write is not a figure.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/assert.hpp"
#include "base/function_ref.hpp"

namespace paycore::archive {

/// One key and value of a write batch.
struct Put {
  std::string key;
  std::string value;
};

/// A consistent view for one thread: point reads and ordered scans see the same state between
/// begin_view() and end_view(). Not shared between threads.
class Reader {
 public:
  virtual ~Reader() = default;
  virtual void begin_view() = 0;
  virtual void end_view() = 0;
  /// Copies the value of `key` into `value`; false when the key is absent.
  virtual bool get(std::string_view key, std::string& value) = 0;
  /// Visits keys >= `from` in ascending order until `visit` returns false or keys run out.
  virtual void scan_forward(std::string_view from,
                            FunctionRef<bool(std::string_view, std::string_view)> visit) = 0;
  /// Visits keys < `before` in descending order until `visit` returns false or keys run out.
  virtual void scan_backward(std::string_view before,
                             FunctionRef<bool(std::string_view, std::string_view)> visit) = 0;
};

/// An opened store. write_batch is called from one thread; readers from any number of others.
class Store {
 public:
  virtual ~Store() = default;
  /// Applies every put atomically and returns once the batch is durable.
  virtual void write_batch(const std::vector<Put>& puts) = 0;
  [[nodiscard]] virtual std::unique_ptr<Reader> make_reader() = 0;
  /// Waits, at most `limit_s`, for background work the writes left owing (compaction); returns
  /// the seconds waited. The write amplification of a store is only whole after it.
  virtual double wait_for_background(double limit_s) = 0;
  /// The store's own account of itself (levels, pending compaction, B-tree depth), one line each.
  [[nodiscard]] virtual std::string describe() = 0;
  /// The durability settings in force, as the report prints them.
  [[nodiscard]] virtual std::string durability() const = 0;
};

/// Which store, and the knobs the benchmark varies.
struct StoreOptions {
  std::string kind;               // "rocksdb" or "lmdb"
  std::string dir;                // created when absent
  std::uint64_t block_cache_bytes = 256ULL << 20;       // rocksdb
  std::uint64_t map_size_bytes = 64ULL << 30;           // lmdb: the largest the file may grow
  bool lmdb_no_readahead = false;  // MDB_NORDAHEAD: no readahead on the map's page faults
  bool rocksdb_wal = true;  // true: WAL + sync per batch; false: no WAL, flush per batch
};

[[nodiscard]] std::unique_ptr<Store> open_rocksdb(const StoreOptions& options);
[[nodiscard]] std::unique_ptr<Store> open_lmdb(const StoreOptions& options);

[[noreturn]] void fail_stop(std::string_view what, std::string_view detail);

}  // namespace paycore::archive
