#pragma once
// An events::EventsService in memory for the net tests: events, endpoints and deliveries kept in
// maps, the errors of events/service.hpp where it documents them, and two test hooks: `fail`
// (the next call answers that status) and a gate that holds every call until opened (to fill
// the events pool's queue).

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/money.hpp"
#include "events/service.hpp"

namespace paycore::net::testing {

/// Events of every kind at fixed times, for byte-exact renderings.
inline PaymentView sample_payment(std::string_view merchant, std::string_view order_id) {
  PaymentView p;
  p.merchant_id = Id::trusted(merchant);
  p.order_id = Id::trusted(order_id);
  p.request_id = Id::trusted("r-1");
  p.channel = Id::trusted("alipay");
  p.channel_txn_id = Id::trusted("ch-1");
  p.amount = 1234;
  p.refunded_amount = 0;
  p.created_at_us = 1'795'670'354'123'456;
  p.updated_at_us = 1'795'670'355'000'001;
  p.currency = *currency_from_code("CNY");
  p.status = PaymentStatus::paid;
  return p;
}

inline events::Event sample_event(events::EventType type, std::uint64_t lsn,
                                  std::string_view merchant = "m_001") {
  events::Event e;
  e.lsn = lsn;
  e.index = 0;
  e.type = type;
  e.created_at_us = 1'795'670'355'000'001;
  e.merchant_id = Id::trusted(merchant);
  e.resource = ResourceKind::payment;
  e.payment = sample_payment(merchant, "o-1");
  if (type == events::EventType::payment_refunded) {
    e.payment.refunded_amount = 200;
    e.refund = RefundView{Id::trusted("rf-1"), 200, 1'795'670'356'000'000};
  }
  if (type == events::EventType::payment_anomaly) {
    e.anomaly = events::AnomalyNotice{Id::trusted("alipay"), Id::trusted("ch-2"),
                                      Id::trusted("o-1"),    999,
                                      *currency_from_code("CNY"), NotificationStatus::success,
                                      AnomalyReason::amount_mismatch};
  }
  if (type == events::EventType::mandate_revoked) {
    e.resource = ResourceKind::mandate;
    e.payment = PaymentView{};
    e.mandate.mandate_id = Id::trusted("md-1");
    e.mandate.payer_account_id = Id::trusted("alice");
    e.mandate.merchant_id = Id::trusted(merchant);
    e.mandate.amount_max = 50'000;
    e.mandate.created_at_us = 1'795'670'000'000'000;
    e.mandate.updated_at_us = 1'795'670'355'000'001;
    e.mandate.currency = *currency_from_code("CNY");
    e.mandate.status = MandateStatus::revoked;
  }
  return e;
}

class FakeEventsService final : public events::EventsService {
 public:
  std::vector<events::Event> events;  // oldest first
  std::map<std::string, std::vector<events::DeliveryView>> deliveries_of;  // by event id
  std::vector<events::WebhookEndpoint> endpoints;                          // oldest first
  std::atomic<std::uint64_t> derived_lsn_value{1000};                      // derived_lsn()
  std::vector<std::string> redelivered;                                    // event ids
  std::map<std::string, std::string> redelivery_requests_;                 // request_id -> event id
  events::EventListQuery last_query;
  Id last_merchant;
  std::uint32_t calls = 0;

  /// The next call answers `status` instead of doing anything.
  void fail_next(Status status) {
    const std::lock_guard lock(mutex_);
    fail_ = std::move(status);
  }
  /// Holds every call until open_gate(); blocked() says how many are waiting.
  void close_gate() {
    const std::lock_guard lock(mutex_);
    gate_open_ = false;
  }
  void open_gate() {
    {
      const std::lock_guard lock(mutex_);
      gate_open_ = true;
    }
    gate_.notify_all();
  }
  std::uint32_t blocked() {
    const std::lock_guard lock(mutex_);
    return blocked_;
  }

  events::EventsMetrics metrics() const override {
    events::EventsMetrics m;
    m.derived_lsn = 42;
    m.events_derived = 7;
    m.webhooks = true;
    m.deliveries_delivered = 5;
    return m;
  }
  StatusOr<events::EventListPage> list_events(const events::EventListQuery& query) override {
    std::unique_lock lock = enter();
    last_query = query;
    if (!fail_.is_ok()) return take_failure();
    events::EventListPage page;
    bool after_cursor = !query.starting_after.has_value();
    bool cursor_found = false;
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (!query.merchant_id.empty() && it->merchant_id != query.merchant_id) continue;
      if (query.type && it->type != *query.type) continue;
      const events::EventKey key{it->lsn, it->index};
      if (!after_cursor) {
        after_cursor = cursor_found = key == *query.starting_after;
        continue;
      }
      if (page.events.size() == query.limit) {
        page.has_more = true;
        break;
      }
      page.events.push_back(*it);
    }
    if (query.starting_after && !cursor_found) return Status::not_found("cursor");
    return page;
  }

  StatusOr<events::Event> get_event(const Id& merchant, events::EventKey key) override {
    std::unique_lock lock = enter();
    last_merchant = merchant;
    if (!fail_.is_ok()) return take_failure();
    const events::Event* found = find(merchant, key);
    if (found == nullptr) return Status::not_found("event");
    return *found;
  }

  StatusOr<events::WebhookEndpoint> create_endpoint(const Id& merchant, const Id& request_id,
                                                    const std::string& url,
                                                    const std::vector<std::string>& types) override {
    std::unique_lock lock = enter();
    if (!fail_.is_ok()) return take_failure();
    const std::string key = std::string(merchant.view()) + "/" + std::string(request_id.view());
    if (auto seen = by_request_.find(key); seen != by_request_.end()) {
      events::WebhookEndpoint replay = seen->second;
      if (replay.url != url || replay.events != types) return Status(StatusCode::kConflict, "reused");
      replay.replayed = true;
      return replay;
    }
    if (!url.starts_with("https://")) return Status::invalid_argument("url: url_scheme: must be https");
    events::WebhookEndpoint endpoint;
    endpoint.id = "we_" + std::string(24 - std::to_string(endpoints.size() + 1).size(), '0') +
                  std::to_string(endpoints.size() + 1);
    endpoint.merchant_id = merchant;
    endpoint.url = url;
    endpoint.events = types;
    endpoint.secret = "whsec_" + std::string(64, 'a');
    endpoint.created_at_us = 1'795'670'400'000'000;
    by_request_[key] = endpoint;
    endpoints.push_back(endpoint);
    endpoints.back().secret.clear();
    return endpoint;
  }

  StatusOr<std::vector<events::WebhookEndpoint>> list_endpoints(const Id& merchant) override {
    std::unique_lock lock = enter();
    if (!fail_.is_ok()) return take_failure();
    std::vector<events::WebhookEndpoint> mine;
    for (const auto& endpoint : endpoints) {
      if (endpoint.merchant_id == merchant) mine.push_back(endpoint);
    }
    return mine;
  }

  StatusOr<events::WebhookEndpoint> disable_endpoint(const Id& merchant, std::string_view id) override {
    std::unique_lock lock = enter();
    if (!fail_.is_ok()) return take_failure();
    for (auto& endpoint : endpoints) {
      if (endpoint.merchant_id == merchant && endpoint.id == id) {
        endpoint.enabled = false;
        return endpoint;
      }
    }
    return Status::not_found("endpoint");
  }

  StatusOr<std::vector<events::DeliveryView>> deliveries(const Id& merchant,
                                                         events::EventKey key) override {
    std::unique_lock lock = enter();
    if (!fail_.is_ok()) return take_failure();
    if (find(merchant, key) == nullptr) return Status::not_found("event");
    return deliveries_of[events::event_id(key.lsn, key.index)];
  }

  std::uint64_t derived_lsn() const override { return derived_lsn_value.load(); }

  StatusOr<bool> redeliver(const Id& merchant, events::EventKey key, const Id& request_id) override {
    std::unique_lock lock = enter();
    if (!fail_.is_ok()) return take_failure();
    if (find(merchant, key) == nullptr) return Status::not_found("event");
    const std::string id = events::event_id(key.lsn, key.index);
    const auto [at, added] = redelivery_requests_.emplace(std::string(request_id.view()), id);
    if (!added) {
      if (at->second != id) return Status(StatusCode::kConflict, "request_id");
      return true;
    }
    redelivered.push_back(id);
    return false;
  }

 private:
  // Waits at the gate, then holds the lock for the call.
  std::unique_lock<std::mutex> enter() {
    std::unique_lock lock(mutex_);
    ++blocked_;
    gate_.wait(lock, [this] { return gate_open_; });
    --blocked_;
    ++calls;
    return lock;
  }
  Status take_failure() { return std::exchange(fail_, Status::ok()); }
  const events::Event* find(const Id& merchant, events::EventKey key) const {
    for (const auto& e : events) {
      if (e.lsn != key.lsn || e.index != key.index) continue;
      if (!merchant.empty() && e.merchant_id != merchant) return nullptr;
      return &e;
    }
    return nullptr;
  }

  std::mutex mutex_;
  std::condition_variable gate_;
  bool gate_open_ = true;
  std::uint32_t blocked_ = 0;
  Status fail_;
  std::map<std::string, events::WebhookEndpoint> by_request_;
};

}  // namespace paycore::net::testing
