// DeliveryStore on RocksDB: open, the enqueue's batch, the read-modify-write of results, the
// per-endpoint due scan and retention. The bytes are webhooks/delivery_format.hpp's.
#include "webhooks/delivery_store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <limits>
#include <mutex>
#include <set>

#include "base/assert.hpp"
#include "base/rocksdb_status.hpp"

namespace paycore::webhooks {
namespace {

rocksdb::Slice slice(std::string_view bytes) { return rocksdb_slice(bytes); }
std::string_view view(const rocksdb::Slice& bytes) { return rocksdb_view(bytes); }

// Small values, few keys: the archive's settings (archive/store.cpp) scaled down, with the
// same torn-tail rule and caps on RocksDB's own log files. A Bloom filter: each new delivery
// first asks whether it is there already (a repeat after a restart), and almost never is; without
// it those reads were a sixth of the event deriver's CPU under load.
rocksdb::Options make_options(const DeliveryStoreOptions& options) {
  return rocksdb_small_store_options(options.block_cache_bytes, 1, /*bloom_bits_per_key=*/10);
}

// The keys with `prefix`, in order: an iterator bounded so that it never reads past them.
struct PrefixScan {
  std::string upper;
  rocksdb::Slice upper_slice;
  rocksdb::ReadOptions read_options;
  std::unique_ptr<rocksdb::Iterator> it;
  PrefixScan(rocksdb::DB& db, std::string_view prefix, std::string_view seek_to) {
    upper = std::string(prefix);
    upper.push_back('\xff');  // every key under prefix sorts before prefix + 0xff... (ids < 0xff)
    upper_slice = slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    it.reset(db.NewIterator(read_options));
    it->Seek(slice(seek_to));
  }
};

}  // namespace

struct DeliveryStore::Impl {
  std::string dir;
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mutex;  // one read-modify-write at a time
  std::atomic<std::uint64_t> pending_count{0};
  RocksdbWriteGate gate;  // no write after a failed one

  StatusOr<std::optional<std::string>> get(std::string_view key) const {
    std::string value;
    const rocksdb::Status status = db->Get(rocksdb::ReadOptions(), slice(key), &value);
    if (status.IsNotFound()) return std::optional<std::string>();
    PAYCORE_RETURN_IF_ERROR(from_rocksdb(status, "delivery store " + dir + ": read"));
    return std::optional<std::string>(std::move(value));
  }

  Status write(rocksdb::WriteBatch& batch, bool sync) {
    rocksdb::WriteOptions options;
    options.sync = sync;
    return gate.write(*db, dir, options, &batch, "delivery store " + dir + ": write");
  }

  // A caller's position ('M' keys: handed over, changes applied), written after the writes it
  // covers and unsynced: a crash keeps a prefix of the WAL, so it never runs ahead of them.
  Status note_position(const std::string& key, std::uint64_t position) {
    const std::lock_guard lock(write_mutex);
    rocksdb::WriteBatch batch;
    (void)batch.Put(key, format::encode_position(position));
    return write(batch, /*sync=*/false);
  }
  StatusOr<std::optional<std::uint64_t>> read_position(const std::string& key, std::string_view what) const {
    StatusOr<std::optional<std::string>> value = get(key);
    PAYCORE_RETURN_IF_ERROR(value.status());
    if (!value->has_value()) return std::optional<std::uint64_t>();
    StatusOr<std::uint64_t> position = format::decode_position(**value, what);
    PAYCORE_RETURN_IF_ERROR(position.status());
    return std::optional<std::uint64_t>(*position);
  }

