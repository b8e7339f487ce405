#include "events/event_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <algorithm>
#include <mutex>

#include "base/assert.hpp"
#include "base/rocksdb_status.hpp"
#include "core/command_record.hpp"

namespace paycore::events {
namespace {

constexpr std::uint32_t store_format_version = 1;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  return v;
}

std::string key_suffix(EventKey key) {
  std::string s;
  put_be(s, key.lsn, 8);
  put_be(s, key.index, 2);
  return s;
}

// The five keys of an event: "E" first, then its three index entries.
std::string event_key(EventKey key) { return "E" + key_suffix(key); }
std::string merchant_prefix(const Id& merchant) { return "M" + std::string(merchant.view()) + '\0'; }
std::string type_prefix(EventType type) { return std::string("T") + static_cast<char>(type); }
std::string merchant_type_prefix(const Id& merchant, EventType type) {
  return "U" + std::string(merchant.view()) + '\0' + static_cast<char>(type);
}
std::string pending_key(std::int64_t created_at_us) {
  std::string s = "P";
  put_be(s, static_cast<std::uint64_t>(created_at_us), 8);
  return s;
}

// The prefix a listing scans: the events it may show are the keys under it, in log order.
std::string list_prefix(const EventListQuery& q) {
  if (q.merchant_id.empty()) return q.type ? type_prefix(*q.type) : std::string("E");
  return q.type ? merchant_type_prefix(q.merchant_id, *q.type) : merchant_prefix(q.merchant_id);
}

template <class Write>
void for_each_key(const Event& e, Write write) {
  const EventKey key{e.lsn, e.index};
  write(event_key(key));
  write(merchant_prefix(e.merchant_id) + key_suffix(key));
  write(type_prefix(e.type) + key_suffix(key));
  write(merchant_type_prefix(e.merchant_id, e.type) + key_suffix(key));
}

// Endpoint records: u8 version, then strings as u32 length + bytes, the events as a u8 count
// then strings, u8 enabled, i64 created_at_us (little-endian).
void put_string(std::string& out, std::string_view v) {
  const auto n = static_cast<std::uint32_t>(v.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(v);
}

bool get_string(std::string_view in, std::size_t* at, std::string* v) {
  if (in.size() - *at < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[*at + static_cast<std::size_t>(i)])) << (8 * i);
  *at += 4;
  if (in.size() - *at < n) return false;
  v->assign(in.substr(*at, n));
  *at += n;
  return true;
}

std::string encode_endpoint(const EndpointRecord& e) {
  std::string out(1, '\1');
  for (std::string_view v : {std::string_view(e.id), e.merchant_id.view(), e.request_id.view(),
                             std::string_view(e.url), std::string_view(e.secret)}) {
    put_string(out, v);
  }
  out.push_back(static_cast<char>(e.events.size()));
  for (const std::string& name : e.events) put_string(out, name);
  out.push_back(e.enabled ? 1 : 0);
  put_be(out, static_cast<std::uint64_t>(e.created_at_us), 8);
  return out;
}

Status decode_endpoint(std::string_view in, EndpointRecord* e) {
  const Status bad = Status::corruption("event store: a webhook endpoint does not decode");
  std::size_t at = 1;
  std::string merchant, request;
  if (in.empty() || in[0] != 1) return bad;
  if (!get_string(in, &at, &e->id) || !get_string(in, &at, &merchant) ||
      !get_string(in, &at, &request) || !get_string(in, &at, &e->url) ||
      !get_string(in, &at, &e->secret) || at >= in.size()) {
    return bad;
  }
  if (!Id::from(merchant, &e->merchant_id) || (!request.empty() && !Id::from(request, &e->request_id))) return bad;
  const auto count = static_cast<unsigned char>(in[at++]);
  e->events.assign(count, {});
  for (std::string& name : e->events) {
    if (!get_string(in, &at, &name)) return bad;
  }
  if (in.size() - at != 9) return bad;
  e->enabled = in[at] == 1;
  e->created_at_us = static_cast<std::int64_t>(get_be(in, at + 1, 8));
  return Status::ok();
}

std::string endpoint_key(const Id& merchant, std::string_view id) {
  return "W" + std::string(merchant.view()) + '\0' + std::string(id);
}
std::string request_key(const Id& merchant, const Id& request_id) {
  return "R" + std::string(merchant.view()) + '\0' + std::string(request_id.view());
}

rocksdb::Options make_options(const EventStoreOptions& options) {
  return rocksdb_small_store_options(options.block_cache_bytes, 2);
}

}  // namespace

