#pragma once
// Change-data capture (issue 15; docs/events.md "Change-data capture"): in a cluster, the
// primary publishes every event its event store holds to the JetStream stream
// `PAYCORE_EVENTS_<cluster>`, on the subject `paycore.<cluster>.events.<merchant_id>`, for
// downstream consumers (a merchant's own, or the operator's with `paycore.<cluster>.events.>`).
//
// Exactly the events of the cluster's history, in log order, each once, across failovers:
// - Every member derives the same events with the same ids from the same log (docs/events.md),
//   and only records the stream acknowledged (DeriverConfig::acknowledged_lsn), so whichever
//   member is primary holds the events the stream should get next.
// - Each message expects the stream's last sequence to be the one before it
//   (`Nats-Expected-Last-Sequence`), so the stream never takes a message out of order, after a
//   failed one, or from two publishers at once. After any failure, and whenever this member
//   becomes primary, the publisher reads the stream's last message (its `Paycore-Event-Id`)
//   and goes on from the event after it.
// - The message is the event's JSON as GET /v1/events/{id} shows it (API.md), with the headers
//   `Nats-Msg-Id` and `Paycore-Event-Id` (the event id) and `Paycore-Event-Type`.
// What is not guaranteed: a stream emptied by its retention (age_max_ms) while paycore ran
// without publishing makes the publisher start again from the oldest event it holds
// (consumers dedupe by event id, as webhook receivers do).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.hpp"
#include "events/event_store.hpp"
#include "repl/nats_link.hpp"

namespace paycore::cdc {

/// The stream's name and the subject of a merchant's events ('.' in a merchant id, which a
/// subject token cannot hold, is written "%2E"; ids hold no '%').
std::string events_stream_name(std::string_view cluster);
std::string events_subject(std::string_view cluster, std::string_view merchant_id);

struct CdcConfig {
  repl::LinkConfig link;  // the cluster's NATS servers (ack_handler is the publisher's own)
  std::string cluster;    // repl::check_cluster_name's rules
  int replicas = 3;
  std::int64_t age_max_ms = std::int64_t{30} * 86'400'000;  // the stream's retention by age
  std::function<bool()> is_primary;  // publish only while this is true
  std::function<std::string(const events::Event&)> render;  // the event's JSON (net/)
  std::uint32_t events_per_round_max = 512;  // published, then their acks awaited, at once
  std::int64_t idle_wait_ms = 50;            // between looks at the store when caught up
  std::int64_t retry_wait_ms = 1000;         // after a failure
  std::int64_t ack_wait_ms = 5000;           // a round's acks, at most
};

/// Counters for /metrics and the log.
struct CdcMetrics {
  std::atomic<std::uint64_t> published{0};     // messages the stream took
  std::atomic<std::uint64_t> position_lsn{0};  // LSN of the last event the stream holds (as known)
  std::atomic<std::uint64_t> failures{0};      // rounds that failed (retried)
  std::atomic<bool> stuck{false};              // the last round failed
};

class CdcPublisher {
 public:
  /// Starts the thread (it connects to NATS itself, and again after losing it). `store` must
  /// outlive the publisher. kInvalidArgument for a bad config.
  static StatusOr<std::unique_ptr<CdcPublisher>> start(const events::EventStore& store, CdcConfig config);
  ~CdcPublisher();  // stop()
  CdcPublisher(const CdcPublisher&) = delete;
  CdcPublisher& operator=(const CdcPublisher&) = delete;

  /// Stops the thread after its current round (idempotent).
  void stop();
  const CdcMetrics& metrics() const { return metrics_; }
  /// The last failure's text ("" when none).
  std::string last_failure() const;

 private:
  CdcPublisher(const events::EventStore& store, CdcConfig config);
  void loop();
  Status round(bool* published);
  Status connect();
  Status resync();
  Status publish(const std::vector<events::Event>& events);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure);

  const events::EventStore& store_;
  CdcConfig config_;
  CdcMetrics metrics_;
  std::unique_ptr<repl::NatsLink> link_;
  bool synced_ = false;                      // cursor_ and sequence_ are the stream's
  std::optional<events::EventKey> cursor_;   // the last event the stream holds
  std::uint64_t sequence_ = 0;               // the stream's last sequence
  std::atomic<std::uint64_t> refused_{0};    // acks with an error (on libnats's thread)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_requested_ = false;
  std::string last_failure_;
  std::thread thread_;
};

}  // namespace paycore::cdc
