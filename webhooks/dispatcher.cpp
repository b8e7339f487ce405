// The dispatcher's thread: notices in, due deliveries out to the sender, results into the store.
// Only the thread touches `slots` and `in_flight`; the members the events area calls touch the
// store (thread-safe) and the notice queue (a mutex).
#include "webhooks/dispatcher.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/assert.hpp"
#include "base/histogram.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "webhooks/signature.hpp"

namespace paycore::webhooks {
namespace {

constexpr std::int64_t never_us = std::numeric_limits<std::int64_t>::max();

// What the thread knows of one endpoint: when its first PENDING delivery is due (never_us:
// none known), which of its deliveries are being sent, and a lower bound on the due time of
// every PENDING one (its due scan starts there; see DeliveryStore::due_of). The bound holds
// because each due key written comes with a notice or a retry time no later than the key
// (enqueue, redeliver, record), a new slot starts at its first notice or at the rescan's first
// key, and a scan only moves the bound up to the first key it finds, the endpoint's earliest.
struct Slot {
  std::int64_t next_due_us = never_us;
  DeliveryStore::DueFrom scan_from{never_us, ""};
  std::vector<std::string> in_flight_events;

  void due_at(std::int64_t due_us) {
    next_due_us = std::min(next_due_us, due_us);
    if (due_us <= scan_from.due_us) scan_from = {due_us, ""};
  }
};

struct InFlight {
  std::string event_id;
  std::string endpoint_id;
  std::int64_t started_at_us = 0;
};

struct Notice {
  std::string endpoint_id;
  std::int64_t due_us = 0;
};

Status check_config(const DispatcherConfig& config) {
  if (!backoff_policy_valid(config.backoff)) return Status::invalid_argument("backoff policy");
  if (config.in_flight_per_endpoint_max == 0 || config.notices_max == 0 ||
      config.idle_wait_ms <= 0 || config.purge_interval_ms <= 0 || config.retention_ms < 0 ||
      config.purge_batch_max == 0) {
    return Status::invalid_argument("dispatcher: limits must be > 0 (retention_ms >= 0)");
  }
  return Status::ok();
}

}  // namespace

struct Dispatcher::Impl {
  DispatcherConfig config;
  std::unique_ptr<DeliveryStore> store;
  std::unique_ptr<HttpSender> sender;
  std::jthread thread;
  std::atomic<bool> stopping{false};

  // Shared with the callers.
  mutable std::mutex mutex;
  std::vector<Notice> notices;  // at most config.notices_max
  bool rescan = true;           // the store's due index is read again (at start: resume)
  std::unordered_set<std::string> disabled;

  // Counters.
  std::atomic<std::uint64_t> enqueued{0}, delivered{0}, attempts_failed{0}, given_up{0};
  std::atomic<std::uint64_t> events_too_old{0};  // enqueued past event_age_max_us: no delivery
  std::atomic<std::uint64_t> in_flight_count{0};
  std::array<std::atomic<std::uint64_t>, DispatcherStats::lag_buckets> lag_ms_buckets{};

  // The thread's own.
  std::unordered_map<std::string, Slot> slots;
  std::unordered_map<std::uint64_t, InFlight> in_flight;
  std::uint64_t next_tag = 1;
  std::mt19937_64 random;
  std::int64_t next_purge_us = 0;
  // config.may_send() was false at the last turn (set by the thread; read by notify).
  std::atomic<bool> paused{false};

  std::int64_t now_us() const { return config.clock_us(); }
  bool is_disabled(const std::string& endpoint_id) const {
    const std::lock_guard lock(mutex);
    return disabled.contains(endpoint_id);
  }

  void notify(std::string endpoint_id, std::int64_t due_us) {
    {
      const std::lock_guard lock(mutex);
      if (notices.size() < config.notices_max) {
        notices.push_back({std::move(endpoint_id), due_us});
      } else {
        rescan = true;  // the store has it; the thread finds it by a rescan
      }
    }
    // A paused thread is not woken: it would do nothing with the notice until it resumes (a
    // standby's deriver and change reader notify for every batch).
    if (!paused.load(std::memory_order_relaxed)) sender->wake();
  }