struct EventStore::Impl {
  std::string dir;
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mutex;  // one writer at a time (commit, drop_older_than)
  RocksdbWriteGate gate;   // no write after a failed one
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::int64_t> gap_at_us{0};

  Status read(std::string_view key, std::string* value, bool* found) const {
    const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), rocksdb_slice(key), value);
    *found = s.ok();
    if (s.IsNotFound()) return Status::ok();
    return from_rocksdb(s, "event store " + dir + ": read");
  }
  Status write(rocksdb::WriteBatch* batch) {
    rocksdb::WriteOptions options;
    options.sync = true;
    return gate.write(*db, dir, options, batch, "event store " + dir + ": write");
  }
};

// The PENDING payments through a batch: the store's, with the batch's own changes on top.
class EventStore::Batch final : public PendingPayments {
 public:
  explicit Batch(rocksdb::DB* db) : db_(db), batch_(rocksdb::BytewiseComparator(), 0, true) {}

  Status add(const PaymentView& payment) override {
    std::byte view[payment_view_bytes_max];
    const std::size_t size = encode_payment_view(payment, view);
    return from_rocksdb(batch_.Put(rocksdb_slice(pending_key(payment.created_at_us)),
                                   rocksdb::Slice(reinterpret_cast<const char*>(view), size)),
                        "event store: batch");
  }
  Status remove(std::int64_t created_at_us) override {
    return from_rocksdb(batch_.Delete(rocksdb_slice(pending_key(created_at_us))), "event store: batch");
  }
  Status oldest(std::uint32_t count, std::vector<PaymentView>* out) override {
    out->clear();
    const std::string upper = "Q";
    rocksdb::ReadOptions read_options;
    const rocksdb::Slice upper_slice = rocksdb_slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(batch_.NewIteratorWithBase(db_->NewIterator(read_options)));
    for (it->Seek("P"); it->Valid() && out->size() < count; it->Next()) {
      if (!it->key().starts_with("P")) break;
      PaymentView p;
      const rocksdb::Slice v = it->value();
      if (decode_payment_view(std::as_bytes(std::span(v.data(), v.size())), &p) != CommandDecodeError::ok) {
        return Status::corruption("event store: a PENDING payment does not decode");
      }
      out->push_back(p);
    }
    return from_rocksdb(it->status(), "event store: reading PENDING payments");
  }
  Status add_events(std::span<const Event> events) {
    for (const Event& e : events) {
      Status status;
      for_each_key(e, [&](const std::string& key) {
        const std::string value = key[0] == 'E' ? encode_event(e) : std::string();
        if (status.is_ok()) status = from_rocksdb(batch_.Put(rocksdb_slice(key), rocksdb_slice(value)), "event store: batch");
      });
      PAYCORE_RETURN_IF_ERROR(status);
    }
    return Status::ok();
  }
  rocksdb::WriteBatch* write_batch() { return batch_.GetWriteBatch(); }
  Status set_gap(std::int64_t at_us) {
    gap_at_us = at_us;
    if (at_us == 0) return from_rocksdb(batch_.Delete("G"), "event store: batch");
    std::string value;
    put_be(value, static_cast<std::uint64_t>(at_us), 8);
    return from_rocksdb(batch_.Put("G", rocksdb_slice(value)), "event store: batch");
  }
  std::optional<std::int64_t> gap_at_us;  // set_gap's, when called