  Status check_or_write_format() {
    StatusOr<std::optional<std::string>> format = get(format::format_key());
    PAYCORE_RETURN_IF_ERROR(format.status());
    if (format->has_value()) return format::decode_format(**format);
    rocksdb::WriteBatch batch;
    PAYCORE_RETURN_IF_ERROR(from_rocksdb(
        batch.Put(slice(format::format_key()), slice(format::encode_format())), "format key"));
    // Past the write gate: a few bytes at open, which must not fail on a nearly full disk.
    rocksdb::WriteOptions options;
    options.sync = true;
    return from_rocksdb(db->Write(options, &batch), "delivery store " + dir + ": format key");
  }
};

// ---- Open --------------------------------------------------------------------------------------

namespace {

std::uint64_t count_prefix(rocksdb::DB& db, std::string_view prefix) {
  PrefixScan scan(db, prefix, prefix);
  std::uint64_t count = 0;
  for (; scan.it->Valid(); scan.it->Next()) ++count;
  return count;
}

}  // namespace

DeliveryStore::DeliveryStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeliveryStore::~DeliveryStore() = default;

StatusOr<std::unique_ptr<DeliveryStore>> DeliveryStore::open(const DeliveryStoreOptions& options) {
  if (options.dir.empty()) return Status::invalid_argument("delivery store: no directory given");
  auto impl = std::make_unique<Impl>();
  impl->dir = options.dir;
  rocksdb::DB* db = nullptr;
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(rocksdb::DB::Open(make_options(options), options.dir, &db),
                                       "opening delivery store " + options.dir));
  PAYCORE_ASSERT(db != nullptr);
  impl->db.reset(db);
  PAYCORE_RETURN_IF_ERROR(impl->check_or_write_format());
  impl->pending_count = count_prefix(*impl->db, "T");
  return std::unique_ptr<DeliveryStore>(new DeliveryStore(std::move(impl)));
}

// ---- Enqueue -----------------------------------------------------------------------------------

namespace {

Status check_new(const StoredEvent& event, std::span<const NewDelivery> endpoints) {
  PAYCORE_RETURN_IF_ERROR(check_event(event));
  if (endpoints.size() > deliveries_per_event_max) {
    return Status::invalid_argument("more than 16 endpoints for one event");
  }
  for (const NewDelivery& endpoint : endpoints) {
    if (endpoint.endpoint_id.empty() || endpoint.endpoint_id.size() > id_bytes_max) {
      return Status::invalid_argument("endpoint id is 1..64 bytes");
    }
    if (endpoint.url.empty() || endpoint.url.size() > 0xffff) {
      return Status::invalid_argument("endpoint url length");
    }
    if (endpoint.secret.empty() || endpoint.secret.size() > 256) {
      return Status::invalid_argument("endpoint secret is 1..256 bytes");
    }
  }
  return Status::ok();
}

Status put(rocksdb::WriteBatch& batch, std::string_view key, std::string_view value) {
  return from_rocksdb(batch.Put(slice(key), slice(value)), "delivery store: batch put");
}
Status erase(rocksdb::WriteBatch& batch, std::string_view key) {
  return from_rocksdb(batch.Delete(slice(key)), "delivery store: batch delete");
}

// The index keys of a delivery in its state: 'T' when PENDING, 'F' when finished.
std::string index_key(const Delivery& d) {
  return d.state == DeliveryState::kPending
             ? format::due_key(d.endpoint_id, d.next_attempt_at_us, d.event_id)
             : format::finished_key(d.finished_at_us, d.event_id, d.endpoint_id);
}

}  // namespace

StatusOr<std::size_t> DeliveryStore::add(const StoredEvent& event,
                                         std::span<const NewDelivery> endpoints,
                                         std::int64_t now_us) {
  const EventToAdd one[] = {{&event, endpoints}};
  return add_many(one, now_us, /*sync=*/true);
}

namespace {

// Puts the event (unless stored or put earlier in this batch) and its new deliveries.
StatusOr<std::size_t> put_new(DeliveryStore::Impl& impl, const StoredEvent& event,
                              std::span<const NewDelivery> endpoints, std::int64_t now_us,
                              std::set<std::string>& batch_keys, rocksdb::WriteBatch& batch);

}  // namespace

StatusOr<std::size_t> DeliveryStore::add_many(std::span<const EventToAdd> events,
                                              std::int64_t now_us, bool sync) {
  if (events.size() > events_per_add_max) {
    return Status::invalid_argument("more than " + std::to_string(events_per_add_max) +
                                    " events in one add");
  }
  for (const EventToAdd& e : events) {
    PAYCORE_ASSERT(e.event != nullptr);
    PAYCORE_RETURN_IF_ERROR(check_new(*e.event, e.endpoints));
  }
  PAYCORE_ASSERT_GT(now_us, 0);
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  std::set<std::string> batch_keys;  // what this batch puts: a repeat within it is one
  std::size_t added_count = 0;
  for (const EventToAdd& e : events) {
    StatusOr<std::size_t> added = put_new(*impl_, *e.event, e.endpoints, now_us, batch_keys, batch);
    PAYCORE_RETURN_IF_ERROR(added.status());
    added_count += *added;
  }
  if (batch.Count() == 0) return std::size_t{0};
  PAYCORE_RETURN_IF_ERROR(impl_->write(batch, sync));
  impl_->pending_count += added_count;
  return added_count;
}

