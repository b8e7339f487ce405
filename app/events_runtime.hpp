#pragma once
// Events and webhooks in `paycore serve` (issue 15; docs/events.md): the event store
// (DATA_DIR/events), the deriver that follows the engine's log into it, the webhook dispatcher
// (DATA_DIR/webhooks) that the deriver hands each batch's events to, and the EventsService the
// HTTP edge calls. In a cluster also the change-data capture publisher (cdc/), which publishes
// the store's events to JetStream while this member is primary, and the webhook sync
// (cdc/webhook_sync.hpp): endpoints and delivery changes through JetStream, so that every member
// holds the deliveries and the primary sends them (docs/events.md "Webhooks in a cluster"). Opened before
// the engine (the engine must keep the log segments the deriver has not read: floor_lsn()),
// started once the engine has recovered.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.hpp"
#include "cdc/cdc_publisher.hpp"
#include "cdc/webhook_sync.hpp"
#include "core/engine.hpp"
#include "events/deriver.hpp"
#include "events/event_store.hpp"
#include "events/service.hpp"
#include "webhooks/dispatcher.hpp"

namespace paycore::app {

struct EventsRuntimeConfig {
  std::string data_dir;                 // DATA_DIR: events/ and webhooks/ are made in it
  std::int64_t retention_us = 0;        // events kept at least this long
  ThreadPriority priority = ThreadPriority::normal;  // the deriver's and the dispatcher's threads
  bool webhooks = true;                 // deliver webhooks (DATA_DIR/webhooks)
  // A cluster member (nats_url): derive only what the shared log acknowledged, publish the
  // events to JetStream while primary (cdc; its is_primary and render are set here), and keep
  // webhooks in step with the other members (webhook_sync; its on_endpoint is set here).
  bool cluster = false;
  cdc::CdcConfig cdc;
  cdc::WebhookSyncConfig webhook_sync;
  webhooks::DispatcherConfig dispatcher;  // its store dir and priority are set from the above
  // Renders an event as the JSON its webhook body and GET /v1/events show (net/).
  std::function<std::string(const events::Event&)> render;
};

class EventsRuntime {
 public:
  /// Opens the event store (and, with webhooks, the dispatcher, which starts resending what its
  /// store holds PENDING). Errors: the stores'.
  static StatusOr<std::unique_ptr<EventsRuntime>> open(EventsRuntimeConfig config);
  ~EventsRuntime();  // stop()
  EventsRuntime(const EventsRuntime&) = delete;
  EventsRuntime& operator=(const EventsRuntime&) = delete;

  /// For EngineConfig::log_readers_floor_lsn: the log from here on is not derived yet.
  const std::atomic<std::uint64_t>* floor_lsn() const { return &floor_lsn_; }
  /// Starts the deriver on `engine`'s log (after Engine::open), and in a cluster the CDC
  /// publisher, which publishes while `is_primary()`, and the webhook sync (the dispatcher
  /// sends while `is_primary()`). Errors: their configs'.
  Status start(const Engine& engine, std::function<bool()> is_primary);
  /// The CDC publisher first, then the deriver (no more handovers), then the webhook sync's
  /// thread, then the dispatcher.
  void stop();

  events::EventsService& service() { return *service_; }

 private:
  EventsRuntime() = default;
  // Enqueues `events` for their endpoints, then notes `handed_through` (an LSN) as handed over.
  Status hand_over(std::span<const events::Event> events, std::uint64_t handed_through);
  Status catch_up_handover();
  // Puts an endpoint (new, or changed by a disable) into the store: an endpoint created here,
  // or another member's from the cluster's bucket. A new one then gets the events made since
  // its creation that were handed over before it was stored.
  Status keep_endpoint(const events::EndpointRecord& endpoint);
  Status hand_over_since_creation(const events::EndpointRecord& endpoint, std::uint64_t handed_before);
  Status finish_backfills();
  // A new or disabled endpoint: to the cluster's bucket first (a cluster), then keep_endpoint.
  Status save_endpoint(const events::EndpointRecord& endpoint);
  // Whether the dispatcher sends and webhook writes are taken: always on one node; in a
  // cluster, once started, while primary, and once the webhook sync is ready_to_send (else
  // kUnavailable saying which).
  bool may_send() const;
  Status writable() const;
  bool primary_now() const;  // started, and the cluster's primary

  EventsRuntimeConfig config_;
  std::atomic<std::uint64_t> floor_lsn_{1};
  std::unique_ptr<events::EventStore> store_;
  std::unique_ptr<webhooks::Dispatcher> dispatcher_;
  std::unique_ptr<events::EventsService> service_;
  std::unique_ptr<events::Deriver> deriver_;
  std::unique_ptr<cdc::CdcPublisher> cdc_;
  std::mutex keep_mutex_;         // one keep_endpoint at a time
  std::mutex endpoints_mutex_;    // hand_over's read of the endpoints vs. keep_endpoint's write
  std::uint64_t handed_lsn_ = 0;  // the last handed_through (under endpoints_mutex_)
  std::function<bool()> is_primary_;  // set once by start(), before started_
  std::atomic<bool> started_{false};
  std::unique_ptr<cdc::WebhookSync> sync_;
  std::atomic<cdc::WebhookSync*> sync_ptr_{nullptr};  // for the dispatcher's thread
};

/// Whether an endpoint subscribed to `events` (names, or "*") wants an event of `type`.
bool endpoint_wants(const std::vector<std::string>& events, events::EventType type);

}  // namespace paycore::app
