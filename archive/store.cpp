// ArchiveStore on RocksDB: options, open, the job write, point reads and the two range scans.
// The bytes are archive/format.hpp's; this file only moves them.
#include "archive/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "archive/format.hpp"
#include "archive/store_impl.hpp"
#include "core/id.hpp"

namespace paycore {

using archive::describe_key;
using archive::from_rocksdb;
using archive::slice;
using archive::view;

namespace {

rocksdb::CompressionType pick_compression() {
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  const bool has_lz4 =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  return has_lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

// docs/archive-store.md "Durable settings", with two limits added: index and filter blocks are
// charged to the block cache (at 300M payments the bloom filters alone are ~1 GB, which must not
// sit outside the cache's bound) and RocksDB's own LOG files are capped.
rocksdb::Options make_options(const ArchiveOptions& options) {
  rocksdb::Options db;
  db.create_if_missing = !options.must_exist && !options.read_only;
  db.paranoid_checks = true;
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;  // a torn tail is dropped
  db.max_background_jobs = 2;                                             // the machine has 2 cores
  db.bytes_per_sync = std::uint64_t{1} << 20;
  db.write_buffer_size = std::size_t{64} << 20;
  db.max_write_buffer_number = 3;
  db.target_file_size_base = std::uint64_t{64} << 20;
  db.max_bytes_for_level_base = std::uint64_t{256} << 20;
  db.level_compaction_dynamic_level_bytes = true;
  db.compression = pick_compression();
  db.max_open_files = 1000;  // a limit on file descriptors too
  db.max_log_file_size = std::size_t{16} << 20;
  db.keep_log_file_num = 4;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_size = 4096;
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return db;
}

Status check_options(const ArchiveOptions& options) {
  if (options.dir.empty()) return Status::invalid_argument("archive: no directory given");
  if (options.block_cache_bytes == 0) {
    return Status::invalid_argument("archive: block_cache_bytes must be > 0");
  }
  return Status::ok();
}

// A store that must be there is refused before RocksDB is asked (it would say "does not exist
// (create_if_missing is false)", which does not say what is missing for whom).
Status check_exists(const ArchiveOptions& options) {
  if (!options.must_exist && !options.read_only) return Status::ok();
  std::error_code error;
  const bool exists =
      std::filesystem::exists(std::filesystem::path(options.dir) / "CURRENT", error);
  if (exists) return Status::ok();
  return Status::not_found("archive missing: no RocksDB store at " + options.dir +
                           " (the archive must exist: payments were archived there)");
}

StatusOr<std::unique_ptr<rocksdb::DB>> open_db(const ArchiveOptions& options) {
  const rocksdb::Options db_options = make_options(options);
  if (options.low_priority && !options.read_only) {
    // Each pool's threads apply it themselves before their next job, those made later too.
    // NotSupported (an Env without it) only leaves them at normal priority.
    rocksdb::Env* env = rocksdb::Env::Default();
    for (const rocksdb::Env::Priority pool : {rocksdb::Env::LOW, rocksdb::Env::HIGH}) {
      (void)env->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kLow);
    }
  }
  rocksdb::DB* db = nullptr;
  const rocksdb::Status status = options.read_only
                                     ? rocksdb::DB::OpenForReadOnly(db_options, options.dir, &db)
                                     : rocksdb::DB::Open(db_options, options.dir, &db);
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(status, "opening archive " + options.dir));
  PAYCORE_ASSERT(db != nullptr);
  return std::unique_ptr<rocksdb::DB>(db);
}

// Reads `key`; nullopt when it is absent.
StatusOr<std::optional<std::string>> get_value(rocksdb::DB& db, std::string_view key) {
  std::string value;
  const rocksdb::Status status = db.Get(rocksdb::ReadOptions(), slice(key), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(status, "reading archive key " + describe_key(key)));
  return std::optional<std::string>(std::move(value));
}

bool store_is_empty(rocksdb::DB& db) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  return !it->Valid();
}

Status write_format(rocksdb::DB& db) {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const std::string key = archive::meta_key(archive::meta_format_name);
  return from_rocksdb(db.Put(write_options, slice(key),
                             slice(archive::encode_format(archive::archive_format_version))),
                      "writing the archive's format key");
}