  // store->update, then config.on_changed with the deliveries as written (when it succeeded).
  // A PENDING one carries its event (read back from the store; a failed read leaves it out:
  // a member without the delivery then passes the change over).
  Status update_and_report(std::span<const DeliveryKey> keys, FunctionRef<void(Delivery&)> change, bool sync) {
    std::vector<DeliveryChange> changed;
    const Status status = store->update(keys, [&](Delivery& d) {
      change(d);
      if (config.on_changed) changed.push_back({d, std::nullopt});
    }, sync);
    if (!status.is_ok() || changed.empty()) return status;
    for (DeliveryChange& c : changed) {
      if (c.delivery.state != DeliveryState::kPending) continue;
      StatusOr<std::optional<StoredEvent>> event = store->event(c.delivery.event_id);
      if (event.is_ok()) c.event = std::move(*event);
    }
    config.on_changed(changed);
    return status;
  }
  bool may_send();
  Status enqueue_chunk(std::span<const EventToDeliver> events, bool sync, bool any_age);

  void run();
  void take_notices();
  void start_due(std::int64_t now);
  bool start_slot(const std::string& endpoint_id, Slot& slot, std::int64_t now);
  Status start_one(const format::DueKey& key, std::int64_t now, bool* started);
  void finish_without_attempt(const format::DueKey& key, std::string why, std::int64_t now);
  void record(std::vector<SendResult>& results);
  std::int64_t wait_ms(std::int64_t now) const;
  void purge(std::int64_t now);
};

// ---- Notices -----------------------------------------------------------------------------------

void Dispatcher::Impl::take_notices() {
  std::vector<Notice> taken;
  bool must_rescan = false;
  {
    const std::lock_guard lock(mutex);
    taken.swap(notices);
    must_rescan = rescan;
    rescan = false;
  }
  if (must_rescan) {
    StatusOr<std::vector<std::pair<std::string, std::int64_t>>> due = store->due_endpoints();
    if (!due.is_ok()) {
      log_line(LogLevel::error, "webhooks: reading the due index",
               {{"error", due.status().to_string()}});
      const std::lock_guard lock(mutex);
      rescan = true;
    } else {
      for (auto& [endpoint_id, due_us] : *due) taken.push_back({endpoint_id, due_us});
    }
  }
  for (Notice& notice : taken) {
    if (slots.size() >= endpoints_max && !slots.contains(notice.endpoint_id)) {
      const std::lock_guard lock(mutex);
      rescan = true;  // later, when slots have emptied
      continue;
    }
    slots[notice.endpoint_id].due_at(notice.due_us);
  }
}

// ---- Starting attempts ---------------------------------------------------------------------------

void Dispatcher::Impl::start_due(std::int64_t now) {
  for (auto it = slots.begin(); it != slots.end();) {
    Slot& slot = it->second;
    if (slot.next_due_us <= now && slot.in_flight_events.size() < config.in_flight_per_endpoint_max) {
      if (!start_slot(it->first, slot, now)) return;  // the sender is full: no one else either
    }
    const bool idle = slot.next_due_us == never_us && slot.in_flight_events.empty();
    it = idle ? slots.erase(it) : std::next(it);
  }
}

// Starts the endpoint's due deliveries up to its free slots; false when the sender is full.
bool Dispatcher::Impl::start_slot(const std::string& endpoint_id, Slot& slot, std::int64_t now) {
  const std::size_t busy = slot.in_flight_events.size();
  const std::size_t free = config.in_flight_per_endpoint_max - busy;
  std::int64_t next_due_us = never_us;
  StatusOr<std::vector<format::DueKey>> due = store->due_of(
      endpoint_id, slot.scan_from, now, free + busy, &next_due_us);
  if (!due.is_ok()) {
    log_line(LogLevel::error, "webhooks: reading due deliveries", {{"error", due.status().to_string()}});
    slot.next_due_us = now + config.idle_wait_ms * 1000;  // try again later, not in a spin
    return true;
  }
  slot.next_due_us = next_due_us;
  // The first key found is the endpoint's earliest; naming it (not only its time) skips the
  // deleted keys of its own enqueue, which share that time.
  slot.scan_from = due->empty() ? DeliveryStore::DueFrom{next_due_us, ""}
                                : DeliveryStore::DueFrom{due->front().next_attempt_at_us, due->front().event_id};
  std::size_t started_count = 0;
  for (const format::DueKey& key : *due) {
    const auto& events = slot.in_flight_events;
    if (std::find(events.begin(), events.end(), key.event_id) != events.end()) continue;
    if (started_count == free) {
      slot.next_due_us = std::min(slot.next_due_us, key.next_attempt_at_us);
      break;
    }
    bool started = false;
    const Status status = start_one(key, now, &started);
    if (status.code() == StatusCode::kFull) {
      slot.next_due_us = std::min(slot.next_due_us, key.next_attempt_at_us);
      return false;
    }
    if (!status.is_ok()) {
      log_line(LogLevel::error, "webhooks: starting a delivery", {{"error", status.to_string()}});
      slot.next_due_us = std::min(slot.next_due_us, now + config.idle_wait_ms * 1000);
      continue;
    }
    if (started) {
      slot.in_flight_events.push_back(key.event_id);
      ++started_count;
    }
  }
  return true;
}

// Sends one delivery, or finishes it when it cannot be sent at all. *started: a transfer runs.
Status Dispatcher::Impl::start_one(const format::DueKey& key, std::int64_t now, bool* started) {
  if (is_disabled(key.endpoint_id)) {
    finish_without_attempt(key, "endpoint disabled", now);
    return Status::ok();
  }
  StatusOr<std::optional<Delivery>> delivery = store->delivery(key.event_id, key.endpoint_id);
  PAYCORE_RETURN_IF_ERROR(delivery.status());
  StatusOr<std::optional<StoredEvent>> event = store->event(key.event_id);
  PAYCORE_RETURN_IF_ERROR(event.status());
  if (!delivery->has_value() || !event->has_value()) {
    return Status::corruption("delivery store: due key without its delivery or event: " +
                              key.event_id + "/" + key.endpoint_id);
  }
  const Delivery& d = **delivery;
  StatusOr<EndpointUrl> url = check_endpoint_url(d.url, config.sender.policy);
  const std::uint64_t tag = next_tag++;
  in_flight.emplace(tag, InFlight{key.event_id, key.endpoint_id, now});
  if (!url.is_ok()) {
    // The policy changed since the endpoint was created: a failed attempt, with the refusal as
    // its error and no network.
    std::vector<SendResult> refused(1);
    refused[0].tag = tag;
    refused[0].error = url.status().message();
    record(refused);
    return Status::ok();
  }
  SendRequest request;
  request.tag = tag;
  request.url = url->normalized;
  request.body = (*event)->body;
  request.signature = signature_header_value(d.secret, now / us_per_second, request.body);
  request.event_id = key.event_id;
  const Status sent = sender->start(std::move(request));
  if (!sent.is_ok()) {
    in_flight.erase(tag);
    return sent;
  }
  in_flight_count = in_flight.size();
  *started = true;
  return Status::ok();
}

void Dispatcher::Impl::finish_without_attempt(const format::DueKey& key, std::string why,
                                              std::int64_t now) {
  const DeliveryKey keys[] = {{key.event_id, key.endpoint_id}};
  const Status status = update_and_report(keys, [&](Delivery& d) {
    if (d.state != DeliveryState::kPending) return;
    d.state = DeliveryState::kFailed;
    d.next_attempt_at_us = 0;
    d.finished_at_us = now;
    d.last_error = why;
    given_up += 1;
  }, /*sync=*/false);
  if (!status.is_ok()) {
    log_line(LogLevel::error, "webhooks: giving a delivery up", {{"error", status.to_string()}});
  }
}

// ---- Results -----------------------------------------------------------------------------------

// Writes every result in one batch (no sync: docs in delivery_store.hpp), schedules retries and
// gives up past the horizon; then frees the transfers' slots.
void Dispatcher::Impl::record(std::vector<SendResult>& results) {
  if (results.empty()) return;
  const std::int64_t now = now_us();
  std::vector<DeliveryKey> keys;
  std::unordered_map<std::string, const SendResult*> by_key;  // "event\nendpoint" -> result
  std::vector<InFlight> finished;
  for (const SendResult& result : results) {
    auto it = in_flight.find(result.tag);
    const bool known = it != in_flight.end();
    PAYCORE_ASSERT(known);
    finished.push_back(std::move(it->second));
    in_flight.erase(it);
    keys.push_back({finished.back().event_id, finished.back().endpoint_id});
    by_key[finished.back().event_id + "\n" + finished.back().endpoint_id] = &result;
  }
  std::unordered_map<std::string, std::int64_t> next_due;  // endpoint -> earliest retry
  std::unordered_map<std::string, std::int64_t> started_at;
  for (const InFlight& f : finished) started_at[f.event_id + "\n" + f.endpoint_id] = f.started_at_us;
  const Status status = update_and_report(keys, [&](Delivery& d) {
    const std::string id = d.event_id + "\n" + d.endpoint_id;
    const SendResult& result = *by_key.at(id);
    add_attempt(d, Attempt{.started_at_us = started_at.at(id),
                           .duration_ms = static_cast<std::int32_t>(result.duration_ms),
                           .http_status = result.http_status, .error = result.error});
    if (d.state != DeliveryState::kPending) return;  // finished meanwhile (disabled): stays so
    if (result.delivered()) {
      d.state = DeliveryState::kDelivered;
      d.next_attempt_at_us = 0;
      d.finished_at_us = now;
      delivered += 1;
      const auto lag_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - d.event_created_at_us) / 1000);
      lag_ms_buckets[log2_bucket(lag_ms, DispatcherStats::lag_buckets)] += 1;
      return;
    }
    attempts_failed += 1;
    const auto draw = static_cast<std::uint32_t>(random() >> 32);
    const std::optional<std::int64_t> next = next_attempt_at_us(
        config.backoff, d.event_created_at_us, now, d.attempts_count, draw);
    if (next.has_value()) {
      d.next_attempt_at_us = *next;
      auto [slot, inserted] = next_due.try_emplace(d.endpoint_id, *next);
      if (!inserted) slot->second = std::min(slot->second, *next);
      return;
    }
    d.state = DeliveryState::kFailed;
    d.next_attempt_at_us = 0;
    d.finished_at_us = now;
    d.last_error = "retry horizon passed";
    given_up += 1;
  }, /*sync=*/false);
  if (!status.is_ok()) {  // the deliveries stay as stored: PENDING ones are sent again
    log_line(LogLevel::error, "webhooks: recording attempts", {{"error", status.to_string()}});
  }
  for (const InFlight& f : finished) {
    Slot& slot = slots[f.endpoint_id];
    auto& events = slot.in_flight_events;
    events.erase(std::remove(events.begin(), events.end(), f.event_id), events.end());
    const auto next = next_due.find(f.endpoint_id);
    if (next != next_due.end()) slot.due_at(next->second);
    if (!status.is_ok()) slot.next_due_us = std::min(slot.next_due_us, now + config.idle_wait_ms * 1000);
  }
  in_flight_count = in_flight.size();
}

