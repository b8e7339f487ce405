// LMDB with its default, durable commit: mdb_txn_commit writes the dirty pages, fdatasyncs,
// then writes and syncs the meta page (no MDB_NOSYNC, MDB_NOMETASYNC or MDB_WRITEMAP).
#include <lmdb.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include "bench/archive/stores.hpp"

namespace paycore::archive {
namespace {

void check(int rc, std::string_view what) {
  if (rc != MDB_SUCCESS) {
    fail_stop(what, mdb_strerror(rc));
  }
}

MDB_val as_val(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view as_view(const MDB_val& val) {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}

class LmdbReader final : public Reader {
 public:
  LmdbReader(MDB_env* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {}
  ~LmdbReader() override {
    if (txn_ != nullptr) {
      mdb_txn_abort(txn_);
    }
  }

  void begin_view() override {
    if (txn_ == nullptr) {
      check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_), "mdb_txn_begin(read)");
    } else {
      check(mdb_txn_renew(txn_), "mdb_txn_renew");
    }
  }
  void end_view() override {
    PAYCORE_ASSERT(txn_ != nullptr);
    mdb_txn_reset(txn_);
  }
  bool get(std::string_view key, std::string& value) override {
    MDB_val k = as_val(key);
    MDB_val v{};
    const int rc = mdb_get(txn_, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) {
      return false;
    }
    check(rc, "mdb_get");
    value.assign(as_view(v));
    return true;
  }
  void scan_forward(std::string_view from,
                    FunctionRef<bool(std::string_view, std::string_view)> visit) override {
    MDB_cursor* cursor = open_cursor();
    MDB_val k = as_val(from);
    MDB_val v{};
    for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc != MDB_NOTFOUND;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
      check(rc, "mdb_cursor_get(next)");
      if (!visit(as_view(k), as_view(v))) {
        break;
      }
    }
    mdb_cursor_close(cursor);
  }
  void scan_backward(std::string_view before,
                     FunctionRef<bool(std::string_view, std::string_view)> visit) override {
    MDB_cursor* cursor = open_cursor();
    MDB_val k = as_val(before);
    MDB_val v{};
    // SET_RANGE lands on the first key >= before; the one before it is where we start.
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cursor, &k, &v, MDB_LAST)
                            : mdb_cursor_get(cursor, &k, &v, MDB_PREV);
    for (; rc != MDB_NOTFOUND; rc = mdb_cursor_get(cursor, &k, &v, MDB_PREV)) {
      check(rc, "mdb_cursor_get(prev)");
      if (!visit(as_view(k), as_view(v))) {
        break;
      }
    }
    mdb_cursor_close(cursor);
  }

 private:
  MDB_cursor* open_cursor() {
    MDB_cursor* cursor = nullptr;
    check(mdb_cursor_open(txn_, dbi_, &cursor), "mdb_cursor_open");
    return cursor;
  }

  MDB_env* env_;
  MDB_dbi dbi_;
  MDB_txn* txn_ = nullptr;
};

class LmdbStore final : public Store {
 public:
  explicit LmdbStore(const StoreOptions& options) : no_readahead_(options.lmdb_no_readahead) {
    ::mkdir(options.dir.c_str(), 0755);
    check(mdb_env_create(&env_), "mdb_env_create");
    check(mdb_env_set_mapsize(env_, options.map_size_bytes), "mdb_env_set_mapsize");
    check(mdb_env_set_maxreaders(env_, 126), "mdb_env_set_maxreaders");
    check(mdb_env_open(env_, options.dir.c_str(), no_readahead_ ? MDB_NORDAHEAD : 0U, 0644), "mdb_env_open");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin(open)");
    check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "mdb_dbi_open");
    check(mdb_txn_commit(txn), "mdb_txn_commit(open)");
  }
  ~LmdbStore() override { mdb_env_close(env_); }

  void write_batch(const std::vector<Put>& puts) override {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin(write)");
    for (const Put& put : puts) {
      MDB_val k = as_val(put.key);
      MDB_val v = as_val(put.value);
      check(mdb_put(txn, dbi_, &k, &v, 0), "mdb_put");
    }
    check(mdb_txn_commit(txn), "mdb_txn_commit");
  }
  std::unique_ptr<Reader> make_reader() override {
    return std::make_unique<LmdbReader>(env_, dbi_);
  }
  double wait_for_background(double /*limit_s*/) override { return 0; }  // commits do it all
  std::string describe() override {
    MDB_stat stat{};
    check(mdb_env_stat(env_, &stat), "mdb_env_stat");
    MDB_envinfo info{};
    check(mdb_env_info(env_, &info), "mdb_env_info");
    return "lmdb: page " + std::to_string(stat.ms_psize) + " B, depth " +
           std::to_string(stat.ms_depth) + ", branch pages " +
           std::to_string(stat.ms_branch_pages) + ", leaf pages " +
           std::to_string(stat.ms_leaf_pages) + ", overflow pages " +
           std::to_string(stat.ms_overflow_pages) + ", entries " +
           std::to_string(stat.ms_entries) + ", last page " + std::to_string(info.me_last_pgno) +
           ", map " + std::to_string(info.me_mapsize) + " B\n";
  }
  std::string durability() const override {
    return "lmdb: default flags (commit = write pages + fdatasync + meta page + fdatasync per "
           "write transaction)" +
           std::string(no_readahead_ ? ", MDB_NORDAHEAD" : "");
  }

 private:
  bool no_readahead_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_lmdb(const StoreOptions& options) {
  return std::make_unique<LmdbStore>(options);
}

}  // namespace paycore::archive
