#include "cdc/webhook_sync.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "base/hex.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "repl/stream_format.hpp"

namespace paycore::cdc {
namespace {

using repl::kHeaderWriter;
constexpr const char* kHeaderChanges = "Paycore-Changes";  // the entries in the message

// What a queued change holds, about (the queue's byte bound).
std::size_t queued_bytes_of(const webhooks::DeliveryChange& c) {
  const webhooks::Delivery& d = c.delivery;
  std::size_t bytes = sizeof(c) + d.url.size() + d.secret.size() + d.last_error.size();
  for (const webhooks::Attempt& a : d.attempts) bytes += sizeof(a) + a.error.size();
  if (c.event) bytes += c.event->body.size() + c.event->id.size() + c.event->merchant_id.size() + c.event->type.size();
  return bytes;
}

std::string hex_of(std::string_view bytes) {
  std::string out;
  append_hex(out, std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
  return out;
}

// The header `key` of `msg`, "" when it has none.
std::string header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return "";
  return value;
}

}  // namespace

std::string webhooks_bucket_name(std::string_view cluster) { return "PAYCORE_WEBHOOKS_" + std::string(cluster); }
std::string webhook_changes_stream_name(std::string_view cluster) {
  return "PAYCORE_WEBHOOK_CHANGES_" + std::string(cluster);
}
std::string webhook_changes_subject(std::string_view cluster) {
  return "paycore." + std::string(cluster) + ".webhook_changes";
}

std::string endpoint_bucket_key(const events::EndpointRecord& endpoint) {
  return "endpoint." + hex_of(endpoint.merchant_id.view()) + "." + hex_of(endpoint.id);
}

// ---- The connection ---------------------------------------------------------------------------

struct WebhookSync::Connection {
  std::unique_ptr<repl::NatsLink> link;
  kvStore* kv = nullptr;
  kvWatcher* watcher = nullptr;
  natsSubscription* changes = nullptr;  // the ordered consumer of the changes stream
  ~Connection() {
    if (changes != nullptr) natsSubscription_Destroy(changes);
    if (watcher != nullptr) kvWatcher_Destroy(watcher);
    if (kv != nullptr) kvStore_Destroy(kv);
  }
};

StatusOr<std::unique_ptr<WebhookSync>> WebhookSync::start(webhooks::Dispatcher& dispatcher, WebhookSyncConfig config) {
  PAYCORE_RETURN_IF_ERROR(repl::check_cluster_name(config.cluster));
  if (!config.on_endpoint || !config.derived_lsn) {
    return Status::invalid_argument("webhook sync: on_endpoint and derived_lsn are required");
  }
  if (config.replicas < 1 || config.replicas > 5) return Status::invalid_argument("webhook sync: replicas must be 1..5");
  if (config.changes_per_message_max == 0 || config.changes_queued_max == 0 || config.idle_wait_ms <= 0 ||
      config.absent_retry_ms <= 0 || config.absent_wait_ms < 0 || config.changes_age_max_ms <= 0) {
    return Status::invalid_argument("webhook sync: limits must be > 0");
  }
  std::unique_ptr<WebhookSync> sync(new WebhookSync(dispatcher, std::move(config)));
  sync->thread_ = std::thread([raw = sync.get()] { raw->loop(); });
  (void)::pthread_setname_np(sync->thread_.native_handle(), "paycore-whsync");  // top -H, perf
  return sync;
}

WebhookSync::WebhookSync(webhooks::Dispatcher& dispatcher, WebhookSyncConfig config)
    : dispatcher_(dispatcher), config_(std::move(config)), writer_(repl::writer_id_text(repl::random_writer_id())) {
  config_.link.ack_handler = &WebhookSync::on_ack;
  config_.link.ack_closure = this;
}

WebhookSync::~WebhookSync() { stop(); }

void WebhookSync::stop() {
  {
    const std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  disconnect();
}

Status WebhookSync::put_endpoint(const events::EndpointRecord& endpoint) {
  const std::lock_guard lock(connection_mutex_);
  if (connection_ == nullptr) return Status(StatusCode::kUnavailable, "webhook sync: not connected to NATS");
  const std::string value = events::encode_endpoint(endpoint);
  std::uint64_t revision = 0;
  const natsStatus s = kvStore_Put(&revision, connection_->kv, endpoint_bucket_key(endpoint).c_str(),
                                   value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: writing endpoint " + endpoint.id);
  return Status::ok();
}

void WebhookSync::publish_changes(std::span<const webhooks::DeliveryChange> changes) {
  {
    const std::lock_guard lock(mutex_);
    for (const webhooks::DeliveryChange& d : changes) {
      const std::size_t bytes = queued_bytes_of(d);
      if (queued_.size() >= config_.changes_queued_max || queued_bytes_ + bytes > config_.changes_queued_bytes_max) {
        metrics_.changes_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      queued_.push_back(d);
      queued_bytes_ += bytes;
    }
  }
  wake_.notify_all();
}

// libnats's thread: a message the stream refused or never acknowledged loses its changes.
void WebhookSync::on_ack(jsCtx*, natsMsg* msg, jsPubAck*, jsPubAckErr* error, void* closure) {
  auto* self = static_cast<WebhookSync*>(closure);
  const std::uint64_t count = std::strtoull(header(msg, kHeaderChanges).c_str(), nullptr, 10);
  (error == nullptr ? self->metrics_.changes_published : self->metrics_.changes_dropped)
      .fetch_add(count, std::memory_order_relaxed);
  natsMsg_Destroy(msg);
}

Status WebhookSync::connect() {
  auto c = std::make_unique<Connection>();
  StatusOr<std::unique_ptr<repl::NatsLink>> link = repl::NatsLink::connect(config_.link);
  PAYCORE_RETURN_IF_ERROR(link.status());
  c->link = std::move(*link);
  jsCtx* js = c->link->js();
  const std::string bucket = webhooks_bucket_name(config_.cluster);
  StatusOr<kvStore*> kv = repl::open_bucket(js, bucket, config_.replicas);
  if (!kv.is_ok()) return kv.status().with_context("webhook sync");
  c->kv = *kv;
  repl::StreamSettings stream;
  stream.name = webhook_changes_stream_name(config_.cluster);
  stream.subject = webhook_changes_subject(config_.cluster);
  stream.replicas = config_.replicas;
  stream.age_max_ms = config_.changes_age_max_ms;
  PAYCORE_RETURN_IF_ERROR(repl::ensure_stream(js, stream));
  kvWatchOptions watch;
  kvWatchOptions_Init(&watch);
  watch.IgnoreDeletes = true;
  natsStatus s = kvStore_WatchAll(&c->watcher, c->kv, &watch);
  if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: watching " + bucket);
  StatusOr<std::optional<std::uint64_t>> applied = dispatcher_.changes_applied();
  PAYCORE_RETURN_IF_ERROR(applied.status());
  jsSubOptions sub;
  jsSubOptions_Init(&sub);
  sub.Ordered = true;
  sub.Config.DeliverPolicy = js_DeliverByStartSequence;
  sub.Config.OptStartSeq = applied->value_or(0) + 1;
  read_sequence_ = applied->value_or(0);
  jsErrCode error{};
  s = js_SubscribeSync(&c->changes, js, stream.subject.c_str(), nullptr, &sub, &error);
  if (s != NATS_OK) return repl::nats_status(s, error, "webhook sync: reading " + stream.name);
  const std::lock_guard lock(connection_mutex_);
  connection_ = std::move(c);
  return Status::ok();
}

void WebhookSync::disconnect() {
  held_.reset();  // read again from the store's position on the next connection
  caught_up_.store(false, std::memory_order_release);
  std::unique_ptr<Connection> gone;
  {
    const std::lock_guard lock(connection_mutex_);
    gone = std::move(connection_);
  }
  // Their acks (or failures) reach on_ack before the link goes, not after.
  if (gone != nullptr) (void)gone->link->drain_publishes(config_.link.timeout_ms);
}

// ---- The thread ----------------------------------------------------------------------------------

void WebhookSync::loop() {
  for (;;) {
    Status s = connection_ != nullptr ? Status::ok() : connect();
    if (s.is_ok()) s = turn();
    if (!s.is_ok()) {
      metrics_.failures.fetch_add(1, std::memory_order_relaxed);
      log_line(LogLevel::warn, "webhook sync failed; connecting again", {{"error", s.to_string()}});
      disconnect();
    }
    std::unique_lock lock(mutex_);
    if (stop_requested_) return;
    if (s.is_ok()) continue;
    wake_.wait_for(lock, std::chrono::milliseconds(config_.retry_wait_ms), [this] { return stop_requested_; });
    if (stop_requested_) return;
  }
}

// Publishes what is queued, hands new endpoints over, and applies the stream's next changes
// (waiting up to idle_wait_ms for them).
Status WebhookSync::turn() {
  PAYCORE_RETURN_IF_ERROR(publish_queued());
  PAYCORE_RETURN_IF_ERROR(watch_endpoints());
  if (!caught_up()) return Status::ok();  // the endpoints first: a change may name a new one
  PAYCORE_RETURN_IF_ERROR(check_ready());
  if (held_ != nullptr) {
    PAYCORE_RETURN_IF_ERROR(retry_held());
    if (held_ != nullptr) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(config_.absent_retry_ms),
                     [this] { return stop_requested_ || !queued_.empty(); });
      return Status::ok();
    }
  }
  return read_changes();
}

// What is queued, in messages of at most changes_per_message_max entries and the connection's
// maximum payload less 4 KiB for the headers.
Status WebhookSync::publish_queued() {
  const std::int64_t payload_max = natsConnection_GetMaxPayload(connection_->link->connection());
  const std::size_t bytes_max = payload_max > 8192 ? static_cast<std::size_t>(payload_max) - 4096 : 4096;
  std::string body;
  std::size_t count = 0;
  for (;;) {
    std::optional<webhooks::DeliveryChange> next;
    {
      const std::lock_guard lock(mutex_);
      if (!queued_.empty()) {
        next = std::move(queued_.front());
        queued_.pop_front();
        queued_bytes_ -= queued_bytes_of(*next);
      }
    }
    if (!next.has_value()) break;
    std::string entry = webhooks::format::encode_change(*next);
    if (entry.size() > bytes_max) {  // cannot happen with NATS's default 1 MiB (an event <= 256 KiB)
      metrics_.changes_dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (body.size() + entry.size() > bytes_max || count == config_.changes_per_message_max) {
      PAYCORE_RETURN_IF_ERROR(send_message(std::move(body), count));
      body.clear();
      count = 0;
    }
    body += entry;
    ++count;
  }
  if (count == 0) return Status::ok();
  return send_message(std::move(body), count);
}

Status WebhookSync::send_message(std::string body, std::size_t count) {
  const std::string subject = webhook_changes_subject(config_.cluster);
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderWriter, writer_.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderChanges, std::to_string(count).c_str());
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = config_.link.timeout_ms;  // an ack that never comes is reported (on_ack)
  if (s == NATS_OK) s = js_PublishMsgAsync(connection_->link->js(), &msg, &options);
  if (msg != nullptr) natsMsg_Destroy(msg);  // not taken by the library
  if (s != NATS_OK) {
    metrics_.changes_dropped.fetch_add(count, std::memory_order_relaxed);
    return repl::nats_status(s, jsErrCode{}, "webhook sync: publishing changes");
  }
  return Status::ok();
}

// Every bucket entry that arrived since the last turn goes to on_endpoint.
Status WebhookSync::watch_endpoints() {
  for (;;) {
    kvEntry* entry = nullptr;
    const natsStatus s = kvWatcher_Next(&entry, connection_->watcher, 1);
    if (s == NATS_TIMEOUT) return Status::ok();
    if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: watching endpoints");
    if (entry == nullptr) {  // every entry the bucket held at the start has come
      caught_up_.store(true, std::memory_order_release);
      continue;
    }
    const std::string_view value(static_cast<const char*>(kvEntry_Value(entry)),
                                 static_cast<std::size_t>(kvEntry_ValueLen(entry)));
    events::EndpointRecord endpoint;
    const Status decoded = events::decode_endpoint(value, &endpoint);
    const std::string key = kvEntry_Key(entry);
    kvEntry_Destroy(entry);
    if (!decoded.is_ok()) {  // never readable here: said, counted, and passed over
      log_line(LogLevel::error, "webhook sync: an endpoint in the bucket does not decode",
               {{"key", key}, {"error", decoded.to_string()}});
      metrics_.endpoints_refused.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const Status kept = config_.on_endpoint(endpoint);  // a store error: offered again later
    if (!kept.is_ok()) return kept.with_context("webhook sync: endpoint " + key);
    metrics_.endpoints_seen.fetch_add(1, std::memory_order_relaxed);
  }
}

// The stream's next messages, in order: another writer's changes are applied, this process's
// own skipped; each message's sequence is noted once it is done.
Status WebhookSync::read_changes() {
  std::int64_t wait_ms = config_.idle_wait_ms;
  for (int read = 0; read < 64 && held_ == nullptr; ++read) {
    {
      const std::lock_guard lock(mutex_);
      if (!queued_.empty() || stop_requested_) return Status::ok();
    }
    natsMsg* msg = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&msg, connection_->changes, wait_ms);
    if (s == NATS_TIMEOUT) return Status::ok();
    if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: reading changes");
    wait_ms = 0;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
      natsMsg_Destroy(msg);
      return Status(StatusCode::kIoError, "webhook sync: a change message without its metadata");
    }
    const std::uint64_t sequence = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    if (sequence <= read_sequence_) {  // read before (the consumer started over)
      natsMsg_Destroy(msg);
      continue;
    }
    read_sequence_ = sequence;
    std::vector<webhooks::DeliveryChange> changes;
    Status decoded = Status::ok();
    if (header(msg, kHeaderWriter) != writer_) {
      decoded = webhooks::format::decode_changes(std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))), &changes);
    }
    natsMsg_Destroy(msg);
    if (!decoded.is_ok()) {  // not ours to read: said, and passed over (nothing to apply)
      log_line(LogLevel::error, "webhook sync: a change message does not decode",
               {{"sequence", std::to_string(sequence)}, {"error", decoded.to_string()}});
      changes.clear();
    }
    PAYCORE_RETURN_IF_ERROR(apply(sequence, std::move(changes)));
  }
  return Status::ok();
}

