#pragma once
// Helpers of the archive tests: a temporary directory, payments made from a few fields, a store
// opened on it, and raw access to the RocksDB underneath (to damage what the store wrote).

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "archive/store.hpp"
#include "core/money.hpp"

namespace paycore::testing {

class ArchiveDir {
 public:
  ArchiveDir() {
    char pattern[] = "/tmp/paycore-archive-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ArchiveDir(const ArchiveDir&) = delete;
  ArchiveDir& operator=(const ArchiveDir&) = delete;
  ~ArchiveDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  // The store's directory (inside the temporary one, so that "missing" can be tested too).
  std::string store() const { return path_ + "/archive"; }

 private:
  std::string path_;
};

inline ArchiveOptions small_options(const std::string& dir) {
  ArchiveOptions options;
  options.dir = dir;
  options.block_cache_bytes = std::size_t{8} << 20;
  return options;
}

inline std::unique_ptr<ArchiveStore> open_store(const std::string& dir, bool must_exist = false) {
  ArchiveOptions options = small_options(dir);
  options.must_exist = must_exist;
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  EXPECT_TRUE(store.is_ok()) << store.status().to_string();
  if (!store.is_ok()) return nullptr;
  return std::move(*store);
}

// A completed external-channel payment of 1000 CNY cents, updated 10 µs after it was created.
inline ArchivedPayment make_payment(std::string_view merchant, std::string_view order,
                                    std::int64_t created_at_us,
                                    PaymentStatus status = PaymentStatus::completed,
                                    std::string_view channel = "alipay") {
  ArchivedPayment archived;
  PaymentView& p = archived.payment;
  p.merchant_id = Id::of(merchant);
  p.order_id = Id::of(order);
  p.request_id = Id::of("req_" + std::string(order));
  p.channel = Id::of(channel);
  if (channel == "balance") {
    p.payer_account_id = Id::of("customer_1");
    p.mandate_id = Id::of("mandate_1");
  } else {
    p.channel_txn_id = Id::of("txn_" + std::string(order));
  }
  p.amount = 1000;
  p.currency = currency_from_code("CNY").value();
  p.created_at_us = created_at_us;
  p.updated_at_us = created_at_us + 10;
  p.status = status;
  return archived;
}

inline void add_refund(ArchivedPayment* archived, std::string_view request_id, Amount amount,
                       std::int64_t at_us) {
  archived->refunds.push_back({Id::of(request_id), amount, at_us});
  archived->payment.refunded_amount += amount;
  archived->payment.updated_at_us = at_us;
  if (archived->payment.refunded_amount == archived->payment.amount) {
    archived->payment.status = PaymentStatus::refunded;
  }
}

// Writes `payments` as the store's next job.
inline Status write_job(ArchiveStore& store, const std::vector<ArchivedPayment>& payments) {
  ArchivePosition position = store.position();
  position.jobs += 1;
  position.lsn += 1;
  position.rows_end += static_cast<std::uint32_t>(payments.size());
  return store.write(payments, position);
}

inline void expect_same(const ArchivedPayment& a, const ArchivedPayment& b) {
  const PaymentView& x = a.payment;
  const PaymentView& y = b.payment;
  EXPECT_EQ(x.merchant_id.view(), y.merchant_id.view());
  EXPECT_EQ(x.order_id.view(), y.order_id.view());
  EXPECT_EQ(x.request_id.view(), y.request_id.view());
  EXPECT_EQ(x.channel.view(), y.channel.view());
  EXPECT_EQ(x.payer_account_id.view(), y.payer_account_id.view());
  EXPECT_EQ(x.channel_txn_id.view(), y.channel_txn_id.view());
  EXPECT_EQ(x.mandate_id.view(), y.mandate_id.view());
  EXPECT_EQ(x.amount, y.amount);
  EXPECT_EQ(x.refunded_amount, y.refunded_amount);
  EXPECT_EQ(x.created_at_us, y.created_at_us);
  EXPECT_EQ(x.updated_at_us, y.updated_at_us);
  EXPECT_EQ(x.currency, y.currency);
  EXPECT_EQ(x.status, y.status);
  ASSERT_EQ(a.refunds.size(), b.refunds.size());
  for (std::size_t i = 0; i < a.refunds.size(); ++i) {
    EXPECT_EQ(a.refunds[i].request_id.view(), b.refunds[i].request_id.view());
    EXPECT_EQ(a.refunds[i].amount, b.refunds[i].amount);
    EXPECT_EQ(a.refunds[i].created_at_us, b.refunds[i].created_at_us);
  }
}

// RocksDB opened directly on a store's directory (the store must be closed).
class RawArchive {
 public:
  explicit RawArchive(const std::string& dir, bool create = false) {
    rocksdb::Options options;
    options.create_if_missing = create;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status = rocksdb::DB::Open(options, dir, &db);
    EXPECT_TRUE(status.ok()) << status.ToString();
    db_.reset(db);
  }
  ~RawArchive() {
    if (db_ != nullptr) (void)db_->Close();
  }
  std::optional<std::string> get(const std::string& key) {
    std::string value;
    if (!db_->Get(rocksdb::ReadOptions(), key, &value).ok()) return std::nullopt;
    return value;
  }
  void put(const std::string& key, const std::string& value) {
    rocksdb::WriteOptions options;
    options.sync = true;
    ASSERT_TRUE(db_->Put(options, key, value).ok());
  }
  void remove(const std::string& key) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), key).ok());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

// Waits for `condition` at most 10 s (a bound against a hang, not a timing claim).
template <typename Condition>
bool eventually(Condition condition) {
  for (int i = 0; i < 10'000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

}  // namespace paycore::testing
