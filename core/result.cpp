#include "result.hpp"

namespace paycore {

std::string_view to_string(ResultCode code) {
  switch (code) {
    case ResultCode::ok: return "ok";
    case ResultCode::invalid_field: return "invalid_field";
    case ResultCode::missing_field: return "missing_field";
    case ResultCode::invalid_amount: return "invalid_amount";
    case ResultCode::unknown_channel: return "unknown_channel";
    case ResultCode::insufficient_funds: return "insufficient_funds";
    case ResultCode::not_found: return "not_found";
    case ResultCode::account_not_found: return "account_not_found";
    case ResultCode::payment_not_found: return "payment_not_found";
    case ResultCode::account_exists: return "account_exists";
    case ResultCode::duplicate_order: return "duplicate_order";
    case ResultCode::invalid_state: return "invalid_state";
    case ResultCode::currency_mismatch: return "currency_mismatch";
    case ResultCode::idempotency_key_reused: return "idempotency_key_reused";
    case ResultCode::refund_exceeds_payment: return "refund_exceeds_payment";
    case ResultCode::unavailable: return "unavailable";
    case ResultCode::capacity_exhausted: return "capacity_exhausted";
    case ResultCode::mandate_inactive: return "mandate_inactive";
    case ResultCode::mandate_limit_exceeded: return "mandate_limit_exceeded";
    case ResultCode::invalid_payer: return "invalid_payer";
    case ResultCode::mandate_exists: return "mandate_exists";
    case ResultCode::archive_check_needed: return "archive_check_needed";
    case ResultCode::not_primary: return "not_primary";
    case ResultCode::min_lsn_not_applied: return "unavailable";  // API.md's code for it
  }
  return "unknown";
}

bool result_is_kept(ResultCode code) {
  switch (code) {
    case ResultCode::ok:
    case ResultCode::insufficient_funds:
    case ResultCode::not_found:
    case ResultCode::account_not_found:
    case ResultCode::payment_not_found:
    case ResultCode::account_exists:
    case ResultCode::duplicate_order:
    case ResultCode::invalid_state:
    case ResultCode::currency_mismatch:
    case ResultCode::refund_exceeds_payment:
    case ResultCode::mandate_inactive:
    case ResultCode::mandate_limit_exceeded:
    case ResultCode::invalid_payer:
    case ResultCode::mandate_exists: return true;
    default: return false;
  }
}

std::string_view to_string(Field field) {
  switch (field) {
    case Field::none: return "";
    case Field::request_id: return "request_id";
    case Field::account_id: return "account_id";
    case Field::kind: return "kind";
    case Field::currency: return "currency";
    case Field::amount: return "amount";
    case Field::order_id: return "order_id";
    case Field::channel: return "channel";
    case Field::payer_account_id: return "payer_account_id";
    case Field::merchant_id: return "merchant_id";
    case Field::channel_txn_id: return "channel_txn_id";
    case Field::status: return "status";
    case Field::paid_at: return "paid_at";
    case Field::mandate_id: return "mandate_id";
    case Field::amount_max: return "amount_max";
    case Field::expires_at: return "expires_at";
  }
  return "";
}

}  // namespace paycore
