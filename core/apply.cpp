#include "apply.hpp"

#include <array>

#include "apply_internal.hpp"
#include "base/assert.hpp"

namespace paycore {
namespace {

using namespace apply_detail;  // NOLINT: the handlers and their shared pieces

// ---- Engine commands -----------------------------------------------------------------------

// Expires PENDING payments older than the lifetime, at most `expire_max` queue entries per
// tick (a limit on the work of one command). An expired payment's updated_at is the moment
// it expired, so the result does not depend on when the tick ran. Entries whose payment has
// already left memory (archived once it was no longer PENDING) are passed over.
void expire_pending(State& s, const Command& c, Result* r) {
  const std::uint32_t cursor_before = s.expiry_cursor;
  std::uint32_t examined = 0;
  for (; examined < c.expire_max && s.expiry_cursor < s.pending_queue.size(); ++examined) {
    const std::uint32_t payment = s.pending_queue[s.expiry_cursor];
    if (payment >= s.payments.begin()) {
      PaymentRow& row = s.payments[payment];
      const std::int64_t expires_at_us = row.created_at_us + s.pending_lifetime_us;
      if (expires_at_us > c.timestamp_us) break;  // the queue is in creation order
      if (row.status == PaymentStatus::pending) {
        row.status = PaymentStatus::cancelled;
        row.updated_at_us = expires_at_us;
        ++r->expired_count;
      }
    }
    ++s.expiry_cursor;
    r->mutated = true;
  }
  if (s.expiry_cursor != cursor_before) s.pending_queue.release_front(s.expiry_cursor);
  if (examined == c.expire_max && s.expiry_cursor < s.pending_queue.size()) r->work_left = true;
}

Result tick(State& s, const Command& c) {
  if (c.pending_lifetime_us <= 0) return make_result(c, ResultCode::invalid_field);
  if (c.expire_max == 0) return make_result(c, ResultCode::invalid_field);
  if (c.idempotency_retention_us < 0) return make_result(c, ResultCode::invalid_field);
  Result r = make_result(c, ResultCode::ok);
  if (s.pending_lifetime_us != c.pending_lifetime_us) {
    s.pending_lifetime_us = c.pending_lifetime_us;
    r.mutated = true;
  }
  expire_pending(s, c, &r);
  // Idempotency retention (docs/api.md "Idempotency"): 0 keeps records forever.
  if (c.idempotency_retention_us > 0) {
    const std::int64_t horizon_before = s.idempotency_horizon_us;
    const std::uint32_t dropped =
        s.drop_idempotency(c.timestamp_us - c.idempotency_retention_us, c.expire_max);
    if (dropped == c.expire_max) r.work_left = true;
    if (dropped != 0 || s.idempotency_horizon_us != horizon_before) r.mutated = true;
  }
  return r;
}

// Takes out of memory the payments the archive holds durably (docs/design.md "Hot and cold"):
// rows from the first live one up to `archive_rows_end`, stopping at the first that may not
// leave (still PENDING, changed since the archived copy was read, or still referred to by an
// idempotency record). The archive may thus hold newer rows than memory gave up; they stay
// live here, and the live row is the truth until it is archived again.
Result archive_payments(State& s, const Command& c) {
  if (c.archive_rows_end > s.payments.size() || c.archive_as_of_us > c.timestamp_us) {
    return make_result(c, ResultCode::invalid_field);
  }
  Result r = make_result(c, ResultCode::ok);
  std::uint32_t end = s.payments.begin();
  while (end < c.archive_rows_end && s.payment_is_evictable(end, c.archive_as_of_us)) ++end;
  if (c.archive_rows_end > s.archived_rows_end) {
    s.archived_rows_end = c.archive_rows_end;
    r.mutated = true;
  }
  if (end != s.payments.begin()) {
    r.archived_count = end - s.payments.begin();
    s.evict_payments(end);
    r.mutated = true;
  }
  return r;
}

Result add_channel(State& s, const Command& c) {
  if (!ids_are_sane(c) || c.channel.empty() || c.channel.view() == channel_name_balance) {
    return make_result(c, ResultCode::invalid_field, Field::channel);
  }
  if (s.find_channel(c.channel.view()) != row_none) return make_result(c, ResultCode::ok);
  if (s.channels.size() >= channels_max)
    return make_result(c, ResultCode::capacity_exhausted, Field::channel);
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
    case CommandKind::archive_payments: return archive_payments(s, c);
    case CommandKind::list_payments: return list_payments(s, c);
  }
  return make_result(c, ResultCode::invalid_field);
}

// The edge must look in the archive and hand the command in again: the result carries the
// command's own fields in its payment view, so that the edge can rebuild the command without
// having kept it (docs/design.md "Hot and cold").
void attach_command(const Command& c, Result* r) {
  r->resource = ResourceKind::payment;
  r->payment = PaymentView{};
  r->payment.merchant_id = c.principal;
  r->payment.order_id = c.order_id;
  r->payment.request_id = c.request_id;
  r->payment.channel = c.channel;
  r->payment.payer_account_id = c.account;
  r->payment.amount = c.amount;
  r->payment.currency = c.currency;
}

}  // namespace