// ---- The loop ----------------------------------------------------------------------------------

// Until the first endpoint with a free slot is due, at most idle_wait_ms; the sender's activity
// and wake() end the wait sooner.
std::int64_t Dispatcher::Impl::wait_ms(std::int64_t now) const {
  std::int64_t wait_us = config.idle_wait_ms * 1000;
  if (paused.load(std::memory_order_relaxed)) return config.idle_wait_ms;  // slots wait for the member to send
  for (const auto& [endpoint_id, slot] : slots) {
    if (slot.in_flight_events.size() >= config.in_flight_per_endpoint_max) continue;
    wait_us = std::min(wait_us, std::max<std::int64_t>(0, slot.next_due_us - now));
  }
  return (wait_us + 999) / 1000;
}

void Dispatcher::Impl::purge(std::int64_t now) {
  if (now < next_purge_us) return;
  next_purge_us = now + config.purge_interval_ms * 1000;
  StatusOr<std::size_t> purged =
      store->purge_finished(now - config.retention_ms * 1000, config.purge_batch_max);
  if (!purged.is_ok()) {
    log_line(LogLevel::error, "webhooks: retention", {{"error", purged.status().to_string()}});
    return;
  }
  if (*purged == config.purge_batch_max) next_purge_us = now;  // more are due: next turn again
}

