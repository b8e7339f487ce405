#pragma once
// The event store (issue 15; docs/events.md "The store"): the events derived from the log, the
// PENDING payments the derivation needs for expiries, and how far in the log it has derived,
// in one RocksDB directory (DATA_DIR/events). Derived events are written past RocksDB's WAL
// and made durable by flush(), about once a second: a synced write per batch had cost a
// fifth of the payments' throughput (docs/events.md "Cost"), and what a crash loses since the
// last flush the deriver derives again from the log, which keeps those records until then.
// A reopened store is the state of one flush, position included, so the deriver resumes
// exactly after it. Endpoints, gaps and retention's deletions are synced writes.
//
// Events are kept in blocks of consecutive events (EventStoreOptions::events_per_block_max),
// not one key each: a RocksDB key costs a memtable insert and a WAL entry, and at one key per
// event and index the deriver spent twice the core's CPU (docs/events.md "Cost"). A block's
// index entries are likewise one key per block and scope (merchant, type, merchant and type).
//
// Keys (one column family; big-endian numbers so that byte order is log order; "K" below is
// the 10 bytes u64 lsn, u16 index of the block's first event):
//   "B" K                                 a block of events (layout in event_store.cpp)
//   "F"                                   format version (u32)
//   "G"                                   gap: time of the first record derived after a gap
//                                         in the log (i64; absent: none, docs/events.md)
//   "M" merchant_id 0x00 K                the block's events of that merchant (their keys)
//   "P" created_at_us                     a PENDING payment's view (core/command_record.hpp)
//   "Q" merchant_id 0x00 request_id       the event a redelivery request was for (K of the
//                                         event, then i64 when), kept as long as events
//   "R" merchant_id 0x00 request_id       the endpoint its creation's request_id made
//   "S"                                   position: the last LSN derived (u64)
//   "T" type K                            the block's events of that type (their keys)
//   "U" merchant_id 0x00 type K           the block's events of that merchant and type
//   "W" merchant_id 0x00 endpoint_id      a webhook endpoint (EndpointRecord)
//   "Y" merchant_id 0x00 endpoint_id      "": the endpoint's events from before it was stored
//                                         are still to be handed over (app/events_runtime.cpp)
// Ids never hold 0x00 (core/id.hpp), so a merchant's keys never run into another's.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "events/derive.hpp"
#include "events/event.hpp"

namespace paycore::events {

struct EventStoreOptions {
  std::string dir;                                 // created when missing
  std::size_t block_cache_bytes = std::size_t{16} << 20;
  // Events per block at most: a lookup by id decodes one event of its block, a listing
  // reads at most a block more than its page; retention drops whole blocks.
  std::uint32_t events_per_block_max = 256;
};

/// One page of GET /v1/events (docs/api.md "Lists"): newest first.
struct EventListQuery {
  Id merchant_id;                      // empty: every merchant's (the operator)
  std::optional<EventType> type;
  std::optional<EventKey> starting_after;  // the events older than this one
  std::uint32_t limit = 10;            // 1..100
};
struct EventListPage {
  std::vector<Event> events;
  bool has_more = false;
};

/// A webhook endpoint as the store keeps it (events/service.hpp says what the fields mean).
struct EndpointRecord {
  std::string id;
  Id merchant_id;
  Id request_id;  // of the request that created it
  std::string url;
  std::vector<std::string> events;
  std::string secret;
  bool enabled = true;
  std::int64_t created_at_us = 0;
  friend bool operator==(const EndpointRecord&, const EndpointRecord&) = default;
};

/// An endpoint's bytes as the store's "W" value holds them (u8 version 1; id, merchant_id,
/// request_id, url, secret as u32 length + bytes; u8 count of event names, each u32 length +
/// bytes; u8 enabled; be64 created_at_us), also the value of the cluster's endpoints bucket
/// (cdc/webhook_sync.hpp). decode: kCorruption when the bytes are not one.
std::string encode_endpoint(const EndpointRecord& endpoint);
Status decode_endpoint(std::string_view in, EndpointRecord* endpoint);

/// Thread safety: reads (get, list, position) from any thread, concurrently with one writer
/// (the deriver: begin/commit, drop_older_than) at a time.
class EventStore {
 public:
  /// Opens or creates the store at options.dir. Errors: kInvalidArgument for an empty dir;
  /// kCorruption for another format version or damage RocksDB finds; kIoError otherwise.
  static StatusOr<std::unique_ptr<EventStore>> open(const EventStoreOptions& options);
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  /// The last LSN whose events the store holds (0: none).
  std::uint64_t position() const;
  /// When derivation resumed after a gap in the log (records it never saw, or records without
  /// outcomes), the time of the last such record (µs); 0 when there is none. While it is set,
  /// the store may lack PENDING payments (derive_events' pending_complete is false).
  std::int64_t gap_at_us() const;
  /// Skips the records position()+1 .. first_lsn-1, which the log no longer holds, and
  /// notes the gap as starting at `at_us`. Synced.
  Status skip_gap(std::uint64_t first_lsn, std::int64_t at_us);

