#pragma once
// Results: what `apply` answers, fixed-size and trivially copyable so that they travel back to
// the I/O threads through rings. A result carries a copy of the resource it concerns (never a
// pointer into the state, which only the core thread may touch).

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "command.hpp"
#include "id.hpp"
#include "model.hpp"
#include "money.hpp"

namespace paycore {

// One code per outcome; the refusals match docs/api.md's error codes one for one, plus the
// engine's own (`unavailable`, `capacity_exhausted`). The values are stored in idempotency
// records (snapshots): append new codes at the end, never renumber, never reuse a number.
enum class ResultCode : std::uint8_t {
  ok = 0,
  // 400: validation failures (never kept for idempotency)
  invalid_field,
  missing_field,
  invalid_amount,
  unknown_channel,
  // 402
  insufficient_funds,
  // 404
  not_found,
  account_not_found,
  payment_not_found,
  // 409
  account_exists,
  duplicate_order,
  invalid_state,
  // 422
  currency_mismatch,
  idempotency_key_reused,
  refund_exceeds_payment,
  // 503 / 507: the engine's refusals (never kept)
  unavailable,
  // 16 was `busy`, which nothing produced and nothing kept: the number stays unused so that
  // the codes after it keep the values stored in idempotency records.
  capacity_exhausted = 17,
  // Mandates (docs/api.md "Mandates"), added with snapshot format 2
  mandate_inactive,        // 403
  mandate_limit_exceeded,  // 402
  invalid_payer,           // 422
  mandate_exists,          // 409
  // The cold tier (docs/design.md "Hot and cold"). Never kept, never sent to a client: the
  // edge looks the order up in the archive and, for a GET, answers what it found; for a
  // command, hands it in again with what it found (command_flag_archive_checked,
  // command_flag_in_archive).
  // The result's payment view then holds the command's fields (merchant, order, request,
  // channel, payer, amount, currency) for the edge to hand it in again.
  archive_check_needed,
  // Replication (docs/design.md "Beyond one machine"): this process is not the writer of the
  // shared log (a standby, or a primary fenced by another writer). 503, never kept.
  not_primary,
  // A read with Paycore-Min-Lsn (docs/api.md "Replication") that this process had not applied
  // within min_lsn_wait_us. 503 with the code `unavailable`, never kept.
  min_lsn_not_applied,
};
inline constexpr std::uint8_t result_code_max =
    static_cast<std::uint8_t>(ResultCode::min_lsn_not_applied);
static_assert(static_cast<int>(ResultCode::unavailable) == 15, "stored numbers never change");
static_assert(static_cast<int>(ResultCode::mandate_exists) == 21, "stored numbers never change");

std::string_view to_string(ResultCode code);  // the API's snake_case error code ("ok" for ok)
// Whether an idempotent command's outcome is recorded under its request_id: success and the
// business refusals; not validation failures (400) nor the engine's refusals (docs/api.md).
bool result_is_kept(ResultCode code);

// The field at fault, for docs/api.md's `"field"` in errors. Stored in idempotency records
// (snapshot format 2): append, never renumber.
enum class Field : std::uint8_t {
  none = 0,
  request_id,
  account_id,
  kind,
  currency,
  amount,
  order_id,
  channel,
  payer_account_id,
  merchant_id,
  channel_txn_id,
  status,
  paid_at,
  mandate_id,
  amount_max,
  expires_at,
};
inline constexpr std::uint8_t field_max = static_cast<std::uint8_t>(Field::expires_at);
std::string_view to_string(Field field);

enum class NotificationOutcome : std::uint8_t { none = 0, applied, duplicate, anomaly };

struct AccountView {
  Id account_id;
  AccountKind kind{};
  Currency currency{};
  Amount balance = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  friend bool operator==(const AccountView&, const AccountView&) = default;
};

struct PaymentView {
  Id merchant_id;
  Id order_id;
  Id request_id;
  Id channel;
  Id payer_account_id;  // empty: null
  Id channel_txn_id;    // empty: null
  Id mandate_id;        // empty: null (external channels)
  Amount amount = 0;
  Amount refunded_amount = 0;
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  Currency currency{};
  PaymentStatus status{};
  friend bool operator==(const PaymentView&, const PaymentView&) = default;
};

// One refund of a payment (docs/api.md: `GET /v1/payments/{order_id}/refunds`).
struct RefundView {
  Id request_id;
  Amount amount = 0;
  std::int64_t created_at_us = 0;
  friend bool operator==(const RefundView&, const RefundView&) = default;
};

// Whether `a` and `b` are the same refund. Not the request_id alone: after the idempotency
// retention a client may reuse one for a new refund of the same payment (docs/api.md). Every
// command has its own timestamp, so the time tells two refunds apart.
inline bool same_refund(const RefundView& a, const RefundView& b) {
  return a.request_id == b.request_id && a.created_at_us == b.created_at_us &&
         a.amount == b.amount;
}

struct MandateView {
  Id mandate_id;
  Id payer_account_id;
  Id merchant_id;
  Amount amount_max = 0;
  std::int64_t expires_at_us = 0;  // 0: never (null)
  std::int64_t created_at_us = 0;
  std::int64_t updated_at_us = 0;
  Currency currency{};             // the payer's: amount_max is in its minor units
  MandateStatus status{};          // as read at the command's time (EXPIRED computed)
  bool single_use = false;
  friend bool operator==(const MandateView&, const MandateView&) = default;
};

enum class ResourceKind : std::uint8_t { none = 0, account, payment, mandate };

struct PaymentListWork;  // core/payment_list.hpp

struct Result {
  ResultCode code = ResultCode::ok;
  CommandKind kind{};
  ResourceKind resource = ResourceKind::none;
  Field field = Field::none;
  NotificationOutcome notification = NotificationOutcome::none;
  AnomalyReason anomaly{};      // when notification == anomaly
  bool replayed = false;        // an idempotent replay: `Idempotent-Replayed: true`
  bool mutated = false;         // the state changed: the command must be logged
  std::uint32_t expired_count = 0;  // tick
  // tick: it stopped at expire_max of a kind of work, and more of it may be due.
  bool work_left = false;
  std::uint32_t archived_count = 0;  // archive_payments: payments that left memory
  AccountView account;          // resource == account
  PaymentView payment;          // resource == payment
  MandateView mandate;          // resource == mandate
  PaymentListWork* list = nullptr;  // list_payments: the command's work, handed back
};
static_assert(std::is_trivially_copyable_v<Result>);

}  // namespace paycore