// Whether this turn may start attempts (config.may_send). Paused, the store changes under the
// thread (apply_changes), so the turn that resumes reads its due index again.
bool Dispatcher::Impl::may_send() {
  const bool sending = !config.may_send || config.may_send();
  if (sending && paused.load(std::memory_order_relaxed)) {
    const std::lock_guard lock(mutex);
    rescan = true;
  }
  paused.store(!sending, std::memory_order_relaxed);
  return sending;
}

void Dispatcher::Impl::run() {
  (void)set_this_thread_priority(config.priority);
  std::vector<SendResult> results;
  while (!stopping.load(std::memory_order_acquire)) {
    const std::int64_t now = now_us();
    if (may_send()) {
      take_notices();
      start_due(now);
    }
    purge(now);
    results.clear();
    const Status polled = sender->poll(wait_ms(now_us()), &results);
    if (!polled.is_ok()) {
      log_line(LogLevel::error, "webhooks: sender", {{"error", polled.to_string()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(config.idle_wait_ms));
    }
    record(results);
  }
}

// ---- The members the events area calls ------------------------------------------------------

Dispatcher::Dispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Dispatcher::~Dispatcher() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->sender->wake();
  if (impl_->thread.joinable()) impl_->thread.join();
}

StatusOr<std::unique_ptr<Dispatcher>> Dispatcher::start(DispatcherConfig config) {
  PAYCORE_RETURN_IF_ERROR(check_config(config));
  if (!config.clock_us) config.clock_us = wall_clock_us;
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  StatusOr<std::unique_ptr<DeliveryStore>> store = DeliveryStore::open(impl->config.store);
  PAYCORE_RETURN_IF_ERROR(store.status());
  impl->store = std::move(*store);
  StatusOr<std::unique_ptr<HttpSender>> sender = HttpSender::create(impl->config.sender);
  PAYCORE_RETURN_IF_ERROR(sender.status());
  impl->sender = std::move(*sender);
  StatusOr<std::vector<std::string>> disabled = impl->store->disabled_endpoints();
  PAYCORE_RETURN_IF_ERROR(disabled.status());
  impl->disabled.insert(disabled->begin(), disabled->end());
  const std::uint64_t seed = impl->config.jitter_seed;
  impl->random.seed(seed != 0 ? seed : (std::uint64_t{std::random_device()()} << 32) | std::random_device()());
  Impl* raw = impl.get();
  impl->thread = std::jthread([raw] { raw->run(); });
  (void)::pthread_setname_np(impl->thread.native_handle(), "paycore-webhook");  // top -H, perf
  return std::unique_ptr<Dispatcher>(new Dispatcher(std::move(impl)));
}

Status Dispatcher::enqueue(const Event& event, std::span<const Endpoint> endpoints) {
  const EventToDeliver one[] = {{&event, endpoints}};
  return impl_->enqueue_chunk(one, /*sync=*/true, /*any_age=*/true);
}

Status Dispatcher::sync() { return impl_->store->sync(); }

Status Dispatcher::note_handed_over(std::uint64_t position) { return impl_->store->note_handed_over(position); }

StatusOr<std::optional<std::uint64_t>> Dispatcher::handed_over() const { return impl_->store->handed_over(); }

Status Dispatcher::enqueue_batch(std::span<const EventToDeliver> events, bool sync) {
  // The store takes events_per_add_max events a write, then one sync makes them all durable
  // (RocksDB's WAL is one file, written in order). Not a synced last write: a last chunk that
  // adds nothing (its deliveries held, or its events too old) writes nothing, and would leave
  // the chunks before it unsynced.
  for (std::size_t from = 0; from < events.size(); from += events_per_add_max) {
    const std::size_t count = std::min(events_per_add_max, events.size() - from);
    PAYCORE_RETURN_IF_ERROR(impl_->enqueue_chunk(events.subspan(from, count), /*sync=*/false, /*any_age=*/false));
  }
  return sync ? impl_->store->sync() : Status::ok();
}

// `any_age`: event_age_max_us does not apply (an explicit enqueue: a redeliver's).
Status Dispatcher::Impl::enqueue_chunk(std::span<const EventToDeliver> events, bool sync, bool any_age) {
  std::vector<StoredEvent> stored(events.size());
  std::vector<std::vector<NewDelivery>> wanted(events.size());
  std::vector<DeliveryStore::EventToAdd> adds(events.size());
  const std::int64_t now = now_us();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = *events[i].event;
    stored[i] = {.id = e.id, .merchant_id = e.merchant_id, .type = e.type,
                 .created_at_us = e.created_at_us, .body = e.body};
    const bool too_old = !any_age && config.event_age_max_us != 0 && e.created_at_us < now - config.event_age_max_us;
    if (too_old && !events[i].endpoints.empty()) events_too_old += 1;
    for (const Endpoint& endpoint : events[i].endpoints) {
      if (too_old || !endpoint.enabled || is_disabled(endpoint.id)) continue;
      wanted[i].push_back({endpoint.id, endpoint.url, endpoint.secret});
    }
    adds[i] = {&stored[i], wanted[i]};
  }
  StatusOr<std::size_t> added = store->add_many(adds, now, sync);
  PAYCORE_RETURN_IF_ERROR(added.status());
  enqueued += *added;
  if (*added == 0) return Status::ok();
  std::unordered_set<std::string> notified;  // one notice per endpoint per batch
  for (const auto& endpoints : wanted) {
    for (const NewDelivery& endpoint : endpoints) {
      if (notified.insert(endpoint.endpoint_id).second) notify(endpoint.endpoint_id, now);
    }
  }
  return Status::ok();
}

