#pragma once
// From a command record to its events (issue 15; docs/events.md "Which record gives which
// event"). A pure function of the record and of the PENDING payments derived so far: the
// record's outcome (core/command_record.hpp) says what apply decided and shows what it changed,
// so no copy of the state is needed, except for the automatic expiry, whose tick record says
// only how many PENDING payments it expired (the oldest ones): their views come from the
// PendingPayments the deriver keeps, in creation order.

#include <cstdint>
#include <vector>

#include "base/status.hpp"
#include "core/command.hpp"
#include "core/command_record.hpp"
#include "events/event.hpp"

namespace paycore::events {

/// The PENDING payments, as the events derived so far left them, keyed by their creation time
/// (unique: one payment per command, and every command has its own timestamp).
class PendingPayments {
 public:
  virtual ~PendingPayments() = default;
  virtual Status add(const PaymentView& payment) = 0;
  virtual Status remove(std::int64_t created_at_us) = 0;
  /// The `count` oldest, oldest first, into *out (fewer when there are fewer).
  virtual Status oldest(std::uint32_t count, std::vector<PaymentView>* out) = 0;
};

/// Appends to *out the events of the record at `lsn` (its command and outcome) and updates
/// `pending`. A kept refusal gives none. `pending_complete`: `pending` holds every PENDING
/// payment (false after a gap in the derivation, docs/events.md "Gaps": then a tick expires
/// those of its count that are known and due, and the rest are not reported). Errors:
/// kCorruption when the record cannot be what apply wrote (with pending_complete, a tick
/// expiring more PENDING payments than there are, or one not yet due; more events than
/// events_per_record_max); the store's errors as they come.
Status derive_events(std::uint64_t lsn, const Command& command, const CommandOutcome& outcome,
                     PendingPayments& pending, bool pending_complete, std::vector<Event>* out);

}  // namespace paycore::events
