// The pieces every handler of the state machine shares: result building, id and money checks,
// the one transfer, and idempotency (docs/api.md "Idempotency").
#include "apply_internal.hpp"

#include <array>

#include "base/assert.hpp"

namespace paycore::apply_detail {

// ---- Small pieces shared by the handlers ---------------------------------------------------

Result make_result(const Command& c, ResultCode code, Field field) {
  Result r;
  r.kind = c.kind;
  r.code = code;
  r.field = field;
  return r;
}

// Every id of a command is either absent or a valid id: checked here because apply trusts no
// caller (the edge validated them, but a bug or a crafted log must not reach the tables).
bool ids_are_sane(const Command& c) {
  for (const Id* id : {&c.principal, &c.request_id, &c.account, &c.order_id, &c.channel,
                       &c.channel_txn_id, &c.mandate_id, &c.merchant_id}) {
    if (id->size > id_bytes_max) return false;
    if (id->size != 0 && !id_is_valid(id->view())) return false;
  }
  return true;
}

bool currency_is_valid(Currency currency) {
  return currency.valid() && currency.index < currency_table_size();
}

bool id_is_reserved_for_system(std::string_view id) {
  return id == system_account_external || id == channel_name_balance ||
         id.starts_with(system_account_channel_prefix);
}

bool is_paid_like(PaymentStatus status) {
  return status == PaymentStatus::paid || status == PaymentStatus::shipped ||
         status == PaymentStatus::completed;
}

// Whether crediting `amount` to `balance` stays within int64.
bool can_credit(Amount balance, Amount amount) {
  Amount ignored = 0;
  return checked_add(balance, amount, &ignored);
}
bool can_debit(Amount balance, Amount amount) {
  Amount ignored = 0;
  return checked_sub(balance, amount, &ignored);
}

// One movement: debit one balance, credit another. Both were checked by the caller.
// The money moves outside the assertions: an assertion only checks, it never does the work
// (docs/style.md rule 5).
void transfer(Amount& debit, Amount& credit, Amount amount) {
  PAYCORE_ASSERT(amount > 0);
  Amount debited = 0;
  Amount credited = 0;
  const bool debit_fits = checked_sub(debit, amount, &debited);
  const bool credit_fits = checked_add(credit, amount, &credited);
  PAYCORE_ASSERT(debit_fits);
  PAYCORE_ASSERT(credit_fits);
  debit = debited;
  credit = credited;
}

// ---- Idempotency ---------------------------------------------------------------------------

// A replay answers exactly what the first answer said: the same code and field, and the
// resource's current representation.
static Result replay_outcome(const State& s, const Command& c, const IdempotencyRow& record) {
  Result r = make_result(c, static_cast<ResultCode>(record.code), static_cast<Field>(record.field));
  r.replayed = true;
  if (record.code != static_cast<std::uint8_t>(ResultCode::ok)) return r;
  switch (record.kind) {
    case CommandKind::open_account:
    case CommandKind::deposit:
      r.resource = ResourceKind::account;
      r.account = account_view(s, record.resource);
      break;
    case CommandKind::create_mandate:
    case CommandKind::revoke_mandate:
      r.resource = ResourceKind::mandate;
      r.mandate = mandate_view(s, record.resource, c.timestamp_us);
      break;
    default:
      // A payment leaves memory only after every record that refers to it (State::
      // payment_is_evictable), so the row is live.
      PAYCORE_ASSERT_GE(record.resource, s.payments.begin());
      r.resource = ResourceKind::payment;
      r.payment = payment_view(s, record.resource, c.timestamp_us);
      break;
  }
  return r;
}

IdempotencyCheck check_idempotency(const State& s, const Command& c) {
  IdempotencyCheck check;
  check.principal = s.find_principal(c.principal.view());
  if (check.principal == row_none) return check;
  const std::uint32_t row = s.find_idempotency(check.principal, c.request_id.view());
  if (row == row_none) return check;
  const IdempotencyRow& record = s.idempotency[row];
  check.done = true;
  if (record.kind != c.kind || record.fingerprint != command_fingerprint(c)) {
    check.result = make_result(c, ResultCode::idempotency_key_reused, Field::request_id);
  } else {
    check.result = replay_outcome(s, c, record);
  }
  return check;
}

// Records the outcome under (principal, request_id): the last write of every idempotent
// command whose outcome is kept. `request_id` may already be interned (shared with the row).
void record_outcome(State& s, const Command& c, std::uint32_t principal, ResultCode code,
                    std::uint32_t resource, StrRef request_id, Field field) {
  const bool kept = result_is_kept(code);
  PAYCORE_ASSERT(kept);
  if (principal == row_none) principal = s.add_principal(c.principal.view());
  IdempotencyRow row;
  row.request_id = request_id != 0 ? request_id : s.intern_history(c.request_id.view());
  row.fingerprint = command_fingerprint(c);
  row.principal = principal;
  row.resource = resource;
  row.kind = c.kind;
  row.code = static_cast<std::uint8_t>(code);
  row.field = static_cast<std::uint8_t>(field);
  row.created_at_us = c.timestamp_us;
  s.add_idempotency(row);
}

// A business refusal that is kept: the same request_id will get the same answer.
Result keep_refusal(State& s, const Command& c, std::uint32_t principal, ResultCode code,
                    Field field) {
  record_outcome(s, c, principal, code, row_none, 0, field);
  Result r = make_result(c, code, field);
  r.mutated = true;
  return r;
}

// Checks shared by every idempotent command before its own: request and principal ids.
Result validate_idempotent(const Command& c) {
  if (!ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  if (c.request_id.empty()) return make_result(c, ResultCode::missing_field, Field::request_id);
  if (c.principal.empty()) return make_result(c, ResultCode::missing_field, Field::merchant_id);
  return make_result(c, ResultCode::ok);
}

Result with_account(Result r, const State& s, std::uint32_t account) {
  r.resource = ResourceKind::account;
  r.account = account_view(s, account);
  return r;
}

Result with_payment(Result r, const State& s, std::uint32_t payment, std::int64_t now_us) {
  r.resource = ResourceKind::payment;
  r.payment = payment_view(s, payment, now_us);
  return r;
}

}  // namespace paycore::apply_detail
