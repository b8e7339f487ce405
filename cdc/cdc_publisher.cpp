#include "cdc/cdc_publisher.hpp"

#include <pthread.h>

#include <chrono>
#include <vector>

#include "base/log.hpp"
#include "repl/stream_format.hpp"

namespace paycore::cdc {
namespace {

using repl::kHeaderExpectedLastSequence;  // JetStream's own headers (repl/stream_format.hpp)
using repl::kHeaderMsgId;
constexpr const char* kHeaderEventId = "Paycore-Event-Id";
constexpr const char* kHeaderEventType = "Paycore-Event-Type";

std::string subject_prefix(std::string_view cluster) { return "paycore." + std::string(cluster) + ".events"; }

// The message of one event: its JSON, the ids and the compare-and-set header. Null on failure
// (only on memory exhaustion).
natsMsg* make_message(const std::string& subject, const events::Event& e, const std::string& body,
                      std::uint64_t expected_sequence) {
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())) != NATS_OK) {
    return nullptr;
  }
  const std::string id = events::event_id(e.lsn, e.index);
  const std::string expected = std::to_string(expected_sequence);
  natsStatus s = natsMsgHeader_Set(msg, kHeaderMsgId, id.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderEventId, id.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderEventType, std::string(events::to_string(e.type)).c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderExpectedLastSequence, expected.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return nullptr;
  }
  return msg;
}

}  // namespace

std::string events_stream_name(std::string_view cluster) { return "PAYCORE_EVENTS_" + std::string(cluster); }

std::string events_subject(std::string_view cluster, std::string_view merchant_id) {
  std::string subject = subject_prefix(cluster) + ".";
  for (const char c : merchant_id) {
    if (c == '.') {
      subject += "%2E";
    } else {
      subject.push_back(c);
    }
  }
  return subject;
}

StatusOr<std::unique_ptr<CdcPublisher>> CdcPublisher::start(const events::EventStore& store, CdcConfig config) {
  PAYCORE_RETURN_IF_ERROR(repl::check_cluster_name(config.cluster));
  if (!config.is_primary || !config.render) return Status::invalid_argument("cdc: is_primary and render are required");
  if (config.replicas < 1 || config.replicas > 5) return Status::invalid_argument("cdc: replicas must be 1..5");
  if (config.events_per_round_max == 0) return Status::invalid_argument("cdc: events_per_round_max is 0");
  std::unique_ptr<CdcPublisher> p(new CdcPublisher(store, std::move(config)));
  p->thread_ = std::thread([raw = p.get()] { raw->loop(); });
  (void)::pthread_setname_np(p->thread_.native_handle(), "paycore-cdc");  // top -H, perf
  return p;
}

CdcPublisher::CdcPublisher(const events::EventStore& store, CdcConfig config)
    : store_(store), config_(std::move(config)) {
  config_.link.ack_handler = &CdcPublisher::on_ack;
  config_.link.ack_closure = this;
}

CdcPublisher::~CdcPublisher() { stop(); }

void CdcPublisher::stop() {
  {
    const std::lock_guard lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  link_.reset();
}

std::string CdcPublisher::last_failure() const {
  const std::lock_guard lock(mutex_);
  return last_failure_;
}

// libnats's thread: a refused or unanswered publish makes the round fail (and resync).
void CdcPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck*, jsPubAckErr* error, void* closure) {
  if (error != nullptr) static_cast<CdcPublisher*>(closure)->refused_.fetch_add(1, std::memory_order_relaxed);
  natsMsg_Destroy(msg);
}

Status CdcPublisher::connect() {
  if (link_ != nullptr) return Status::ok();
  StatusOr<std::unique_ptr<repl::NatsLink>> link = repl::NatsLink::connect(config_.link);
  PAYCORE_RETURN_IF_ERROR(link.status());
  repl::StreamSettings stream;
  stream.name = events_stream_name(config_.cluster);
  stream.subject = subject_prefix(config_.cluster) + ".>";
  stream.replicas = config_.replicas;
  stream.age_max_ms = config_.age_max_ms;
  PAYCORE_RETURN_IF_ERROR(repl::ensure_stream((*link)->js(), stream));
  link_ = std::move(*link);
  return Status::ok();
}

