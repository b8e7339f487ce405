#include "events/event_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>

#include "base/assert.hpp"
#include "base/rocksdb_status.hpp"
#include "core/command_record.hpp"

namespace paycore::events {
namespace {

// 1: a key per event and per index entry (before 2026-12-02). 2: blocks.
constexpr std::uint32_t store_format_version = 2;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  return v;
}

constexpr std::size_t key_bytes = 10;  // u64 lsn, u16 index

std::string key_suffix(EventKey key) {
  std::string s;
  put_be(s, key.lsn, 8);
  put_be(s, key.index, 2);
  return s;
}

EventKey key_at(std::string_view in, std::size_t at) {
  return {get_be(in, at, 8), static_cast<std::uint16_t>(get_be(in, at + 8, 2))};
}

std::string block_key(EventKey first) { return "B" + key_suffix(first); }
std::string merchant_prefix(const Id& merchant) { return "M" + std::string(merchant.view()) + '\0'; }
std::string type_prefix(EventType type) { return std::string("T") + static_cast<char>(type); }
std::string merchant_type_prefix(const Id& merchant, EventType type) {
  return "U" + std::string(merchant.view()) + '\0' + static_cast<char>(type);
}
std::string redelivery_key(const Id& merchant, const Id& request_id) {
  return "Q" + std::string(merchant.view()) + '\0' + std::string(request_id.view());
}
std::string pending_key(std::int64_t created_at_us) {
  std::string s = "P";
  put_be(s, static_cast<std::uint64_t>(created_at_us), 8);
  return s;
}

// The prefix a listing scans: blocks ("B") or index entries, each key the prefix and the first
// event of a block.
std::string list_prefix(const EventListQuery& q) {
  if (q.merchant_id.empty()) return q.type ? type_prefix(*q.type) : std::string("B");
  return q.type ? merchant_type_prefix(q.merchant_id, *q.type) : merchant_prefix(q.merchant_id);
}

// ---- Blocks ---------------------------------------------------------------------------------
//
// A block ("B" key): u8 block_version, i64 newest created_at_us of its events, u32 count, then
// count entries (u64 lsn, u16 index, u32 end) in log order, then the events' encodings
// (events/event.hpp) back to back: entry i's event is bytes [end(i-1), end(i)) of that part.
// All numbers big-endian.
constexpr std::uint8_t block_version = 1;
constexpr std::size_t block_header_bytes = 1 + 8 + 4;
constexpr std::size_t block_entry_bytes = key_bytes + 4;

std::string encode_block(std::span<const Event> events) {
  std::vector<std::string> encoded;
  encoded.reserve(events.size());
  std::int64_t newest_us = events.front().created_at_us;
  for (const Event& e : events) {
    encoded.push_back(encode_event(e));
    newest_us = std::max(newest_us, e.created_at_us);
  }
  std::string out(1, static_cast<char>(block_version));
  put_be(out, static_cast<std::uint64_t>(newest_us), 8);
  put_be(out, events.size(), 4);
  std::size_t end = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    end += encoded[i].size();
    out += key_suffix({events[i].lsn, events[i].index});
    put_be(out, end, 4);
  }
  for (const std::string& e : encoded) out += e;
  return out;
}

