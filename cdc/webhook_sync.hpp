#pragma once
// Webhooks in a cluster (issue 15; docs/events.md "Webhooks in a cluster"): what a member needs
// besides its own log to take over the deliveries of a primary that is gone.
//
// Every member derives the same events from the same log and hands them to its own dispatcher,
// so every member's delivery store holds the same deliveries, PENDING until it hears otherwise.
// Two things are not in the log and go through JetStream instead:
// - **Endpoints**, in the key-value bucket `PAYCORE_WEBHOOKS_<cluster>` (key
//   `endpoint.<hex merchant_id>.<hex endpoint_id>`, value events::encode_endpoint; history 1,
//   no expiry). The primary writes an endpoint there (put_endpoint, acknowledged by a quorum)
//   before its own store; every member watches the bucket and hands each endpoint to
//   `on_endpoint`, which mirrors it into the member's store.
// - **Delivery changes**, on the stream `PAYCORE_WEBHOOK_CHANGES_<cluster>` (subject
//   `paycore.<cluster>.webhook_changes`, kept `changes_age_max_ms`). The dispatcher that sends
//   (the primary's) hands every delivery an attempt, give-up or redeliver changed to
//   publish_changes; the thread publishes them, up to changes_per_message_max a message, with
//   the header `Paycore-Writer` (this process's random id). Every member reads the stream in
//   order from the sequence after its store's changes_applied() (an ordered consumer) and
//   applies each message's changes to its store (Dispatcher::apply_changes), its own messages
//   skipped (its store has them, maybe newer).
//
// A change whose delivery the member does not hold yet (its event's LSN is past what its
// deriver has derived) holds the reading back, retried every absent_retry_ms, until the deriver
// has not advanced for absent_wait_ms; then the member goes on without it (`changes_unmatched`).
// Changes are read only once the bucket's endpoints have all been handed over.
//
// A member that becomes primary reads the stream up to its last message as of then before it
// is ready_to_send (its dispatcher sends and its webhook writes are taken only then): an older
// change read late could otherwise undo one it makes (e.g. its own redeliver). A change that cannot be published (queue full,
// NATS down past its limits) is dropped and counted (`changes_dropped`), with the same effect.
//
// A PENDING change carries its event. A member that does not hold that delivery although its
// deriver has passed the event (a member started from a snapshot never saw the events before
// it; a redelivery to an endpoint made after its event) stores it from the delivery's newest
// change in the message, if that one is PENDING, so that it sends it should it become primary;
// a finished one is passed over (`changes_unmatched`): nothing is left to send.
//
// A message is webhooks::format's changes message (webhooks/delivery_format.hpp), of at most
// changes_per_message_max entries and the connection's maximum payload less 4 KiB (an entry
// alone larger than that is dropped).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.hpp"
#include "events/event_store.hpp"
#include "repl/nats_link.hpp"
#include "webhooks/dispatcher.hpp"

namespace paycore::cdc {

std::string webhooks_bucket_name(std::string_view cluster);
std::string webhook_changes_stream_name(std::string_view cluster);
std::string webhook_changes_subject(std::string_view cluster);
/// The bucket's key of an endpoint (ids in lowercase hex: any byte an id holds is allowed).
std::string endpoint_bucket_key(const events::EndpointRecord& endpoint);


struct WebhookSyncConfig {
  repl::LinkConfig link;  // the cluster's NATS servers (ack_handler is the sync's own)
  std::string cluster;    // repl::check_cluster_name's rules
  int replicas = 3;       // of the bucket and the stream
  /// The stream's retention: at least the retry horizon, so that a member away for less than
  /// that finds every change it missed.
  std::int64_t changes_age_max_ms = std::int64_t{4} * 86'400'000;
  std::size_t changes_queued_max = 100'000;     // waiting to be published; more are dropped
  std::size_t changes_queued_bytes_max = std::size_t{64} << 20;  // the same, in bytes (about)
  std::size_t changes_per_message_max = 256;
  std::int64_t idle_wait_ms = 100;       // the longest a change waits to be published
  std::int64_t retry_wait_ms = 1000;     // after a failure, before connecting again
  std::int64_t absent_retry_ms = 200;
  std::int64_t absent_wait_ms = 30'000;
  /// Each endpoint of the bucket (at start, all of them; then each change, this member's own
  /// included), on the sync's thread. An error is logged and the endpoint offered again at
  /// the next connection.
  std::function<Status(const events::EndpointRecord&)> on_endpoint;
  /// The last LSN whose events this member's deriver has handed over (the event store's
  /// position): a delivery absent here whose event is at or before it will never come.
  std::function<std::uint64_t()> derived_lsn;
  /// Whether this member is the primary (ready_to_send follows it). Empty: never.
  std::function<bool()> is_primary;
};

/// Counters for /metrics and the tests.
struct WebhookSyncMetrics {
  std::atomic<std::uint64_t> changes_published{0};  // deliveries in messages the stream took
  std::atomic<std::uint64_t> changes_dropped{0};    // not published (queue full, refused)
  std::atomic<std::uint64_t> changes_applied{0};    // others' changes applied here
  std::atomic<std::uint64_t> deliveries_inserted{0};  // of those, deliveries stored from them
  std::atomic<std::uint64_t> changes_unmatched{0};  // given up waiting for their delivery
  std::atomic<std::uint64_t> applied_sequence{0};   // the stream's sequence applied so far
  std::atomic<std::uint64_t> endpoints_seen{0};     // bucket entries handed to on_endpoint
  std::atomic<std::uint64_t> endpoints_refused{0};  // bucket entries that do not decode (passed over)
  std::atomic<std::uint64_t> failures{0};           // connections lost or refused
};

class WebhookSync {
 public:
  /// Starts the thread, which connects (and again after losing NATS), then watches the bucket
  /// and reads the stream into `dispatcher`, which must outlive the sync. kInvalidArgument for
  /// a bad config.
  static StatusOr<std::unique_ptr<WebhookSync>> start(webhooks::Dispatcher& dispatcher,
                                                      WebhookSyncConfig config);
  ~WebhookSync();  // stop()
  WebhookSync(const WebhookSync&) = delete;
  WebhookSync& operator=(const WebhookSync&) = delete;