// Reads what the stream holds last: its sequence, and the event in its message.
Status CdcPublisher::resync() {
  const std::string stream = events_stream_name(config_.cluster);
  StatusOr<repl::StreamPosition> position = repl::read_position(link_->js(), stream);
  PAYCORE_RETURN_IF_ERROR(position.status());
  cursor_.reset();
  sequence_ = position->last_sequence;
  if (sequence_ != 0) {
    natsMsg* msg = nullptr;
    jsErrCode error{};
    const natsStatus s = js_GetMsg(&msg, link_->js(), stream.c_str(), sequence_, nullptr, &error);
    if (s == NATS_OK) {
      const char* id = nullptr;
      if (natsMsgHeader_Get(msg, kHeaderEventId, &id) == NATS_OK && id != nullptr) cursor_ = events::parse_event_id(id);
      natsMsg_Destroy(msg);
      if (!cursor_) return Status::corruption("stream " + stream + ": its last message has no " + kHeaderEventId);
    } else if (s != NATS_NOT_FOUND) {
      return repl::nats_status(s, error, "stream " + stream + " message " + std::to_string(sequence_));
    }
    // Not found: retention emptied the stream; everything the store holds goes again.
  }
  metrics_.position_lsn.store(cursor_ ? cursor_->lsn : 0, std::memory_order_relaxed);
  synced_ = true;
  return Status::ok();
}

// Publishes `events` in order, each expecting the one before it, then waits for their acks.
Status CdcPublisher::publish(const std::vector<events::Event>& events) {
  refused_.store(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const events::Event& e = events[i];
    natsMsg* msg = make_message(events_subject(config_.cluster, e.merchant_id.view()), e,
                                config_.render(e), sequence_ + i);
    if (msg == nullptr) return Status(StatusCode::kIoError, "cdc: could not make a message");
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = config_.ack_wait_ms;
    const natsStatus s = js_PublishMsgAsync(link_->js(), &msg, &options);
    if (msg != nullptr) natsMsg_Destroy(msg);  // not taken by the library
    if (s != NATS_OK) {
      (void)link_->drain_publishes(config_.ack_wait_ms);
      return repl::nats_status(s, jsErrCode{}, "cdc: publishing " + events::event_id(e.lsn, e.index));
    }
  }
  PAYCORE_RETURN_IF_ERROR(link_->drain_publishes(config_.ack_wait_ms));
  if (refused_.load(std::memory_order_relaxed) != 0) {
    return Status(StatusCode::kUnavailable, "cdc: the stream refused or did not answer " +
                                                std::to_string(refused_.load()) + " of " +
                                                std::to_string(events.size()) + " messages");
  }
  sequence_ += events.size();
  cursor_ = events::EventKey{events.back().lsn, events.back().index};
  metrics_.published.fetch_add(events.size(), std::memory_order_relaxed);
  metrics_.position_lsn.store(cursor_->lsn, std::memory_order_relaxed);
  return Status::ok();
}

// One round while primary: whatever the store holds after the stream's last event.
Status CdcPublisher::round(bool* published) {
  *published = false;
  if (!config_.is_primary()) {
    synced_ = false;  // another member publishes: read the stream again when this one leads
    return Status::ok();
  }
  PAYCORE_RETURN_IF_ERROR(connect());
  if (!synced_) PAYCORE_RETURN_IF_ERROR(resync());
  StatusOr<std::vector<events::Event>> events = store_.events_after(cursor_, config_.events_per_round_max);
  PAYCORE_RETURN_IF_ERROR(events.status());
  if (events->empty()) return Status::ok();
  const Status s = publish(*events);
  if (!s.is_ok()) synced_ = false;  // some may be in: ask the stream
  *published = s.is_ok();
  return s;
}

void CdcPublisher::loop() {
  for (;;) {
    bool published = false;
    const Status s = round(&published);
    metrics_.stuck.store(!s.is_ok(), std::memory_order_relaxed);
    if (!s.is_ok()) {
      metrics_.failures.fetch_add(1, std::memory_order_relaxed);
      log_line(LogLevel::warn, "cdc: publishing events failed; retrying", {{"error", s.to_string()}});
      const std::lock_guard lock(mutex_);
      last_failure_ = s.to_string();
    }
    std::unique_lock lock(mutex_);
    if (stop_requested_) return;
    if (published) continue;  // more may be waiting
    const std::int64_t wait_ms = s.is_ok() ? config_.idle_wait_ms : config_.retry_wait_ms;
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_requested_; });
    if (stop_requested_) return;
  }
}

}  // namespace paycore::cdc
