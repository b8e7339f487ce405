#pragma once
// A connection to NATS and its JetStream context (libnats, Debian's libnats-dev 3.4), and the
// few JetStream calls replication makes: create the log stream, read a message by sequence,
// read the stream's tail. Every libnats error becomes a Status here, with the JetStream error
// code when there is one (docs for the codes: nats.c status.h, "jsErrCode").

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace paycore::repl {

struct LinkConfig {
  std::string urls;  // comma-separated, e.g. "nats://127.0.0.1:4222,nats://127.0.0.1:4223"
  std::string name;  // the connection's name, shown by the server's monitoring
  std::int64_t timeout_ms = 2000;         // connecting, and each JetStream API request
  std::int64_t reconnect_wait_ms = 100;   // between attempts; reconnects are never given up
  std::int64_t publish_pending_max = 4096;  // asynchronous publishes awaiting their ack
  // Called by libnats's own thread for every asynchronous publish's ack or error.
  jsPubAckHandler ack_handler = nullptr;
  void* ack_closure = nullptr;
};

/// kUnavailable for timeouts, no responders and a lost connection; kConflict for a wrong
/// expected last sequence (JSStreamWrongLastSequenceErr); kNotFound for a missing stream or
/// message; kIoError otherwise. The message says `what`, libnats's text and the codes.
Status nats_status(natsStatus status, jsErrCode js_error, const std::string& what);

class NatsLink {
 public:
  /// Connects to any of config.urls and makes the JetStream context. Errors: kUnavailable if
  /// no server answers within the timeout, kInvalidArgument for a bad URL.
  static StatusOr<std::unique_ptr<NatsLink>> connect(const LinkConfig& config);
  ~NatsLink();
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  natsConnection* connection() const { return connection_; }
  jsCtx* js() const { return js_; }
  const LinkConfig& config() const { return config_; }
  /// Waits up to timeout_ms for every asynchronous publish to be acknowledged or failed.
  Status drain_publishes(std::int64_t timeout_ms);

 private:
  explicit NatsLink(const LinkConfig& config) : config_(config) {}
  LinkConfig config_;
  natsOptions* options_ = nullptr;
  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

/// How the log stream is made (docs/replication.md "The stream").
struct StreamSettings {
  std::string name;
  std::string subject;
  int replicas = 1;                 // 1..5: 3 in a cluster of three NATS servers
  std::int64_t bytes_max = -1;      // retention by size (-1: none)
  std::int64_t age_max_ms = 0;      // retention by age (0: none)
  std::int32_t message_bytes_max = 8 << 20;
  std::int64_t duplicate_window_ms = 120'000;  // Nats-Msg-Id deduplication
};

/// Creates the stream, or checks the one there: a stream of that name with another subject or
/// replica count is kInvalidArgument (it would not be ours, or not as durable as asked).
Status ensure_stream(jsCtx* js, const StreamSettings& settings);

/// Creates the key-value bucket `name` (history 1, file storage, `replicas` copies) or opens the
/// one there; the caller destroys it (kvStore_Destroy). Errors: nats_status's, naming it.
StatusOr<kvStore*> open_bucket(jsCtx* js, const std::string& name, int replicas);

/// A message of the log stream as stored.
struct StoredMessage {
  std::uint64_t sequence = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  std::string writer;
  std::vector<std::byte> data;
};

/// The header `key` of `msg` as a decimal number; false if it is missing or not one.
bool header_number(natsMsg* msg, const char* key, std::uint64_t* out);

/// The message at `sequence`. kNotFound if there is none (never written, or past retention);
/// kCorruption if its Paycore-* headers are missing or malformed.
StatusOr<StoredMessage> read_message(jsCtx* js, const std::string& stream, std::uint64_t sequence);

/// The stream's position: its last sequence (0 when empty) and first sequence still stored.
struct StreamPosition {
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = 0;
};
StatusOr<StreamPosition> read_position(jsCtx* js, const std::string& stream);

}  // namespace paycore::repl
