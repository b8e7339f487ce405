#include "app/events_runtime.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "base/random_hex.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "repl/stream_follower.hpp"
#include "repl/stream_format.hpp"
#include "webhooks/endpoint_url.hpp"

namespace paycore::app {

bool endpoint_wants(const std::vector<std::string>& events, events::EventType type) {
  const std::string_view name = events::to_string(type);
  return std::any_of(events.begin(), events.end(),
                     [&](const std::string& e) { return e == "*" || e == name; });
}

namespace {

// The endpoints among `records` that get an event of `type` made at `created_at_us`: enabled,
// subscribed to it, and created no later than it (the same on every member of a cluster,
// whenever each learns of the endpoint: docs/events.md "Webhooks in a cluster"). A redelivery
// passes INT64_MAX: endpoints created since the event get it too.
std::vector<webhooks::Endpoint> endpoints_wanting(const std::vector<events::EndpointRecord>& records,
                                                  events::EventType type, std::int64_t created_at_us) {
  std::vector<webhooks::Endpoint> out;
  for (const events::EndpointRecord& r : records) {
    if (r.enabled && r.created_at_us <= created_at_us && endpoint_wants(r.events, type)) {
      out.push_back({r.id, r.url, r.secret, true});
    }
  }
  return out;
}

// What the service needs of the runtime: where a new or disabled endpoint goes, and whether
// this member takes writes (a cluster's standby does not).
struct ServiceHooks {
  std::function<Status(const events::EndpointRecord&)> save_endpoint;
  std::function<Status()> writable;  // ok, or why this member takes no webhook write now
  std::function<const cdc::WebhookSyncMetrics*()> sync_metrics;  // null: none (yet)
};

// An event as the dispatcher sends it, its body rendered once (config.render).
webhooks::Event webhook_event(const events::Event& e, const EventsRuntimeConfig& config) {
  return {events::event_id(e.lsn, e.index), std::string(e.merchant_id.view()),
          std::string(events::to_string(e.type)), config.render(e), e.created_at_us};
}

// Endpoints of a merchant, all of them (enabled or not), at most this many.
constexpr std::size_t endpoints_stored_per_merchant_max = 64;


events::WebhookEndpoint to_api(const events::EndpointRecord& r, bool with_secret) {
  events::WebhookEndpoint e;
  e.id = r.id;
  e.merchant_id = r.merchant_id;
  e.url = r.url;
  e.events = r.events;
  if (with_secret) e.secret = r.secret;
  e.enabled = r.enabled;
  e.created_at_us = r.created_at_us;
  return e;
}

// The event-type filter of an endpoint: type names or the one "*", no repeats.
Status check_event_filter(const std::vector<std::string>& names) {
  if (names.empty() || names.size() > events::webhook_event_filters_max) {
    return Status::invalid_argument("events: 1 to " + std::to_string(events::webhook_event_filters_max) +
                                    " event types, or [\"*\"]");
  }
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (name == "*" && names.size() != 1) return Status::invalid_argument("events: \"*\" stands alone");
    if (name != "*" && !events::event_type_from(name)) {
      return Status::invalid_argument("events: unknown event type \"" + name + "\"");
    }
    if (!seen.insert(name).second) return Status::invalid_argument("events: \"" + name + "\" twice");
  }
  return Status::ok();
}

class Service final : public events::EventsService {
 public:
  Service(events::EventStore& store, webhooks::Dispatcher* dispatcher, const EventsRuntimeConfig& config,
          const std::unique_ptr<events::Deriver>& deriver, ServiceHooks hooks)
      : store_(store), dispatcher_(dispatcher), config_(config), deriver_(deriver), hooks_(std::move(hooks)) {}

