#pragma once
// Rendering answers as docs/api.md's JSON: accounts, payments, mandates, errors, the
// notification acknowledgement, and a finished slot (net/slot.hpp) as a whole answer's head and
// body (render_slot). Appends into caller-owned OutBuffers (no heap allocation per response);
// the write functions return false when the buffer's limit was hit (a size limit reached, not
// an error: the caller answers 500 instead).

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/engine.hpp"
#include "net/http_status.hpp"
#include "net/metrics.hpp"
#include "net/response.hpp"
#include "net/routes.hpp"
#include "net/slot.hpp"
#include "core/result.hpp"

namespace paycore::net {

// {"account_id","kind","currency","balance","created_at","updated_at"}
void write_account_json(JsonWriter& json, const AccountView& account);
// {"merchant_id","order_id","request_id","channel","payer_account_id","amount","currency",
//  "status","refunded_amount","channel_txn_id","mandate_id","created_at","updated_at"}
void write_payment_json(JsonWriter& json, const PaymentView& payment);
// {"mandate_id","payer_account_id","merchant_id","amount_max","currency","expires_at" (null:
//  never),"single_use","status","created_at","updated_at"} (docs/api.md "Mandates")
void write_mandate_json(JsonWriter& json, const MandateView& mandate);
// {"code":...,"message":...[,"field":...]} (the inner object of an error body)
void write_error_object(JsonWriter& json, std::string_view code, std::string_view message,
                        std::string_view field);

// A human-readable sentence for each result code (static text).
// `kind` picks the words where a code means different things per command (invalid_state).
std::string_view result_message(ResultCode code, CommandKind kind);

// The status code of `result` on `route`.
int result_status(const Result& result);

// The body for `result` on `route`: the resource, {"code":"SUCCESS"} for a notification, or
// the error body. Returns false if it did not fit.
[[nodiscard]] bool write_result_body(OutBuffer& body, Route route, const Result& result);

[[nodiscard]] bool write_local_error_body(OutBuffer& body, const LocalError& error);

// ---- A finished slot (net/slot.hpp) as a whole answer ----

/// What rendering a slot reads besides the slot: the server's state for /readyz and /metrics,
/// the snapshots directory for a snapshot's path. Atomics are read only by the kinds that use
/// them.
struct RenderContext {
  const EngineMetrics& engine_metrics;
  const std::atomic<bool>& stopping;  // the server is stopping: /readyz says 503
  const std::atomic<std::uint32_t>& connections_open;
  std::span<const ServerMetrics* const> thread_metrics;  // one per I/O thread
  const std::string& snapshots_dir;
  bool shutting_down = false;  // this thread is closing its connections: no keep-alive
  const ArchiveLookupMetrics* archive_lookups = nullptr;  // null: no archive
  const std::function<std::string()>* primary_url = nullptr;  // ServerConfig::primary_url
  const events::EventsService* events = nullptr;  // ServerConfig::events (null: off)
};

/// Storage for a head's extra header lines (Allow, Retry-After, Paycore-Primary): the head
/// points into it.
struct ExtraHeaderLines {
  char allow[32] = {};
  char retry_after[32] = {};
  std::string primary;  // "Paycore-Primary: <url>"
  std::string_view lines[2];
};

/// Renders a slot in state ready: its body into `body` (cleared first) and the head returned
/// (status, keep-alive, Idempotent-Replayed, extra headers in `extra`). A body that did not fit
/// its buffer becomes a 500 `internal` answer that closes the connection.
ResponseHead render_slot(const Slot& slot, const RenderContext& context, OutBuffer& body,
                         ExtraHeaderLines* extra);

/// {"results":[{"status":...,"payment"|"error":...}...]} of a batch slot, in item order.
void write_batch_body(OutBuffer& body, const BatchAnswer& batch);

/// {"data":[payment...],"has_more":bool} of a listing slot, or {"data":[{"request_id","amount",
/// "created_at"}...],"has_more":false} of a refunds listing (docs/api.md "Lists"); false if it
/// did not fit.
[[nodiscard]] bool write_list_body(OutBuffer& body, const ListAnswer& list);

}  // namespace paycore::net
