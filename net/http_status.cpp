#include "net/http_status.hpp"

namespace paycore::net {

int http_status(ResultCode code, CommandKind kind) {
  switch (code) {
    case ResultCode::ok:
      switch (kind) {
        case CommandKind::open_account:
        case CommandKind::create_payment:
        case CommandKind::refund_payment:
        case CommandKind::create_mandate: return 201;
        default: return 200;
      }
    case ResultCode::invalid_field:
    case ResultCode::missing_field:
    case ResultCode::invalid_amount:
    case ResultCode::unknown_channel: return 400;
    case ResultCode::insufficient_funds:
    case ResultCode::mandate_limit_exceeded: return 402;
    case ResultCode::mandate_inactive: return 403;
    case ResultCode::not_found:
    case ResultCode::account_not_found:
    case ResultCode::payment_not_found: return 404;
    case ResultCode::account_exists:
    case ResultCode::duplicate_order:
    case ResultCode::invalid_state:
    case ResultCode::mandate_exists: return 409;
    case ResultCode::currency_mismatch:
    case ResultCode::idempotency_key_reused:
    case ResultCode::refund_exceeds_payment:
    case ResultCode::invalid_payer: return 422;
    case ResultCode::unavailable:
    case ResultCode::not_primary:
    case ResultCode::min_lsn_not_applied:
    case ResultCode::archive_check_needed: return 503;  // only if the archive could not answer
    case ResultCode::capacity_exhausted: return 507;
  }
  return 500;
}

}  // namespace paycore::net
