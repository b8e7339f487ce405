#pragma once
// The JSON of events and webhook endpoints (issue 15; API.md and docs/api.md "Events and
// webhooks"). render_event_json() makes the bytes of an event once for both its readers: the
// body GET /v1/events/{id} answers and the body a webhook delivery sends (app/ builds
// webhooks::Event::body with it), so a merchant sees the same bytes either way.
//
// An event: {"id","type","created_at","lsn","data":{"object":...}}, where `object` is the
// payment after the change (write_payment_json) or the mandate (write_mandate_json);
// payment.refunded adds "refund":{"request_id","amount","created_at"} inside "data",
// payment.anomaly adds "anomaly":{"channel","channel_txn_id","order_id","amount","currency",
// "status","reason"} inside "data", and an anomaly whose order is unknown (no payment) has
// that anomaly object as its "object" too. Times are RFC 3339 UTC with microseconds.

#include <cstddef>
#include <string>

#include "events/event.hpp"
#include "events/service.hpp"
#include "net/response.hpp"

namespace paycore::net {

/// Bytes one event's JSON takes at most: a payment or mandate view, a refund and an anomaly of
/// bounded ids (64 bytes each, escaped at most 6x) fit with room to spare.
inline constexpr std::size_t event_json_bytes_max = 16 * 1024;

/// Writes `event` as above into `json` (a value: an array item or the whole body).
void write_event_json(JsonWriter& json, const events::Event& event);

/// The event's JSON as a string, byte for byte what GET /v1/events/{id} answers.
std::string render_event_json(const events::Event& event);

/// {"id","url","events":[...],"secret" (with_secret only),"status":"ENABLED"|"DISABLED",
///  "created_at"}: "secret" is shown in the answer that created the endpoint (and its
/// replays), never in a listing.
void write_webhook_endpoint_json(JsonWriter& json, const events::WebhookEndpoint& endpoint,
                                 bool with_secret);

/// {"endpoint_id","status","attempts_count","next_attempt_at" (null unless PENDING),
///  "attempts":[{"started_at","duration_ms","http_status" (null: no answer),"error" (null:
///  none)}...]} (GET /v1/events/{id}/deliveries).
void write_delivery_json(JsonWriter& json, const events::DeliveryView& delivery);

}  // namespace paycore::net
