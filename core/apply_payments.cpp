// The handlers of payments, refunds and channel notifications (docs/api.md "Payments",
// "Notifications").
#include "apply_internal.hpp"
#include "payment_list.hpp"

#include "base/assert.hpp"

namespace paycore::apply_detail {

// ---- Payments ------------------------------------------------------------------------------

struct PaymentPlan {
  ResultCode code = ResultCode::ok;
  Field field = Field::none;
  bool kept = true;  // the refusal is recorded under the request_id
  std::uint32_t channel = 0;
  std::uint32_t merchant = row_none;  // row_none: the merchant's account is opened with it
  std::uint32_t payer = row_none;
  std::uint32_t mandate = row_none;
};

static PaymentPlan refuse(ResultCode code, Field field, bool kept) {
  PaymentPlan plan;
  plan.code = code;
  plan.field = field;
  plan.kept = kept;
  return plan;
}

// Validation before idempotency: failures here are 400s and are not kept.
static PaymentPlan validate_create_payment(const State& s, const Command& c) {
  if (c.order_id.empty()) return refuse(ResultCode::missing_field, Field::order_id, false);
  if (c.amount <= 0) return refuse(ResultCode::invalid_amount, Field::amount, false);
  if (!currency_is_valid(c.currency))
    return refuse(ResultCode::invalid_field, Field::currency, false);
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
static PaymentPlan plan_create_payment(const State& s, const Command& c, std::uint32_t principal,
                                       PaymentPlan plan) {
  plan.merchant = s.find_account(c.principal.view());
  if (plan.merchant != row_none) {
    const AccountRow& merchant = s.accounts[plan.merchant];
    if (merchant.kind != AccountKind::merchant) {
      return refuse(ResultCode::account_not_found, Field::merchant_id, true);
    }
    if (s.find_payment(plan.merchant, c.order_id.view()) != row_none) {
      return refuse(ResultCode::duplicate_order, Field::order_id, true);
    }
    // The order may have left memory: the edge asks the archive, and says what it found.
    if (s.order_may_be_archived(plan.merchant, c.order_id.view())) {
      if ((c.flags & command_flag_archive_checked) == 0) {
        return refuse(ResultCode::archive_check_needed, Field::order_id, false);
      }
      if ((c.flags & command_flag_in_archive) != 0) {
        return refuse(ResultCode::duplicate_order, Field::order_id, true);
      }
    }
    if (merchant.currency != c.currency) {
      return refuse(ResultCode::currency_mismatch, Field::currency, true);
    }
  }
  if (plan.channel != 0) return plan;  // external: PENDING, no money moves yet

  // Who may debit the payer (docs/api.md "Mandates"): a missing payer, a payer that is not a
  // customer and a payer without a mandate for this merchant all read the same, so that a
  // merchant learns nothing about accounts that are not its to debit.
  plan.payer = s.find_account(c.account.view());
  if (plan.payer == row_none)
    return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  const AccountRow& payer = s.accounts[plan.payer];
  if (payer.kind != AccountKind::customer) {
    return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  }
  plan.mandate = principal == row_none ? row_none : s.find_pair_mandate(plan.payer, principal);
  if (plan.mandate == row_none)
    return refuse(ResultCode::account_not_found, Field::payer_account_id, true);
  const MandateRow& mandate = s.mandates[plan.mandate];
  if (effective_mandate_status(mandate, c.timestamp_us) != MandateStatus::active) {
    return refuse(ResultCode::mandate_inactive, Field::none, true);
  }
  if (payer.currency != c.currency)
    return refuse(ResultCode::currency_mismatch, Field::currency, true);
  if (c.amount > mandate.amount_max)
    return refuse(ResultCode::mandate_limit_exceeded, Field::amount, true);
  if (payer.balance < c.amount) return refuse(ResultCode::insufficient_funds, Field::amount, true);
  const Amount merchant_balance = plan.merchant == row_none ? 0 : s.accounts[plan.merchant].balance;
  if (!can_credit(merchant_balance, c.amount))
    return refuse(ResultCode::invalid_amount, Field::amount, false);
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
  row.order_id = s.intern_history(c.order_id.view());
  row.request_id = s.intern_history(c.request_id.view());
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
static std::uint32_t find_merchant_payment(const State& s, const Command& c) {
  const std::uint32_t merchant = s.find_account(c.principal.view());
  if (merchant == row_none) return row_none;
  return s.find_payment(merchant, c.order_id.view());
}

// ---- Payments that had left memory (docs/design.md "Hot and cold")

// The payment a command on an order concerns: a row in memory, or (`cold`) the row the
// command carries from the archive, checked and not yet inserted.
struct OrderTarget {
  ResultCode code = ResultCode::ok;
  Field field = Field::none;
  std::uint32_t row = row_none;
  bool cold = false;
  PaymentRow cold_row;  // without its strings: interned when it is inserted
};

static OrderTarget target_refused(ResultCode code, Field field) {
  OrderTarget t;
  t.code = code;
  t.field = field;
  return t;
}

// Checks what the command carries from the archive against the state: apply trusts no caller.
static bool archived_fields_fit(const State& s, const Command& c, std::uint32_t merchant,
                                PaymentRow* row) {
  const ArchivedPaymentFields& a = c.archived;
  if (a.request_id.empty() || !payment_status_is_valid(static_cast<std::uint8_t>(a.status)) ||
      a.status == PaymentStatus::pending || a.amount <= 0 || a.refunded_amount < 0 ||
      a.refunded_amount > a.amount || a.created_at_us > a.updated_at_us ||
      a.updated_at_us > c.timestamp_us || !currency_is_valid(c.currency) ||
      s.accounts[merchant].currency != c.currency) {
    return false;
  }
  const std::uint32_t channel = s.find_channel(c.channel.view());
  if (channel == row_none) return false;
  row->channel = static_cast<std::uint8_t>(channel);
  if (channel == 0) {
    row->payer = s.find_account(c.account.view());
    if (row->payer == row_none || s.accounts[row->payer].currency != c.currency) return false;
    if (!c.mandate_id.empty()) {
      row->mandate = s.find_mandate(c.mandate_id.view());
      if (row->mandate == row_none || s.mandates[row->mandate].payer != row->payer) return false;
    }
  } else if (!c.account.empty() || !c.mandate_id.empty()) {
    return false;
  }
  if (!c.channel_txn_id.empty() && s.find_channel_txn(channel, c.channel_txn_id.view()) != row_none)
    return false;
  row->merchant = merchant;
  row->amount = a.amount;
  row->refunded_amount = a.refunded_amount;
  row->created_at_us = a.created_at_us;
  row->updated_at_us = a.updated_at_us;
  row->currency = c.currency;
  row->status = a.status;
  row->flags = payment_flag_from_archive;
  return true;
}

// The hot row, or: not in memory but maybe archived -> ask the edge to look (first pass), not
// found there -> payment_not_found, found -> the payment the command carries.
static OrderTarget find_order_target(const State& s, const Command& c) {
  const std::uint32_t merchant = s.find_account(c.principal.view());
  if (merchant == row_none) return target_refused(ResultCode::payment_not_found, Field::order_id);
  OrderTarget t;
  t.row = s.find_payment(merchant, c.order_id.view());
  if (t.row != row_none) return t;
  if (!s.order_may_be_archived(merchant, c.order_id.view()) ||
      ((c.flags & command_flag_archive_checked) != 0 && (c.flags & command_flag_in_archive) == 0)) {
    return target_refused(ResultCode::payment_not_found, Field::order_id);
  }
  if ((c.flags & command_flag_archive_checked) == 0) {
    return target_refused(ResultCode::archive_check_needed, Field::order_id);
  }
  if (!c.carries_archived_payment() || !archived_fields_fit(s, c, merchant, &t.cold_row)) {
    return target_refused(ResultCode::invalid_field, Field::order_id);
  }
  t.cold = true;
  return t;
}

// Brings the checked cold row into memory (after the point of no return); returns its row.
static std::uint32_t insert_archived(State& s, const Command& c, PaymentRow row) {
  row.order_id = s.intern_history(c.order_id.view());
  row.request_id = s.intern_history(c.archived.request_id.view());
  if (!c.channel_txn_id.empty()) row.channel_txn_id = s.intern_history(c.channel_txn_id.view());
  const std::uint32_t payment = s.add_payment(row);
  if (row.channel_txn_id != 0) s.add_channel_txn(payment);
  return payment;
}

// The refusals of a target: payment_not_found is kept, as for a payment that never existed;
// the others (ask the archive, a bad archived copy) are not.
static Result refuse_target(State& s, const Command& c, std::uint32_t principal,
                            const OrderTarget& t) {
  if (t.code == ResultCode::payment_not_found) {
    return keep_refusal(s, c, principal, ResultCode::payment_not_found, Field::order_id);
  }
  return make_result(c, t.code, t.field);
}

// cancel, ship, complete: one status to another.
Result transition(State& s, const Command& c, PaymentStatus from, PaymentStatus to) {
  if (Result v = validate_idempotent(c); v.code != ResultCode::ok) return v;
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);

  const IdempotencyCheck idem = check_idempotency(s, c);
  if (idem.done) return idem.result;
  const OrderTarget target = find_order_target(s, c);
  if (target.code != ResultCode::ok) return refuse_target(s, c, idem.principal, target);
  const PaymentRow& current = target.cold ? target.cold_row : s.payments[target.row];
  if (effective_status(s, current, c.timestamp_us) != from) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_state, Field::none);
  }