  events::EventsMetrics metrics() const override {
    events::EventsMetrics m;
    m.derived_lsn = store_.position();
    if (deriver_) {
      const events::DeriverMetrics& d = deriver_->metrics();
      m.events_derived = d.events_derived.load(std::memory_order_relaxed);
      m.deriver_failures = d.failures.load(std::memory_order_relaxed);
      m.deriver_stuck = d.stuck.load(std::memory_order_relaxed);
      m.shared_log_records = d.shared_log_records.load(std::memory_order_relaxed);
    }
    if (dispatcher_ == nullptr) return m;
    const webhooks::DispatcherStats s = dispatcher_->stats();
    m.webhooks = true;
    m.deliveries_enqueued = s.enqueued;
    m.events_too_old = s.events_too_old;
    m.deliveries_delivered = s.delivered;
    m.attempts_failed = s.attempts_failed;
    m.deliveries_given_up = s.given_up;
    m.deliveries_pending = s.pending;
    m.transfers_in_flight = s.in_flight;
    static_assert(webhooks::DispatcherStats::lag_buckets == std::tuple_size_v<decltype(m.delivery_lag_ms_buckets)>);
    m.delivery_lag_ms_buckets = s.lag_ms_buckets;
    if (const cdc::WebhookSyncMetrics* sync = hooks_.sync_metrics()) {
      m.webhook_sync = true;
      m.changes_published = sync->changes_published.load(std::memory_order_relaxed);
      m.changes_dropped = sync->changes_dropped.load(std::memory_order_relaxed);
      m.changes_applied = sync->changes_applied.load(std::memory_order_relaxed);
      m.changes_unmatched = sync->changes_unmatched.load(std::memory_order_relaxed);
      m.changes_sequence = sync->applied_sequence.load(std::memory_order_relaxed);
      m.deliveries_inserted = sync->deliveries_inserted.load(std::memory_order_relaxed);
      m.sync_failures = sync->failures.load(std::memory_order_relaxed);
    }
    return m;
  }

  StatusOr<events::EventListPage> list_events(const events::EventListQuery& query) override {
    return store_.list(query);
  }

  StatusOr<events::Event> get_event(const Id& merchant, events::EventKey key) override {
    StatusOr<std::optional<events::Event>> e = store_.get(key);
    if (!e.is_ok()) return e.status();
    if (!e->has_value() || (!merchant.empty() && (*e)->merchant_id != merchant)) {
      return Status::not_found("no such event");
    }
    return **e;
  }

  StatusOr<events::WebhookEndpoint> create_endpoint(const Id& merchant, const Id& request_id,
                                                    const std::string& url,
                                                    const std::vector<std::string>& names) override {
    PAYCORE_RETURN_IF_ERROR(writable());
    const std::lock_guard lock(create_mutex_);  // one creation at a time: the count and the write
    StatusOr<std::optional<events::EndpointRecord>> earlier = store_.endpoint_by_request(merchant, request_id);
    if (!earlier.is_ok()) return earlier.status();
    if (earlier->has_value()) return replay((**earlier), url, names);
    PAYCORE_RETURN_IF_ERROR(check_event_filter(names));
    if (url.size() > events::webhook_url_bytes_max) return Status::invalid_argument("url: longer than 2048 bytes");
    StatusOr<webhooks::EndpointUrl> checked = webhooks::check_endpoint_url(url, config_.dispatcher.sender.policy);
    if (!checked.is_ok()) return Status::invalid_argument("url: " + checked.status().message());
    PAYCORE_RETURN_IF_ERROR(check_room(merchant));
    events::EndpointRecord r{"we_" + random_hex(12), merchant, request_id, url, names,
                             "whsec_" + random_hex(32), true, wall_clock_us()};
    if (r.id.size() != 27 || r.secret.size() != 70) return Status(StatusCode::kUnavailable, "no randomness");
    PAYCORE_RETURN_IF_ERROR(hooks_.save_endpoint(r));
    return to_api(r, true);
  }

  StatusOr<std::vector<events::WebhookEndpoint>> list_endpoints(const Id& merchant) override {
    PAYCORE_RETURN_IF_ERROR(webhooks_available());
    StatusOr<std::vector<events::EndpointRecord>> all = store_.endpoints_of(merchant, endpoints_stored_per_merchant_max);
    if (!all.is_ok()) return all.status();
    std::vector<events::WebhookEndpoint> out;
    for (const events::EndpointRecord& r : *all) out.push_back(to_api(r, false));
    return out;
  }

