#pragma once
// What the HTTP edge asks of events and webhooks (issue 15; docs/api.md "Events and webhooks"):
// the routes GET /v1/events, GET /v1/events/{id}, POST/GET /v1/webhook_endpoints,
// POST /v1/webhook_endpoints/{id}/disable, GET /v1/events/{id}/deliveries and
// POST /v1/events/{id}/redeliver call this interface. app/ implements it over the EventStore
// and the webhook dispatcher (webhooks/), which net/ does not see. Every member may block on
// disk (RocksDB reads, synced writes): net calls it off its I/O threads. Thread safe.
//
// Errors are Status values the edge maps to docs/api.md's: kNotFound -> 404 not_found (an
// event or endpoint that is not the merchant's is not found, never forbidden);
// kInvalidArgument -> 400 invalid_field, with the field named before the first ':' of the
// message ("url: ..."); kConflict -> 422 idempotency_key_reused; kFull -> 507
// capacity_exhausted (endpoints per merchant); anything else -> 503 unavailable.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "core/id.hpp"
#include "events/event.hpp"
#include "events/event_store.hpp"

namespace paycore::events {

/// A webhook endpoint (docs/api.md): `secret` is set only in the answer that created it.
struct WebhookEndpoint {
  std::string id;                   // "we_" + 24 hex digits
  Id merchant_id;
  std::string url;
  std::vector<std::string> events;  // type names, or the one entry "*"
  std::string secret;               // "whsec_" + 64 hex digits (creation only)
  bool enabled = true;              // "status": "ENABLED" / "DISABLED"
  std::int64_t created_at_us = 0;
  bool replayed = false;            // an idempotent repeat of the creation (Idempotent-Replayed)
};

/// Limits on endpoints (each refusal is 400 invalid_field naming the field, or 507).
inline constexpr std::size_t webhook_endpoints_per_merchant_max = 16;
inline constexpr std::size_t webhook_event_filters_max = 16;
inline constexpr std::size_t webhook_url_bytes_max = 2048;

/// One attempt of a delivery, and a delivery (GET /v1/events/{id}/deliveries).
struct DeliveryAttemptView {
  std::int64_t started_at_us = 0;
  std::int32_t duration_ms = 0;
  std::int32_t http_status = 0;  // 0: no answer (then `error` says why)
  std::string error;
};
struct DeliveryView {
  std::string endpoint_id;
  std::string status;  // "PENDING", "DELIVERED", "FAILED"
  std::uint32_t attempts_count = 0;
  std::int64_t next_attempt_at_us = 0;  // PENDING: when the next attempt is due
  std::vector<DeliveryAttemptView> attempts;  // the latest ones, oldest first
};

/// Counters for /metrics (docs/events.md): read from atomics, never blocking.
struct EventsMetrics {
  std::uint64_t derived_lsn = 0;       // the last log record derived
  std::uint64_t events_derived = 0;    // since start
  std::uint64_t deriver_failures = 0;  // batches that failed (retried)
  bool deriver_stuck = false;          // the last attempt failed
  std::uint64_t shared_log_records = 0;  // records read from the shared log (a cluster's gap)
  bool webhooks = false;               // a dispatcher runs (not in a cluster)
  std::uint64_t deliveries_enqueued = 0;
  std::uint64_t events_too_old = 0;  // older than the dispatcher's event_age_max_us: no delivery
  std::uint64_t deliveries_delivered = 0;
  std::uint64_t attempts_failed = 0;
  std::uint64_t deliveries_given_up = 0;
  std::uint64_t deliveries_pending = 0;
  std::uint64_t transfers_in_flight = 0;
  std::array<std::uint64_t, 32> delivery_lag_ms_buckets{};  // bucket i: < 2^i ms
  // In a cluster, the webhook sync (cdc/webhook_sync.hpp).
  bool webhook_sync = false;
  std::uint64_t changes_published = 0;   // delivery changes the stream took from this member
  std::uint64_t changes_dropped = 0;     // not published (queue full, refused)
  std::uint64_t changes_applied = 0;     // other members' changes applied here
  std::uint64_t changes_unmatched = 0;   // changes of deliveries this member does not hold
  std::uint64_t deliveries_inserted = 0; // deliveries this member stored from others' changes
  std::uint64_t changes_sequence = 0;    // the changes stream's sequence applied so far
  std::uint64_t sync_failures = 0;       // NATS connections lost or refused
};

/// A write (endpoint created or disabled, redeliver) sent to a cluster member that is not the
/// primary fails kUnavailable with exactly this message; the HTTP edge answers it `503
/// not_primary` (API.md "Replication").
inline constexpr std::string_view not_primary_message = "not the primary: send writes to the primary";

class EventsService {
 public:
  virtual ~EventsService() = default;

  /// The deriver's and the dispatcher's counters; cheap (atomics), any thread.
  virtual EventsMetrics metrics() const = 0;

  /// A page of events (the query's merchant_id empty: the operator's, every merchant's).
  virtual StatusOr<EventListPage> list_events(const EventListQuery& query) = 0;
  /// The event with `key` if it is `merchant`'s (empty merchant: the operator), else kNotFound.
  virtual StatusOr<Event> get_event(const Id& merchant, EventKey key) = 0;

  /// Creates an endpoint for `merchant` (idempotent on request_id: the same request answers the
  /// same endpoint, secret included, with replayed set; another body is kConflict; past
  /// webhook_endpoints_per_merchant_max enabled endpoints, kFull).
  /// `events`: type names (events::event_type_from) or ["*"], 1..webhook_event_filters_max,
  /// no repeats. The URL passes the webhook URL policy (https://, or http:// to allowed hosts).
  virtual StatusOr<WebhookEndpoint> create_endpoint(const Id& merchant, const Id& request_id,
                                                    const std::string& url,
                                                    const std::vector<std::string>& events) = 0;
  /// The merchant's endpoints, oldest first, without secrets.
  virtual StatusOr<std::vector<WebhookEndpoint>> list_endpoints(const Id& merchant) = 0;
  /// Disables the merchant's endpoint `id` (again: no change); its PENDING deliveries are given
  /// up. kNotFound when it is not the merchant's.
  virtual StatusOr<WebhookEndpoint> disable_endpoint(const Id& merchant, std::string_view id) = 0;

  /// The deliveries of the merchant's event (kNotFound when it is not the merchant's).
  virtual StatusOr<std::vector<DeliveryView>> deliveries(const Id& merchant, EventKey key) = 0;
  /// The last LSN whose events are in the store (a request's Paycore-Min-Lsn waits for it).
  virtual std::uint64_t derived_lsn() const = 0;
  /// Queues one more attempt of the merchant's event to each of its endpoints that wants it,
  /// once per `request_id`: the same request_id again for the same event queues nothing and
  /// answers true (replayed); for another event it is kConflict (422 idempotency_key_reused).
  /// kNotFound when the event is not the merchant's or goes to no endpoint.
  virtual StatusOr<bool> redeliver(const Id& merchant, EventKey key, const Id& request_id) = 0;
};

}  // namespace paycore::events