// The format key: checked, or written into a new store.
Status load_format(rocksdb::DB& db, const ArchiveOptions& options) {
  const std::string key = archive::meta_key(archive::meta_format_name);
  StatusOr<std::optional<std::string>> value = get_value(db, key);
  PAYCORE_RETURN_IF_ERROR(value.status());
  if (!value->has_value()) {
    if (!store_is_empty(db)) {
      return Status::corruption("archive " + options.dir + " holds data but no format key");
    }
    if (options.must_exist || options.read_only) {
      return Status::corruption("archive missing: the store at " + options.dir +
                                " is empty (the archive must exist: payments were archived there)");
    }
    return write_format(db);
  }
  StatusOr<std::uint8_t> version = archive::decode_format(**value);
  PAYCORE_RETURN_IF_ERROR(version.status().with_context("archive " + options.dir));
  if (*version != archive::archive_format_version) {
    return Status::corruption("archive " + options.dir + ": format version " +
                              std::to_string(*version) + " is not one this build reads (" +
                              std::to_string(archive::archive_format_version) + ")");
  }
  return Status::ok();
}

StatusOr<ArchivePosition> load_position(rocksdb::DB& db, const ArchiveOptions& options) {
  StatusOr<std::optional<std::string>> value =
      get_value(db, archive::meta_key(archive::meta_position_name));
  PAYCORE_RETURN_IF_ERROR(value.status());
  ArchivePosition position;
  if (value->has_value()) {
    StatusOr<archive::PositionFields> fields = archive::decode_position(**value);
    PAYCORE_RETURN_IF_ERROR(fields.status().with_context("archive " + options.dir));
    position = {fields->rows_end, fields->lsn, fields->as_of_us, fields->jobs};
  }
  if (options.must_exist && position.jobs == 0) {
    return Status::corruption("archive missing: the store at " + options.dir +
                              " holds no archived job (the archive must exist: payments were "
                              "archived there)");
  }
  return position;
}

}  // namespace

ArchiveStore::ArchiveStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ArchiveStore::~ArchiveStore() {
  // Close's status is dropped: every write was synced when it returned, so nothing of the
  // archive depends on the close; a failure here has no one left to tell.
  if (impl_->db != nullptr) (void)impl_->db->Close();
}

StatusOr<std::unique_ptr<ArchiveStore>> ArchiveStore::open(const ArchiveOptions& options) {
  PAYCORE_RETURN_IF_ERROR(check_options(options));
  PAYCORE_RETURN_IF_ERROR(check_exists(options));
  StatusOr<std::unique_ptr<rocksdb::DB>> db = open_db(options);
  PAYCORE_RETURN_IF_ERROR(db.status());
  auto impl = std::make_unique<Impl>();
  impl->dir = options.dir;
  impl->read_only = options.read_only;
  impl->db = std::move(*db);
  // From here the store closes the database on every path (its destructor).
  std::unique_ptr<ArchiveStore> store(new ArchiveStore(std::move(impl)));
  PAYCORE_RETURN_IF_ERROR(load_format(*store->impl_->db, options));
  StatusOr<ArchivePosition> position = load_position(*store->impl_->db, options);
  PAYCORE_RETURN_IF_ERROR(position.status());
  store->impl_->position = *position;
  return store;
}

const std::string& ArchiveStore::dir() const { return impl_->dir; }

ArchivePosition ArchiveStore::position() const {
  std::lock_guard lock(impl_->position_mutex);
  return impl_->position;
}

