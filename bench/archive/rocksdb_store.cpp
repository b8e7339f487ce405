// RocksDB with its durable setting: the write-ahead log on and synced on every batch (or, with
// --rocksdb-wal off, no log and a memtable flush per batch). Options are the ones a deployment
// would start from, written out so the report can name them.
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <memory>
#include <string>

#include "bench/archive/stores.hpp"

namespace paycore::archive {
namespace {

void check(const rocksdb::Status& status, std::string_view what) {
  if (!status.ok()) {
    fail_stop(what, status.ToString());
  }
}

rocksdb::CompressionType pick_compression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  if (std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end()) {
    return rocksdb::kLZ4Compression;
  }
  return rocksdb::kNoCompression;
}

class RocksReader final : public Reader {
 public:
  explicit RocksReader(rocksdb::DB* db) : db_(db) {}
  ~RocksReader() override { end_view(); }

  void begin_view() override {
    PAYCORE_ASSERT(snapshot_ == nullptr);
    snapshot_ = db_->GetSnapshot();
    read_options_.snapshot = snapshot_;
  }
  void end_view() override {
    if (snapshot_ != nullptr) {
      db_->ReleaseSnapshot(snapshot_);
      snapshot_ = nullptr;
      read_options_.snapshot = nullptr;
    }
  }
  bool get(std::string_view key, std::string& value) override {
    const rocksdb::Status status = db_->Get(read_options_, rocksdb::Slice(key.data(), key.size()),
                                            &value);
    if (status.IsNotFound()) {
      return false;
    }
    check(status, "rocksdb Get");
    return true;
  }
  void scan_forward(std::string_view from,
                    FunctionRef<bool(std::string_view, std::string_view)> visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
      if (!visit(it->key().ToStringView(), it->value().ToStringView())) {
        break;
      }
    }
    check(it->status(), "rocksdb iterator");
  }
  void scan_backward(std::string_view before,
                     FunctionRef<bool(std::string_view, std::string_view)> visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    const rocksdb::Slice bound(before.data(), before.size());
    it->SeekForPrev(bound);
    if (it->Valid() && it->key() == bound) {
      it->Prev();
    }
    for (; it->Valid(); it->Prev()) {
      if (!visit(it->key().ToStringView(), it->value().ToStringView())) {
        break;
      }
    }
    check(it->status(), "rocksdb iterator");
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  rocksdb::ReadOptions read_options_;
};

class RocksStore final : public Store {
 public:
  explicit RocksStore(const StoreOptions& options) : wal_(options.rocksdb_wal) {
    rocksdb::Options db_options;
    db_options.create_if_missing = true;
    db_options.max_background_jobs = 2;  // the machine has 2 cores
    db_options.bytes_per_sync = 1 << 20;
    db_options.write_buffer_size = 64 << 20;
    db_options.max_write_buffer_number = 3;
    db_options.target_file_size_base = 64 << 20;
    db_options.max_bytes_for_level_base = 256 << 20;
    db_options.level_compaction_dynamic_level_bytes = true;
    db_options.compression = pick_compression();
    db_options.max_open_files = 1000;  // a limit on everything: file descriptors too
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.block_size = 4096;
    db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    compression_ = db_options.compression == rocksdb::kLZ4Compression ? "lz4" : "none";
    rocksdb::DB* db = nullptr;
    check(rocksdb::DB::Open(db_options, options.dir, &db), "rocksdb Open");
    db_.reset(db);
    write_options_.sync = wal_;
    write_options_.disableWAL = !wal_;
  }
  ~RocksStore() override {
    if (db_ != nullptr) {
      check(db_->Close(), "rocksdb Close");
    }
  }

  void write_batch(const std::vector<Put>& puts) override {
    rocksdb::WriteBatch batch;
    for (const Put& put : puts) {
      check(batch.Put(put.key, put.value), "rocksdb WriteBatch::Put");
    }
    check(db_->Write(write_options_, &batch), "rocksdb Write");
    if (!wal_) {
      // Without a log the batch is durable only once its memtable is in an SST.
      rocksdb::FlushOptions flush;
      flush.wait = true;
      check(db_->Flush(flush), "rocksdb Flush");
    }
  }
  double wait_for_background(double limit_s) override {
    const auto start = std::chrono::steady_clock::now();
    const auto waited_s = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    std::uint64_t pending = 1;
    std::uint64_t running = 1;
    while ((pending != 0 || running != 0) && waited_s() < limit_s) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      check_property("rocksdb.estimate-pending-compaction-bytes", pending);
      check_property("rocksdb.num-running-compactions", running);
    }
    return waited_s();
  }
  std::unique_ptr<Reader> make_reader() override { return std::make_unique<RocksReader>(db_.get()); }
  std::string describe() override {
    std::string text;
    std::string value;
    for (const char* property : {"rocksdb.estimate-num-keys", "rocksdb.total-sst-files-size",
                                 "rocksdb.estimate-pending-compaction-bytes",
                                 "rocksdb.num-running-compactions", "rocksdb.cur-size-all-mem-tables",
                                 "rocksdb.estimate-table-readers-mem",
                                 "rocksdb.block-cache-usage"}) {
      if (db_->GetProperty(property, &value)) {
        text += std::string(property) + " = " + value + "\n";
      }
    }
    if (db_->GetProperty("rocksdb.levelstats", &value)) {
      text += value;
    }
    return text;
  }
  std::string durability() const override {
    return wal_ ? "rocksdb: WAL on, WriteOptions.sync = true per batch, compression " + compression_
                : "rocksdb: WAL off, memtable flush (wait) per batch, compression " + compression_;
  }

 private:
  void check_property(const char* property, std::uint64_t& value) {
    if (!db_->GetIntProperty(property, &value)) {
      fail_stop("rocksdb GetIntProperty", property);
    }
  }

  bool wal_;
  std::string compression_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
};

}  // namespace

std::unique_ptr<Store> open_rocksdb(const StoreOptions& options) {
  return std::make_unique<RocksStore>(options);
}

}  // namespace paycore::archive