  // Point of no return.
  const std::uint32_t payment = target.cold ? insert_archived(s, c, target.cold_row) : target.row;
  PaymentRow& row = s.payments[payment];
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
  const OrderTarget target = find_order_target(s, c);
  if (target.code != ResultCode::ok) return refuse_target(s, c, idem.principal, target);
  const PaymentRow& current = target.cold ? target.cold_row : s.payments[target.row];
  if (!is_paid_like(effective_status(s, current, c.timestamp_us))) {
    return keep_refusal(s, c, idem.principal, ResultCode::invalid_state, Field::none);
  }
  PAYCORE_ASSERT_GE(current.refunded_amount, 0);
  PAYCORE_ASSERT_LT(current.refunded_amount, current.amount);
  if (c.amount > current.amount - current.refunded_amount) {
    return keep_refusal(s, c, idem.principal, ResultCode::refund_exceeds_payment, Field::amount);
  }
  if (s.accounts[current.merchant].balance < c.amount) {
    return keep_refusal(s, c, idem.principal, ResultCode::insufficient_funds, Field::amount);
  }
  const Amount credit_before = current.channel == 0
                                   ? s.accounts[current.payer].balance
                                   : s.channel_balance(current.channel, current.currency);
  if (!can_credit(credit_before, c.amount))
    return make_result(c, ResultCode::invalid_amount, Field::amount);