StatusOr<std::vector<Delivery>> Dispatcher::deliveries_of(std::string_view event_id) const {
  StatusOr<std::vector<Delivery>> deliveries = impl_->store->deliveries_of(event_id);
  PAYCORE_RETURN_IF_ERROR(deliveries.status());
  for (Delivery& d : *deliveries) d.secret.clear();
  return deliveries;
}

Status Dispatcher::redeliver(std::string_view event_id) {
  StatusOr<std::vector<Delivery>> deliveries = impl_->store->deliveries_of(event_id);
  PAYCORE_RETURN_IF_ERROR(deliveries.status());
  if (deliveries->empty()) return Status::not_found("no delivery of event " + std::string(event_id));
  std::vector<DeliveryKey> keys;
  for (const Delivery& d : *deliveries) keys.push_back({d.event_id, d.endpoint_id});
  const std::int64_t now = impl_->now_us();
  PAYCORE_RETURN_IF_ERROR(impl_->update_and_report(keys, [&](Delivery& d) {
    d.state = DeliveryState::kPending;
    d.next_attempt_at_us = now;
    d.finished_at_us = 0;
    d.last_error.clear();
  }, /*sync=*/true));
  for (const DeliveryKey& key : keys) impl_->notify(key.endpoint_id, now);
  return Status::ok();
}

