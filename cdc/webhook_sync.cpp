#include "cdc/webhook_sync.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "base/hex.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "repl/stream_format.hpp"

namespace paycore::cdc {
namespace {

using repl::kHeaderWriter;
constexpr const char* kHeaderChanges = "Paycore-Changes";  // the entries in the message

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads `n` bytes at *at into *out; false when fewer are left.
bool take(std::string_view in, std::size_t* at, std::size_t n, std::string_view* out) {
  if (in.size() - *at < n) return false;
  *out = in.substr(*at, n);
  *at += n;
  return true;
}

bool take_short_text(std::string_view in, std::size_t* at, std::string_view* out) {
  std::string_view len;
  return take(in, at, 1, &len) && take(in, at, static_cast<unsigned char>(len[0]), out);
}

bool take_long_text(std::string_view in, std::size_t* at, std::string_view* out) {
  std::string_view len;
  if (!take(in, at, 4, &len)) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(len[static_cast<std::size_t>(i)])) << (8 * i);
  return take(in, at, n, out);
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

std::string encode_changes(std::span<const webhooks::Delivery> changes) {
  std::string out;
  for (const webhooks::Delivery& d : changes) {
    out.push_back(static_cast<char>(d.event_id.size()));
    out += d.event_id;
    out.push_back(static_cast<char>(d.endpoint_id.size()));
    out += d.endpoint_id;
    const std::string value = webhooks::format::encode_delivery(d);
    put_u32(out, static_cast<std::uint32_t>(value.size()));
    out += value;
  }
  return out;
}

Status decode_changes(std::string_view message, std::vector<webhooks::Delivery>* changes) {
  changes->clear();
  std::size_t at = 0;
  while (at < message.size()) {
    std::string_view event_id, endpoint_id, value;
    const std::string where = "webhook changes: entry " + std::to_string(changes->size() + 1);
    if (!take_short_text(message, &at, &event_id) || !take_short_text(message, &at, &endpoint_id) ||
        !take_long_text(message, &at, &value)) {
      return Status::corruption(where + ": truncated at byte " + std::to_string(at));
    }
    webhooks::Delivery d;
    const Status s = webhooks::format::decode_delivery(value, event_id, endpoint_id, &d);
    if (!s.is_ok()) return Status::corruption(where + ": " + s.message());
    changes->push_back(std::move(d));
  }
  return Status::ok();
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

void WebhookSync::publish_changes(std::span<const webhooks::Delivery> changes) {
  {
    const std::lock_guard lock(mutex_);
    for (const webhooks::Delivery& d : changes) {
      if (queued_.size() >= config_.changes_queued_max) {
        metrics_.changes_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      queued_.push_back(d);
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
  kvConfig kv_config;
  kvConfig_Init(&kv_config);
  kv_config.Bucket = bucket.c_str();
  kv_config.History = 1;
  kv_config.Replicas = config_.replicas;
  natsStatus s = js_CreateKeyValue(&c->kv, js, &kv_config);
  if (s != NATS_OK) s = js_KeyValue(&c->kv, js, bucket.c_str());
  if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: bucket " + bucket);
  repl::StreamSettings stream;
  stream.name = webhook_changes_stream_name(config_.cluster);
  stream.subject = webhook_changes_subject(config_.cluster);
  stream.replicas = config_.replicas;
  stream.age_max_ms = config_.changes_age_max_ms;
  PAYCORE_RETURN_IF_ERROR(repl::ensure_stream(js, stream));
  kvWatchOptions watch;
  kvWatchOptions_Init(&watch);
  watch.IgnoreDeletes = true;
  s = kvStore_WatchAll(&c->watcher, c->kv, &watch);
  if (s != NATS_OK) return repl::nats_status(s, jsErrCode{}, "webhook sync: watching " + bucket);
  StatusOr<std::optional<std::uint64_t>> applied = dispatcher_.changes_applied();
  PAYCORE_RETURN_IF_ERROR(applied.status());
  jsSubOptions sub;
  jsSubOptions_Init(&sub);
  sub.Ordered = true;
  sub.Config.DeliverPolicy = js_DeliverByStartSequence;
  sub.Config.OptStartSeq = applied->value_or(0) + 1;
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
  const std::lock_guard lock(connection_mutex_);
  gone = std::move(connection_);
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

Status WebhookSync::publish_queued() {
  for (;;) {
    std::vector<webhooks::Delivery> batch;
    {
      const std::lock_guard lock(mutex_);
      while (!queued_.empty() && batch.size() < config_.changes_per_message_max) {
        batch.push_back(std::move(queued_.front()));
        queued_.pop_front();
      }
    }
    if (batch.empty()) return Status::ok();
    const std::string body = encode_changes(batch);
    const std::string subject = webhook_changes_subject(config_.cluster);
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderWriter, writer_.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderChanges, std::to_string(batch.size()).c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(connection_->link->js(), &msg, nullptr);
    if (msg != nullptr) natsMsg_Destroy(msg);  // not taken by the library
    if (s != NATS_OK) {
      metrics_.changes_dropped.fetch_add(batch.size(), std::memory_order_relaxed);
      return repl::nats_status(s, jsErrCode{}, "webhook sync: publishing changes");
    }
  }
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
    Status handed = events::decode_endpoint(value, &endpoint);
    const std::string key = kvEntry_Key(entry);
    kvEntry_Destroy(entry);
    if (handed.is_ok()) handed = config_.on_endpoint(endpoint);
    if (!handed.is_ok()) return handed.with_context("webhook sync: endpoint " + key);
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
    std::vector<webhooks::Delivery> changes;
    Status decoded = Status::ok();
    if (header(msg, kHeaderWriter) != writer_) {
      decoded = decode_changes(std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))), &changes);
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

Status WebhookSync::apply(std::uint64_t sequence, std::vector<webhooks::Delivery> changes) {
  if (!changes.empty()) {
    StatusOr<std::vector<webhooks::DeliveryKey>> absent = dispatcher_.apply_changes(changes);
    PAYCORE_RETURN_IF_ERROR(absent.status());
    metrics_.changes_applied.fetch_add(changes.size() - absent->size(), std::memory_order_relaxed);
    std::vector<webhooks::Delivery> later = still_to_come(changes, *absent);
    if (!later.empty()) {
      held_ = std::make_unique<Held>();
      held_->sequence = sequence;
      held_->changes = std::move(later);
      held_->since_us = wall_clock_us();
      held_->next_try_us = held_->since_us + config_.absent_retry_ms * 1000;
      return Status::ok();
    }
  }
  PAYCORE_RETURN_IF_ERROR(dispatcher_.note_changes_applied(sequence));
  metrics_.applied_sequence.store(sequence, std::memory_order_relaxed);
  return Status::ok();
}

// The changes among `absent` whose event this member's deriver has not reached yet; the others
// (their event passed without that delivery) are counted unmatched and dropped.
std::vector<webhooks::Delivery> WebhookSync::still_to_come(std::vector<webhooks::Delivery>& changes,
                                                           const std::vector<webhooks::DeliveryKey>& absent) {
  std::vector<webhooks::Delivery> later;
  if (absent.empty()) return later;
  const std::uint64_t derived = config_.derived_lsn();
  for (webhooks::Delivery& d : changes) {
    const bool missing = std::any_of(absent.begin(), absent.end(), [&](const webhooks::DeliveryKey& k) {
      return k.event_id == d.event_id && k.endpoint_id == d.endpoint_id;
    });
    if (!missing) continue;
    const std::optional<events::EventKey> event = events::parse_event_id(d.event_id);
    if (event.has_value() && event->lsn > derived) {
      later.push_back(std::move(d));
    } else {
      metrics_.changes_unmatched.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return later;
}

// The held message's changes again; past absent_wait_ms the missing ones are given up.
Status WebhookSync::retry_held() {
  const std::int64_t now = wall_clock_us();
  if (now < held_->next_try_us) return Status::ok();
  std::unique_ptr<Held> held = std::move(held_);
  std::vector<webhooks::Delivery> changes = std::move(held->changes);
  const std::size_t before = changes.size();
  PAYCORE_RETURN_IF_ERROR(apply(held->sequence, std::move(changes)));
  if (held_ == nullptr) return Status::ok();  // all of them applied now
  held_->since_us = held->since_us;
  if (now - held_->since_us < config_.absent_wait_ms * 1000) return Status::ok();
  const std::size_t missing = held_->changes.size();
  log_line(LogLevel::warn, "webhook sync: changes of deliveries this member does not hold, given up",
           {{"sequence", std::to_string(held_->sequence)}, {"count", std::to_string(missing)},
            {"of", std::to_string(before)}});
  metrics_.changes_unmatched.fetch_add(missing, std::memory_order_relaxed);
  const std::uint64_t sequence = held_->sequence;
  held_.reset();
  PAYCORE_RETURN_IF_ERROR(dispatcher_.note_changes_applied(sequence));
  metrics_.applied_sequence.store(sequence, std::memory_order_relaxed);
  return Status::ok();
}

}  // namespace paycore::cdc
