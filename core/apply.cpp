#include "apply.hpp"

#include <array>

#include "base/assert.hpp"

namespace paycore {
namespace {

// ---- Small pieces shared by the handlers ---------------------------------------------------

Result make_result(const Command& c, ResultCode code, Field field = Field::none) {
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
// The money moves outside the assertions: an assertion only checks (STYLE: an assertion never
// does the work).
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

struct IdempotencyCheck {
  bool done = false;       // `result` is the answer: a replay or idempotency_key_reused
  Result result;
  std::uint32_t principal = row_none;  // row_none: the principal has no row yet
};

// A replay answers exactly what the first answer said: the same code and field, and the
// resource's current representation.
Result replay_outcome(const State& s, const Command& c, const IdempotencyRow& record) {
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
                    std::uint32_t resource, StrRef request_id = 0, Field field = Field::none) {
  PAYCORE_ASSERT(result_is_kept(code));
  if (principal == row_none) principal = s.add_principal(c.principal.view());
  IdempotencyRow row;
  row.request_id = request_id != 0 ? request_id : s.intern(c.request_id.view());
  row.fingerprint = command_fingerprint(c);
  row.principal = principal;
  row.resource = resource;
  row.kind = c.kind;
  row.code = static_cast<std::uint8_t>(code);
  row.field = static_cast<std::uint8_t>(field);
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

// ---- Accounts ------------------------------------------------------------------------------

Result open_account(State& s, const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.account.empty()) return make_result(c, ResultCode::missing_field, Field::account_id);
  if (id_is_reserved_for_system(c.account.view())) {
    return make_result(c, ResultCode::invalid_field, Field::account_id);
  }
  if (!account_kind_is_valid(static_cast<std::uint8_t>(c.account_kind))) {
    return make_result(c, ResultCode::invalid_field, Field::kind);
  }
  if (!currency_is_valid(c.currency)) return make_result(c, ResultCode::invalid_field, Field::currency);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  if (s.find_account(c.account.view()) != row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::account_exists, Field::account_id);
  }

  AccountRow row;
  row.id = c.account;
  row.currency = c.currency;
  row.kind = c.account_kind;
  row.created_at_us = row.updated_at_us = c.timestamp_us;
  const std::uint32_t account = s.add_account(row);
  record_outcome(s, c, idem.principal, ResultCode::ok, account);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_account(r, s, account);
}

Result deposit(State& s, const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.account.empty()) return make_result(c, ResultCode::missing_field, Field::account_id);
  if (c.amount <= 0) return make_result(c, ResultCode::invalid_amount, Field::amount);
  if (!currency_is_valid(c.currency)) return make_result(c, ResultCode::invalid_field, Field::currency);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  const std::uint32_t account = s.find_account(c.account.view());
  if (account == row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::account_not_found, Field::account_id);
  }
  AccountRow& row = s.accounts[account];
  if (row.currency != c.currency) {
    return keep_refusal(s, c, idem.principal, ResultCode::currency_mismatch, Field::currency);
  }
  Amount& external = s.external_balance(c.currency);
  if (!can_credit(row.balance, c.amount) || !can_debit(external, c.amount)) {
    return make_result(c, ResultCode::invalid_amount, Field::amount);
  }

  transfer(external, row.balance, c.amount);
  row.updated_at_us = c.timestamp_us;
  record_outcome(s, c, idem.principal, ResultCode::ok, account);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_account(r, s, account);
}

