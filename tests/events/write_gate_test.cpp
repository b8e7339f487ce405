// RocksdbWriteGate (base/rocksdb_status.hpp): a store's writes kept away from a full disk.
#include <gtest/gtest.h>

#include <rocksdb/db.h>

#include <cstdlib>
#include <limits>
#include <memory>

#include "base/rocksdb_status.hpp"

namespace paycore::testing {
namespace {

class WriteGate : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/paycore-gate-XXXXXX";
    dir = ::mkdtemp(pattern);
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* opened = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &opened).ok());
    db.reset(opened);
  }
  void TearDown() override {
    db.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  bool has(const std::string& key) {
    std::string value;
    return db->Get(rocksdb::ReadOptions(), key, &value).ok();
  }
  std::string dir;
  std::unique_ptr<rocksdb::DB> db;
};

TEST_F(WriteGate, WritesWhileTheDiskHasRoom) {
  RocksdbWriteGate gate(0);
  rocksdb::WriteBatch batch;
  (void)batch.Put("k", "v");
  EXPECT_TRUE(gate.write(*db, dir, rocksdb::WriteOptions(), &batch, "test").is_ok());
  EXPECT_TRUE(has("k"));
}

// Below the reserve nothing reaches RocksDB, and the refusal is not sticky (the caller retries).
TEST_F(WriteGate, RefusesBelowTheReserveWithoutWriting) {
  RocksdbWriteGate gate(std::numeric_limits<std::uint64_t>::max());
  rocksdb::WriteBatch batch;
  (void)batch.Put("k", "v");
  const Status s = gate.write(*db, dir, rocksdb::WriteOptions(), &batch, "test");
  EXPECT_EQ(s.code(), StatusCode::kNoSpace);
  EXPECT_NE(s.message().find("kept for the log"), std::string::npos) << s.message();
  EXPECT_FALSE(has("k"));
}

}  // namespace
}  // namespace paycore::testing