Status DeliveryStore::note_handed_over(std::uint64_t position) {
  return impl_->note_position(format::handed_over_key(), position);
}

StatusOr<std::optional<std::uint64_t>> DeliveryStore::handed_over() const {
  return impl_->read_position(format::handed_over_key(), "handed-over position");
}

Status DeliveryStore::note_changes_applied(std::uint64_t sequence) {
  return impl_->note_position(format::changes_applied_key(), sequence);
}

StatusOr<std::optional<std::uint64_t>> DeliveryStore::changes_applied() const {
  return impl_->read_position(format::changes_applied_key(), "changes-applied sequence");
}

Status DeliveryStore::sync() {
  // Not under write_mutex: the fsync must not hold up redeliver's or the dispatcher's writes
  // (and its callers run at idle CPU priority: docs/events.md "What it costs").
  return impl_->gate.sync_wal(*impl_->db, "delivery store " + impl_->dir + ": sync");
}

namespace {

StatusOr<std::size_t> put_new(DeliveryStore::Impl& impl, const StoredEvent& event,
                              std::span<const NewDelivery> endpoints, std::int64_t now_us,
                              std::set<std::string>& batch_keys, rocksdb::WriteBatch& batch) {
  const std::string event_key = format::event_key(event.id);
  StatusOr<std::optional<std::string>> stored_event = impl.get(event_key);
  PAYCORE_RETURN_IF_ERROR(stored_event.status());
  if (!stored_event->has_value() && batch_keys.insert(event_key).second) {
    PAYCORE_RETURN_IF_ERROR(put(batch, event_key, format::encode_event(event)));
  }
  std::size_t added_count = 0;
  for (const NewDelivery& endpoint : endpoints) {
    const std::string key = format::delivery_key(event.id, endpoint.endpoint_id);
    StatusOr<std::optional<std::string>> existing = impl.get(key);
    PAYCORE_RETURN_IF_ERROR(existing.status());
    if (existing->has_value() || !batch_keys.insert(key).second) continue;
    Delivery d;
    d.event_id = event.id;
    d.endpoint_id = endpoint.endpoint_id;
    d.event_created_at_us = event.created_at_us;
    d.next_attempt_at_us = now_us;
    d.url = endpoint.url;
    d.secret = endpoint.secret;
    PAYCORE_RETURN_IF_ERROR(put(batch, key, format::encode_delivery(d)));
    PAYCORE_RETURN_IF_ERROR(put(batch, index_key(d), {}));
    ++added_count;
  }
  return added_count;
}

}  // namespace

// ---- Reads -------------------------------------------------------------------------------------

StatusOr<std::optional<StoredEvent>> DeliveryStore::event(std::string_view event_id) const {
  StatusOr<std::optional<std::string>> value = impl_->get(format::event_key(event_id));
  PAYCORE_RETURN_IF_ERROR(value.status());
  if (!value->has_value()) return std::optional<StoredEvent>();
  StoredEvent event;
  PAYCORE_RETURN_IF_ERROR(format::decode_event(**value, event_id, &event));
  return std::optional<StoredEvent>(std::move(event));
}

StatusOr<std::optional<Delivery>> DeliveryStore::delivery(std::string_view event_id,
                                                          std::string_view endpoint_id) const {
  StatusOr<std::optional<std::string>> value =
      impl_->get(format::delivery_key(event_id, endpoint_id));
  PAYCORE_RETURN_IF_ERROR(value.status());
  if (!value->has_value()) return std::optional<Delivery>();
  Delivery d;
  PAYCORE_RETURN_IF_ERROR(format::decode_delivery(**value, event_id, endpoint_id, &d));
  return std::optional<Delivery>(std::move(d));
}