Result get_account(const State& s, const Command& c) {
  if (!ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  if (c.account.empty()) return make_result(c, ResultCode::missing_field, Field::account_id);
  // A merchant reads only its own account; anything else looks absent (API.md).
  if (!c.is_operator() && !(c.account == c.principal)) {
    return make_result(c, ResultCode::account_not_found, Field::account_id);
  }
  const std::uint32_t account = s.find_account(c.account.view());
  if (account == row_none) return make_result(c, ResultCode::account_not_found, Field::account_id);
  return with_account(make_result(c, ResultCode::ok), s, account);
}

// ---- Mandates (API.md "Mandates") ----------------------------------------------------------

Result with_mandate(Result r, const State& s, std::uint32_t mandate, std::int64_t now_us) {
  r.resource = ResourceKind::mandate;
  r.mandate = mandate_view(s, mandate, now_us);
  return r;
}

// Validation that needs no state: 400s, not kept.
Result validate_create_mandate(const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.mandate_id.empty()) return make_result(c, ResultCode::missing_field, Field::mandate_id);
  if (c.account.empty()) return make_result(c, ResultCode::missing_field, Field::payer_account_id);
  if (c.merchant_id.empty()) return make_result(c, ResultCode::missing_field, Field::merchant_id);
  if (c.amount <= 0) return make_result(c, ResultCode::invalid_amount, Field::amount_max);
  if (c.expires_at_us < 0) return make_result(c, ResultCode::invalid_field, Field::expires_at);
  // A mandate that is expired when it is made is a client's mistake, not a business outcome.
  if (c.expires_at_us != 0 && c.expires_at_us <= c.timestamp_us) {
    return make_result(c, ResultCode::invalid_field, Field::expires_at);
  }
  return make_result(c, ResultCode::ok);
}

Result create_mandate(State& s, const Command& c) {
  if (Result v = validate_create_mandate(c); v.code != ResultCode::ok) return v;
  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  if (s.find_mandate(c.mandate_id.view()) != row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::mandate_exists, Field::mandate_id);
  }
  const std::uint32_t payer = s.find_account(c.account.view());
  if (payer == row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::account_not_found, Field::payer_account_id);
  }
  if (s.accounts[payer].kind != AccountKind::customer) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_payer, Field::payer_account_id);
  }

  // Point of no return. The merchant becomes a principal row if it never made a request; the
  // operator's row is made first, so that the rows are numbered the same on replay.
  std::uint32_t principal = idem.principal;
  if (principal == row_none) principal = s.add_principal(c.principal.view());
  std::uint32_t merchant = s.find_principal(c.merchant_id.view());
  if (merchant == row_none) merchant = s.add_principal(c.merchant_id.view());
  MandateRow row;
  row.mandate_id = s.intern(c.mandate_id.view());
  row.payer = payer;
  row.merchant = merchant;
  row.amount_max = c.amount;
  row.expires_at_us = c.expires_at_us;
  row.created_at_us = row.updated_at_us = c.timestamp_us;
  row.status = MandateStatus::active;
  row.single_use = c.is_single_use();
  std::uint32_t previous = row_none;
  const std::uint32_t mandate = s.add_mandate(row, &previous);
  // The newest mandate of a pair governs its payments; an older one still active is revoked.
  if (previous != row_none &&
      effective_mandate_status(s.mandates[previous], c.timestamp_us) == MandateStatus::active) {
    s.mandates[previous].status = MandateStatus::revoked;
    s.mandates[previous].updated_at_us = c.timestamp_us;
  }
  record_outcome(s, c, principal, ResultCode::ok, mandate);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_mandate(r, s, mandate, c.timestamp_us);
}

Result revoke_mandate(State& s, const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.mandate_id.empty()) return make_result(c, ResultCode::missing_field, Field::mandate_id);
  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  const std::uint32_t mandate = s.find_mandate(c.mandate_id.view());
  if (mandate == row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::not_found, Field::mandate_id);
  }
  MandateRow& row = s.mandates[mandate];
  if (effective_mandate_status(row, c.timestamp_us) != MandateStatus::active) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_state, Field::none);
  }

  row.status = MandateStatus::revoked;
  row.updated_at_us = c.timestamp_us;
  record_outcome(s, c, idem.principal, ResultCode::ok, mandate);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_mandate(r, s, mandate, c.timestamp_us);
}