  StatusOr<events::WebhookEndpoint> disable_endpoint(const Id& merchant, std::string_view id) override {
    PAYCORE_RETURN_IF_ERROR(writable());
    StatusOr<std::optional<events::EndpointRecord>> found = store_.endpoint(merchant, id);
    if (!found.is_ok()) return found.status();
    if (!found->has_value()) return Status::not_found("no such webhook endpoint");
    events::EndpointRecord r = **found;
    if (r.enabled) {
      r.enabled = false;
      PAYCORE_RETURN_IF_ERROR(hooks_.save_endpoint(r));  // the dispatcher gives its deliveries up
    }
    return to_api(r, false);
  }

  StatusOr<std::vector<events::DeliveryView>> deliveries(const Id& merchant, events::EventKey key) override {
    PAYCORE_RETURN_IF_ERROR(webhooks_available());
    StatusOr<events::Event> e = get_event(merchant, key);
    if (!e.is_ok()) return e.status();
    StatusOr<std::vector<webhooks::Delivery>> got = dispatcher_->deliveries_of(events::event_id(key.lsn, key.index));
    if (!got.is_ok()) return got.status();
    std::vector<events::DeliveryView> out;
    for (const webhooks::Delivery& d : *got) out.push_back(view_of(d));
    return out;
  }

  std::uint64_t derived_lsn() const override { return store_.position(); }

  StatusOr<bool> redeliver(const Id& merchant, events::EventKey key, const Id& request_id) override {
    PAYCORE_RETURN_IF_ERROR(writable());
    StatusOr<events::Event> e = get_event(merchant, key);
    if (!e.is_ok()) return e.status();
    const std::lock_guard lock(create_mutex_);  // a request_id is checked, then kept, alone
    StatusOr<std::optional<events::EventKey>> earlier = store_.redelivery(merchant, request_id);
    if (!earlier.is_ok()) return earlier.status();
    if (earlier->has_value()) {
      if (**earlier != key) return Status(StatusCode::kConflict, "request_id redelivered another event");
      return true;  // queued once already: nothing more
    }
    PAYCORE_RETURN_IF_ERROR(queue_redelivery(*e));
    // Kept after the queueing: a crash in between makes a retry queue one more attempt (at
    // least once), never none.
    PAYCORE_RETURN_IF_ERROR(store_.put_redelivery(merchant, request_id, key, wall_clock_us()));
    return false;
  }

 private:
  // One more attempt to each endpoint that wants the event; endpoints created since the event
  // get it too (enqueue adds only the missing deliveries).
  Status queue_redelivery(const events::Event& e) {
    StatusOr<std::vector<events::EndpointRecord>> endpoints = store_.endpoints_of(e.merchant_id, endpoints_stored_per_merchant_max);
    if (!endpoints.is_ok()) return endpoints.status();
    const std::vector<webhooks::Endpoint> wanting =
        endpoints_wanting(*endpoints, e.type, std::numeric_limits<std::int64_t>::max());
    const webhooks::Event body = webhook_event(e, config_);
    if (!wanting.empty()) PAYCORE_RETURN_IF_ERROR(dispatcher_->enqueue(body, wanting));
    const Status s = dispatcher_->redeliver(body.id);
    if (s.code() == StatusCode::kNotFound) return Status::not_found("the event has no webhook endpoint to go to");
    return s;
  }

