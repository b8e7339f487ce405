#include "net/render_events.hpp"

#include "base/assert.hpp"
#include "core/money.hpp"
#include "net/render.hpp"

namespace paycore::net {
namespace {

void write_refund_json(JsonWriter& json, const RefundView& refund) {
  json.begin_object()
      .field("request_id", refund.request_id.view())
      .field("amount", refund.amount)
      .key("created_at")
      .timestamp_us(refund.created_at_us)
      .end_object();
}

void write_anomaly_json(JsonWriter& json, const events::AnomalyNotice& anomaly) {
  json.begin_object()
      .field("channel", anomaly.channel.view())
      .field("channel_txn_id", anomaly.channel_txn_id.view())
      .field("order_id", anomaly.order_id.view())
      .field("amount", anomaly.amount)
      .field("currency", currency_code(anomaly.currency))
      .field("status", to_string(anomaly.status))
      .field("reason", to_string(anomaly.reason))
      .end_object();
}

// data.object: the resource the event names; an anomaly of no payment shows the notice.
void write_event_object(JsonWriter& json, const events::Event& event) {
  json.key("object");
  switch (event.resource) {
    case ResourceKind::payment:
      write_payment_json(json, event.payment);
      return;
    case ResourceKind::mandate:
      write_mandate_json(json, event.mandate);
      return;
    default:
      break;
  }
  if (event.type == events::EventType::payment_anomaly) {
    write_anomaly_json(json, event.anomaly);
  } else {
    json.null();  // derive_events makes none such; shown rather than refused
  }
}

}  // namespace

void write_event_json(JsonWriter& json, const events::Event& event) {
  json.begin_object()
      .field("id", events::event_id(event.lsn, event.index))
      .field("type", events::to_string(event.type))
      .key("created_at")
      .timestamp_us(event.created_at_us)
      .field("lsn", static_cast<std::int64_t>(event.lsn))
      .key("data")
      .begin_object();
  write_event_object(json, event);
  if (event.type == events::EventType::payment_refunded) {
    json.key("refund");
    write_refund_json(json, event.refund);
  } else if (event.type == events::EventType::payment_anomaly) {
    json.key("anomaly");
    write_anomaly_json(json, event.anomaly);
  }
  json.end_object().end_object();
}

std::string render_event_json(const events::Event& event) {
  OutBuffer body(event_json_bytes_max, 2048);
  JsonWriter json(body);
  write_event_json(json, event);
  PAYCORE_ASSERT(json.complete());  // bounded ids and numbers: it always fits
  return std::string(body.view());
}

void write_webhook_endpoint_json(JsonWriter& json, const events::WebhookEndpoint& endpoint,
                                 bool with_secret) {
  json.begin_object().field("id", endpoint.id).field("url", endpoint.url).key("events");
  json.begin_array();
  for (const std::string& type : endpoint.events) json.string(type);
  json.end_array();
  if (with_secret) json.field("secret", endpoint.secret);
  json.field("status", endpoint.enabled ? "ENABLED" : "DISABLED")
      .key("created_at")
      .timestamp_us(endpoint.created_at_us)
      .end_object();
}

void write_delivery_json(JsonWriter& json, const events::DeliveryView& delivery) {
  json.begin_object()
      .field("endpoint_id", delivery.endpoint_id)
      .field("status", delivery.status)
      .field("attempts_count", std::int64_t{delivery.attempts_count});
  if (delivery.status == "PENDING") {
    json.key("next_attempt_at").timestamp_us(delivery.next_attempt_at_us);
  } else {
    json.field_null("next_attempt_at");
  }
  json.key("attempts").begin_array();
  for (const events::DeliveryAttemptView& attempt : delivery.attempts) {
    json.begin_object()
        .key("started_at")
        .timestamp_us(attempt.started_at_us)
        .field("duration_ms", std::int64_t{attempt.duration_ms});
    if (attempt.http_status == 0) {
      json.field_null("http_status");
    } else {
      json.field("http_status", std::int64_t{attempt.http_status});
    }
    if (attempt.error.empty()) {
      json.field_null("error");
    } else {
      json.field("error", attempt.error);
    }
    json.end_object();
  }
  json.end_array().end_object();
}

}  // namespace paycore::net
