#include "command_record.hpp"

#include <string>

#include "byte_codec.hpp"
#include "engine_records.hpp"

namespace paycore {

using detail::Reader;
using detail::Writer;

namespace {

// What the record keeps of a Result's anomaly reason and work_left (outcome_of's rules, shared
// with encoding straight from a Result).
AnomalyReason logged_anomaly(const Result& r) {
  return r.notification == NotificationOutcome::anomaly ? r.anomaly : AnomalyReason{};
}
bool logged_work_left(const Result& r) { return r.kind == CommandKind::tick && r.work_left; }

}  // namespace

CommandOutcome outcome_of(const Result& result) {
  CommandOutcome o;
  o.code = result.code;
  o.notification = result.notification;
  o.anomaly = logged_anomaly(result);
  o.resource = result.resource;
  o.expired_count = result.expired_count;
  o.work_left = logged_work_left(result);
  switch (result.resource) {
    case ResourceKind::account: o.account = result.account; break;
    case ResourceKind::payment: o.payment = result.payment; break;
    case ResourceKind::mandate: o.mandate = result.mandate; break;
    case ResourceKind::none: break;
  }
  return o;
}

namespace {

void put_currency(Writer& w, Currency currency) {
  char code[3] = {0, 0, 0};
  if (currency.valid()) std::memcpy(code, currency_code(currency).data(), 3);
  w.put(code, 3);
}

CommandDecodeError get_currency(Reader& r, Currency* out) {
  char code[3];
  if (!r.get(code, 3)) return CommandDecodeError::truncated;
  *out = Currency{};
  if (code[0] == 0 && code[1] == 0 && code[2] == 0) return CommandDecodeError::ok;
  const auto currency = currency_from_code(std::string_view(code, 3));
  if (!currency) return CommandDecodeError::bad_currency;
  *out = *currency;
  return CommandDecodeError::ok;
}

void put_account(Writer& w, const AccountView& a) {
  w.id(a.account_id);
  w.u8(static_cast<std::uint8_t>(a.kind));
  put_currency(w, a.currency);
  w.le(a.balance);
  w.le(a.created_at_us);
  w.le(a.updated_at_us);
}

void put_payment(Writer& w, const PaymentView& p) {
  for (const Id* id : {&p.merchant_id, &p.order_id, &p.request_id, &p.channel,
                       &p.payer_account_id, &p.channel_txn_id, &p.mandate_id}) {
    w.id(*id);
  }
  w.le(p.amount);
  w.le(p.refunded_amount);
  w.le(p.created_at_us);
  w.le(p.updated_at_us);
  put_currency(w, p.currency);
  w.u8(static_cast<std::uint8_t>(p.status));
}

void put_mandate(Writer& w, const MandateView& m) {
  w.id(m.mandate_id);
  w.id(m.payer_account_id);
  w.id(m.merchant_id);
  w.le(m.amount_max);
  w.le(m.expires_at_us);
  w.le(m.created_at_us);
  w.le(m.updated_at_us);
  put_currency(w, m.currency);
  w.u8(static_cast<std::uint8_t>(m.status));
  w.u8(m.single_use ? 1 : 0);
}

// A CommandOutcome, or a Result with the reason and flag the record keeps of it: the same
// members by name, so that the core encodes its Result without building a CommandOutcome.
template <class Outcome>
void put_outcome(Writer& w, const Outcome& o, AnomalyReason anomaly, bool work_left) {
  w.u8(command_outcome_version);
  w.u8(static_cast<std::uint8_t>(o.code));
  w.u8(static_cast<std::uint8_t>(o.notification));
  w.u8(static_cast<std::uint8_t>(anomaly));
  w.u8(static_cast<std::uint8_t>(o.resource));
  w.le(o.expired_count);
  w.u8(work_left ? 1 : 0);
  switch (o.resource) {
    case ResourceKind::account: put_account(w, o.account); break;
    case ResourceKind::payment: put_payment(w, o.payment); break;
    case ResourceKind::mandate: put_mandate(w, o.mandate); break;
    case ResourceKind::none: break;
  }
}

// The command, then its outcome written by `put`.
template <class Put>
std::size_t encode_record(const Command& command, std::span<std::byte> out, Put put) {
  PAYCORE_ASSERT(out.size() >= command_record_bytes_max);
  const std::size_t command_bytes = encode_command(command, out.subspan(2));
  static_assert(command_encoded_bytes_max <= 0xffff);
  Writer head(out.first(2));
  head.le(static_cast<std::uint16_t>(command_bytes));
  Writer w(out.subspan(2 + command_bytes));
  put(w);
  return 2 + command_bytes + w.used();
}

// Runs the decode steps in order, stopping at the first error.
#define PAYCORE_DECODE(step)                                             \
  do {                                                                   \
    if (const CommandDecodeError e_ = (step); e_ != CommandDecodeError::ok) \
      return e_;                                                         \
  } while (false)

CommandDecodeError need(bool read) {
  return read ? CommandDecodeError::ok : CommandDecodeError::truncated;
}

CommandDecodeError get_account(Reader& r, AccountView* a) {
  std::uint8_t kind = 0;
  PAYCORE_DECODE(r.id(&a->account_id));
  PAYCORE_DECODE(need(r.u8(&kind)));
  if (!account_kind_is_valid(kind)) return CommandDecodeError::bad_enum;
  a->kind = static_cast<AccountKind>(kind);
  PAYCORE_DECODE(get_currency(r, &a->currency));
  return need(r.le(&a->balance) && r.le(&a->created_at_us) && r.le(&a->updated_at_us));
}

CommandDecodeError get_payment(Reader& r, PaymentView* p) {
  for (Id* id : {&p->merchant_id, &p->order_id, &p->request_id, &p->channel,
                 &p->payer_account_id, &p->channel_txn_id, &p->mandate_id}) {
    PAYCORE_DECODE(r.id(id));
  }
  PAYCORE_DECODE(need(r.le(&p->amount) && r.le(&p->refunded_amount) &&
                      r.le(&p->created_at_us) && r.le(&p->updated_at_us)));
  PAYCORE_DECODE(get_currency(r, &p->currency));
  std::uint8_t status = 0;
  PAYCORE_DECODE(need(r.u8(&status)));
  if (!payment_status_is_valid(status)) return CommandDecodeError::bad_enum;
  p->status = static_cast<PaymentStatus>(status);
  return CommandDecodeError::ok;
}

CommandDecodeError get_mandate(Reader& r, MandateView* m) {
  PAYCORE_DECODE(r.id(&m->mandate_id));
  PAYCORE_DECODE(r.id(&m->payer_account_id));
  PAYCORE_DECODE(r.id(&m->merchant_id));
  PAYCORE_DECODE(need(r.le(&m->amount_max) && r.le(&m->expires_at_us) &&
                      r.le(&m->created_at_us) && r.le(&m->updated_at_us)));
  PAYCORE_DECODE(get_currency(r, &m->currency));
  std::uint8_t status = 0, single_use = 0;
  PAYCORE_DECODE(need(r.u8(&status) && r.u8(&single_use)));
  // A view's status is read at the command's time: EXPIRED (3) is one it may hold.
  if (status < 1 || status > 4 || single_use > 1) return CommandDecodeError::bad_enum;
  m->status = static_cast<MandateStatus>(status);
  m->single_use = single_use == 1;
  return CommandDecodeError::ok;
}

CommandDecodeError get_outcome_head(Reader& r, CommandOutcome* o) {
  std::uint8_t version = 0, code = 0, notification = 0, anomaly = 0, resource = 0;
  PAYCORE_DECODE(need(r.u8(&version)));
  if (version != command_outcome_version) return CommandDecodeError::unknown_version;
  std::uint8_t flags = 0;
  PAYCORE_DECODE(need(r.u8(&code) && r.u8(&notification) && r.u8(&anomaly) &&
                      r.u8(&resource) && r.le(&o->expired_count) && r.u8(&flags)));
  if (flags > 1) return CommandDecodeError::bad_enum;
  o->work_left = flags == 1;
  const bool code_kept = code <= result_code_max && result_is_kept(static_cast<ResultCode>(code));
  const bool anomaly_valid = notification == static_cast<std::uint8_t>(NotificationOutcome::anomaly)
                                 ? anomaly_reason_is_valid(anomaly)
                                 : anomaly == 0;
  if (!code_kept || notification > 3 || !anomaly_valid || resource > 3) {
    return CommandDecodeError::bad_enum;
  }
  o->code = static_cast<ResultCode>(code);
  o->notification = static_cast<NotificationOutcome>(notification);
  o->anomaly = static_cast<AnomalyReason>(anomaly);
  o->resource = static_cast<ResourceKind>(resource);
  return CommandDecodeError::ok;
}

CommandDecodeError get_outcome(Reader& r, CommandOutcome* o) {
  PAYCORE_DECODE(get_outcome_head(r, o));
  switch (o->resource) {
    case ResourceKind::account: PAYCORE_DECODE(get_account(r, &o->account)); break;
    case ResourceKind::payment: PAYCORE_DECODE(get_payment(r, &o->payment)); break;
    case ResourceKind::mandate: PAYCORE_DECODE(get_mandate(r, &o->mandate)); break;
    case ResourceKind::none: break;
  }
  return r.at_end() ? CommandDecodeError::ok : CommandDecodeError::trailing_bytes;
}

#undef PAYCORE_DECODE

}  // namespace

std::size_t encode_command_record(const Command& command, const CommandOutcome& outcome,
                                  std::span<std::byte> out) {
  return encode_record(command, out, [&](Writer& w) {
    put_outcome(w, outcome, outcome.anomaly, outcome.work_left);
  });
}

std::size_t encode_command_record(const Command& command, const Result& result,
                                  std::span<std::byte> out) {
  return encode_record(command, out, [&](Writer& w) {
    put_outcome(w, result, logged_anomaly(result), logged_work_left(result));
  });
}

CommandDecodeError decode_command_record(std::uint16_t type, std::span<const std::byte> payload,
                                         Command* command, CommandOutcome* outcome,
                                         bool* has_outcome) {
  *outcome = CommandOutcome{};
  *has_outcome = false;
  if (type == record_type_command) return decode_command(payload, command);
  if (type != record_type_command_outcome) return CommandDecodeError::unknown_kind;
  Reader r(payload);
  std::uint16_t command_bytes = 0;
  if (!r.le(&command_bytes)) return CommandDecodeError::truncated;
  if (payload.size() - 2 < command_bytes) return CommandDecodeError::truncated;
  const CommandDecodeError e = decode_command(payload.subspan(2, command_bytes), command);
  if (e != CommandDecodeError::ok) return e;
  Reader rest(payload.subspan(2 + std::size_t{command_bytes}));
  const CommandDecodeError o = get_outcome(rest, outcome);
  if (o != CommandDecodeError::ok) {
    *outcome = CommandOutcome{};
    return o;
  }
  *has_outcome = true;
  return CommandDecodeError::ok;
}

std::size_t encode_payment_view(const PaymentView& view, std::span<std::byte> out) {
  PAYCORE_ASSERT(out.size() >= payment_view_bytes_max);
  Writer w(out);
  put_payment(w, view);
  return w.used();
}

CommandDecodeError decode_payment_view(std::span<const std::byte> in, PaymentView* view) {
  *view = PaymentView{};
  Reader r(in);
  const CommandDecodeError e = get_payment(r, view);
  if (e != CommandDecodeError::ok) return e;
  return r.at_end() ? CommandDecodeError::ok : CommandDecodeError::trailing_bytes;
}

std::size_t encode_mandate_view(const MandateView& view, std::span<std::byte> out) {
  PAYCORE_ASSERT(out.size() >= mandate_view_bytes_max);
  Writer w(out);
  put_mandate(w, view);
  return w.used();
}

CommandDecodeError decode_mandate_view(std::span<const std::byte> in, MandateView* view) {
  *view = MandateView{};
  Reader r(in);
  const CommandDecodeError e = get_mandate(r, view);
  if (e != CommandDecodeError::ok) return e;
  return r.at_end() ? CommandDecodeError::ok : CommandDecodeError::trailing_bytes;
}

std::string describe_outcome_mismatch(const CommandOutcome& logged, const CommandOutcome& here) {
  if (logged == here) return "";
  if (logged.code != here.code) {
    return "the log says " + std::string(to_string(logged.code)) + ", apply here says " +
           std::string(to_string(here.code));
  }
  if (logged.resource != here.resource) return "the changed resource differs";
  if (logged.expired_count != here.expired_count) {
    return "the log says " + std::to_string(logged.expired_count) + " expired, apply here says " +
           std::to_string(here.expired_count);
  }
  if (logged.work_left != here.work_left) return "the tick's work left differs";
  if (logged.notification != here.notification || logged.anomaly != here.anomaly) {
    return "the notification outcome differs";
  }
  return "the changed resource's representation differs";
}

}  // namespace paycore