  Status webhooks_available() const {
    if (dispatcher_ != nullptr) return Status::ok();
    return Status(StatusCode::kUnavailable, "webhooks are off");
  }
  // Endpoints and redeliveries are written on the primary only (its bucket write and its
  // dispatcher's changes are what the other members follow).
  Status writable() const {
    PAYCORE_RETURN_IF_ERROR(webhooks_available());
    return hooks_.writable();
  }
  // The same request again: the same endpoint, secret included; another body is refused.
  static StatusOr<events::WebhookEndpoint> replay(const events::EndpointRecord& r, const std::string& url,
                                                  const std::vector<std::string>& names) {
    if (r.url != url || r.events != names) {
      return Status(StatusCode::kConflict, "request_id was used for another endpoint");
    }
    events::WebhookEndpoint e = to_api(r, true);
    e.replayed = true;
    return e;
  }
  Status check_room(const Id& merchant) const {
    StatusOr<std::vector<events::EndpointRecord>> all = store_.endpoints_of(merchant, endpoints_stored_per_merchant_max);
    if (!all.is_ok()) return all.status();
    const auto enabled = std::count_if(all->begin(), all->end(), [](const auto& r) { return r.enabled; });
    if (static_cast<std::size_t>(enabled) >= events::webhook_endpoints_per_merchant_max ||
        all->size() >= endpoints_stored_per_merchant_max) {
      return Status(StatusCode::kFull, "too many webhook endpoints");
    }
    return Status::ok();
  }
  static events::DeliveryView view_of(const webhooks::Delivery& d) {
    events::DeliveryView v;
    v.endpoint_id = d.endpoint_id;
    v.status = std::string(webhooks::delivery_state_name(d.state));
    v.attempts_count = d.attempts_count;
    v.next_attempt_at_us = d.state == webhooks::DeliveryState::kPending ? d.next_attempt_at_us : 0;
    for (const webhooks::Attempt& a : d.attempts) {
      v.attempts.push_back({a.started_at_us, a.duration_ms, a.http_status, a.error});
    }
    return v;
  }

  events::EventStore& store_;
  webhooks::Dispatcher* dispatcher_;  // null: no webhooks (a cluster)
  const EventsRuntimeConfig& config_;
  const std::unique_ptr<events::Deriver>& deriver_;  // the runtime's: set by start()
  ServiceHooks hooks_;
  std::mutex create_mutex_;
};

}  // namespace

StatusOr<std::unique_ptr<EventsRuntime>> EventsRuntime::open(EventsRuntimeConfig config) {
  std::unique_ptr<EventsRuntime> rt(new EventsRuntime());
  rt->config_ = std::move(config);
  StatusOr<std::unique_ptr<events::EventStore>> store = events::EventStore::open({rt->config_.data_dir + "/events"});
  if (!store.is_ok()) return store.status();
  rt->store_ = std::move(*store);
  rt->floor_lsn_.store(rt->store_->position() + 1, std::memory_order_release);
  EventsRuntime* raw = rt.get();
  if (rt->config_.webhooks) {
    webhooks::DispatcherConfig dispatcher = rt->config_.dispatcher;
    dispatcher.store.dir = rt->config_.data_dir + "/webhooks";
    dispatcher.priority = rt->config_.priority;
    if (rt->config_.cluster) {
      dispatcher.may_send = [raw] { return raw->may_send(); };
      // A delivery of an event older than the changes stream keeps could never learn that
      // another member finished it (an event derived from the log stream by a member that
      // joined late, or one away for days): none is made, rather than send it again.
      dispatcher.event_age_max_us = rt->config_.webhook_sync.changes_age_max_ms * 1000;
      dispatcher.on_changed = [raw](std::span<const webhooks::DeliveryChange> changed) {
        if (cdc::WebhookSync* sync = raw->sync_ptr_.load(std::memory_order_acquire)) sync->publish_changes(changed);
      };
    }
    StatusOr<std::unique_ptr<webhooks::Dispatcher>> started = webhooks::Dispatcher::start(std::move(dispatcher));
    if (!started.is_ok()) return started.status();
    rt->dispatcher_ = std::move(*started);
  }
  ServiceHooks hooks{[raw](const events::EndpointRecord& r) { return raw->save_endpoint(r); },
                     [raw] { return raw->writable(); },
                     [raw]() -> const cdc::WebhookSyncMetrics* {
                       const cdc::WebhookSync* sync = raw->sync_ptr_.load(std::memory_order_acquire);
                       return sync != nullptr ? &sync->metrics() : nullptr;
                     }};
  rt->service_ = std::make_unique<Service>(*rt->store_, rt->dispatcher_.get(), rt->config_, rt->deriver_,
                                           std::move(hooks));
  return rt;
}

EventsRuntime::~EventsRuntime() { stop(); }

