#include "net/render.hpp"

#include <cstdio>

#include "base/json_text.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "core/money.hpp"
#include "core/snapshot_store.hpp"

namespace paycore::net {

void write_account_json(JsonWriter& json, const AccountView& account) {
  json.begin_object()
      .field("account_id", account.account_id.view())
      .field("kind", to_string(account.kind))
      .field("currency", currency_code(account.currency))
      .field("balance", account.balance)
      .key("created_at").timestamp_us(account.created_at_us)
      .key("updated_at").timestamp_us(account.updated_at_us)
      .end_object();
}

namespace {
void id_or_null(JsonWriter& json, std::string_view name, const Id& id) {
  if (id.empty()) {
    json.field_null(name);
  } else {
    json.field(name, id.view());
  }
}
}  // namespace

void write_payment_json(JsonWriter& json, const PaymentView& payment) {
  json.begin_object()
      .field("merchant_id", payment.merchant_id.view())
      .field("order_id", payment.order_id.view())
      .field("request_id", payment.request_id.view())
      .field("channel", payment.channel.view());
  id_or_null(json, "payer_account_id", payment.payer_account_id);
  json.field("amount", payment.amount)
      .field("currency", currency_code(payment.currency))
      .field("status", to_string(payment.status))
      .field("refunded_amount", payment.refunded_amount);
  id_or_null(json, "channel_txn_id", payment.channel_txn_id);
  id_or_null(json, "mandate_id", payment.mandate_id);
  json.key("created_at").timestamp_us(payment.created_at_us)
      .key("updated_at").timestamp_us(payment.updated_at_us)
      .end_object();
}

void write_mandate_json(JsonWriter& json, const MandateView& mandate) {
  json.begin_object()
      .field("mandate_id", mandate.mandate_id.view())
      .field("payer_account_id", mandate.payer_account_id.view())
      .field("merchant_id", mandate.merchant_id.view())
      .field("amount_max", mandate.amount_max)
      .field("currency", currency_code(mandate.currency));
  if (mandate.expires_at_us == 0) {
    json.field_null("expires_at");
  } else {
    json.key("expires_at").timestamp_us(mandate.expires_at_us);
  }
  json.key("single_use").boolean(mandate.single_use)
      .field("status", to_string(mandate.status))
      .key("created_at").timestamp_us(mandate.created_at_us)
      .key("updated_at").timestamp_us(mandate.updated_at_us)
      .end_object();
}

void write_error_object(JsonWriter& json, std::string_view code, std::string_view message,
                        std::string_view field) {
  json.begin_object().field("code", code).field("message", message);
  if (!field.empty()) json.field("field", field);
  json.end_object();
}

std::string_view result_message(ResultCode code, CommandKind kind) {
  if (code == ResultCode::invalid_state && kind == CommandKind::revoke_mandate) {
    return "the mandate is not ACTIVE (revoked, expired or used)";
  }
  switch (code) {
    case ResultCode::ok: return "ok";
    case ResultCode::invalid_field: return "a field is not valid";
    case ResultCode::missing_field: return "a required field is missing";
    case ResultCode::invalid_amount: return "the amount is not a valid amount";
    case ResultCode::unknown_channel: return "no such payment channel";
    case ResultCode::insufficient_funds: return "the account's balance is not enough";
    case ResultCode::not_found: return "no such resource";
    case ResultCode::account_not_found: return "no such account";
    case ResultCode::payment_not_found: return "no such payment";
    case ResultCode::account_exists: return "the account exists already";
    case ResultCode::duplicate_order: return "the order exists already under another request_id";
    case ResultCode::invalid_state: return "the payment's status does not allow this";
    case ResultCode::currency_mismatch: return "the currency does not match the account's";
    case ResultCode::idempotency_key_reused:
      return "this request_id was used for a different request";
    case ResultCode::refund_exceeds_payment: return "the refund exceeds the refundable rest";
    case ResultCode::unavailable: return "the log does not accept writes";
    case ResultCode::capacity_exhausted: return "a configured capacity is exhausted";
    case ResultCode::mandate_inactive: return "the payer's mandate for this merchant is revoked, expired or used";
    case ResultCode::mandate_limit_exceeded: return "the amount is over the mandate's amount_max";
    case ResultCode::invalid_payer: return "the payer is not a customer account";
    case ResultCode::mandate_exists: return "a mandate with this mandate_id exists already";
    case ResultCode::archive_check_needed: return "the archive of past payments could not be read";
    case ResultCode::not_primary: return "this process is not the primary: send writes to the primary";
    case ResultCode::min_lsn_not_applied:
      return "this process has not applied the log as far as Paycore-Min-Lsn yet: retry";
  }
  return "error";
}

int result_status(const Result& result) { return http_status(result.code, result.kind); }

bool write_result_body(OutBuffer& body, Route route, const Result& result) {
  JsonWriter json(body);
  if (result.code != ResultCode::ok) {
    json.begin_object().key("error");
    write_error_object(json, to_string(result.code), result_message(result.code, result.kind),
                       to_string(result.field));
    json.end_object();
    return json.complete();
  }
  if (route == Route::channel_notification) {
    json.begin_object().field("code", "SUCCESS").end_object();
  } else if (result.resource == ResourceKind::account) {
    write_account_json(json, result.account);
  } else if (result.resource == ResourceKind::payment) {
    write_payment_json(json, result.payment);
  } else if (result.resource == ResourceKind::mandate) {
    write_mandate_json(json, result.mandate);
  } else {
    json.begin_object().end_object();
  }
  return json.complete();
}

bool write_local_error_body(OutBuffer& body, const LocalError& error) {
  return write_error_body(body, error.code, error.message, error.field);
}

}  // namespace paycore::net

