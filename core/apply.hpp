#pragma once
// The state machine: `apply(state, command) -> result`. Deterministic: it reads no clock, no
// randomness and no I/O; every input is in the command (timestamps included), so replaying the
// log rebuilds the same state byte for byte (docs/design.md rule 2). Each handler validates
// everything first, then mutates; after the first write nothing can fail (rule 3).

#include <cstdint>

#include "command.hpp"
#include "result.hpp"
#include "state.hpp"

namespace paycore {

Result apply(State& state, const Command& command);

// Starts loading the memory that applying `command` will touch first (its index slots). Call it
// a few commands ahead when applying a batch: the loads of several commands then overlap
// instead of each command waiting for its own cache misses. Changes nothing.
// `prefetch_rows` is the second stage, issued later for the same command (its index slots are
// cached by then): it starts loading the rows the lookups will compare.
void prefetch(const State& state, const Command& command);
void prefetch_rows(const State& state, const Command& command);

// How far ahead of the command being applied each stage runs, in commands.
inline constexpr std::size_t prefetch_slots_distance = 16;
inline constexpr std::size_t prefetch_rows_distance = 8;

// Limits from the configuration (docs/design.md rule 6). They are checked by `admit` for live
// commands before `apply`, and not during replay: the log holds only admitted commands, and a
// restart with lower limits must not rewrite history.
struct Limits {
  Amount amount_max = amount_max_default;
  std::uint32_t accounts_max = 10'000'000;
  std::uint32_t payments_max = 100'000'000;
  std::uint32_t refunds_max = 100'000'000;
  std::uint32_t idempotency_max = 200'000'000;
  std::uint32_t anomalies_max = 10'000'000;
  std::uint32_t mandates_max = 10'000'000;
  std::uint32_t principals_max = 1'000'000;
};

struct Admission {
  ResultCode code = ResultCode::ok;
  Field field = Field::none;
};
Admission admit(const State& state, const Limits& limits, const Command& command);

// The status a reader sees at `now_us`: a PENDING payment past its lifetime reads CANCELLED
// even before the tick that records the expiry has run.
PaymentStatus effective_status(const State& state, const PaymentRow& payment, std::int64_t now_us);

// A mandate's status at `now_us`: an ACTIVE mandate past its expires_at reads EXPIRED.
MandateStatus effective_mandate_status(const MandateRow& mandate, std::int64_t now_us);

AccountView account_view(const State& state, std::uint32_t account_row);
MandateView mandate_view(const State& state, std::uint32_t mandate_row, std::int64_t now_us);
PaymentView payment_view(const State& state, std::uint32_t payment_row, std::int64_t now_us);
RefundView refund_view(const State& state, std::uint32_t refund_row);

}  // namespace paycore