Status Dispatcher::disable_endpoint(std::string_view endpoint_id) {
  PAYCORE_RETURN_IF_ERROR(impl_->store->disable_endpoint(endpoint_id));
  {
    const std::lock_guard lock(impl_->mutex);
    impl_->disabled.emplace(endpoint_id);
  }
  impl_->notify(std::string(endpoint_id), impl_->now_us());  // gives its PENDING ones up now
  return Status::ok();
}

StatusOr<std::vector<DeliveryKey>> Dispatcher::apply_changes(std::span<const DeliveryChange> changes) {
  std::unordered_map<std::string, const Delivery*> latest;  // "event\nendpoint" -> its last change
  for (const DeliveryChange& change : changes) {
    const Delivery& c = change.delivery;
    latest.insert_or_assign(c.event_id + "\n" + c.endpoint_id, &c);
  }
  std::vector<DeliveryKey> keys;
  keys.reserve(latest.size());
  for (const auto& [id, c] : latest) keys.push_back({c->event_id, c->endpoint_id});
  std::unordered_set<std::string> found;
  PAYCORE_RETURN_IF_ERROR(impl_->store->update(keys, [&](Delivery& d) {
    const std::string id = d.event_id + "\n" + d.endpoint_id;
    found.insert(id);
    const Delivery& c = *latest.at(id);
    if (c.attempts_count < d.attempts_count) return;  // this store has seen later attempts
    d.state = c.state;
    d.next_attempt_at_us = c.next_attempt_at_us;
    d.finished_at_us = c.finished_at_us;
    d.attempts_count = c.attempts_count;
    d.last_error = c.last_error;
    d.attempts = c.attempts;
  }, /*sync=*/false));
  std::vector<DeliveryKey> absent;
  for (const auto& [id, c] : latest) {
    if (!found.contains(id)) {
      absent.push_back({c->event_id, c->endpoint_id});
    } else if (c->state == DeliveryState::kPending) {  // e.g. a redeliver: its slot learns of it
      impl_->notify(c->endpoint_id, c->next_attempt_at_us);
    }
  }
  return absent;
}