namespace {

Status check_next_position(const ArchivePosition& current, const ArchivePosition& next) {
  if (next.jobs != current.jobs + 1) {
    return Status::invalid_argument("archive position: job " + std::to_string(next.jobs) +
                                    " does not follow job " + std::to_string(current.jobs));
  }
  if (next.lsn < current.lsn) {
    return Status::invalid_argument("archive position: lsn " + std::to_string(next.lsn) +
                                    " is before the archive's " + std::to_string(current.lsn));
  }
  return Status::ok();
}

Status put(rocksdb::WriteBatch* batch, std::string_view key, std::string_view value) {
  return from_rocksdb(batch->Put(slice(key), slice(value)),
                      "adding " + describe_key(key) + " to the archive's batch");
}

// A payment that came back from the archive holds only its later refunds (core/archive_port.hpp,
// refunds_follow_archived): the record gets the archive's refunds, then those it does not hold
// yet (same_refund: request_id, time and amount, so that writing the same copy twice adds
// nothing, while a request_id reused after the idempotency retention is a refund of its own).
StatusOr<ArchivedPayment> with_archived_refunds(const ArchivedPayment& payment,
                                                const std::optional<ArchivedPayment>& old) {
  if (!payment.refunds_follow_archived) return payment;
  if (!old.has_value()) {
    return Status::corruption("payment " + std::string(payment.payment.merchant_id.view()) + "/" +
                              std::string(payment.payment.order_id.view()) +
                              " came back from the archive, which no longer holds it");
  }
  ArchivedPayment merged = payment;
  merged.refunds_follow_archived = false;
  merged.refunds = old->refunds;
  for (const RefundView& refund : payment.refunds) {
    const bool known = std::any_of(old->refunds.begin(), old->refunds.end(),
                                   [&](const RefundView& r) { return same_refund(r, refund); });
    if (!known) merged.refunds.push_back(refund);
  }
  PAYCORE_RETURN_IF_ERROR(archive::check_payment(merged));
  return merged;
}

// A job's puts, sorted by key before they go into the batch: RocksDB's memtable is a skip list
// that inserts a run of ascending keys from where the previous insert left off (its splice)
// instead of searching from the top for each key; the 'P' and 'L' keys of a job are otherwise
// in random order (docs/benchmarks.md "Hot and cold": the write rate).
struct JobPuts {
  std::vector<std::string> records;
  std::vector<std::pair<std::string, std::size_t>> puts;  // key, index into records
};

// The 'P', 'L' and 'D' records of `payment`, whose 'P' key is `key`.
void put_records(std::string key, const ArchivedPayment& payment, JobPuts* job) {
  const PaymentView& p = payment.payment;
  const std::size_t record = job->records.size();
  job->records.push_back(archive::encode_payment(payment));
  job->puts.emplace_back(std::move(key), record);
  job->puts.emplace_back(archive::list_key(p.merchant_id.view(), p.created_at_us, p.order_id.view()),
                         record);
  job->puts.emplace_back(archive::day_key(p.created_at_us, p.merchant_id.view(), p.order_id.view()),
                         record);
}

// The keys of one payment. Only a payment back from the archive reads what is stored (its
// refunds follow the archive's); any other is written blind: a payment's created_at_us never
// changes (an order id is unique for ever), so a payment archived again (it changed after its
// copy was read) replaces its three records under the same keys.
Status add_payment(rocksdb::DB& db, const ArchivedPayment& given, JobPuts* job) {
  std::string key =
      archive::payment_key(given.payment.merchant_id.view(), given.payment.order_id.view());
  if (!given.refunds_follow_archived) {
    put_records(std::move(key), given, job);
    return Status::ok();
  }
  StatusOr<std::optional<std::string>> old = get_value(db, key);
  PAYCORE_RETURN_IF_ERROR(old.status());
  std::optional<ArchivedPayment> old_payment;
  if (old->has_value()) {
    StatusOr<ArchivedPayment> decoded = archive::decode_payment(key, **old);
    PAYCORE_RETURN_IF_ERROR(decoded.status());
    old_payment = std::move(*decoded);
  }
  StatusOr<ArchivedPayment> payment = with_archived_refunds(given, old_payment);
  PAYCORE_RETURN_IF_ERROR(payment.status());
  if (old_payment && old_payment->payment.created_at_us != payment->payment.created_at_us) {
    return Status::corruption(describe_key(key) +
                              ": the archive holds this payment with another created_at");
  }
  put_records(std::move(key), *payment, job);
  return Status::ok();
}

}  // namespace