  /// Events and PENDING changes gathered for one commit; reads through it see its own writes.
  class Batch;
  struct BatchDeleter {
    void operator()(Batch* batch) const;
  };
  using BatchPtr = std::unique_ptr<Batch, BatchDeleter>;
  BatchPtr begin();
  /// The PENDING payments as the store and `batch` together hold them (derive_events' view).
  static PendingPayments& pending(Batch& batch);
  /// Adds `events` to `batch`.
  static Status add(Batch& batch, std::span<const Event> events);
  /// Sets, with `batch`, gap_at_us() to `at_us` (0: no gap any more, every PENDING payment
  /// known). The deriver notes so a record that gave no events for lack of an outcome
  /// (written before outcomes were logged), and clears it once a tick has expired every
  /// payment due (docs/events.md "Gaps").
  static Status set_gap(Batch& batch, std::int64_t at_us);
  /// Writes `batch` with the position `through_lsn` (> position()), not yet durable (flush).
  /// Errors: RocksDB's.
  Status commit(Batch& batch, std::uint64_t through_lsn);
  /// Makes every commit so far durable; returns the position they reached, which a reopened
  /// store has at least. Errors: RocksDB's.
  StatusOr<std::uint64_t> flush();

  /// The event with `key`, or nullopt.
  StatusOr<std::optional<Event>> get(EventKey key) const;
  /// A page of events, newest first. A cursor that is not an event (of that merchant) is
  /// kNotFound. Errors: RocksDB's, kCorruption for an event that does not decode.
  StatusOr<EventListPage> list(const EventListQuery& query) const;

  /// Up to `count_max` events after `after` (nullopt: from the oldest kept), oldest first:
  /// the store read forward (change-data capture, cdc/). Errors: RocksDB's, kCorruption for a
  /// block that does not decode.
  StatusOr<std::vector<Event>> events_after(std::optional<EventKey> after, std::uint32_t count_max) const;

  /// The event the merchant's redelivery request `request_id` was for, or nullopt.
  StatusOr<std::optional<EventKey>> redelivery(const Id& merchant, const Id& request_id) const;
  /// Remembers, synced, that the merchant's request `request_id` redelivered `key` at `at_us`
  /// (POST /v1/events/{id}/redeliver is idempotent on its request_id). Retention drops it
  /// with the events of its time.
  Status put_redelivery(const Id& merchant, const Id& request_id, EventKey key, std::int64_t at_us);

  /// Writes `endpoint` (new or changed) and its request_id's entry, synced.
  /// `backfill_pending`: also marks it as still owed the events handed over before it was
  /// stored, in the same write (finish_backfill clears the mark; a crash in between leaves it,
  /// and endpoints_awaiting_backfill finds it at the next start).
  Status put_endpoint(const EndpointRecord& endpoint, bool backfill_pending = false);
  Status finish_backfill(const Id& merchant, std::string_view id);
  /// The endpoints still marked, at most `count_max`.
  StatusOr<std::vector<EndpointRecord>> endpoints_awaiting_backfill(std::size_t count_max) const;
  /// The merchant's endpoint `id`, or nullopt.
  StatusOr<std::optional<EndpointRecord>> endpoint(const Id& merchant, std::string_view id) const;
  /// The endpoint the merchant's request `request_id` created, or nullopt.
  StatusOr<std::optional<EndpointRecord>> endpoint_by_request(const Id& merchant, const Id& request_id) const;
  /// The merchant's endpoints, oldest first (at most `count_max`).
  StatusOr<std::vector<EndpointRecord>> endpoints_of(const Id& merchant, std::size_t count_max) const;

  /// Deletes the blocks whose every event was created before `before_us`, oldest first, until
  /// about `count_max` events went (at least one block when one is due); returns how many
  /// events went. Events are in log order, which is time order except that an expiry is dated
  /// when the payment expired: the scan stops at the first block not wholly old enough, so an
  /// event may outlive the retention by its block's span (retention is "at least"). Each call
  /// also looks at up to `count_max` redelivery requests (from where the last call stopped)
  /// and drops those made before `before_us`.
  StatusOr<std::uint32_t> drop_older_than(std::int64_t before_us, std::uint32_t count_max);

 private:
  struct Impl;
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore::events
