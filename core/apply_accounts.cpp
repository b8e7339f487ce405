// The handlers of accounts and mandates (docs/api.md "Accounts", "Mandates").
#include "apply_internal.hpp"

#include "base/assert.hpp"

namespace paycore::apply_detail {

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
  if (!currency_is_valid(c.currency))
    return make_result(c, ResultCode::invalid_field, Field::currency);

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
  if (!currency_is_valid(c.currency))
    return make_result(c, ResultCode::invalid_field, Field::currency);

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
  // A merchant reads only its own account; anything else looks absent (docs/api.md).
  if (!c.is_operator() && !(c.account == c.principal)) {
    return make_result(c, ResultCode::account_not_found, Field::account_id);
  }
  const std::uint32_t account = s.find_account(c.account.view());
  if (account == row_none) return make_result(c, ResultCode::account_not_found, Field::account_id);
  return with_account(make_result(c, ResultCode::ok), s, account);
}

// ---- Mandates (docs/api.md "Mandates") ----------------------------------------------------------

static Result with_mandate(Result r, const State& s, std::uint32_t mandate, std::int64_t now_us) {
  r.resource = ResourceKind::mandate;
  r.mandate = mandate_view(s, mandate, now_us);
  return r;
}

// Validation that needs no state: 400s, not kept.
static Result validate_create_mandate(const Command& c) {
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
    return keep_refusal(s, c, idem.principal, ResultCode::account_not_found,
                        Field::payer_account_id);
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

}  // namespace paycore::apply_detail