Status EventsRuntime::start(const Engine& engine, std::function<bool()> is_primary) {
  is_primary_ = is_primary;
  started_.store(true, std::memory_order_release);
  if (dispatcher_ != nullptr) {
    PAYCORE_RETURN_IF_ERROR(catch_up_handover().with_context("events: handing over again"));
    PAYCORE_RETURN_IF_ERROR(finish_backfills().with_context("events: new webhook endpoints"));
  }
  events::DeriverConfig c;
  c.wal_dir = engine.wal_dir();
  c.durable_lsn = &engine.metrics().durable_lsn;
  if (config_.cluster) {
    c.acknowledged_lsn = &engine.metrics().replicated_lsn;
    c.following = &engine.metrics().following;
    // A member started from the published snapshot reads what its log lacks from the stream.
    repl::LinkConfig link = config_.cdc.link;
    link.name = "paycore-" + config_.cdc.cluster + "-events";
    auto reader = std::make_shared<repl::StreamRecordReader>(link, repl::log_stream_name(config_.cdc.cluster));
    c.read_shared_log = [reader](std::uint64_t from_lsn, std::uint64_t to_lsn, wal::CommittedVisitor visit,
                                 std::uint64_t* resumes_at_lsn) {
      return reader->read(from_lsn, to_lsn, visit, resumes_at_lsn);
    };
  }
  c.floor_lsn = &floor_lsn_;
  c.retention_us = config_.retention_us;
  c.priority = config_.priority;
  if (dispatcher_ != nullptr) {
    // The deriver's batches hold whole records: their last event's LSN is handed over whole.
    c.before_commit = [this](std::span<const events::Event> es) { return hand_over(es, es.back().lsn); };
    c.before_flush = [this] { return dispatcher_->sync(); };
  }
  deriver_ = std::make_unique<events::Deriver>(*store_, std::move(c));
  if (!config_.cluster) return Status::ok();
  cdc::CdcConfig cdc = config_.cdc;
  cdc.is_primary = std::move(is_primary);
  cdc.render = config_.render;
  cdc.age_max_ms = config_.retention_us / 1000;
  StatusOr<std::unique_ptr<cdc::CdcPublisher>> started = cdc::CdcPublisher::start(*store_, std::move(cdc));
  if (!started.is_ok()) return started.status();
  cdc_ = std::move(*started);
  if (dispatcher_ == nullptr) return Status::ok();
  cdc::WebhookSyncConfig sync = config_.webhook_sync;
  sync.on_endpoint = [this](const events::EndpointRecord& r) { return keep_endpoint(r); };
  sync.derived_lsn = [this] { return store_->position(); };
  sync.is_primary = [this] { return primary_now(); };
  StatusOr<std::unique_ptr<cdc::WebhookSync>> synced = cdc::WebhookSync::start(*dispatcher_, std::move(sync));
  if (!synced.is_ok()) return synced.status();
  sync_ = std::move(*synced);
  sync_ptr_.store(sync_.get(), std::memory_order_release);
  return Status::ok();
}

bool EventsRuntime::primary_now() const {
  return started_.load(std::memory_order_acquire) && is_primary_ && is_primary_();
}

bool EventsRuntime::may_send() const {
  if (!config_.cluster) return true;
  const cdc::WebhookSync* sync = sync_ptr_.load(std::memory_order_acquire);
  return primary_now() && sync != nullptr && sync->ready_to_send();
}

Status EventsRuntime::writable() const {
  if (may_send()) return Status::ok();
  if (!primary_now()) return Status(StatusCode::kUnavailable, std::string(events::not_primary_message));
  return Status(StatusCode::kUnavailable, "webhooks: this new primary is still reading the cluster's delivery changes; retry");
}

void EventsRuntime::stop() {
  cdc_.reset();  // it reads the store
  if (deriver_) deriver_->stop();
  // The sync's thread calls the dispatcher and the dispatcher's thread the sync: the sync's
  // thread stops first (publish_changes still only queues), then the dispatcher goes.
  if (sync_) sync_->stop();
  dispatcher_.reset();
  sync_ptr_.store(nullptr, std::memory_order_release);
  sync_.reset();
}