// The operator reads any mandate, a merchant only its own: another's reads as absent.
Result get_mandate(const State& s, const Command& c) {
  if (!ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  if (c.mandate_id.empty()) return make_result(c, ResultCode::missing_field, Field::mandate_id);
  const std::uint32_t mandate = s.find_mandate(c.mandate_id.view());
  if (mandate == row_none) return make_result(c, ResultCode::not_found, Field::mandate_id);
  if (!c.is_operator() && s.str(s.principals[s.mandates[mandate].merchant]) != c.principal.view()) {
    return make_result(c, ResultCode::not_found, Field::mandate_id);
  }
  return with_mandate(make_result(c, ResultCode::ok), s, mandate, c.timestamp_us);
}

// ---- Payments ------------------------------------------------------------------------------

struct PaymentPlan {
  ResultCode code = ResultCode::ok;
  Field field = Field::none;
  bool kept = true;                  // the refusal is recorded under the request_id
  std::uint32_t channel = 0;
  std::uint32_t merchant = row_none;  // row_none: the merchant's account is opened with it
  std::uint32_t payer = row_none;
  std::uint32_t mandate = row_none;
};

PaymentPlan refuse(ResultCode code, Field field, bool kept) {
  PaymentPlan plan;
  plan.code = code;
  plan.field = field;
  plan.kept = kept;
  return plan;
}

// Validation before idempotency: failures here are 400s and are not kept.
PaymentPlan validate_create_payment(const State& s, const Command& c) {
  if (c.order_id.empty()) return refuse(ResultCode::missing_field, Field::order_id, false);
  if (c.amount <= 0) return refuse(ResultCode::invalid_amount, Field::amount, false);
  if (!currency_is_valid(c.currency)) return refuse(ResultCode::invalid_field, Field::currency, false);
  if (c.channel.empty()) return refuse(ResultCode::missing_field, Field::channel, false);
  PaymentPlan plan;
  plan.channel = s.find_channel(c.channel.view());
  if (plan.channel == row_none) return refuse(ResultCode::unknown_channel, Field::channel, false);
  if (plan.channel == 0) {
    if (c.account.empty()) return refuse(ResultCode::missing_field, Field::payer_account_id, false);
  } else if (!c.account.empty()) {
    return refuse(ResultCode::invalid_field, Field::payer_account_id, false);
  }
  return plan;
}

// Business checks after idempotency: refusals here are kept (except overflow, a 400).
// `principal`: the caller's principal row, as check_idempotency found it (row_none: none yet).
PaymentPlan plan_create_payment(const State& s, const Command& c, std::uint32_t principal, PaymentPlan plan) {
  plan.merchant = s.find_account(c.principal.view());
  if (plan.merchant != row_none) {
    const AccountRow& merchant = s.accounts[plan.merchant];
    if (merchant.kind != AccountKind::merchant) {
      return refuse(ResultCode::account_not_found, Field::merchant_id, true);
    }
    if (s.find_payment(plan.merchant, c.order_id.view()) != row_none) {
      return refuse(ResultCode::duplicate_order, Field::order_id, true);
    }
    if (merchant.currency != c.currency) {
      return refuse(ResultCode::currency_mismatch, Field::currency, true);
    }
  }
  if (plan.channel != 0) return plan;  // external: PENDING, no money moves yet

  // Who may debit the payer (API.md "Mandates"): a missing payer, a payer that is not a
  // customer and a payer without a mandate for this merchant all read the same, so that a
  // merchant learns nothing about accounts that are not its to debit.
  plan.payer = s.find_account(c.account.view());
  if (plan.payer == row_none) return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  const AccountRow& payer = s.accounts[plan.payer];
  if (payer.kind != AccountKind::customer) {
    return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  }
  plan.mandate = principal == row_none ? row_none : s.find_pair_mandate(plan.payer, principal);
  if (plan.mandate == row_none) return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  const MandateRow& mandate = s.mandates[plan.mandate];
  if (effective_mandate_status(mandate, c.timestamp_us) != MandateStatus::active) {
    return refuse(ResultCode::mandate_inactive, Field::none, true);
  }
  if (payer.currency != c.currency) return refuse(ResultCode::currency_mismatch, Field::currency, true);
  if (c.amount > mandate.amount_max) return refuse(ResultCode::mandate_limit_exceeded, Field::amount, true);
  if (payer.balance < c.amount) return refuse(ResultCode::insufficient_funds, Field::amount, true);
  const Amount merchant_balance = plan.merchant == row_none ? 0 : s.accounts[plan.merchant].balance;
  if (!can_credit(merchant_balance, c.amount)) return refuse(ResultCode::invalid_amount, Field::amount, false);
  return plan;
}

Result create_payment(State& s, const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  PaymentPlan plan = validate_create_payment(s, c);
  if (plan.code != ResultCode::ok) return make_result(c, plan.code, plan.field);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  plan = plan_create_payment(s, c, idem.principal, plan);
  if (plan.code != ResultCode::ok) {
    if (!plan.kept) return make_result(c, plan.code, plan.field);
    return keep_refusal(s, c, idem.principal, plan.code, plan.field);
  }

  // Point of no return.
  if (plan.merchant == row_none) {
    AccountRow merchant;
    merchant.id = c.principal;
    merchant.currency = c.currency;
    merchant.kind = AccountKind::merchant;
    merchant.created_at_us = merchant.updated_at_us = c.timestamp_us;
    plan.merchant = s.add_account(merchant);
  }
  PaymentRow row;
  row.order_id = s.intern(c.order_id.view());
  row.request_id = s.intern(c.request_id.view());
  row.amount = c.amount;
  row.created_at_us = row.updated_at_us = c.timestamp_us;
  row.merchant = plan.merchant;
  row.payer = plan.payer;
  row.mandate = plan.mandate;
  row.currency = c.currency;
  row.channel = static_cast<std::uint8_t>(plan.channel);
  if (plan.channel == 0) {
    row.status = PaymentStatus::paid;
    AccountRow& merchant = s.accounts[plan.merchant];
    AccountRow& payer = s.accounts[plan.payer];
    transfer(payer.balance, merchant.balance, c.amount);
    payer.updated_at_us = merchant.updated_at_us = c.timestamp_us;
    MandateRow& mandate = s.mandates[plan.mandate];
    if (mandate.single_use) {
      mandate.status = MandateStatus::used;
      mandate.updated_at_us = c.timestamp_us;
    }
  } else {
    row.status = PaymentStatus::pending;
  }
  const std::uint32_t payment = s.add_payment(row);
  if (plan.channel != 0) s.pending_queue.push_back(payment);
  record_outcome(s, c, idem.principal, ResultCode::ok, payment, row.request_id);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_payment(r, s, payment, c.timestamp_us);
}

// Finds the merchant's payment for a command that names an order.
std::uint32_t find_merchant_payment(const State& s, const Command& c) {
  const std::uint32_t merchant = s.find_account(c.principal.view());
  if (merchant == row_none) return row_none;
  return s.find_payment(merchant, c.order_id.view());
}

// cancel, ship, complete: one status to another.
Result transition(State& s, const Command& c, PaymentStatus from, PaymentStatus to) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  const std::uint32_t payment = find_merchant_payment(s, c);
  if (payment == row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::payment_not_found, Field::order_id);
  }
  PaymentRow& row = s.payments[payment];
  if (effective_status(s, row, c.timestamp_us) != from) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_state, Field::none);
  }

  row.status = to;
  row.updated_at_us = c.timestamp_us;
  record_outcome(s, c, idem.principal, ResultCode::ok, payment);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_payment(r, s, payment, c.timestamp_us);
}