// A block read in place (its bytes must outlive the view).
class BlockView {
 public:
  // Checks the layout; kCorruption names the block.
  static StatusOr<BlockView> parse(std::string_view bytes) {
    BlockView b;
    b.bytes_ = bytes;
    const Status bad = Status::corruption("event store: a block does not decode");
    if (bytes.size() < block_header_bytes || static_cast<std::uint8_t>(bytes[0]) != block_version) return bad;
    b.newest_us_ = static_cast<std::int64_t>(get_be(bytes, 1, 8));
    b.count_ = static_cast<std::uint32_t>(get_be(bytes, 9, 4));
    b.data_at_ = block_header_bytes + std::size_t{b.count_} * block_entry_bytes;
    if (b.count_ == 0 || bytes.size() < b.data_at_ || b.end(b.count_ - 1) != bytes.size() - b.data_at_) return bad;
    for (std::uint32_t i = 1; i < b.count_; ++i) {
      if (b.end(i) < b.end(i - 1) || !(b.key(i - 1) < b.key(i))) return bad;
    }
    return b;
  }
  std::uint32_t count() const { return count_; }
  std::int64_t newest_us() const { return newest_us_; }
  EventKey key(std::uint32_t i) const { return key_at(bytes_, block_header_bytes + i * block_entry_bytes); }
  // The entry of `k`, or count() when the block does not hold it.
  std::uint32_t find(EventKey k) const {
    std::uint32_t lo = 0, hi = count_;
    while (lo < hi) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      if (key(mid) < k) lo = mid + 1; else hi = mid;
    }
    return lo < count_ && key(lo) == k ? lo : count_;
  }
  Status event(std::uint32_t i, Event* e) const {
    const std::size_t begin = i == 0 ? 0 : end(i - 1);
    const std::string_view part = bytes_.substr(data_at_ + begin, end(i) - begin);
    const EventKey k = key(i);
    e->lsn = k.lsn;
    e->index = k.index;
    return decode_event(std::as_bytes(std::span(part.data(), part.size())), e)
        .with_context("event store: " + event_id(k.lsn, k.index));
  }

 private:
  std::size_t end(std::uint32_t i) const { return get_be(bytes_, block_header_bytes + i * block_entry_bytes + key_bytes, 4); }
  std::string_view bytes_;
  std::int64_t newest_us_ = 0;
  std::uint32_t count_ = 0;
  std::size_t data_at_ = 0;
};

// An index entry (the other keys): u8 index_version, then the keys of the block's events in
// its scope, in log order.
constexpr std::uint8_t index_version = 1;

Status parse_index(std::string_view bytes, std::vector<EventKey>* keys) {
  if (bytes.empty() || static_cast<std::uint8_t>(bytes[0]) != index_version || (bytes.size() - 1) % key_bytes != 0) {
    return Status::corruption("event store: an index entry does not decode");
  }
  keys->clear();
  for (std::size_t at = 1; at < bytes.size(); at += key_bytes) keys->push_back(key_at(bytes, at));
  return Status::ok();
}

// The index entries of a block: prefix (merchant, type, merchant and type) -> the value.
std::map<std::string, std::string> block_indexes(std::span<const Event> events) {
  std::map<std::string, std::string> out;
  for (const Event& e : events) {
    const std::string key = key_suffix({e.lsn, e.index});
    for (std::string prefix : {merchant_prefix(e.merchant_id), type_prefix(e.type),
                               merchant_type_prefix(e.merchant_id, e.type)}) {
      std::string& value = out[std::move(prefix)];
      if (value.empty()) value.push_back(static_cast<char>(index_version));
      value += key;
    }
  }
  return out;
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

std::string endpoint_key(const Id& merchant, std::string_view id) {
  return "W" + std::string(merchant.view()) + '\0' + std::string(id);
}
std::string backfill_key(const Id& merchant, std::string_view id) {
  return "Y" + std::string(merchant.view()) + '\0' + std::string(id);
}
std::string request_key(const Id& merchant, const Id& request_id) {
  return "R" + std::string(merchant.view()) + '\0' + std::string(request_id.view());
}

rocksdb::Options make_options(const EventStoreOptions& options) {
  return rocksdb_small_store_options(options.block_cache_bytes, 2);
}

}  // namespace

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

struct EventStore::Impl {
  std::string dir;
  std::uint32_t events_per_block_max = 256;
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mutex;  // one writer at a time (commit, drop_older_than)
  RocksdbWriteGate gate;   // no write after a failed one
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::int64_t> gap_at_us{0};
  std::string redeliveries_scanned_to;  // retention's place among the "Q" keys (write_mutex)

