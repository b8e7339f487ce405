#pragma once
// The webhook dispatcher (issue 15; docs/webhooks.md): one thread that sends events to their
// endpoints, records every attempt in the delivery store, retries with the backoff schedule and,
// at start, resumes every delivery the store holds PENDING (at-least-once across restarts).
//
// The events area (the lead's) calls five members, from any thread:
//   enqueue(event, endpoints)  once per event, with the endpoints that want it: durable when it
//                              returns; a repeat (after a restart) adds nothing
//   enqueue_batch(events, sync) the same for many events with one fsync, or none until sync()
//   sync()                     makes every enqueue so far durable
//   deliveries_of(event_id)    GET /v1/events/{id}/deliveries
//   redeliver(event_id)        POST /v1/events/{id}/redeliver: one more attempt, now
//   disable_endpoint(id)       POST /v1/webhook_endpoints/{id}/disable: its PENDING deliveries
//                              are given up at their next turn, nothing more is sent to it
//   stats()                    /metrics
//
// Bounds, and what happens at each (nothing is ever lost: the store holds every delivery
// before the thread hears of it):
// - enqueue → thread: a queue of notices_max notices ("endpoint E has work due at T"). Full:
//   the notice is dropped and the thread rescans the store's due index (one seek per
//   endpoint) at its next turn.
// - per endpoint, in_flight_per_endpoint_max transfers at once. Full: its due deliveries stay
//   PENDING in the store and are taken when a transfer ends. A dead endpoint thus holds at most
//   that many slots of the sender, each for at most the send timeout, and other endpoints'
//   deliveries are taken from their own index range, never from behind its backlog.
// - the sender's transfers_max transfers at once. Full: the same, for every endpoint.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "base/thread_priority.hpp"
#include "webhooks/backoff.hpp"
#include "webhooks/delivery_store.hpp"
#include "webhooks/sender.hpp"