// Each event to its merchant's enabled endpoints that want it, not synced: the deriver syncs the
// dispatcher (before_flush) before its store makes these events durable, and until then a
// crash derives and hands them over again.
Status EventsRuntime::hand_over(std::span<const events::Event> events, std::uint64_t handed_through) {
  const std::lock_guard lock(endpoints_mutex_);  // an endpoint stored now is seen whole or not at all
  handed_lsn_ = std::max(handed_lsn_, handed_through);
  std::map<std::string, std::vector<events::EndpointRecord>, std::less<>> endpoints_of;
  std::vector<webhooks::Event> bodies;
  std::vector<std::vector<webhooks::Endpoint>> targets;
  bodies.reserve(events.size());
  targets.reserve(events.size());
  for (const events::Event& e : events) {
    auto it = endpoints_of.find(e.merchant_id.view());
    if (it == endpoints_of.end()) {
      StatusOr<std::vector<events::EndpointRecord>> got =
          store_->endpoints_of(e.merchant_id, endpoints_stored_per_merchant_max);
      if (!got.is_ok()) return got.status();
      it = endpoints_of.emplace(std::string(e.merchant_id.view()), std::move(*got)).first;
    }
    std::vector<webhooks::Endpoint> wanting = endpoints_wanting(it->second, e.type, e.created_at_us);
    if (wanting.empty()) continue;
    bodies.push_back(webhook_event(e, config_));
    targets.push_back(std::move(wanting));
  }
  std::vector<webhooks::Dispatcher::EventToDeliver> batch;
  batch.reserve(bodies.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) batch.push_back({&bodies[i], targets[i]});
  PAYCORE_RETURN_IF_ERROR(dispatcher_->enqueue_batch(batch, /*sync=*/false));
  return dispatcher_->note_handed_over(handed_through);
}

// Hands over again what the event store holds past the dispatcher's handed-over position. The
// deriver syncs the dispatcher before each flush it asks for, but RocksDB also flushes on its
// own (a full memtable) and at close, so the store may hold, durably, events whose handover a
// power loss took back (docs/events.md "At least once"). Repeats add nothing.
Status EventsRuntime::catch_up_handover() {
  StatusOr<std::optional<std::uint64_t>> handed = dispatcher_->handed_over();
  if (!handed.is_ok()) return handed.status();
  if (!handed->has_value()) {
    // A new delivery store: what the event store already holds is not sent (its endpoints,
    // if any, were not there to want it).
    PAYCORE_RETURN_IF_ERROR(dispatcher_->note_handed_over(store_->position()));
    return dispatcher_->sync();
  }
  std::optional<events::EventKey> after = events::EventKey{**handed, 0xffff};
  for (;;) {
    StatusOr<std::vector<events::Event>> more = store_->events_after(after, webhooks::events_per_add_max);
    if (!more.is_ok()) return more.status();
    if (more->empty()) break;
    // A chunk may end inside a record's events: only the records before its last are whole.
    PAYCORE_RETURN_IF_ERROR(hand_over(*more, more->back().lsn - 1));
    after = events::EventKey{more->back().lsn, more->back().index};
  }
  PAYCORE_RETURN_IF_ERROR(dispatcher_->note_handed_over(store_->position()));
  return dispatcher_->sync();
}

Status EventsRuntime::save_endpoint(const events::EndpointRecord& endpoint) {
  if (config_.cluster) {
    cdc::WebhookSync* sync = sync_ptr_.load(std::memory_order_acquire);
    if (sync == nullptr) return Status(StatusCode::kUnavailable, "webhook sync not started");
    PAYCORE_RETURN_IF_ERROR(sync->put_endpoint(endpoint));
  }
  return keep_endpoint(endpoint);
}