 private:
  rocksdb::DB* db_;
  rocksdb::WriteBatchWithIndex batch_;
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;

StatusOr<std::unique_ptr<EventStore>> EventStore::open(const EventStoreOptions& options) {
  if (options.dir.empty()) return Status::invalid_argument("event store: no directory given");
  auto impl = std::make_unique<Impl>();
  impl->dir = options.dir;
  rocksdb::DB* db = nullptr;
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(rocksdb::DB::Open(make_options(options), options.dir, &db),
                                       "event store " + options.dir + ": open"));
  impl->db.reset(db);
  std::string value;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(impl->read("F", &value, &found));
  if (!found) {
    std::string format;
    put_be(format, store_format_version, 4);
    rocksdb::WriteBatch batch;
    (void)batch.Put("F", rocksdb_slice(format));
    // Past the write gate: a few bytes at open, which must not fail on a nearly full disk.
    rocksdb::WriteOptions sync;
    sync.sync = true;
    PAYCORE_RETURN_IF_ERROR(from_rocksdb(impl->db->Write(sync, &batch), "event store " + options.dir + ": format"));
  } else if (value.size() != 4 || get_be(value, 0, 4) != store_format_version) {
    return Status::corruption("event store " + options.dir + ": unknown format version");
  }
  PAYCORE_RETURN_IF_ERROR(impl->read("S", &value, &found));
  if (found && value.size() != 8) return Status::corruption("event store " + options.dir + ": bad position");
  impl->position.store(found ? get_be(value, 0, 8) : 0, std::memory_order_relaxed);
  PAYCORE_RETURN_IF_ERROR(impl->read("G", &value, &found));
  if (found && value.size() != 8) return Status::corruption("event store " + options.dir + ": bad gap");
  impl->gap_at_us.store(found ? static_cast<std::int64_t>(get_be(value, 0, 8)) : 0, std::memory_order_relaxed);
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

std::uint64_t EventStore::position() const { return impl_->position.load(std::memory_order_acquire); }

std::int64_t EventStore::gap_at_us() const { return impl_->gap_at_us.load(std::memory_order_acquire); }

Status EventStore::skip_gap(std::uint64_t first_lsn, std::int64_t at_us) {
  const std::lock_guard lock(impl_->write_mutex);
  PAYCORE_ASSERT_GT(first_lsn, position() + 1);
  std::string position_value, gap_value;
  put_be(position_value, first_lsn - 1, 8);
  put_be(gap_value, static_cast<std::uint64_t>(at_us), 8);
  rocksdb::WriteBatch batch;
  (void)batch.Put("S", rocksdb_slice(position_value));
  (void)batch.Put("G", rocksdb_slice(gap_value));
  PAYCORE_RETURN_IF_ERROR(impl_->write(&batch));
  impl_->position.store(first_lsn - 1, std::memory_order_release);
  impl_->gap_at_us.store(at_us, std::memory_order_release);
  return Status::ok();
}

EventStore::BatchPtr EventStore::begin() { return BatchPtr(new Batch(impl_->db.get())); }

void EventStore::BatchDeleter::operator()(Batch* batch) const { delete batch; }

PendingPayments& EventStore::pending(Batch& batch) { return batch; }

Status EventStore::add(Batch& batch, std::span<const Event> events) { return batch.add_events(events); }

Status EventStore::set_gap(Batch& batch, std::int64_t at_us) { return batch.set_gap(at_us); }

Status EventStore::commit(Batch& batch, std::uint64_t through_lsn) {
  const std::lock_guard lock(impl_->write_mutex);
  PAYCORE_ASSERT_GT(through_lsn, position());
  std::string value;
  put_be(value, through_lsn, 8);
  rocksdb::WriteBatch* write = batch.write_batch();
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(write->Put("S", rocksdb_slice(value)), "event store: batch"));
  PAYCORE_RETURN_IF_ERROR(impl_->write(write));
  impl_->position.store(through_lsn, std::memory_order_release);
  if (batch.gap_at_us) impl_->gap_at_us.store(*batch.gap_at_us, std::memory_order_release);
  return Status::ok();
}

StatusOr<std::optional<Event>> EventStore::get(EventKey key) const {
  std::string value;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(impl_->read(event_key(key), &value, &found));
  if (!found) return std::optional<Event>();
  Event e;
  e.lsn = key.lsn;
  e.index = key.index;
  PAYCORE_RETURN_IF_ERROR(decode_event(std::as_bytes(std::span(value.data(), value.size())), &e)
                              .with_context("event store: " + event_id(key.lsn, key.index)));
  return std::optional<Event>(e);
}