Result refund_payment(State& s, const Command& c) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);
  if (c.amount <= 0) return make_result(c, ResultCode::invalid_amount, Field::amount);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  const std::uint32_t payment = find_merchant_payment(s, c);
  if (payment == row_none) {
    return keep_refusal(s, c, idem.principal, ResultCode::payment_not_found, Field::order_id);
  }
  PaymentRow& row = s.payments[payment];
  if (!is_paid_like(effective_status(s, row, c.timestamp_us))) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_state, Field::none);
  }
  PAYCORE_ASSERT(row.refunded_amount >= 0 && row.refunded_amount < row.amount);
  if (c.amount > row.amount - row.refunded_amount) {
    return keep_refusal(s, c, idem.principal, ResultCode::refund_exceeds_payment, Field::amount);
  }
  AccountRow& merchant = s.accounts[row.merchant];
  if (merchant.balance < c.amount) {
    return keep_refusal(s, c, idem.principal, ResultCode::insufficient_funds, Field::amount);
  }
  Amount& credit = row.channel == 0 ? s.accounts[row.payer].balance
                                    : s.channel_balance(row.channel, row.currency);
  if (!can_credit(credit, c.amount)) return make_result(c, ResultCode::invalid_amount, Field::amount);

  // Point of no return.
  transfer(merchant.balance, credit, c.amount);
  merchant.updated_at_us = c.timestamp_us;
  if (row.channel == 0) s.accounts[row.payer].updated_at_us = c.timestamp_us;
  row.refunded_amount += c.amount;
  if (row.refunded_amount == row.amount) row.status = PaymentStatus::refunded;
  row.updated_at_us = c.timestamp_us;
  RefundRow refund;
  refund.request_id = s.intern(c.request_id.view());
  refund.amount = c.amount;
  refund.created_at_us = c.timestamp_us;
  s.add_refund(payment, refund);
  record_outcome(s, c, idem.principal, ResultCode::ok, payment, refund.request_id);
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return with_payment(r, s, payment, c.timestamp_us);
}