Status ArchiveStore::write(std::span<const ArchivedPayment> payments,
                           const ArchivePosition& position) {
  if (impl_->read_only) {
    return Status(StatusCode::kReadOnly, "archive " + impl_->dir + " is open read-only");
  }
  std::lock_guard write_lock(impl_->write_mutex);
  PAYCORE_RETURN_IF_ERROR(check_next_position(this->position(), position));
  for (const ArchivedPayment& payment : payments) {
    // A payment back from the archive is checked once merged with the archive's refunds.
    if (!payment.refunds_follow_archived) {
      PAYCORE_RETURN_IF_ERROR(archive::check_payment(payment));
    }
  }
  JobPuts job;
  job.records.reserve(payments.size());
  job.puts.reserve(3 * payments.size());
  for (const ArchivedPayment& payment : payments) {
    PAYCORE_RETURN_IF_ERROR(add_payment(*impl_->db, payment, &job));
  }
  std::sort(job.puts.begin(), job.puts.end());
  rocksdb::WriteBatch batch;
  for (const auto& [key, record] : job.puts) {
    PAYCORE_RETURN_IF_ERROR(put(&batch, key, job.records[record]));
  }
  PAYCORE_RETURN_IF_ERROR(put(
      &batch, archive::meta_key(archive::meta_position_name),
      archive::encode_position(position.rows_end, position.lsn, position.as_of_us, position.jobs)));
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // the core evicts these payments once this returns ok
  PAYCORE_RETURN_IF_ERROR(
      impl_->gate.write(*impl_->db, impl_->dir, write_options, &batch,
                        "writing archive job " + std::to_string(position.jobs) + " to " + impl_->dir));
  std::lock_guard position_lock(impl_->position_mutex);
  impl_->position = position;
  return Status::ok();
}

StatusOr<std::optional<ArchivedPayment>> ArchiveStore::get_payment(
    std::string_view merchant_id, std::string_view order_id) const {
  if (!id_is_valid(merchant_id) || !id_is_valid(order_id)) {
    return Status::invalid_argument("archive lookup: merchant_id and order_id must be valid ids");
  }
  const std::string key = archive::payment_key(merchant_id, order_id);
  StatusOr<std::optional<std::string>> value = get_value(*impl_->db, key);
  PAYCORE_RETURN_IF_ERROR(value.status());
  if (!value->has_value()) return std::optional<ArchivedPayment>();
  StatusOr<ArchivedPayment> payment = archive::decode_payment(key, **value);
  PAYCORE_RETURN_IF_ERROR(payment.status());
  return std::optional<ArchivedPayment>(std::move(*payment));
}

StatusOr<std::vector<RefundView>> ArchiveStore::list_refunds(std::string_view merchant_id,
                                                             std::string_view order_id) const {
  StatusOr<std::optional<ArchivedPayment>> payment = get_payment(merchant_id, order_id);
  PAYCORE_RETURN_IF_ERROR(payment.status());
  if (!payment->has_value()) {
    return Status::not_found("payment " + std::string(merchant_id) + "/" + std::string(order_id) +
                             " is not archived");
  }
  return std::move((*payment)->refunds);
}

Status ArchiveStore::for_each_created_between(
    std::int64_t from_us, std::int64_t to_us,
    FunctionRef<bool(const ArchivedPayment&)> visit) const {
  if (from_us < 0 || to_us < from_us) {
    return Status::invalid_argument("archive scan: need 0 <= from_us <= to_us, got [" +
                                    std::to_string(from_us) + ", " + std::to_string(to_us) + ")");
  }
  const std::string lower = archive::day_prefix(from_us);
  const std::string upper = archive::day_prefix(to_us);
  const rocksdb::Slice lower_slice = slice(lower);
  const rocksdb::Slice upper_slice = slice(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower_slice;
  read_options.iterate_upper_bound = &upper_slice;
  read_options.fill_cache = false;  // a day read once must not evict what the listing reads
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    StatusOr<ArchivedPayment> payment = archive::decode_payment(view(it->key()), view(it->value()));
    PAYCORE_RETURN_IF_ERROR(payment.status());
    if (!visit(*payment)) return Status::ok();
  }
  return from_rocksdb(it->status(), "scanning archive " + impl_->dir + " by day");
}

}  // namespace paycore
