#pragma once
// Events and webhooks in `paycore serve` (issue 15; docs/events.md): the event store
// (DATA_DIR/events), the deriver that follows the engine's log into it, the webhook dispatcher
// (DATA_DIR/webhooks) that the deriver hands each batch's events to, and the EventsService the
// HTTP edge calls; in a cluster, no dispatcher but the change-data capture publisher (cdc/),
// which publishes the store's events to JetStream while this member is primary. Opened before
// the engine (the engine must keep the log segments the deriver has not read: floor_lsn()),
// started once the engine has recovered.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "cdc/cdc_publisher.hpp"
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
  bool webhooks = true;                 // false in a cluster (docs/events.md "In a cluster")
  // A cluster member (nats_url): derive only what the shared log acknowledged, and publish
  // the events to JetStream while primary (cdc; its is_primary and render are set here).
  bool cluster = false;
  cdc::CdcConfig cdc;
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
  /// publisher, which publishes while `is_primary()`. Errors: the publisher's config.
  Status start(const Engine& engine, std::function<bool()> is_primary);
  /// The CDC publisher first, then the deriver (no more handovers), then the dispatcher.
  void stop();

  events::EventsService& service() { return *service_; }

 private:
  EventsRuntime() = default;
  // Enqueues `events` for their endpoints, then notes `handed_through` (an LSN) as handed over.
  Status hand_over(std::span<const events::Event> events, std::uint64_t handed_through);
  Status catch_up_handover();

  EventsRuntimeConfig config_;
  std::atomic<std::uint64_t> floor_lsn_{1};
  std::unique_ptr<events::EventStore> store_;
  std::unique_ptr<webhooks::Dispatcher> dispatcher_;
  std::unique_ptr<events::EventsService> service_;
  std::unique_ptr<events::Deriver> deriver_;
  std::unique_ptr<cdc::CdcPublisher> cdc_;
};

/// Whether an endpoint subscribed to `events` (names, or "*") wants an event of `type`.
bool endpoint_wants(const std::vector<std::string>& events, events::EventType type);

}  // namespace paycore::app