StatusOr<EventListPage> EventStore::list(const EventListQuery& q) const {
  PAYCORE_ASSERT(q.limit >= 1 && q.limit <= 100);
  const std::string prefix = list_prefix(q);
  std::string start = prefix;
  if (q.starting_after) {
    // The cursor must be one of the events this listing shows.
    StatusOr<std::optional<Event>> cursor = get(*q.starting_after);
    if (!cursor.is_ok()) return cursor.status();
    const bool shown = cursor->has_value() &&
                       (q.merchant_id.empty() || (*cursor)->merchant_id == q.merchant_id) &&
                       (!q.type || (*cursor)->type == *q.type);
    if (!shown) return Status::not_found("starting_after is not an event of this list");
    start += key_suffix(*q.starting_after);
  } else {
    start.push_back('\xff');  // past every key under the prefix
  }
  rocksdb::ReadOptions read_options;
  const rocksdb::Slice lower = rocksdb_slice(prefix);
  read_options.iterate_lower_bound = &lower;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  EventListPage page;
  for (it->SeekForPrev(rocksdb_slice(start)); it->Valid(); it->Prev()) {
    const std::string_view key = rocksdb_view(it->key());
    if (!key.starts_with(prefix) || key.size() != prefix.size() + 10) break;
    const EventKey k{get_be(key, prefix.size(), 8), static_cast<std::uint16_t>(get_be(key, prefix.size() + 8, 2))};
    if (q.starting_after && k == *q.starting_after) continue;
    if (page.events.size() == q.limit) {
      page.has_more = true;
      break;
    }
    StatusOr<std::optional<Event>> e = get(k);
    if (!e.is_ok()) return e.status();
    if (!e->has_value()) return Status::corruption("event store: index entry without its event " + event_id(k.lsn, k.index));
    page.events.push_back(**e);
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: listing"));
  return page;
}

Status EventStore::put_endpoint(const EndpointRecord& endpoint) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  (void)batch.Put(rocksdb_slice(endpoint_key(endpoint.merchant_id, endpoint.id)),
                  rocksdb_slice(encode_endpoint(endpoint)));
  if (!endpoint.request_id.empty()) {
    (void)batch.Put(rocksdb_slice(request_key(endpoint.merchant_id, endpoint.request_id)),
                    rocksdb_slice(endpoint.id));
  }
  return impl_->write(&batch);
}

StatusOr<std::optional<EndpointRecord>> EventStore::endpoint(const Id& merchant, std::string_view id) const {
  std::string value;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(impl_->read(endpoint_key(merchant, id), &value, &found));
  if (!found) return std::optional<EndpointRecord>();
  EndpointRecord e;
  PAYCORE_RETURN_IF_ERROR(decode_endpoint(value, &e));
  return std::optional<EndpointRecord>(std::move(e));
}

StatusOr<std::optional<EndpointRecord>> EventStore::endpoint_by_request(const Id& merchant,
                                                                       const Id& request_id) const {
  std::string id;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(impl_->read(request_key(merchant, request_id), &id, &found));
  if (!found) return std::optional<EndpointRecord>();
  return endpoint(merchant, id);
}

StatusOr<std::vector<EndpointRecord>> EventStore::endpoints_of(const Id& merchant, std::size_t count_max) const {
  const std::string prefix = endpoint_key(merchant, "");
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  std::vector<EndpointRecord> out;
  for (it->Seek(rocksdb_slice(prefix)); it->Valid() && out.size() < count_max; it->Next()) {
    if (!rocksdb_view(it->key()).starts_with(prefix)) break;
    EndpointRecord e;
    PAYCORE_RETURN_IF_ERROR(decode_endpoint(rocksdb_view(it->value()), &e));
    out.push_back(std::move(e));
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: endpoints"));
  std::sort(out.begin(), out.end(), [](const EndpointRecord& a, const EndpointRecord& b) {
    return a.created_at_us != b.created_at_us ? a.created_at_us < b.created_at_us : a.id < b.id;
  });
  return out;
}

StatusOr<std::uint32_t> EventStore::drop_older_than(std::int64_t before_us, std::uint32_t count_max) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::ReadOptions read_options;
  const std::string upper = "F";
  const rocksdb::Slice upper_slice = rocksdb_slice(upper);
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  rocksdb::WriteBatch batch;
  std::uint32_t dropped = 0;
  for (it->Seek("E"); it->Valid() && dropped < count_max; it->Next()) {
    const std::string_view key = rocksdb_view(it->key());
    Event e;
    e.lsn = get_be(key, 1, 8);
    e.index = static_cast<std::uint16_t>(get_be(key, 9, 2));
    const rocksdb::Slice v = it->value();
    PAYCORE_RETURN_IF_ERROR(decode_event(std::as_bytes(std::span(v.data(), v.size())), &e));
    if (e.created_at_us >= before_us) break;
    for_each_key(e, [&](const std::string& k) { (void)batch.Delete(rocksdb_slice(k)); });
    ++dropped;
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: retention scan"));
  if (dropped > 0) PAYCORE_RETURN_IF_ERROR(impl_->write(&batch));
  return dropped;
}

}  // namespace paycore::events