  Status read(std::string_view key, std::string* value, bool* found) const {
    const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), rocksdb_slice(key), value);
    *found = s.ok();
    if (s.IsNotFound()) return Status::ok();
    return from_rocksdb(s, "event store " + dir + ": read");
  }
  // A synced write through RocksDB's WAL (endpoints, gaps, retention: rare).
  Status write(rocksdb::WriteBatch* batch) {
    rocksdb::WriteOptions options;
    options.sync = true;
    return gate.write(*db, dir, options, batch, "event store " + dir + ": write");
  }
  // A write of derived events, past RocksDB's WAL: durable at the next flush (flush()). The
  // log holds them until then (the deriver's floor), so a crash re-derives them; with one
  // column family a reopened store is the state of some flush, its position included.
  Status write_unlogged(rocksdb::WriteBatch* batch) {
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    return gate.write(*db, dir, options, batch, "event store " + dir + ": write");
  }
};

namespace {

// Events by key through the block that holds each, keeping the last block read: a listing's
// keys come newest first, mostly from one block after another.
class BlockReader {
 public:
  // `snapshot`: read as of it (null: the newest state).
  explicit BlockReader(rocksdb::DB& db, const rocksdb::Snapshot* snapshot = nullptr) {
    options_.iterate_lower_bound = &lower_;
    options_.snapshot = snapshot;
    it_.reset(db.NewIterator(options_));
  }
  StatusOr<std::optional<Event>> get(EventKey k) {
    std::uint32_t at = view_ ? view_->find(k) : 0;
    if (!view_ || at == view_->count()) {
      PAYCORE_RETURN_IF_ERROR(load(k));
      if (!view_) return std::optional<Event>();
      at = view_->find(k);
      if (at == view_->count()) return std::optional<Event>();
    }
    Event e;
    PAYCORE_RETURN_IF_ERROR(view_->event(at, &e));
    return std::optional<Event>(std::move(e));
  }

 private:
  // The block that would hold `k`: the last one starting at or before it.
  Status load(EventKey k) {
    view_.reset();
    it_->SeekForPrev(rocksdb_slice(block_key(k)));
    if (!it_->Valid()) return from_rocksdb(it_->status(), "event store: reading a block");
    const std::string_view key = rocksdb_view(it_->key());
    if (key.size() != 1 + key_bytes || key[0] != 'B') return Status::ok();
    value_.assign(rocksdb_view(it_->value()));
    StatusOr<BlockView> view = BlockView::parse(value_);
    if (!view.is_ok()) return view.status();
    view_ = *view;
    return Status::ok();
  }

  std::string lower_text_ = "B";
  rocksdb::Slice lower_{lower_text_};
  rocksdb::ReadOptions options_;
  std::unique_ptr<rocksdb::Iterator> it_;
  std::string value_;
  std::optional<BlockView> view_;
};

}  // namespace

// What one commit writes: the events (made into blocks at commit) and the PENDING changes,
// which the batch also keeps in memory so that derive_events reads its own changes over the
// store's.
class EventStore::Batch final : public PendingPayments {
 public:
  Batch(rocksdb::DB* db, std::uint32_t events_per_block_max) : db_(db), per_block_(events_per_block_max) {}