Status WebhookSync::apply(std::uint64_t sequence, std::vector<webhooks::DeliveryChange> changes) {
  if (!changes.empty()) {
    // Read first: a delivery the deriver makes after this is found by apply_changes.
    const std::uint64_t derived = config_.derived_lsn();
    StatusOr<std::vector<webhooks::DeliveryKey>> absent = dispatcher_.apply_changes(changes);
    PAYCORE_RETURN_IF_ERROR(absent.status());
    std::vector<webhooks::DeliveryChange> later;
    PAYCORE_RETURN_IF_ERROR(place_absent(changes, *absent, derived, &later));
    metrics_.changes_applied.fetch_add(changes.size() - absent->size(), std::memory_order_relaxed);
    if (!later.empty()) {
      hold(sequence, std::move(later), derived);
      return Status::ok();
    }
  }
  held_.reset();
  held_memo_ = HeldMemo{};
  PAYCORE_RETURN_IF_ERROR(dispatcher_.note_changes_applied(sequence));
  metrics_.applied_sequence.store(sequence, std::memory_order_relaxed);
  return Status::ok();
}

// Holds the message's changes whose events the deriver has not reached. The wait (absent_wait_ms)
// counts from the last time the deriver advanced, and goes on where it was when the same message
// is held again after a reconnect.
void WebhookSync::hold(std::uint64_t sequence, std::vector<webhooks::DeliveryChange> later, std::uint64_t derived_lsn) {
  const std::int64_t now = wall_clock_us();
  if (held_memo_.sequence != sequence || derived_lsn > held_memo_.derived_lsn) {
    held_memo_ = HeldMemo{sequence, now, derived_lsn};
  }
  held_ = std::make_unique<Held>();
  held_->sequence = sequence;
  held_->changes = std::move(later);
  held_->next_try_us = now + config_.absent_retry_ms * 1000;
}

