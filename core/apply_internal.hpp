#pragma once
// Inside the state machine (apply.hpp): the handlers of each command kind and the pieces they
// share. Only the apply*.cpp files include this header. The handlers follow docs/design.md
// rule 3: every refusal is decided before the first write, then "point of no return".
//
//   apply_support.cpp   results, id and money checks, transfer, idempotency
//   apply_accounts.cpp  open_account, deposit, get_account, the mandates
//   apply_payments.cpp  create_payment, the transitions, refunds, channel notifications
//   apply.cpp           dispatch, tick, add_channel, admission, prefetch, the views

#include <cstdint>
#include <string_view>

#include "apply.hpp"
#include "command.hpp"
#include "result.hpp"
#include "state.hpp"

namespace paycore::apply_detail {

// ---- Shared pieces (apply_support.cpp)

/// A result of `c`'s kind with `code` and the field at fault.
Result make_result(const Command& c, ResultCode code, Field field = Field::none);
/// Every id of `c` is absent or valid (apply trusts no caller: a bug or a crafted log must not
/// reach the tables).
bool ids_are_sane(const Command& c);
bool currency_is_valid(Currency currency);
/// `external`, the balance channel and `channel:*` are the system's accounts.
bool id_is_reserved_for_system(std::string_view id);
/// PAID, SHIPPED or COMPLETED: the money has moved.
bool is_paid_like(PaymentStatus status);
/// Whether crediting (debiting) `amount` to (from) `balance` stays within int64.
bool can_credit(Amount balance, Amount amount);
bool can_debit(Amount balance, Amount amount);
/// One movement (docs/design.md rule 5): debit one balance, credit another. Both were checked
/// by the caller (can_debit, can_credit); `amount` > 0.
void transfer(Amount& debit, Amount& credit, Amount amount);

struct IdempotencyCheck {
  bool done = false;  // `result` is the answer: a replay or idempotency_key_reused
  Result result;
  std::uint32_t principal = row_none;  // row_none: the principal has no row yet
};
/// Looks up (principal, request_id): a replay of the first outcome, `idempotency_key_reused`
/// for another body under the same id, or not done (a first request).
IdempotencyCheck check_idempotency(const State& s, const Command& c);
/// Records the outcome under (principal, request_id): the last write of every idempotent
/// command whose outcome is kept. `request_id` may already be interned (shared with the row).
void record_outcome(State& s, const Command& c, std::uint32_t principal, ResultCode code,
                    std::uint32_t resource, StrRef request_id = 0, Field field = Field::none);
/// A business refusal that is kept: the same request_id will get the same answer.
Result keep_refusal(State& s, const Command& c, std::uint32_t principal, ResultCode code,
                    Field field);
/// Checks shared by every idempotent command before its own: request and principal ids.
Result validate_idempotent(const Command& c);
Result with_account(Result r, const State& s, std::uint32_t account);
Result with_payment(Result r, const State& s, std::uint32_t payment, std::int64_t now_us);

// ---- Handlers, one per command kind (docs/api.md)

Result open_account(State& s, const Command& c);
Result deposit(State& s, const Command& c);
Result get_account(const State& s, const Command& c);
Result create_mandate(State& s, const Command& c);
Result revoke_mandate(State& s, const Command& c);
Result get_mandate(const State& s, const Command& c);
Result create_payment(State& s, const Command& c);
/// cancel, ship, complete: the payment must be `from` (as read at the command's time).
Result transition(State& s, const Command& c, PaymentStatus from, PaymentStatus to);
Result refund_payment(State& s, const Command& c);
Result get_payment(const State& s, const Command& c);
Result list_payments(const State& s, const Command& c);
Result channel_notification(State& s, const Command& c);

}  // namespace paycore::apply_detail