  Status add(const PaymentView& payment) override {
    std::byte view[payment_view_bytes_max];
    const std::size_t size = encode_payment_view(payment, view);
    overlay_[payment.created_at_us] = payment;
    return from_rocksdb(batch_.Put(rocksdb_slice(pending_key(payment.created_at_us)),
                                   rocksdb::Slice(reinterpret_cast<const char*>(view), size)),
                        "event store: batch");
  }
  Status remove(std::int64_t created_at_us) override {
    overlay_[created_at_us] = std::nullopt;
    return from_rocksdb(batch_.Delete(rocksdb_slice(pending_key(created_at_us))), "event store: batch");
  }
  // The store's PENDING payments merged with this batch's changes, oldest first.
  Status oldest(std::uint32_t count, std::vector<PaymentView>* out) override {
    out->clear();
    const std::string lower = "P", upper = "Q";
    const rocksdb::Slice lower_slice = rocksdb_slice(lower), upper_slice = rocksdb_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_lower_bound = &lower_slice;
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    it->Seek(lower_slice);
    auto o = overlay_.begin();
    while (out->size() < count && (it->Valid() || o != overlay_.end())) {
      const std::string_view key = it->Valid() ? rocksdb_view(it->key()) : std::string_view();
      if (it->Valid() && key.size() != 9) return Status::corruption("event store: a bad PENDING key");
      const auto stored_at = it->Valid() ? static_cast<std::int64_t>(get_be(key, 1, 8)) : 0;
      if (o != overlay_.end() && (!it->Valid() || o->first <= stored_at)) {
        if (it->Valid() && o->first == stored_at) it->Next();  // the batch's change wins
        if (o->second) out->push_back(*o->second);
        ++o;
        continue;
      }
      PaymentView p;
      const rocksdb::Slice v = it->value();
      if (decode_payment_view(std::as_bytes(std::span(v.data(), v.size())), &p) != CommandDecodeError::ok) {
        return Status::corruption("event store: a PENDING payment does not decode");
      }
      out->push_back(p);
      it->Next();
    }
    return from_rocksdb(it->status(), "event store: reading PENDING payments");
  }
  // Puts `events` into the write in blocks of at most per_block_, with their index entries
  // (each call's events make blocks of their own: the deriver adds a batch's at once).
  Status add_events(std::span<const Event> events) {
    for (std::size_t at = 0; at < events.size(); at += per_block_) {
      const std::span<const Event> block = events.subspan(at, std::min<std::size_t>(per_block_, events.size() - at));
      const std::string suffix = key_suffix({block.front().lsn, block.front().index});
      PAYCORE_RETURN_IF_ERROR(put("B" + suffix, encode_block(block)));
      for (const auto& [prefix, value] : block_indexes(block)) PAYCORE_RETURN_IF_ERROR(put(prefix + suffix, value));
    }
    return Status::ok();
  }
  Status set_gap(std::int64_t at_us) {
    gap_at_us = at_us;
    if (at_us == 0) return from_rocksdb(batch_.Delete("G"), "event store: batch");
    std::string value;
    put_be(value, static_cast<std::uint64_t>(at_us), 8);
    return put("G", value);
  }
  // The whole write (events, index entries, PENDING changes, the gap) with `through_lsn` as
  // the position.
  StatusOr<rocksdb::WriteBatch*> finish(std::uint64_t through_lsn) {
    std::string position;
    put_be(position, through_lsn, 8);
    PAYCORE_RETURN_IF_ERROR(put("S", position));
    return &batch_;
  }
  std::optional<std::int64_t> gap_at_us;  // set_gap's, when called

 private:
  Status put(std::string_view key, std::string_view value) {
    return from_rocksdb(batch_.Put(rocksdb_slice(key), rocksdb_slice(value)), "event store: batch");
  }