Result get_payment(const State& s, const Command& c) {
  if (!ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);
  const std::uint32_t payment = find_merchant_payment(s, c);
  if (payment == row_none) return make_result(c, ResultCode::payment_not_found, Field::order_id);
  return with_payment(make_result(c, ResultCode::ok), s, payment, c.timestamp_us);
}

// ---- Channel notifications -----------------------------------------------------------------

// Why a notification cannot settle `payment` (0: it can).
AnomalyReason notification_problem(const State& s, const Command& c, std::uint32_t channel,
                                   std::uint32_t payment) {
  if (payment == row_none) return AnomalyReason::unknown_order;
  const PaymentRow& row = s.payments[payment];
  if (row.channel != channel) return AnomalyReason::channel_mismatch;
  if (effective_status(s, row, c.timestamp_us) != PaymentStatus::pending) {
    return AnomalyReason::not_pending;
  }
  if (row.currency != c.currency) return AnomalyReason::currency_mismatch;
  if (row.amount != c.amount) return AnomalyReason::amount_mismatch;
  if (c.notification_status == NotificationStatus::success) {
    if (!can_credit(s.accounts[row.merchant].balance, c.amount) ||
        !can_debit(s.channel_balance(channel, row.currency), c.amount)) {
      return AnomalyReason::balance_overflow;
    }
  }
  return AnomalyReason{};
}