Status EventsRuntime::keep_endpoint(const events::EndpointRecord& endpoint) {
  // One at a time (the create route and the bucket's watcher may both bring a new endpoint).
  const std::lock_guard keeping(keep_mutex_);
  StatusOr<std::optional<events::EndpointRecord>> had = store_->endpoint(endpoint.merchant_id, endpoint.id);
  if (!had.is_ok()) return had.status();
  const bool was_disabled = had->has_value() && !(*had)->enabled;
  if ((had->has_value() && **had == endpoint) || (was_disabled && endpoint.enabled)) {
    // This member's own, back from the bucket; or an older version arriving after a disable
    // (an endpoint is never enabled again). A crash may have come between storing a disable
    // and the dispatcher's (idempotent).
    return was_disabled ? dispatcher_->disable_endpoint(endpoint.id) : Status::ok();
  }
  const bool is_new = !had->has_value() && endpoint.enabled;
  std::uint64_t handed_before = 0;
  {
    const std::lock_guard lock(endpoints_mutex_);
    PAYCORE_RETURN_IF_ERROR(store_->put_endpoint(endpoint, /*backfill_pending=*/is_new));
    handed_before = handed_lsn_;
  }
  if (!endpoint.enabled) return dispatcher_->disable_endpoint(endpoint.id);
  if (!is_new) return Status::ok();
  PAYCORE_RETURN_IF_ERROR(hand_over_since_creation(endpoint, handed_before));
  return store_->finish_backfill(endpoint.merchant_id, endpoint.id);
}

// The backfills a crash interrupted (keep_endpoint's mark), before the deriver starts.
Status EventsRuntime::finish_backfills() {
  StatusOr<std::vector<events::EndpointRecord>> owed = store_->endpoints_awaiting_backfill(webhooks::endpoints_max);
  if (!owed.is_ok()) return owed.status();
  for (const events::EndpointRecord& endpoint : *owed) {
    if (endpoint.enabled) PAYCORE_RETURN_IF_ERROR(hand_over_since_creation(endpoint, 0));
    PAYCORE_RETURN_IF_ERROR(store_->finish_backfill(endpoint.merchant_id, endpoint.id));
  }
  return Status::ok();
}

namespace {
// A new endpoint looks back over at most this many of its merchant's newest events.
constexpr std::size_t since_creation_events_max = 100'000;
// The longest a new endpoint waits for the deriver to commit what it handed over (2 ms steps).
constexpr int handed_commit_waits_max = 5000;
}  // namespace

// The events of the endpoint's merchant made since its creation and handed over before it was
// stored (up to `handed_before`), which therefore went to the endpoints of the time only. A
// member that learns of an endpoint late (from the cluster's bucket) sends it the same events as
// the one that created it, so whichever member is primary later holds the same deliveries.
Status EventsRuntime::hand_over_since_creation(const events::EndpointRecord& endpoint, std::uint64_t handed_before) {
  for (int waits = 0; store_->position() < handed_before; ++waits) {  // the deriver commits right after
    if (waits == handed_commit_waits_max) {
      log_line(LogLevel::warn, "events: a new webhook endpoint did not see the deriver commit; some of its first events may not be sent",
               {{"endpoint", endpoint.id}});
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  events::EventListQuery query;
  query.merchant_id = endpoint.merchant_id;
  query.limit = 100;
  std::vector<webhooks::Event> bodies;
  for (std::size_t scanned = 0; scanned < since_creation_events_max;) {
    StatusOr<events::EventListPage> page = store_->list(query);
    if (!page.is_ok()) return page.status();
    bool older = false;
    for (const events::Event& e : page->events) {
      older = e.created_at_us < endpoint.created_at_us;
      if (older) break;
      if (endpoint_wants(endpoint.events, e.type)) bodies.push_back(webhook_event(e, config_));
    }
    scanned += page->events.size();
    if (older || !page->has_more || page->events.empty()) break;
    query.starting_after = events::EventKey{page->events.back().lsn, page->events.back().index};
  }
  const webhooks::Endpoint target[] = {{endpoint.id, endpoint.url, endpoint.secret, true}};
  std::vector<webhooks::Dispatcher::EventToDeliver> batch;
  batch.reserve(bodies.size());
  for (const webhooks::Event& body : bodies) batch.push_back({&body, target});
  return dispatcher_->enqueue_batch(batch, /*sync=*/true);
}

}  // namespace paycore::app
