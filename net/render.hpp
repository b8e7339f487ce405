#pragma once
// Rendering the engine's results as API.md's JSON: accounts, payments, errors, the
// notification acknowledgement. Appends into caller-owned OutBuffers (no heap allocation per
// response); every function returns false when the buffer's limit was hit.

#include <string_view>

#include "net/response.hpp"
#include "net/routes.hpp"
#include "core/result.hpp"

namespace paycore::net {

// {"account_id","kind","currency","balance","created_at","updated_at"}
void write_account_json(JsonWriter& json, const AccountView& account);
// {"merchant_id","order_id","request_id","channel","payer_account_id","amount","currency",
//  "status","refunded_amount","channel_txn_id","mandate_id","created_at","updated_at"}
void write_payment_json(JsonWriter& json, const PaymentView& payment);
// {"mandate_id","payer_account_id","merchant_id","amount_max","currency","expires_at" (null:
//  never),"single_use","status","created_at","updated_at"} (API.md "Mandates")
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

}  // namespace paycore::net