StatusOr<bool> Dispatcher::store_change(const DeliveryChange& change) {
  const Delivery& d = change.delivery;
  if (!change.event.has_value()) return Status::invalid_argument("a change without its event cannot be stored");
  if (impl_->is_disabled(d.endpoint_id)) return false;
  StatusOr<bool> stored = impl_->store->put_absent(*change.event, d);
  PAYCORE_RETURN_IF_ERROR(stored.status());
  if (*stored && d.state == DeliveryState::kPending) impl_->notify(d.endpoint_id, d.next_attempt_at_us);
  return stored;
}

Status Dispatcher::note_changes_applied(std::uint64_t sequence) {
  return impl_->store->note_changes_applied(sequence);
}

StatusOr<std::optional<std::uint64_t>> Dispatcher::changes_applied() const {
  return impl_->store->changes_applied();
}

DispatcherStats Dispatcher::stats() const {
  DispatcherStats out;
  out.enqueued = impl_->enqueued.load();
  out.events_too_old = impl_->events_too_old.load();
  out.delivered = impl_->delivered.load();
  out.attempts_failed = impl_->attempts_failed.load();
  out.given_up = impl_->given_up.load();
  out.pending = impl_->store->pending_count();
  out.in_flight = impl_->in_flight_count.load();
  for (std::size_t i = 0; i < out.lag_ms_buckets.size(); ++i) {
    out.lag_ms_buckets[i] = impl_->lag_ms_buckets[i].load();
  }
  return out;
}

void Dispatcher::wake() { impl_->sender->wake(); }

}  // namespace paycore::webhooks