  rocksdb::DB* db_;
  std::uint32_t per_block_;
  rocksdb::WriteBatch batch_;
  std::map<std::int64_t, std::optional<PaymentView>> overlay_;  // nullopt: removed
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::~EventStore() = default;

StatusOr<std::unique_ptr<EventStore>> EventStore::open(const EventStoreOptions& options) {
  if (options.dir.empty()) return Status::invalid_argument("event store: no directory given");
  auto impl = std::make_unique<Impl>();
  impl->dir = options.dir;
  if (options.events_per_block_max == 0) return Status::invalid_argument("event store: events_per_block_max is 0");
  impl->events_per_block_max = options.events_per_block_max;
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
    return Status::corruption("event store " + options.dir + ": format version " +
                              std::to_string(value.size() == 4 ? get_be(value, 0, 4) : 0) +
                              " is not this build's (" + std::to_string(store_format_version) +
                              "); the store holds only what the log can give again: remove the "
                              "directory to derive anew what the log still holds");
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

EventStore::BatchPtr EventStore::begin() { return BatchPtr(new Batch(impl_->db.get(), impl_->events_per_block_max)); }

void EventStore::BatchDeleter::operator()(Batch* batch) const { delete batch; }

PendingPayments& EventStore::pending(Batch& batch) { return batch; }

Status EventStore::add(Batch& batch, std::span<const Event> events) { return batch.add_events(events); }

Status EventStore::set_gap(Batch& batch, std::int64_t at_us) { return batch.set_gap(at_us); }

Status EventStore::commit(Batch& batch, std::uint64_t through_lsn) {
  const std::lock_guard lock(impl_->write_mutex);
  PAYCORE_ASSERT_GT(through_lsn, position());
  StatusOr<rocksdb::WriteBatch*> write = batch.finish(through_lsn);
  PAYCORE_RETURN_IF_ERROR(write.status());
  PAYCORE_RETURN_IF_ERROR(impl_->write_unlogged(*write));
  impl_->position.store(through_lsn, std::memory_order_release);
  if (batch.gap_at_us) impl_->gap_at_us.store(*batch.gap_at_us, std::memory_order_release);
  return Status::ok();
}

StatusOr<std::uint64_t> EventStore::flush() {
  // Not under write_mutex: a commit stores the position after its write (release), so every
  // commit up to `position` is in the memtables this flush writes (later ones may be too), and
  // the deriver (idle CPU priority) must not hold the lock an HTTP handler (put_endpoint)
  // waits for through a flush's I/O.
  const std::uint64_t position = impl_->position.load(std::memory_order_acquire);
  rocksdb::FlushOptions options;
  options.wait = true;
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(impl_->db->Flush(options), "event store " + impl_->dir + ": flush"));
  return position;
}

StatusOr<std::optional<Event>> EventStore::get(EventKey key) const {
  BlockReader reader(*impl_->db);
  return reader.get(key);
}

namespace {

// The keys an entry under a listing's prefix gives: a block's own, or an index entry's.
Status keys_of(std::string_view prefix, std::string_view value, std::vector<EventKey>* keys) {
  if (prefix != "B") return parse_index(value, keys);
  StatusOr<BlockView> block = BlockView::parse(value);
  if (!block.is_ok()) return block.status();
  keys->clear();
  for (std::uint32_t i = 0; i < block->count(); ++i) keys->push_back(block->key(i));
  return Status::ok();
}

}  // namespace

namespace {

// A RocksDB snapshot for the life of a listing, so that its index entries and the blocks they
// point into are read as of one state (retention may delete both meanwhile).
class ReadSnapshot {
 public:
  explicit ReadSnapshot(rocksdb::DB& db) : db_(db), snapshot_(db.GetSnapshot()) {}
  ~ReadSnapshot() { db_.ReleaseSnapshot(snapshot_); }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB& db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

StatusOr<EventListPage> EventStore::list(const EventListQuery& q) const {
  PAYCORE_ASSERT(q.limit >= 1 && q.limit <= 100);
  const ReadSnapshot snapshot(*impl_->db);
  BlockReader events(*impl_->db, snapshot.get());
  const std::string prefix = list_prefix(q);
  std::string start = prefix;
  if (q.starting_after) {
    // The cursor must be one of the events this listing shows.
    StatusOr<std::optional<Event>> cursor = events.get(*q.starting_after);
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
  read_options.snapshot = snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  EventListPage page;
  std::vector<EventKey> keys;
  // Entries start at their block's first event, so the one at or before the cursor may hold
  // keys past it; every later one holds only keys past it.
  for (it->SeekForPrev(rocksdb_slice(start)); it->Valid() && !page.has_more; it->Prev()) {
    const std::string_view key = rocksdb_view(it->key());
    if (!key.starts_with(prefix) || key.size() != prefix.size() + key_bytes) break;
    PAYCORE_RETURN_IF_ERROR(keys_of(prefix, rocksdb_view(it->value()), &keys));
    for (auto k = keys.rbegin(); k != keys.rend(); ++k) {
      if (q.starting_after && *k >= *q.starting_after) continue;
      if (page.events.size() == q.limit) {
        page.has_more = true;
        break;
      }
      StatusOr<std::optional<Event>> e = events.get(*k);
      if (!e.is_ok()) return e.status();
      if (!e->has_value()) return Status::corruption("event store: index entry without its event " + event_id(k->lsn, k->index));
      page.events.push_back(std::move(**e));
    }
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: listing"));
  return page;
}

StatusOr<std::vector<Event>> EventStore::events_after(std::optional<EventKey> after,
                                                      std::uint32_t count_max) const {
  rocksdb::ReadOptions read_options;
  const std::string lower = "B", upper = "C";
  const rocksdb::Slice lower_slice = rocksdb_slice(lower), upper_slice = rocksdb_slice(upper);
  read_options.iterate_lower_bound = &lower_slice;
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  // The block that holds `after` (the last one starting at or before it), else the first.
  if (after) it->SeekForPrev(rocksdb_slice(block_key(*after)));
  if (!after || !it->Valid()) it->Seek(lower_slice);
  std::vector<Event> out;
  for (; it->Valid() && out.size() < count_max; it->Next()) {
    StatusOr<BlockView> block = BlockView::parse(rocksdb_view(it->value()));
    if (!block.is_ok()) return block.status();
    for (std::uint32_t i = 0; i < block->count() && out.size() < count_max; ++i) {
      if (after && !(*after < block->key(i))) continue;
      Event e;
      PAYCORE_RETURN_IF_ERROR(block->event(i, &e));
      out.push_back(std::move(e));
    }
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: reading forward"));
  return out;
}

StatusOr<std::optional<EventKey>> EventStore::redelivery(const Id& merchant, const Id& request_id) const {
  std::string value;
  bool found = false;
  PAYCORE_RETURN_IF_ERROR(impl_->read(redelivery_key(merchant, request_id), &value, &found));
  if (!found) return std::optional<EventKey>();
  if (value.size() != key_bytes + 8) return Status::corruption("event store: a bad redelivery request");
  return std::optional<EventKey>(key_at(value, 0));
}

Status EventStore::put_redelivery(const Id& merchant, const Id& request_id, EventKey key, std::int64_t at_us) {
  const std::lock_guard lock(impl_->write_mutex);
  std::string value = key_suffix(key);
  put_be(value, static_cast<std::uint64_t>(at_us), 8);
  rocksdb::WriteBatch batch;
  (void)batch.Put(rocksdb_slice(redelivery_key(merchant, request_id)), rocksdb_slice(value));
  return impl_->write(&batch);
}

namespace {

// Retention of redelivery requests: up to `count_max` "Q" keys from `*scanned_to` on (then
// from the first again), those made before `before_us` deleted with `batch`.
Status drop_old_redeliveries(rocksdb::DB& db, std::int64_t before_us, std::uint32_t count_max,
                             std::string* scanned_to, rocksdb::WriteBatch* batch) {
  rocksdb::ReadOptions read_options;
  const std::string upper = "R";
  const rocksdb::Slice upper_slice = rocksdb_slice(upper);
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read_options));
  it->Seek(rocksdb_slice(scanned_to->empty() ? std::string("Q") : *scanned_to));
  std::uint32_t seen = 0;
  for (; it->Valid() && seen < count_max; it->Next(), ++seen) {
    const std::string_view value = rocksdb_view(it->value());
    if (value.size() != key_bytes + 8) return Status::corruption("event store: a bad redelivery request");
    if (static_cast<std::int64_t>(get_be(value, key_bytes, 8)) < before_us) (void)batch->Delete(it->key());
  }
  *scanned_to = it->Valid() ? std::string(rocksdb_view(it->key())) : std::string();
  return from_rocksdb(it->status(), "event store: retention of redelivery requests");
}

}  // namespace

Status EventStore::put_endpoint(const EndpointRecord& endpoint, bool backfill_pending) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  (void)batch.Put(rocksdb_slice(endpoint_key(endpoint.merchant_id, endpoint.id)),
                  rocksdb_slice(encode_endpoint(endpoint)));
  if (backfill_pending) (void)batch.Put(rocksdb_slice(backfill_key(endpoint.merchant_id, endpoint.id)), "");
  if (!endpoint.request_id.empty()) {
    (void)batch.Put(rocksdb_slice(request_key(endpoint.merchant_id, endpoint.request_id)),
                    rocksdb_slice(endpoint.id));
  }
  return impl_->write(&batch);
}

Status EventStore::finish_backfill(const Id& merchant, std::string_view id) {
  const std::lock_guard lock(impl_->write_mutex);
  rocksdb::WriteBatch batch;
  (void)batch.Delete(rocksdb_slice(backfill_key(merchant, id)));
  return impl_->write(&batch);
}

StatusOr<std::vector<EndpointRecord>> EventStore::endpoints_awaiting_backfill(std::size_t count_max) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  std::vector<EndpointRecord> out;
  for (it->Seek("Y"); it->Valid() && out.size() < count_max; it->Next()) {
    const std::string_view key = rocksdb_view(it->key());
    if (!key.starts_with("Y")) break;
    const std::size_t zero = key.find('\0');
    Id merchant;
    if (zero == std::string_view::npos || !Id::from(key.substr(1, zero - 1), &merchant)) {
      return Status::corruption("event store: a backfill mark does not decode");
    }
    StatusOr<std::optional<EndpointRecord>> e = endpoint(merchant, key.substr(zero + 1));
    if (!e.is_ok()) return e.status();
    if (e->has_value()) out.push_back(std::move(**e));
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: backfill marks"));
  return out;
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
  const std::string upper = "C";
  const rocksdb::Slice upper_slice = rocksdb_slice(upper);
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  rocksdb::WriteBatch batch;
  std::uint32_t dropped = 0;
  std::vector<Event> events;
  for (it->Seek("B"); it->Valid() && dropped < count_max; it->Next()) {
    const std::string_view key = rocksdb_view(it->key());
    if (key.size() != 1 + key_bytes) return Status::corruption("event store: a bad block key");
    StatusOr<BlockView> block = BlockView::parse(rocksdb_view(it->value()));
    if (!block.is_ok()) return block.status();
    if (block->newest_us() >= before_us) break;
    // Its index entries are those its events give.
    events.assign(block->count(), Event{});
    for (std::uint32_t i = 0; i < block->count(); ++i) PAYCORE_RETURN_IF_ERROR(block->event(i, &events[i]));
    const std::string suffix(key.substr(1));
    for (const auto& entry : block_indexes(events)) (void)batch.Delete(rocksdb_slice(entry.first + suffix));
    (void)batch.Delete(it->key());
    dropped += block->count();
  }
  PAYCORE_RETURN_IF_ERROR(from_rocksdb(it->status(), "event store: retention scan"));
  PAYCORE_RETURN_IF_ERROR(drop_old_redeliveries(*impl_->db, before_us, count_max, &impl_->redeliveries_scanned_to, &batch));
  if (batch.Count() > 0) PAYCORE_RETURN_IF_ERROR(impl_->write(&batch));
  return dropped;
}

}  // namespace paycore::events