  // Point of no return.
  const std::uint32_t payment = target.cold ? insert_archived(s, c, target.cold_row) : target.row;
  PaymentRow& row = s.payments[payment];
  AccountRow& merchant = s.accounts[row.merchant];
  Amount& credit = row.channel == 0 ? s.accounts[row.payer].balance
                                    : s.channel_balance(row.channel, row.currency);
  transfer(merchant.balance, credit, c.amount);
  merchant.updated_at_us = c.timestamp_us;
  if (row.channel == 0) s.accounts[row.payer].updated_at_us = c.timestamp_us;
  row.refunded_amount += c.amount;
  if (row.refunded_amount == row.amount) row.status = PaymentStatus::refunded;
  row.updated_at_us = c.timestamp_us;
  RefundRow refund;
  refund.request_id = s.intern_history(c.request_id.view());
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
  const std::uint32_t merchant = s.find_account(c.principal.view());
  const std::uint32_t payment =
      merchant == row_none ? row_none : s.find_payment(merchant, c.order_id.view());
  if (payment != row_none) return with_payment(make_result(c, ResultCode::ok), s, payment, c.timestamp_us);
  // Not in memory: only an order the filter knows may be in the archive, which the edge reads
  // (docs/design.md "Hot and cold"); any other is not found without touching the disk.
  const bool may_be_archived =
      merchant != row_none && s.order_may_be_archived(merchant, c.order_id.view());
  return make_result(c, may_be_archived ? ResultCode::archive_check_needed : ResultCode::payment_not_found,
                     Field::order_id);
}

// A step of a listing (core/payment_list.hpp): the work travels in the command and back in the
// result, which says only its code (the edge words the refusals: net/io_thread_list.cpp); a
// command without work (a crafted log) is refused.
Result list_payments(const State& s, const Command& c) {
  if (c.list == nullptr || !ids_are_sane(c)) return make_result(c, ResultCode::invalid_field);
  const std::uint32_t merchant = s.find_account(c.principal.view());
  PaymentListWork* work = c.list;
  const ResultCode code = work->kind == ListKind::refunds
                              ? list_refunds_in_memory(s, merchant, work)
                              : list_payments_in_memory(s, merchant, c.timestamp_us, work);
  Result r = make_result(c, code);
  r.list = work;
  return r;
}

// ---- Channel notifications -----------------------------------------------------------------

// Why a notification cannot settle `payment` (0: it can).
static AnomalyReason notification_problem(const State& s, const Command& c, std::uint32_t channel,
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
  if (c.channel_txn_id.empty())
    return make_result(c, ResultCode::missing_field, Field::channel_txn_id);
  if (c.principal.empty()) return make_result(c, ResultCode::missing_field, Field::merchant_id);
  if (c.order_id.empty()) return make_result(c, ResultCode::missing_field, Field::order_id);
  if (c.amount <= 0) return make_result(c, ResultCode::invalid_amount, Field::amount);
  if (!currency_is_valid(c.currency))
    return make_result(c, ResultCode::invalid_field, Field::currency);
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
  row.channel_txn_id = s.intern_history(c.channel_txn_id.view());
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

}  // namespace paycore::apply_detail