  /// Writes `endpoint` to the bucket and waits for the quorum's acknowledgement (the link's
  /// timeout_ms). kUnavailable while not connected or when NATS does not answer.
  Status put_endpoint(const events::EndpointRecord& endpoint);
  /// Queues `changes` to be published (never blocks; beyond changes_queued_max, dropped).
  void publish_changes(std::span<const webhooks::DeliveryChange> changes);
  /// Stops the thread (idempotent); what is still queued is not published.
  void stop();
  const WebhookSyncMetrics& metrics() const { return metrics_; }
  /// True once connected and the bucket's endpoints were all handed to on_endpoint.
  bool caught_up() const { return caught_up_.load(std::memory_order_acquire); }
  /// True while primary once the stream was read up to its last message as of the promotion.
  bool ready_to_send() const { return ready_.load(std::memory_order_acquire); }

 private:
  WebhookSync(webhooks::Dispatcher& dispatcher, WebhookSyncConfig config);
  struct Connection;
  void loop();
  Status connect();
  void disconnect();
  Status turn();
  Status publish_queued();
  Status watch_endpoints();
  Status read_changes();
  Status apply(std::uint64_t sequence, std::vector<webhooks::DeliveryChange> changes);
  void hold(std::uint64_t sequence, std::vector<webhooks::DeliveryChange> later, std::uint64_t derived_lsn);
  Status check_ready();
  Status place_absent(const std::vector<webhooks::DeliveryChange>& changes,
                      const std::vector<webhooks::DeliveryKey>& absent, std::uint64_t derived_lsn,
                      std::vector<webhooks::DeliveryChange>* later);
  Status retry_held();
  Status send_message(std::string body, std::size_t count);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure);

  webhooks::Dispatcher& dispatcher_;
  WebhookSyncConfig config_;
  std::string writer_;  // this process's Paycore-Writer
  WebhookSyncMetrics metrics_;
  std::atomic<bool> caught_up_{false};
  std::atomic<bool> ready_{false};
  std::optional<std::uint64_t> promoted_target_;  // the thread's: the sequence to read up to

  std::mutex mutex_;  // guards the queue and stop_requested_
  std::condition_variable wake_;
  std::deque<webhooks::DeliveryChange> queued_;
  std::size_t queued_bytes_ = 0;
  bool stop_requested_ = false;
  // Set and reset by the thread only (under the mutex, which put_endpoint takes to use it).
  std::mutex connection_mutex_;
  std::unique_ptr<Connection> connection_;

  // The thread's own: a message whose changes wait for their deliveries to be derived here.
  struct Held {
    std::uint64_t sequence = 0;
    std::vector<webhooks::DeliveryChange> changes;  // those not applied yet
    std::int64_t next_try_us = 0;
  };
  std::unique_ptr<Held> held_;
  // Since when the held message has waited without the deriver advancing; kept across a
  // reconnect (which reads the message again).
  struct HeldMemo {
    std::uint64_t sequence = 0;
    std::int64_t since_us = 0;
    std::uint64_t derived_lsn = 0;
  };
  HeldMemo held_memo_;
  // The last sequence read (applied or held): libnats restarts an ordered consumer from the
  // stream's first message after a reconnect when it had delivered none yet, and what was
  // read once is not applied again.
  std::uint64_t read_sequence_ = 0;
  std::thread thread_;
};

}  // namespace paycore::cdc
