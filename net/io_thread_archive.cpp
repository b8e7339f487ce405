// The I/O thread's side of the cold tier (issue 12; docs/design.md "Hot and cold"). The engine
// answers archive_check_needed when its filter says the order may have left memory; the
// result carries the command's fields:
//  - GET /v1/payments/{order_id}: found in the archive, the payment is answered 200 exactly as a
//    hot one would be; not found, 404 payment_not_found;
//  - create, cancel, ship, complete, refund: the command, rebuilt from those fields, is handed
//    in again with the flags (and the archived payment) that say what the archive holds.
// The read happens on the ArchiveLookup's workers; its answer comes back here, where the
// request's slot is found again by its AnswerToken (stale answers are dropped).
//
// Durability (docs/api.md "Durability"): an answer from the archive observed only what the
// archive holds durably (it writes synced batches), so it waits for no log position.

#include "base/assert.hpp"
#include "base/log.hpp"
#include "net/io_thread.hpp"

namespace paycore::net {
namespace {

// A request whose answer raced the archiver this often (the payment left memory between the
// lookup and the core's second look, again and again) is refused rather than retried forever.
constexpr std::uint8_t archive_lookups_per_request_max = 4;

const LocalError archive_queue_full{503, "unavailable",
                                    "too many reads of the archive of past payments in flight; retry",
                                    {}};
const LocalError archive_unreadable{503, "unavailable",
                                    "the archive of past payments could not be read; retry", {}};
const LocalError archive_races{503, "unavailable",
                               "the payment kept moving between memory and the archive; retry", {}};
const LocalError engine_busy{503, "unavailable", "the server is busy; retry", {}};

// The command behind an archive_check_needed result, from the fields the core put in its
// payment view (core/apply.cpp, attach_command), marked as checked.
Command command_to_hand_in_again(const Result& r) {
  Command c;
  c.kind = r.kind;
  c.flags = command_flag_archive_checked;
  c.principal = r.payment.merchant_id;
  c.order_id = r.payment.order_id;
  c.request_id = r.payment.request_id;
  c.channel = r.payment.channel;
  c.account = r.payment.payer_account_id;
  c.amount = r.payment.amount;
  c.currency = r.payment.currency;
  return c;
}

// What the archive said, added to the command: a create learns only that the order exists
// (409 duplicate_order); a command on the payment carries the payment, which the core
// validates and brings back into memory.
void add_archive_answer(const ArchiveLookupDone& done, Command* c) {
  if (done.outcome != ArchiveLookupOutcome::found) return;
  c->flags |= command_flag_in_archive;
  if (c->kind == CommandKind::create_payment) return;
  const PaymentView& p = done.payment;
  c->flags |= command_flag_archived_payment;
  c->currency = p.currency;
  c->channel = p.channel;
  c->account = p.payer_account_id;
  c->channel_txn_id = p.channel_txn_id;
  c->mandate_id = p.mandate_id;
  c->archived = ArchivedPaymentFields{p.request_id,    p.amount,        p.refunded_amount,
                                      p.created_at_us, p.updated_at_us, p.status};
}

// A GET answered from the archive, as the engine would have answered it from memory: the
// payment if found, else 404.
Result archived_read_answer(const ArchiveLookupDone& done) {
  Result r;
  r.kind = CommandKind::get_payment;
  if (done.outcome == ArchiveLookupOutcome::found) {
    r.code = ResultCode::ok;
    r.resource = ResourceKind::payment;
    r.payment = done.payment;
  } else {
    r.code = ResultCode::payment_not_found;
    r.field = Field::order_id;
  }
  return r;
}

void log_unreadable(const ArchiveLookupDone& done) {
  log_line(LogLevel::warn, "archive read failed",
           {{"merchant_id", done.job.merchant_id.view()},
            {"order_id", done.job.order_id.view()},
            {"error", done.error.to_string()}});
}

// The lookup an archive_check_needed answer asks for: a read for a GET, else the command to
// hand in again.
ArchiveLookupJob lookup_job(const Result& r, const AnswerToken& token) {
  ArchiveLookupJob job;
  job.token = token.pack();
  job.merchant_id = r.payment.merchant_id;
  job.order_id = r.payment.order_id;
  if (r.kind == CommandKind::get_payment) {
    job.purpose = ArchiveLookupPurpose::read;
  } else {
    job.purpose = ArchiveLookupPurpose::command;
    job.command = command_to_hand_in_again(r);
  }
  return job;
}

}  // namespace

// After the engine answered a single request: starts the lookup its answer needs, if any. True
// if the slot now waits for it; false if the answer is final (a refused lookup made it a 503).
bool IoThread::single_lookup_started(Slot& slot, const AnswerToken& token) {
  const Result& r = slot.response.result;
  if (r.code != ResultCode::archive_check_needed) return false;
  const LocalError* refusal = &archive_unreadable;  // no archive: the core cannot ask for one
  if (lookup_ != nullptr) refusal = submit_lookup(lookup_job(r, token), &slot.archive_lookups);
  if (refusal == nullptr) return true;
  slot.kind = SlotKind::local_error;
  slot.error = *refusal;
  return false;
}

// The same for an item of a batch (only creates: never a read).
bool IoThread::item_lookup_started(BatchEntry& entry, const AnswerToken& token) {
  if (entry.result.code != ResultCode::archive_check_needed) return false;
  const LocalError* refusal = &archive_unreadable;  // no archive: the core cannot ask for one
  if (lookup_ != nullptr) refusal = submit_lookup(lookup_job(entry.result, token), &entry.archive_lookups);
  if (refusal == nullptr) return true;
  entry.local = true;
  entry.error = *refusal;
  return false;
}

// Null if the job was queued; otherwise the 503 to answer at once.
const LocalError* IoThread::submit_lookup(const ArchiveLookupJob& job, std::uint8_t* lookups) {
  if (*lookups >= archive_lookups_per_request_max) return &archive_races;
  if (!lookup_->submit(producer_, job)) return &archive_queue_full;
  ++*lookups;
  return nullptr;
}

void IoThread::take_archive_answers() {
  if (lookup_ == nullptr) return;
  lookup_->take(producer_, &archive_answers_);
  for (const ArchiveLookupDone& done : archive_answers_) on_archive_answer(done);
  archive_answers_.clear();
}

void IoThread::on_archive_answer(const ArchiveLookupDone& done) {
  const AnswerToken token = AnswerToken::unpack(done.job.token);
  Connection* c = nullptr;
  Slot* slot = waiting_slot(token, &c);
  if (slot == nullptr) {
    if (done.job.list != nullptr) drop_list(done.job.list);  // closed meanwhile
    return;
  }
  if (slot->kind == SlotKind::list) {
    on_list_lookup(*slot, token, done);
  } else if (slot->kind == SlotKind::batch) {
    if (done.outcome == ArchiveLookupOutcome::error) log_unreadable(done);
    answer_item_lookup(*slot, token, done);
  } else {
    if (done.outcome == ArchiveLookupOutcome::error) log_unreadable(done);
    answer_single_lookup(*slot, token, done);
  }
  mark_dirty(*c);
}

void IoThread::answer_single_lookup(Slot& slot, const AnswerToken& token,
                                    const ArchiveLookupDone& done) {
  if (done.outcome == ArchiveLookupOutcome::error) {
    finish_local(slot, archive_unreadable);  // never a guess
    return;
  }
  if (done.job.purpose == ArchiveLookupPurpose::read) {
    slot.response.result = archived_read_answer(done);
    slot.state = SlotState::ready;
    return;
  }
  if (!submit_again(token, done)) finish_local(slot, engine_busy);
}

void IoThread::answer_item_lookup(Slot& slot, const AnswerToken& token,
                                  const ArchiveLookupDone& done) {
  if (token.item >= slot.batch.entries.size()) return;
  BatchEntry& entry = slot.batch.entries[token.item];
  if (entry.local) return;
  if (done.outcome == ArchiveLookupOutcome::error) {
    entry.local = true;
    entry.error = archive_unreadable;
  } else if (!submit_again(token, done)) {
    entry.local = true;
    entry.error = engine_busy;
  } else {
    return;  // the engine answers the item again
  }
  finish_item(slot);
}

// Hands the looked-up command in again under the same token; false if the ring is full.
bool IoThread::submit_again(const AnswerToken& token, const ArchiveLookupDone& done) {
  PAYCORE_ASSERT(done.job.purpose == ArchiveLookupPurpose::command);
  Command command = done.job.command;
  add_archive_answer(done, &command);
  return submit(token, command);
}

}  // namespace paycore::net