StatusOr<std::vector<Delivery>> DeliveryStore::deliveries_of(std::string_view event_id) const {
  const std::string prefix = format::delivery_prefix(event_id);
  PrefixScan scan(*impl_->db, prefix, prefix);
  std::vector<Delivery> out;
  for (; scan.it->Valid() && out.size() < deliveries_per_event_max; scan.it->Next()) {
    const std::string_view key = view(scan.it->key());
    // The key is prefix · u8 len · endpoint_id.
    if (key.size() < prefix.size() + 2) return Status::corruption("delivery store: short 'D' key");
    const std::string_view endpoint_id = key.substr(prefix.size() + 1);
    Delivery d;
    PAYCORE_RETURN_IF_ERROR(
        format::decode_delivery(view(scan.it->value()), event_id, endpoint_id, &d));
    out.push_back(std::move(d));
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(scan.it->status(), "delivery store: scan"));
  return out;
}

// ---- Changes -----------------------------------------------------------------------------------

StatusOr<bool> DeliveryStore::put_absent(const StoredEvent& event, const Delivery& d) {
  PAYCORE_RETURN_IF_ERROR(check_event(event));
  PAYCORE_RETURN_IF_ERROR(check_delivery(d));
  if (event.id != d.event_id) return Status::invalid_argument("the delivery is of another event");
  const std::lock_guard lock(impl_->write_mutex);
  StatusOr<std::optional<Delivery>> held = delivery(d.event_id, d.endpoint_id);
  PAYCORE_RETURN_IF_ERROR(held.status());
  if (held->has_value()) return false;
  StatusOr<std::optional<std::string>> stored = impl_->get(format::event_key(event.id));
  PAYCORE_RETURN_IF_ERROR(stored.status());
  rocksdb::WriteBatch batch;
  if (!stored->has_value()) PAYCORE_RETURN_IF_ERROR(put(batch, format::event_key(event.id), format::encode_event(event)));
  PAYCORE_RETURN_IF_ERROR(put(batch, format::delivery_key(d.event_id, d.endpoint_id), format::encode_delivery(d)));
  PAYCORE_RETURN_IF_ERROR(put(batch, index_key(d), {}));
  PAYCORE_RETURN_IF_ERROR(impl_->write(batch, /*sync=*/false));
  if (d.state == DeliveryState::kPending) impl_->pending_count += 1;
  return true;
}

Status DeliveryStore::update(std::span<const DeliveryKey> keys, FunctionRef<void(Delivery&)> change,
                             bool sync) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  std::int64_t pending_delta = 0;
  for (const DeliveryKey& key : keys) {
    StatusOr<std::optional<Delivery>> read = delivery(key.event_id, key.endpoint_id);
    PAYCORE_RETURN_IF_ERROR(read.status());
    if (!read->has_value()) continue;
    Delivery d = std::move(**read);
    const std::string index_before = index_key(d);
    const bool pending_before = d.state == DeliveryState::kPending;
    change(d);
    const Status checked = check_delivery(d);
    PAYCORE_ASSERT(checked.is_ok());
    PAYCORE_ASSERT(d.event_id == key.event_id);
    const std::string index_after = index_key(d);
    if (index_after != index_before) {
      PAYCORE_RETURN_IF_ERROR(erase(batch, index_before));
      PAYCORE_RETURN_IF_ERROR(put(batch, index_after, {}));
    }
    PAYCORE_RETURN_IF_ERROR(put(batch, format::delivery_key(d.event_id, d.endpoint_id),
                                format::encode_delivery(d)));
    pending_delta += (d.state == DeliveryState::kPending ? 1 : 0) - (pending_before ? 1 : 0);
  }
  if (batch.Count() == 0) return Status::ok();
  PAYCORE_RETURN_IF_ERROR(impl_->write(batch, sync));
  impl_->pending_count += static_cast<std::uint64_t>(pending_delta);  // wraps back for < 0
  return Status::ok();
}

StatusOr<std::vector<std::pair<std::string, std::int64_t>>> DeliveryStore::due_endpoints() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  PrefixScan scan(*impl_->db, "T", "T");
  while (scan.it->Valid() && out.size() < endpoints_max) {
    StatusOr<format::DueKey> key = format::parse_due_key(view(scan.it->key()));
    PAYCORE_RETURN_IF_ERROR(key.status());
    out.emplace_back(key->endpoint_id, key->next_attempt_at_us);
    // Past this endpoint's keys: its prefix with the last byte raised (ids are < 0xff bytes).
    std::string next = format::due_prefix(key->endpoint_id);
    next.push_back('\xff');
    scan.it->Seek(slice(next));
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(scan.it->status(), "delivery store: due scan"));
  return out;
}