namespace paycore::webhooks {

/// An event as the events area hands it over (API.md "Events and webhooks").
struct Event {
  std::string id;           // stable across restarts and replays; 1..64 bytes
  std::string merchant_id;  // 1..64 bytes
  std::string type;         // "payment.paid", ...
  std::string body;         // the event JSON, sent as the request body byte for byte
  std::int64_t created_at_us = 0;  // unix microseconds; the retry horizon counts from it
};

/// A webhook endpoint of the event's merchant that wants this event's type.
struct Endpoint {
  std::string id;      // 1..64 bytes
  std::string url;     // checked with check_endpoint_url when it was created
  std::string secret;  // the HMAC key, 1..256 bytes
  bool enabled = true;  // a disabled endpoint gets nothing (enqueue skips it)
};

struct DispatcherConfig {
  DeliveryStoreOptions store;  // where the delivery state lives (e.g. DATA_DIR/webhooks)
  SenderConfig sender;         // timeouts, TLS, the address allow-list
  BackoffPolicy backoff;       // the retry schedule and its horizon
  std::size_t in_flight_per_endpoint_max = 4;
  std::size_t notices_max = 4096;
  std::int64_t idle_wait_ms = 1000;  // the longest the thread sleeps between looks at the clock
  std::int64_t retention_ms = std::int64_t{30} * 86'400'000;  // finished deliveries kept
  std::int64_t purge_interval_ms = 60'000;
  std::size_t purge_batch_max = 1000;  // deliveries deleted per turn (again the next turn
                                       // while a purge finds a full batch)
  std::uint64_t jitter_seed = 0;       // 0: from std::random_device
  /// The thread's CPU priority (base/thread_priority.hpp): under a full load payments come
  /// first and deliveries wait in the store, later but never lost.
  ThreadPriority priority = ThreadPriority::normal;
  /// Unix microseconds: the schedule's clock and the signature's `t`. Tests step it.
  std::function<std::int64_t()> clock_us;  // empty: wall_clock_us
  /// In a cluster, whether this member sends (its primary): while false the thread starts no
  /// attempt and keeps the store as the primary's changes make it (apply_changes); when it
  /// turns true the thread reads the store's due index again. Empty: always.
  std::function<bool()> may_send;
  /// Called by the thread that wrote them with the deliveries an attempt, a give-up or a
  /// redeliver changed, as stored, after the write (in a cluster: published to the other
  /// members, cdc/webhook_sync.hpp). Must not block. Empty: nothing.
  std::function<void(std::span<const DeliveryChange>)> on_changed;
  /// Events created longer ago than this (by clock_us) get no delivery from enqueue_batch (the
  /// deriver's handover; enqueue, a redeliver's, takes any age): in a cluster, the changes
  /// stream's age, past which a delivery could never learn that another member finished it.
  /// 0: no limit (one node).
  std::int64_t event_age_max_us = 0;
};

/// Counters since start (pending: now, from the store).
struct DispatcherStats {
  static constexpr std::size_t lag_buckets = 32;
  std::uint64_t enqueued = 0;         // deliveries added by enqueue
  std::uint64_t events_too_old = 0;   // hand-overs (enqueue_batch) of an event older than
                                      // event_age_max_us, none added (a repeat counts again)
  std::uint64_t delivered = 0;        // deliveries that got a 2xx
  std::uint64_t attempts_failed = 0;  // attempts without a 2xx
  std::uint64_t given_up = 0;         // deliveries FAILED (horizon passed, endpoint disabled)
  std::uint64_t pending = 0;          // PENDING deliveries in the store
  std::uint64_t in_flight = 0;        // transfers running
  /// Event creation to delivered, in ms, log2 buckets (base/histogram.hpp): bucket i < 2^i ms.
  std::array<std::uint64_t, lag_buckets> lag_ms_buckets{};
};

class Dispatcher {
 public:
  /// Opens the store, reads the disabled endpoints and what is due, starts the thread.
  /// kInvalidArgument for a bad config; the store's and the sender's errors otherwise.
  static StatusOr<std::unique_ptr<Dispatcher>> start(DispatcherConfig config);
  /// Stops the thread; transfers in flight are abandoned: their deliveries stay PENDING and
  /// are sent again by the next start (at-least-once).
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Stores a PENDING delivery of `event` to each enabled endpoint not disabled here (synced),
  /// then tells the thread. Endpoints that already have a delivery of this event are left as
  /// they are. kInvalidArgument: the event or an endpoint breaks a limit (nothing stored).
  Status enqueue(const Event& event, std::span<const Endpoint> endpoints);
  /// The same for many events, in writes of events_per_add_max events and one sync after
  /// them, none for an event older than event_age_max_us: the way to keep up with a busy log
  /// (one fsync per call: docs/webhooks.md has the rates of both). A write that fails leaves those before it stored (a repeat adds nothing).
  struct EventToDeliver {
    const Event* event = nullptr;
    std::span<const Endpoint> endpoints;
  };
  /// `sync` false: durable only at the next sync() (the event deriver syncs before its store
  /// makes the events durable, so a crash hands them over again: at least once, one fsync a
  /// second instead of one a batch).
  Status enqueue_batch(std::span<const EventToDeliver> events, bool sync);
  /// Makes every enqueue so far durable. Errors: the store's.
  Status sync();
  /// The caller's handed-over position, kept with the deliveries (DeliveryStore::
  /// note_handed_over): after a crash the caller hands over again what came after it.
  Status note_handed_over(std::uint64_t position);
  StatusOr<std::optional<std::uint64_t>> handed_over() const;
  /// Every delivery of the event with its latest attempts; the secret is left empty.
  StatusOr<std::vector<Delivery>> deliveries_of(std::string_view event_id) const;
  /// Makes every delivery of the event PENDING and due now (synced): one more attempt for a
  /// finished one, an earlier one for a PENDING one. kNotFound when the event has none.
  Status redeliver(std::string_view event_id);
  /// Nothing more is sent to the endpoint (synced; remembered across restarts).
  Status disable_endpoint(std::string_view endpoint_id);
  DispatcherStats stats() const;
  /// Another member's changes (its on_changed) made here, not synced: each named delivery this
  /// store holds takes the change's state, times, attempts and error, unless it has seen more
  /// attempts already (attempts_count only grows, so an older change never undoes a newer
  /// one); one left PENDING is taken up by the thread at its due time. Returns the keys this
  /// store does not hold (events not derived here yet, or never: enqueue them to apply).
  StatusOr<std::vector<DeliveryKey>> apply_changes(std::span<const DeliveryChange> changes);
  /// A delivery this store does not hold, stored as another member's change has it, with the
  /// change's event (not synced; a PENDING one is taken up at its due time). False: the store
  /// holds it already, or its endpoint is disabled here. kInvalidArgument without the event.
  StatusOr<bool> store_change(const DeliveryChange& change);
  /// How far apply_changes has gone in the caller's sequence (the changes stream's), kept with
  /// the deliveries like note_handed_over; nullopt when never noted.
  Status note_changes_applied(std::uint64_t sequence);
  StatusOr<std::optional<std::uint64_t>> changes_applied() const;
  /// Makes the thread look at the clock now (after a test steps it).
  void wake();

 private:
  struct Impl;
  explicit Dispatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paycore::webhooks