// The changes of deliveries this store does not hold, taken per delivery: its newest change
// (most attempts; the later of equal ones) with an event from any of its changes. Its event not
// reached yet by the deriver: to `later`. Else, PENDING: stored as the change has it (event,
// url, secret, attempts, due time; one write), so that this member sends it should it become
// primary; finished: nothing is left to send (counted unmatched).
Status WebhookSync::place_absent(const std::vector<webhooks::DeliveryChange>& changes,
                                 const std::vector<webhooks::DeliveryKey>& absent, std::uint64_t derived_lsn,
                                 std::vector<webhooks::DeliveryChange>* later) {
  if (absent.empty()) return Status::ok();
  std::map<std::string, webhooks::DeliveryChange> newest;  // "event\nendpoint"
  std::set<std::string> wanted;
  for (const webhooks::DeliveryKey& k : absent) wanted.insert(k.event_id + "\n" + k.endpoint_id);
  for (const webhooks::DeliveryChange& c : changes) {
    const std::string key = c.delivery.event_id + "\n" + c.delivery.endpoint_id;
    if (!wanted.contains(key)) continue;
    auto [it, inserted] = newest.try_emplace(key, c);
    std::optional<webhooks::StoredEvent> event = c.event ? c.event : std::move(it->second.event);
    if (!inserted && c.delivery.attempts_count >= it->second.delivery.attempts_count) it->second = c;
    it->second.event = std::move(event);
  }
  for (auto& [key, c] : newest) {
    const std::optional<events::EventKey> event = events::parse_event_id(c.delivery.event_id);
    if (event.has_value() && event->lsn > derived_lsn) {
      later->push_back(std::move(c));
      continue;
    }
    bool stored = false;  // not stored: disabled here (or, finished, nothing left to send)
    if (c.delivery.state == webhooks::DeliveryState::kPending && c.event.has_value()) {
      StatusOr<bool> put = dispatcher_.store_change(c);
      PAYCORE_RETURN_IF_ERROR(put.status());
      stored = *put;
    }
    (stored ? metrics_.deliveries_inserted : metrics_.changes_unmatched).fetch_add(1, std::memory_order_relaxed);
  }
  return Status::ok();
}