StatusOr<std::vector<format::DueKey>> DeliveryStore::due_of(std::string_view endpoint_id,
                                                            const DueFrom& from,
                                                            std::int64_t until_us,
                                                            std::size_t count_max,
                                                            std::int64_t* next_due_us) const {
  if (from.due_us < 0 || from.event_id.size() > id_bytes_max) {
    return Status::invalid_argument("due_of: from.due_us < 0 or from.event_id too long");
  }
  const std::string prefix = format::due_prefix(endpoint_id);
  PrefixScan scan(*impl_->db, prefix, format::due_seek_key(endpoint_id, from.due_us, from.event_id));
  std::vector<format::DueKey> out;
  std::int64_t next_us = std::numeric_limits<std::int64_t>::max();
  for (; scan.it->Valid(); scan.it->Next()) {
    StatusOr<format::DueKey> key = format::parse_due_key(view(scan.it->key()));
    PAYCORE_RETURN_IF_ERROR(key.status());
    if (key->next_attempt_at_us > until_us || out.size() == count_max) {
      next_us = key->next_attempt_at_us;
      break;
    }
    out.push_back(std::move(*key));
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(scan.it->status(), "delivery store: due scan"));
  if (next_due_us != nullptr) *next_due_us = next_us;
  return out;
}

Status DeliveryStore::disable_endpoint(std::string_view endpoint_id) {
  if (endpoint_id.empty() || endpoint_id.size() > id_bytes_max) {
    return Status::invalid_argument("endpoint id is 1..64 bytes");
  }
  rocksdb::WriteBatch batch;
  PAYCORE_RETURN_IF_ERROR(put(batch, format::disabled_key(endpoint_id), {}));
  return impl_->write(batch, /*sync=*/true);
}

StatusOr<std::vector<std::string>> DeliveryStore::disabled_endpoints() const {
  std::vector<std::string> out;
  PrefixScan scan(*impl_->db, "X", "X");
  for (; scan.it->Valid() && out.size() < endpoints_max; scan.it->Next()) {
    StatusOr<std::string> id = format::parse_disabled_key(view(scan.it->key()));
    PAYCORE_RETURN_IF_ERROR(id.status());
    out.push_back(std::move(*id));
  }
  return out;
}

StatusOr<std::size_t> DeliveryStore::purge_finished(std::int64_t before_us,
                                                    std::size_t count_max) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  std::set<std::string> deleted;  // delivery keys
  std::set<std::string> events;
  PrefixScan scan(*impl_->db, "F", "F");
  for (; scan.it->Valid() && deleted.size() < count_max; scan.it->Next()) {
    StatusOr<format::FinishedKey> key = format::parse_finished_key(view(scan.it->key()));
    PAYCORE_RETURN_IF_ERROR(key.status());
    if (key->finished_at_us >= before_us) break;
    const std::string delivery_key = format::delivery_key(key->event_id, key->endpoint_id);
    PAYCORE_RETURN_IF_ERROR(erase(batch, view(scan.it->key())));
    PAYCORE_RETURN_IF_ERROR(erase(batch, delivery_key));
    deleted.insert(delivery_key);
    events.insert(key->event_id);
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(scan.it->status(), "delivery store: retention scan"));
  // An event goes in the same batch as its last delivery: when every 'D' key it has is deleted.
  for (const std::string& event_id : events) {
    const std::string prefix = format::delivery_prefix(event_id);
    PrefixScan left(*impl_->db, prefix, prefix);
    bool any_left = false;
    for (; left.it->Valid() && !any_left; left.it->Next()) {
      any_left = !deleted.contains(std::string(view(left.it->key())));
    }
    if (!any_left) PAYCORE_RETURN_IF_ERROR(erase(batch, format::event_key(event_id)));
  }
  if (deleted.empty()) return std::size_t{0};
  PAYCORE_RETURN_IF_ERROR(impl_->write(batch, /*sync=*/false));
  return deleted.size();
}

std::uint64_t DeliveryStore::pending_count() const { return impl_->pending_count.load(); }

}  // namespace paycore::webhooks