Result channel_notification(State& s, const Command& c) {
  if (!ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  if (c.channel.empty()) return make_result(c, ResultCode::missing_field, Field::channel);
  if (c.channel_txn_id.empty()) return make_result(c, ResultCode::missing_field, Field::channel_txn_id);
  if (c.principal.empty()) return make_result(c, ResultCode::missing_field, Field::merchant_id);
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);
  if (c.amount <= 0) return make_result(c, ResultCode::invalid_amount, Field::amount);
  if (!currency_is_valid(c.currency)) return make_result(c, ResultCode::invalid_field, Field::currency);
  if (!notification_status_is_valid(static_cast<std::uint8_t>(c.notification_status))) {
    return make_result(c, ResultCode::invalid_field, Field::status);
  }
  const std::uint32_t channel = s.find_channel(c.channel.view());
  if (channel == row_none || channel == 0) {
    return make_result(c, ResultCode::unknown_channel, Field::channel);
  }

  Result r = make_result(c, ResultCode::ok);
  const std::uint32_t seen = s.find_channel_txn(channel, c.channel_txn_id.view());
  if (seen != row_none) {  // a channel's retry: the first outcome stands
    r.notification = NotificationOutcome::duplicate;
    if (!(seen & channel_txn_anomaly_bit)) r = with_payment(r, s, seen, c.timestamp_us);
    return r;
  }
  const std::uint32_t payment = find_merchant_payment(s, c);
  const AnomalyReason problem = notification_problem(s, c, channel, payment);
  r.mutated = true;

  if (problem != AnomalyReason{}) {
    AnomalyRow anomaly;
    anomaly.channel_txn_id = s.intern(c.channel_txn_id.view());
    anomaly.merchant_id = s.intern(c.principal.view());
    anomaly.order_id = s.intern(c.order_id.view());
    anomaly.amount = c.amount;
    anomaly.paid_at_us = c.paid_at_us;
    anomaly.received_at_us = c.timestamp_us;
    anomaly.currency = c.currency;
    anomaly.channel = static_cast<std::uint8_t>(channel);
    anomaly.status = c.notification_status;
    anomaly.reason = problem;
    const std::uint32_t index = s.add_anomaly(anomaly);
    s.add_channel_txn(index | channel_txn_anomaly_bit);
    r.notification = NotificationOutcome::anomaly;
    r.anomaly = problem;
    return r;
  }

  // Point of no return.
  PaymentRow& row = s.payments[payment];
  row.channel_txn_id = s.intern(c.channel_txn_id.view());
  row.updated_at_us = c.timestamp_us;
  if (c.notification_status == NotificationStatus::success) {
    AccountRow& merchant = s.accounts[row.merchant];
    transfer(s.channel_balance(channel, row.currency), merchant.balance, row.amount);
    merchant.updated_at_us = c.timestamp_us;
    row.status = PaymentStatus::paid;
  } else {
    row.status = PaymentStatus::failed;
  }
  s.add_channel_txn(payment);
  r.notification = NotificationOutcome::applied;
  return with_payment(r, s, payment, c.timestamp_us);
}

// ---- Engine commands -----------------------------------------------------------------------

// Expires PENDING payments older than the lifetime, at most `expire_max` queue entries per
// tick (a limit on the work of one command). An expired payment's updated_at is the moment
// it expired, so the result does not depend on when the tick ran.
Result tick(State& s, const Command& c) {
  if (c.pending_lifetime_us <= 0) return make_result(c, ResultCode::invalid_field);
  if (c.expire_max == 0) return make_result(c, ResultCode::invalid_field);
  Result r = make_result(c, ResultCode::ok);
  if (s.pending_lifetime_us != c.pending_lifetime_us) {
    s.pending_lifetime_us = c.pending_lifetime_us;
    r.mutated = true;
  }
  for (std::uint32_t examined = 0;
       examined < c.expire_max && s.expiry_cursor < s.pending_queue.size(); ++examined) {
    PaymentRow& row = s.payments[s.pending_queue[s.expiry_cursor]];
    const std::int64_t expires_at_us = row.created_at_us + s.pending_lifetime_us;
    if (expires_at_us > c.timestamp_us) break;  // the queue is in creation order
    if (row.status == PaymentStatus::pending) {
      row.status = PaymentStatus::cancelled;
      row.updated_at_us = expires_at_us;
      ++r.expired_count;
    }
    ++s.expiry_cursor;
    r.mutated = true;
  }
  return r;
}