Result apply(State& s, const Command& c) {
  // The engine stamps strictly increasing timestamps; reads may share the last one.
  PAYCORE_ASSERT(c.timestamp_us >= s.last_timestamp_us);
  Result r = dispatch(s, c);
  if (r.code == ResultCode::archive_check_needed) attach_command(c, &r);
  // A read never mutates; a mutation is a success or an outcome that is kept.
  const bool is_read = command_is_read(c.kind);
  const bool outcome_kept = r.code == ResultCode::ok || result_is_kept(r.code);
  PAYCORE_ASSERT(!r.mutated || !is_read);
  PAYCORE_ASSERT(!r.mutated || outcome_kept);
  if (r.mutated) s.last_timestamp_us = c.timestamp_us;
  PAYCORE_DEBUG_ASSERT(s.balances_sum_to_zero_slow());
  return r;
}

void prefetch(const State& s, const Command& c) {
  if (!command_is_idempotent(c.kind)) return;
  if (c.principal.size > id_bytes_max || c.request_id.size > id_bytes_max ||
      c.account.size > id_bytes_max || c.order_id.size > id_bytes_max) {
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
  if (c.kind != CommandKind::create_payment || c.account.empty() || c.account.size > id_bytes_max)
    return;
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
    default: break;
  }
  // The limits count rows in memory: those that have left (archived payments, expired
  // idempotency records) no longer count.
  if (command_is_idempotent(c.kind) && s.idempotency.live_count() >= limits.idempotency_max) {
    return full(Field::request_id);
  }
  switch (c.kind) {
    case CommandKind::open_account:
      if (s.accounts.size() >= limits.accounts_max) return full(Field::account_id);
      break;
    case CommandKind::create_payment:
      // The merchant's account may be opened with its first payment.
      if (s.payments.live_count() >= limits.payments_max) return full(Field::order_id);
      if (s.accounts.size() >= limits.accounts_max) return full(Field::merchant_id);
      break;
    case CommandKind::refund_payment:
      if (s.refunds.live_count() >= limits.refunds_max) return full(Field::amount);
      break;
    case CommandKind::channel_notification:
      if (s.anomalies.size() >= limits.anomalies_max) return full(Field::channel_txn_id);
      break;
    case CommandKind::create_mandate:
      if (s.mandates.size() >= limits.mandates_max) return full(Field::mandate_id);
      if (s.principals.size() + 2 > limits.principals_max) return full(Field::merchant_id);
      break;
    default: break;
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
  if (row.mandate != row_none)
    v.mandate_id = Id::trusted(s.str(s.mandates[row.mandate].mandate_id));
  v.amount = row.amount;
  v.refunded_amount = row.refunded_amount;
  v.currency = row.currency;
  v.created_at_us = row.created_at_us;
  v.status = effective_status(s, row, now_us);
  v.updated_at_us =
      v.status == row.status ? row.updated_at_us : row.created_at_us + s.pending_lifetime_us;
  return v;
}

}  // namespace paycore

namespace paycore {

RefundView refund_view(const State& s, std::uint32_t refund_row) {
  const RefundRow& row = s.refunds[refund_row];
  RefundView v;
  v.request_id = Id::trusted(s.str(row.request_id));
  v.amount = row.amount;
  v.created_at_us = row.created_at_us;
  return v;
}

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
