#pragma once
// The durable state of webhook deliveries (issue 15; the bytes: webhooks/delivery_format.hpp),
// in RocksDB beside the archive's (opened the way archive/store.cpp opens it). Per (event,
// endpoint): the state (PENDING, DELIVERED, FAILED), the latest attempts and when the next is
// due. It outlives the process: what was PENDING before a restart is sent after it.
//
// Durability (the choice, and why): an enqueue, a redeliver and a disable are written with
// sync (fsync of RocksDB's WAL before the call returns): once the events area is told "taken",
// the delivery survives even a power loss. Attempt results are written to the WAL without sync,
// one batch per dispatcher turn: a killed process keeps them (the WAL is in the page cache); a
// power loss can lose the last ones, and the effect is an attempt made again, which
// at-least-once delivery allows (receivers dedupe by event id). A synced write after them
// (the next enqueue) makes them durable too.
//
// Thread safety: every member may be called from any thread. Read-modify-writes (add, update,
// purge) are serialised by a mutex, so a redeliver and the dispatcher's result never overwrite
// each other.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/function_ref.hpp"
#include "base/status.hpp"
#include "webhooks/delivery_format.hpp"

namespace paycore::webhooks {

/// API.md: an event goes to each enabled endpoint of its merchant that wants it; Stripe allows
/// 16 endpoints per account. More in one enqueue is refused.
inline constexpr std::size_t deliveries_per_event_max = 16;
/// due_endpoints() reads at most this many endpoints (the dispatcher's table is as bounded).
inline constexpr std::size_t endpoints_max = 100'000;
/// Events in one add_many (one RocksDB batch).
inline constexpr std::size_t events_per_add_max = 1024;

struct DeliveryStoreOptions {
  std::string dir;  // the RocksDB directory, created when missing
  std::size_t block_cache_bytes = std::size_t{32} << 20;
};

/// One endpoint of an enqueue: ids and where to send.
struct NewDelivery {
  std::string endpoint_id;
  std::string url;     // as checked by check_endpoint_url at the endpoint's creation
  std::string secret;  // 1..256 bytes
};

struct DeliveryKey {
  std::string event_id;
  std::string endpoint_id;
};

class DeliveryStore {
 public:
  /// Opens or creates the store at options.dir; refuses another format version (kCorruption).
  /// Errors from RocksDB: kIoError / kNoSpace / kCorruption, naming the dir.
  static StatusOr<std::unique_ptr<DeliveryStore>> open(const DeliveryStoreOptions& options);
  ~DeliveryStore();
  DeliveryStore(const DeliveryStore&) = delete;
  DeliveryStore& operator=(const DeliveryStore&) = delete;

  /// Writes the event (unless stored) and a PENDING delivery due at `now_us` for each endpoint
  /// that has none for this event yet, in one synced batch. A delivery already there is left
  /// as it is, so an enqueue repeated after a restart sends nothing twice. Returns how many
  /// deliveries are new. kInvalidArgument: a bad event (check_event), a bad endpoint id, url or
  /// secret, or more than deliveries_per_event_max endpoints; nothing is written then.
  StatusOr<std::size_t> add(const StoredEvent& event, std::span<const NewDelivery> endpoints,
                            std::int64_t now_us);
  /// The same for several events in one batch, synced when `sync` (one fsync for all: the
  /// enqueue rate is the disk's fsync rate divided by nothing else; docs/webhooks.md); not
  /// synced, it is durable at the next sync(). At most events_per_add_max events; the same
  /// rules, checked for all before anything is written.
  struct EventToAdd {
    const StoredEvent* event = nullptr;
    std::span<const NewDelivery> endpoints;
  };
  StatusOr<std::size_t> add_many(std::span<const EventToAdd> events, std::int64_t now_us, bool sync);
  /// Makes every write so far durable (an fsync of RocksDB's WAL). A failure stops the store's
  /// writes until a restart (RocksdbWriteGate). Errors: RocksDB's.
  Status sync();
  /// Notes, after the adds it covers and unsynced, how far the caller has handed events over
  /// (an LSN, to the event deriver); nullopt from handed_over() when never noted. A crash
  /// keeps a prefix of the writes, so the noted position never runs ahead of the deliveries.
  Status note_handed_over(std::uint64_t position);
  StatusOr<std::optional<std::uint64_t>> handed_over() const;
  /// The same for a cluster member's place in the changes stream (cdc/webhook_sync.hpp): noted
  /// after the updates that applied the changes up to `sequence`.
  Status note_changes_applied(std::uint64_t sequence);
  StatusOr<std::optional<std::uint64_t>> changes_applied() const;

  /// The stored event / delivery; nullopt when absent. kCorruption on damaged bytes.
  StatusOr<std::optional<StoredEvent>> event(std::string_view event_id) const;
  StatusOr<std::optional<Delivery>> delivery(std::string_view event_id,
                                             std::string_view endpoint_id) const;
  /// Every delivery of the event (at most deliveries_per_event_max), by endpoint id.
  StatusOr<std::vector<Delivery>> deliveries_of(std::string_view event_id) const;

  /// Writes `delivery` as it is (any state, its index key with it) and `event` unless stored,
  /// in one unsynced batch, when the store holds no delivery of that event to that endpoint:
  /// another member's delivery this one never derived (cdc/webhook_sync.hpp). Returns whether
  /// it wrote. kInvalidArgument when either breaks the content rules or their ids differ.
  StatusOr<bool> put_absent(const StoredEvent& event, const Delivery& delivery);

  /// Calls `change` on each named delivery that exists (absent ones are skipped) and writes
  /// them all in one batch (synced when `sync`), keeping the 'T' and 'F' indexes in step with
  /// each one's state. `change` must leave a delivery that passes check_delivery (asserted).
  Status update(std::span<const DeliveryKey> keys, FunctionRef<void(Delivery&)> change, bool sync);

  /// Each endpoint that has PENDING deliveries, with the time its first one is due; at most
  /// endpoints_max (one seek per endpoint).
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> due_endpoints() const;
  /// The endpoint's PENDING deliveries due in [from, until_us], in due order, at most
  /// `count_max`; and in `*next_due_us` (when not null) the due time of the first one not
  /// returned (INT64_MAX when there is none). `from` is the caller's lower bound on what can be
  /// due, a due time (>= 0; 0: all) and an event id ("": the first at that time): the seek
  /// starts there, so the deleted keys of delivered ones before it are never read (without it
  /// every call walked them, and a busy endpoint's deliveries slowed from ~6,000/s to ~1,500/s
  /// within seconds).
  struct DueFrom {
    std::int64_t due_us = 0;
    std::string event_id;
  };
  StatusOr<std::vector<format::DueKey>> due_of(std::string_view endpoint_id, const DueFrom& from,
                                               std::int64_t until_us, std::size_t count_max,
                                               std::int64_t* next_due_us) const;

  /// Marks the endpoint disabled (synced); disabled_endpoints() lists them.
  Status disable_endpoint(std::string_view endpoint_id);
  StatusOr<std::vector<std::string>> disabled_endpoints() const;

  /// Deletes DELIVERED and FAILED deliveries that finished before `before_us`, oldest first, at
  /// most `count_max`, and each event whose last delivery goes. Returns how many went.
  StatusOr<std::size_t> purge_finished(std::int64_t before_us, std::size_t count_max);

  /// PENDING deliveries now (counted at open, then kept by add/update).
  std::uint64_t pending_count() const;

 /// Defined in delivery_store.cpp (named here so that its helpers there can take it).
  struct Impl;

 private:
  explicit DeliveryStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore::webhooks
