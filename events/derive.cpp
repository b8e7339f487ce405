#include "events/derive.hpp"

#include <string>

namespace paycore::events {
namespace {

// Builds the record's events in order, numbering them.
class Emitter {
 public:
  Emitter(std::uint64_t lsn, std::vector<Event>* out) : lsn_(lsn), out_(out) {}

  Event& emit(EventType type, std::int64_t created_at_us, const Id& merchant) {
    Event& e = out_->emplace_back();
    e.lsn = lsn_;
    e.index = static_cast<std::uint16_t>(count_++);
    e.type = type;
    e.created_at_us = created_at_us;
    e.merchant_id = merchant;
    return e;
  }
  Event& emit_payment(EventType type, std::int64_t created_at_us, const PaymentView& payment) {
    Event& e = emit(type, created_at_us, payment.merchant_id);
    e.resource = ResourceKind::payment;
    e.payment = payment;
    return e;
  }

 private:
  std::uint64_t lsn_;
  std::vector<Event>* out_;
  std::uint32_t count_ = 0;
};

Status corrupt(std::uint64_t lsn, const std::string& what) {
  return Status::corruption("log record at LSN " + std::to_string(lsn) + ": " + what);
}

Status derive_notification(const Command& c, const CommandOutcome& o, PendingPayments& pending,
                           Emitter& emit) {
  if (o.notification == NotificationOutcome::applied) {
    // Only a PENDING payment takes a notification: it leaves PENDING here.
    const bool paid = o.payment.status == PaymentStatus::paid;
    emit.emit_payment(paid ? EventType::payment_paid : EventType::payment_failed, c.timestamp_us,
                      o.payment);
    return pending.remove(o.payment.created_at_us);
  }
  if (o.notification == NotificationOutcome::anomaly) {
    Event& e = emit.emit(EventType::payment_anomaly, c.timestamp_us, c.principal);
    if (o.resource == ResourceKind::payment) {
      e.resource = ResourceKind::payment;
      e.payment = o.payment;
    }
    e.anomaly = AnomalyNotice{c.channel,  c.channel_txn_id,        c.order_id, c.amount,
                              c.currency, c.notification_status, o.anomaly};
  }
  return Status::ok();  // a duplicate changes nothing
}

// The tick expired the `expired_count` oldest PENDING payments, each at its own expiry time.
Status derive_expiry(std::uint64_t lsn, const Command& c, const CommandOutcome& o,
                     PendingPayments& pending, bool pending_complete, Emitter& emit) {
  if (o.expired_count == 0) return Status::ok();
  if (o.expired_count > events_per_record_max) return corrupt(lsn, "too many expirations");
  std::vector<PaymentView> expired;
  PAYCORE_RETURN_IF_ERROR(pending.oldest(o.expired_count, &expired));
  if (expired.size() != o.expired_count && pending_complete) {
    return corrupt(lsn, "the tick expired " + std::to_string(o.expired_count) + " payments, " +
                            std::to_string(expired.size()) + " are PENDING here");
  }
  for (PaymentView p : expired) {
    const std::int64_t expires_at_us = p.created_at_us + c.pending_lifetime_us;
    if (expires_at_us > c.timestamp_us) {
      if (!pending_complete) break;  // one the core had not reached: it expires later
      return corrupt(lsn, "a payment expired before its time");
    }
    p.status = PaymentStatus::cancelled;
    p.updated_at_us = expires_at_us;
    emit.emit_payment(EventType::payment_cancelled, expires_at_us, p);
    PAYCORE_RETURN_IF_ERROR(pending.remove(p.created_at_us));
  }
  return Status::ok();
}

}  // namespace

Status derive_events(std::uint64_t lsn, const Command& c, const CommandOutcome& o,
                     PendingPayments& pending, bool pending_complete, std::vector<Event>* out) {
  if (o.code != ResultCode::ok) return Status::ok();
  Emitter emit(lsn, out);
  const std::int64_t at = c.timestamp_us;
  switch (c.kind) {
    case CommandKind::create_payment:
      emit.emit_payment(EventType::payment_created, at, o.payment);
      if (o.payment.status == PaymentStatus::paid) emit.emit_payment(EventType::payment_paid, at, o.payment);
      if (o.payment.status == PaymentStatus::pending) return pending.add(o.payment);
      return Status::ok();
    case CommandKind::channel_notification: return derive_notification(c, o, pending, emit);
    case CommandKind::cancel_payment:
      emit.emit_payment(EventType::payment_cancelled, at, o.payment);
      return pending.remove(o.payment.created_at_us);
    case CommandKind::ship_payment: emit.emit_payment(EventType::payment_shipped, at, o.payment); break;
    case CommandKind::complete_payment:
      emit.emit_payment(EventType::payment_completed, at, o.payment);
      break;
    case CommandKind::refund_payment:
      emit.emit_payment(EventType::payment_refunded, at, o.payment).refund =
          RefundView{c.request_id, c.amount, at};
      break;
    case CommandKind::revoke_mandate: {
      Event& e = emit.emit(EventType::mandate_revoked, at, o.mandate.merchant_id);
      e.resource = ResourceKind::mandate;
      e.mandate = o.mandate;
      break;
    }
    case CommandKind::tick: return derive_expiry(lsn, c, o, pending, pending_complete, emit);
    default: break;  // accounts, deposits, mandates created, channels, archiving: no event
  }
  return Status::ok();
}

}  // namespace paycore::events