Result add_channel(State& s, const Command& c) {
  if (!ids_are_sane(c) || c.channel.empty() || c.channel.view() == channel_name_balance) {
    return make_result(c, ResultCode::invalid_field, Field::channel);
  }
  if (s.find_channel(c.channel.view()) != row_none) return make_result(c, ResultCode::ok);
  if (s.channels.size() >= channels_max) return make_result(c, ResultCode::capacity_exhausted, Field::channel);
  s.add_channel(c.channel.view());
  Result r = make_result(c, ResultCode::ok);
  r.mutated = true;
  return r;
}

Result dispatch(State& s, const Command& c) {
  switch (c.kind) {
    case CommandKind::open_account: return open_account(s, c);
    case CommandKind::deposit: return deposit(s, c);
    case CommandKind::create_payment: return create_payment(s, c);
    case CommandKind::cancel_payment:
      return transition(s, c, PaymentStatus::pending, PaymentStatus::cancelled);
    case CommandKind::ship_payment:
      return transition(s, c, PaymentStatus::paid, PaymentStatus::shipped);
    case CommandKind::complete_payment:
      return transition(s, c, PaymentStatus::shipped, PaymentStatus::completed);
    case CommandKind::refund_payment: return refund_payment(s, c);
    case CommandKind::channel_notification: return channel_notification(s, c);
    case CommandKind::tick: return tick(s, c);
    case CommandKind::add_channel: return add_channel(s, c);
    case CommandKind::get_account: return get_account(s, c);
    case CommandKind::get_payment: return get_payment(s, c);
    case CommandKind::create_mandate: return create_mandate(s, c);
    case CommandKind::revoke_mandate: return revoke_mandate(s, c);
    case CommandKind::get_mandate: return get_mandate(s, c);
  }
  return make_result(c, ResultCode::invalid_field);
}

}  // namespace

Result apply(State& s, const Command& c) {
  // The engine stamps strictly increasing timestamps; reads may share the last one.
  PAYCORE_ASSERT(c.timestamp_us >= s.last_timestamp_us);
  Result r = dispatch(s, c);
  PAYCORE_ASSERT(!r.mutated || !command_is_read(c.kind));
  PAYCORE_ASSERT(!r.mutated || r.code == ResultCode::ok || result_is_kept(r.code));
  if (r.mutated) s.last_timestamp_us = c.timestamp_us;
  PAYCORE_DEBUG_ASSERT(s.balances_sum_to_zero_slow());
  return r;
}

void prefetch(const State& s, const Command& c) {
  if (!command_is_idempotent(c.kind)) return;
  if (c.principal.size > id_bytes_max || c.request_id.size > id_bytes_max || c.account.size > id_bytes_max ||
      c.order_id.size > id_bytes_max) {
    return;  // apply will refuse it
  }
  const std::uint32_t principal = s.find_principal(c.principal.view());  // a few, cached
  if (principal != row_none) s.prefetch_idempotency(principal, c.request_id.view());
  if (!c.account.empty()) s.prefetch_account(c.account.view());
  if (!c.order_id.empty()) {
    const std::uint32_t merchant = s.find_account(c.principal.view());  // a few, cached
    if (merchant != row_none) s.prefetch_payment(merchant, c.order_id.view());
  }
}

void prefetch_rows(const State& s, const Command& c) {
  if (c.kind != CommandKind::create_payment || c.account.empty() || c.account.size > id_bytes_max) return;
  s.prefetch_account_row(c.account.view());
}

