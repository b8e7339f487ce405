#pragma once
// Builders of commands for tests, and a driver that stamps strictly increasing timestamps as
// the engine does.

#include <string_view>

#include "core/apply.hpp"
#include "core/command.hpp"

namespace paycore::testing {

inline Currency ccy(std::string_view code) { return *currency_from_code(code); }

inline constexpr std::string_view op = "operator";

inline Command open_account(std::string_view request_id, std::string_view account,
                            std::string_view currency = "CNY",
                            AccountKind kind = AccountKind::customer) {
  Command c;
  c.kind = CommandKind::open_account;
  c.flags = command_flag_operator;
  c.principal = Id::of(op);
  c.request_id = Id::of(request_id);
  c.account = Id::of(account);
  c.currency = ccy(currency);
  c.account_kind = kind;
  return c;
}

inline Command deposit(std::string_view request_id, std::string_view account, Amount amount,
                       std::string_view currency = "CNY") {
  Command c;
  c.kind = CommandKind::deposit;
  c.flags = command_flag_operator;
  c.principal = Id::of(op);
  c.request_id = Id::of(request_id);
  c.account = Id::of(account);
  c.amount = amount;
  c.currency = ccy(currency);
  return c;
}

inline Command pay(std::string_view merchant, std::string_view request_id, std::string_view order,
                   Amount amount, std::string_view payer, std::string_view currency = "CNY") {
  Command c;
  c.kind = CommandKind::create_payment;
  c.principal = Id::of(merchant);
  c.request_id = Id::of(request_id);
  c.order_id = Id::of(order);
  c.amount = amount;
  c.currency = ccy(currency);
  c.channel = Id::of("balance");
  c.account = Id::of(payer);
  return c;
}

inline Command pay_external(std::string_view merchant, std::string_view request_id,
                            std::string_view order, Amount amount, std::string_view channel,
                            std::string_view currency = "CNY") {
  Command c = pay(merchant, request_id, order, amount, "", currency);
  c.channel = Id::of(channel);
  c.account = Id{};
  return c;
}

inline Command order_command(CommandKind kind, std::string_view merchant,
                             std::string_view request_id, std::string_view order) {
  Command c;
  c.kind = kind;
  c.principal = Id::of(merchant);
  c.request_id = Id::of(request_id);
  c.order_id = Id::of(order);
  return c;
}

inline Command refund(std::string_view merchant, std::string_view request_id,
                      std::string_view order, Amount amount) {
  Command c = order_command(CommandKind::refund_payment, merchant, request_id, order);
  c.amount = amount;
  return c;
}

inline Command notify(std::string_view channel, std::string_view txn, std::string_view merchant,
                      std::string_view order, Amount amount, NotificationStatus status,
                      std::string_view currency = "CNY") {
  Command c;
  c.kind = CommandKind::channel_notification;
  c.channel = Id::of(channel);
  c.channel_txn_id = Id::of(txn);
  c.principal = Id::of(merchant);
  c.order_id = Id::of(order);
  c.amount = amount;
  c.currency = ccy(currency);
  c.notification_status = status;
  c.paid_at_us = 1;
  return c;
}

inline Command add_channel(std::string_view name) {
  Command c;
  c.kind = CommandKind::add_channel;
  c.channel = Id::of(name);
  return c;
}

inline Command tick(std::int64_t lifetime_us, std::uint32_t expire_max = 1024) {
  Command c;
  c.kind = CommandKind::tick;
  c.pending_lifetime_us = lifetime_us;
  c.expire_max = expire_max;
  return c;
}

inline Command get_account(std::string_view principal, std::string_view account,
                           bool as_operator = false) {
  Command c;
  c.kind = CommandKind::get_account;
  c.principal = Id::of(principal);
  c.account = Id::of(account);
  c.flags = as_operator ? command_flag_operator : 0;
  return c;
}

inline Command get_payment(std::string_view merchant, std::string_view order) {
  Command c;
  c.kind = CommandKind::get_payment;
  c.principal = Id::of(merchant);
  c.order_id = Id::of(order);
  return c;
}

// A mandate of `payer` for `merchant` (docs/api.md "Mandates"), recorded by the operator.
inline Command create_mandate(std::string_view request_id, std::string_view mandate_id,
                              std::string_view payer, std::string_view merchant,
                              Amount amount_max = 1'000'000'000, std::int64_t expires_at_us = 0,
                              bool single_use = false) {
  Command c;
  c.kind = CommandKind::create_mandate;
  c.flags = command_flag_operator | (single_use ? command_flag_single_use : 0);
  c.principal = Id::of(op);
  c.request_id = Id::of(request_id);
  c.mandate_id = Id::of(mandate_id);
  c.account = Id::of(payer);
  c.merchant_id = Id::of(merchant);
  c.amount = amount_max;
  c.expires_at_us = expires_at_us;
  return c;
}

inline Command revoke_mandate(std::string_view request_id, std::string_view mandate_id) {
  Command c;
  c.kind = CommandKind::revoke_mandate;
  c.flags = command_flag_operator;
  c.principal = Id::of(op);
  c.request_id = Id::of(request_id);
  c.mandate_id = Id::of(mandate_id);
  return c;
}

inline Command get_mandate(std::string_view principal, std::string_view mandate_id,
                           bool as_operator = false) {
  Command c;
  c.kind = CommandKind::get_mandate;
  c.principal = Id::of(principal);
  c.mandate_id = Id::of(mandate_id);
  c.flags = as_operator ? command_flag_operator : 0;
  return c;
}

// Applies commands with timestamps 1 s apart (unless told otherwise), as the engine would.
class Driver {
 public:
  explicit Driver(std::int64_t start_us = 1'700'000'000'000'000) : now_us_(start_us) {}
  Result run(Command c, std::int64_t advance_us = 1'000'000) {
    now_us_ += advance_us;
    c.timestamp_us = now_us_;
    return apply(state, c);
  }
  std::int64_t now_us() const { return now_us_; }
  State state;

 private:
  std::int64_t now_us_;
};

}  // namespace paycore::testing