// The held message's changes again; once the deriver has not advanced for absent_wait_ms, the
// missing ones are given up.
Status WebhookSync::retry_held() {
  const std::int64_t now = wall_clock_us();
  if (now < held_->next_try_us) return Status::ok();
  const std::uint64_t sequence = held_->sequence;
  std::vector<webhooks::DeliveryChange> changes = std::move(held_->changes);
  held_.reset();
  PAYCORE_RETURN_IF_ERROR(apply(sequence, std::move(changes)));
  if (held_ == nullptr) return Status::ok();  // all of them applied now
  if (now - held_memo_.since_us < config_.absent_wait_ms * 1000) return Status::ok();
  const std::size_t missing = held_->changes.size();
  log_line(LogLevel::warn, "webhook sync: changes of deliveries this member does not hold, given up",
           {{"sequence", std::to_string(sequence)}, {"count", std::to_string(missing)}});
  metrics_.changes_unmatched.fetch_add(missing, std::memory_order_relaxed);
  held_.reset();
  held_memo_ = HeldMemo{};
  PAYCORE_RETURN_IF_ERROR(dispatcher_.note_changes_applied(sequence));
  metrics_.applied_sequence.store(sequence, std::memory_order_relaxed);
  return Status::ok();
}

// After this member became primary, whether it has read the changes stream up to its last
// message as of then: until it has, an older change read late could undo one it makes, so its
// dispatcher does not send and its webhook writes wait (ready_to_send).
Status WebhookSync::check_ready() {
  const bool primary = config_.is_primary && config_.is_primary();
  if (!primary) {
    promoted_target_.reset();
    ready_.store(false, std::memory_order_release);
    return Status::ok();
  }
  if (ready_.load(std::memory_order_acquire)) return Status::ok();
  if (!promoted_target_.has_value()) {
    StatusOr<repl::StreamPosition> position =
        repl::read_position(connection_->link->js(), webhook_changes_stream_name(config_.cluster));
    PAYCORE_RETURN_IF_ERROR(position.status());
    promoted_target_ = position->last_sequence;
  }
  if (read_sequence_ >= *promoted_target_) ready_.store(true, std::memory_order_release);
  return Status::ok();
}

}  // namespace paycore::cdc