Admission admit(const State& s, const Limits& limits, const Command& c) {
  const auto full = [](Field field) { return Admission{ResultCode::capacity_exhausted, field}; };
  switch (c.kind) {
    case CommandKind::deposit:
    case CommandKind::create_payment:
    case CommandKind::refund_payment:
    case CommandKind::channel_notification:
      if (c.amount > limits.amount_max) return {ResultCode::invalid_amount, Field::amount};
      break;
    case CommandKind::create_mandate:
      if (c.amount > limits.amount_max) return {ResultCode::invalid_amount, Field::amount_max};
      break;
    default:
      break;
  }
  if (command_is_idempotent(c.kind) && s.idempotency.size() >= limits.idempotency_max) {
    return full(Field::request_id);
  }
  switch (c.kind) {
    case CommandKind::open_account:
      if (s.accounts.size() >= limits.accounts_max) return full(Field::account_id);
      break;
    case CommandKind::create_payment:
      // The merchant's account may be opened with its first payment.
      if (s.payments.size() >= limits.payments_max) return full(Field::order_id);
      if (s.accounts.size() >= limits.accounts_max) return full(Field::merchant_id);
      break;
    case CommandKind::refund_payment:
      if (s.refunds.size() >= limits.refunds_max) return full(Field::amount);
      break;
    case CommandKind::channel_notification:
      if (s.anomalies.size() >= limits.anomalies_max) return full(Field::channel_txn_id);
      break;
    case CommandKind::create_mandate:
      if (s.mandates.size() >= limits.mandates_max) return full(Field::mandate_id);
      if (s.principals.size() + 2 > limits.principals_max) return full(Field::merchant_id);
      break;
    default:
      break;
  }
  return {};
}

PaymentStatus effective_status(const State& s, const PaymentRow& p, std::int64_t now_us) {
  if (p.status == PaymentStatus::pending && p.created_at_us + s.pending_lifetime_us <= now_us) {
    return PaymentStatus::cancelled;
  }
  return p.status;
}

AccountView account_view(const State& s, std::uint32_t account_row) {
  const AccountRow& row = s.accounts[account_row];
  AccountView v;
  v.account_id = row.id;
  v.kind = row.kind;
  v.currency = row.currency;
  v.balance = row.balance;
  v.created_at_us = row.created_at_us;
  v.updated_at_us = row.updated_at_us;
  return v;
}

PaymentView payment_view(const State& s, std::uint32_t payment_row, std::int64_t now_us) {
  const PaymentRow& row = s.payments[payment_row];
  PaymentView v;
  v.merchant_id = s.accounts[row.merchant].id;
  v.order_id = Id::trusted(s.str(row.order_id));
  v.request_id = Id::trusted(s.str(row.request_id));
  v.channel = Id::trusted(s.str(s.channels[row.channel]));
  if (row.payer != row_none) v.payer_account_id = s.accounts[row.payer].id;
  if (row.channel_txn_id != 0) v.channel_txn_id = Id::trusted(s.str(row.channel_txn_id));
  if (row.mandate != row_none) v.mandate_id = Id::trusted(s.str(s.mandates[row.mandate].mandate_id));
  v.amount = row.amount;
  v.refunded_amount = row.refunded_amount;
  v.currency = row.currency;
  v.created_at_us = row.created_at_us;
  v.status = effective_status(s, row, now_us);
  v.updated_at_us = v.status == row.status ? row.updated_at_us
                                           : row.created_at_us + s.pending_lifetime_us;
  return v;
}

}  // namespace paycore

namespace paycore {

MandateStatus effective_mandate_status(const MandateRow& m, std::int64_t now_us) {
  if (m.status == MandateStatus::active && m.expires_at_us != 0 && m.expires_at_us <= now_us) {
    return MandateStatus::expired;
  }
  return m.status;
}

MandateView mandate_view(const State& s, std::uint32_t mandate_row, std::int64_t now_us) {
  const MandateRow& row = s.mandates[mandate_row];
  const AccountRow& payer = s.accounts[row.payer];
  MandateView v;
  v.mandate_id = Id::trusted(s.str(row.mandate_id));
  v.payer_account_id = payer.id;
  v.merchant_id = Id::trusted(s.str(s.principals[row.merchant]));
  v.amount_max = row.amount_max;
  v.expires_at_us = row.expires_at_us;
  v.created_at_us = row.created_at_us;
  v.currency = payer.currency;
  v.single_use = row.single_use;
  v.status = effective_mandate_status(row, now_us);
  v.updated_at_us = v.status == row.status ? row.updated_at_us : row.expires_at_us;
  return v;
}

}  // namespace paycore