// ---- A finished slot ----

namespace paycore::net {
namespace {

void render_local_error(const Slot& slot, OutBuffer& body, ResponseHead* head,
                        ExtraHeaderLines* extra, bool* body_ok) {
  head->status = slot.error.status;
  *body_ok = write_local_error_body(body, slot.error);
  std::size_t count = 0;
  if (!slot.allow.empty()) {
    const int length = std::snprintf(extra->allow, sizeof(extra->allow), "Allow: %.*s",
                                     static_cast<int>(slot.allow.size()), slot.allow.data());
    extra->lines[count++] = std::string_view(extra->allow, static_cast<std::size_t>(length));
  }
  if (slot.retry_after_s != 0) {
    const int length = std::snprintf(extra->retry_after, sizeof(extra->retry_after),
                                     "Retry-After: %u", slot.retry_after_s);
    extra->lines[count++] = std::string_view(extra->retry_after, static_cast<std::size_t>(length));
  }
  head->extra_headers = std::span<const std::string_view>(extra->lines, count);
}

bool write_readyz_body(const RenderContext& context, OutBuffer& body, ResponseHead* head) {
  const EngineMetrics& m = context.engine_metrics;
  const bool ready = m.ready.load(std::memory_order_relaxed) &&
                     !m.read_only.load(std::memory_order_relaxed) &&
                     !m.replica_fenced.load(std::memory_order_relaxed) &&
                     !m.replica_stalled.load(std::memory_order_relaxed) &&
                     !m.follow_failed.load(std::memory_order_relaxed) &&
                     !context.stopping.load(std::memory_order_relaxed);
  head->status = ready ? 200 : 503;
  return ready ? body.append("{\"status\":\"ready\"}")
               : write_error_body(body, "unavailable",
                                  "not ready: recovering, read-only or stopping");
}

bool write_metrics_body(const RenderContext& context, OutBuffer& body, ResponseHead* head) {
  head->status = 200;
  head->content_type = "text/plain; version=0.0.4; charset=utf-8";
  ServerGauges gauges;
  gauges.connections_open = context.connections_open.load(std::memory_order_relaxed);
  gauges.io_threads = context.thread_metrics.size();
  events::EventsMetrics events;
  if (context.events != nullptr) events = context.events->metrics();
  return write_metrics(body, context.thread_metrics, context.engine_metrics, gauges,
                       wall_clock_us(), context.archive_lookups,
                       context.events != nullptr ? &events : nullptr);
}

bool write_snapshot_body(const RenderContext& context, const SnapshotAnswer& snapshot,
                         OutBuffer& body, ResponseHead* head) {
  if (!snapshot.ok) {
    head->status = 503;
    return write_error_body(body, "unavailable", "the snapshot could not be written");
  }
  head->status = 200;
  const std::string path = snapshot_path(context.snapshots_dir, snapshot.lsn);
  JsonWriter json(body);
  json.begin_object()
      .field("path", path)
      .field("lsn", static_cast<std::int64_t>(snapshot.lsn))
      .field("accounts", std::int64_t{snapshot.accounts})
      .field("payments", std::int64_t{snapshot.payments})
      .end_object();
  return json.complete();
}

// The body of `slot` into `body`, its status (and headers) into `head`; false if it did not fit.
// docs/api.md "Replication": a standby names the primary it knows (a URL from the lease,
// written by an operator's configuration: kept only if it is one header line).
void name_primary(const RenderContext& context, ResponseHead* head, ExtraHeaderLines* extra) {
  if (context.primary_url == nullptr || !*context.primary_url) return;
  const std::string url = (*context.primary_url)();
  if (url.empty() || url.find_first_of("\r\n") != std::string::npos) return;
  extra->primary = "Paycore-Primary: " + url;
  extra->lines[0] = extra->primary;
  head->extra_headers = std::span<const std::string_view>(extra->lines, 1);
}

bool write_slot_body(const Slot& slot, const RenderContext& context, OutBuffer& body,
                     ResponseHead* head, ExtraHeaderLines* extra) {
  bool body_ok = true;
  switch (slot.kind) {
    case SlotKind::local_error:
      render_local_error(slot, body, head, extra, &body_ok);
      return body_ok;
    case SlotKind::healthz:
      head->status = 200;
      return body.append("{\"status\":\"ok\"}");
    case SlotKind::readyz:
      return write_readyz_body(context, body, head);
    case SlotKind::metrics:
      return write_metrics_body(context, body, head);
    case SlotKind::engine:
      head->status = result_status(slot.response.result);
      head->idempotent_replayed = slot.response.result.replayed;
      if (slot.response.result.code == ResultCode::not_primary) {
        name_primary(context, head, extra);
      }
      return write_result_body(body, slot.route, slot.response.result);
    case SlotKind::snapshot:
      return write_snapshot_body(context, slot.snapshot, body, head);
    case SlotKind::batch:
      head->status = 200;
      write_batch_body(body, slot.batch);
      return true;
    case SlotKind::list:
      head->status = 200;
      return write_list_body(body, slot.list);
    case SlotKind::events:
      head->status = slot.events.status;
      head->idempotent_replayed = slot.events.replayed;
      if (slot.events.not_primary) name_primary(context, head, extra);
      return body.append(slot.events.body);
  }
  return true;
}

}  // namespace

void write_batch_body(OutBuffer& body, const BatchAnswer& batch) {
  JsonWriter json(body);
  json.begin_object().key("results").begin_array();
  for (const BatchEntry& entry : batch.entries) {
    json.begin_object();
    if (entry.local) {
      json.field("status", std::int64_t{entry.error.status}).key("error");
      write_error_object(json, entry.error.code, entry.error.message, entry.error.field);
    } else if (entry.result.code == ResultCode::ok) {
      json.field("status", std::int64_t{result_status(entry.result)}).key("payment");
      write_payment_json(json, entry.result.payment);
    } else {
      json.field("status", std::int64_t{result_status(entry.result)}).key("error");
      write_error_object(json, to_string(entry.result.code),
                         result_message(entry.result.code, entry.result.kind),
                         to_string(entry.result.field));
    }
    json.end_object();
  }
  json.end_array().end_object();
}

bool write_list_body(OutBuffer& body, const ListAnswer& list) {
  JsonWriter json(body);
  json.begin_object().key("data").begin_array();
  for (const PaymentView& payment : list.page) write_payment_json(json, payment);
  for (const RefundView& refund : list.refunds) {
    json.begin_object()
        .field("request_id", refund.request_id.view())
        .field("amount", refund.amount)
        .key("created_at")
        .timestamp_us(refund.created_at_us)
        .end_object();
  }
  json.end_array().key("has_more").boolean(list.has_more).end_object();
  return json.complete();
}

namespace {

// What Paycore-Lsn says: for one command's answer, the LSN its release waited for (what it
// changed or observed); for anything else, the newest position answers are released at.
std::uint64_t answered_lsn(const Slot& slot, const RenderContext& context) {
  if (slot.kind == SlotKind::engine) return slot.response.lsn;
  const EngineMetrics& m = context.engine_metrics;
  const std::uint64_t durable = m.durable_lsn.load(std::memory_order_relaxed);
  const std::uint64_t replicated = m.replicated_lsn.load(std::memory_order_relaxed);
  return replicated == 0 ? durable : std::min(durable, replicated);
}

}  // namespace

ResponseHead render_slot(const Slot& slot, const RenderContext& context, OutBuffer& body,
                         ExtraHeaderLines* extra) {
  body.clear();
  ResponseHead head;
  head.lsn = answered_lsn(slot, context);
  head.trace_id = slot.trace_id.view();  // echoed as X-Request-Id
  head.keep_alive = slot.keep_alive && !context.shutting_down;
  head.omit_body = slot.head;
  if (!write_slot_body(slot, context, body, &head, extra)) {
    body.clear();
    head.status = 500;
    head.keep_alive = false;
    head.idempotent_replayed = false;
    head.extra_headers = {};
    (void)write_error_body(body, "internal", "the response did not fit its buffer");
  }
  return head;
}

}  // namespace paycore::net
