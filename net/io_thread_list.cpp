// The I/O thread's side of `GET /v1/payments` and `GET /v1/payments/{order_id}/refunds`
// (docs/api.md "Lists"; core/payment_list.hpp says how a page is made of memory and the
// archive). A listing of payments goes:
//  1. to the core as read commands `list_payments`, each a bounded step of the walk down the
//     merchant's rows, handed in again until the walk is done (so that a selective filter
//     never holds the core for long); a cursor the core cannot place in memory goes first
//     to the archive (list_cursor) and back;
//  2. to an archive worker (list_archive) when the archive may hold part of the page;
//  3. back here, where the sources are merged into the page.
// A listing of refunds takes one step in the core, and reads the archive when the payment is
// not in memory or came back from it (list_refunds).
// The work (PaymentListWork) is owned here, in lists_, and lent by pointer to the core or a
// worker; whoever hands it back names it in its answer, so that a listing whose connection
// closed meanwhile is freed when its answer arrives (or when this thread ends).

#include "base/assert.hpp"
#include "base/log.hpp"
#include "net/io_thread.hpp"

namespace paycore::net {
namespace {

const LocalError list_cursor_unknown_after{400, "invalid_field",
                                           "no payment has this order_id", "starting_after"};
const LocalError list_cursor_unknown_before{400, "invalid_field",
                                            "no payment has this order_id", "ending_before"};
const LocalError list_archive_unreadable{
    503, "unavailable", "the archive of past payments could not be read; retry", {}};
const LocalError list_archive_busy{
    503, "unavailable", "too many reads of the archive of past payments in flight; retry", {}};
const LocalError list_engine_busy{503, "unavailable", "the server is busy; retry", {}};

const LocalError list_payment_not_found{404, "payment_not_found", "no such payment", "order_id"};

const LocalError& unknown_cursor(const PaymentListWork& work) {
  return work.query.cursor == PaymentListCursor::ending_before ? list_cursor_unknown_before
                                                               : list_cursor_unknown_after;
}

}  // namespace

void IoThread::execute_list(Connection& c, Slot& slot, const PaymentListRequest& request) {
  auto owned = std::make_unique<PaymentListWork>();
  PaymentListWork* work = owned.get();
  static_cast<PaymentListRequest&>(*work) = request;
  lists_.emplace(work, std::move(owned));
  slot.kind = SlotKind::list;
  slot.list = ListAnswer{};
  slot.list.work = work;
  const AnswerToken token = AnswerToken::for_request(c.index, c.generation, slot_index(c, slot));
  list_step(slot, token);
}

void IoThread::drop_list(PaymentListWork* work) {
  const bool owned = lists_.erase(work) == 1;
  PAYCORE_ASSERT(owned);
}

void IoThread::finish_list_local(Slot& slot, const LocalError& error) {
  drop_list(slot.list.work);
  slot.list.work = nullptr;
  finish_local(slot, error);
}

// Hands the work to the core for its next step.
void IoThread::list_step(Slot& slot, const AnswerToken& token) {
  Command command;
  command.kind = CommandKind::list_payments;
  const bool valid = Id::from(slot.list.work->query.merchant_id, &command.principal);
  PAYCORE_ASSERT(valid);
  command.list = slot.list.work;
  if (!submit(token, command, RequestOp::command, nullptr, slot.min_lsn)) {
    finish_list_local(slot, list_engine_busy);
  }
}

// Hands the work to an archive worker for `purpose`.
void IoThread::list_lookup(Slot& slot, const AnswerToken& token, ArchiveLookupPurpose purpose) {
  if (lookup_ == nullptr) {  // an archive in use but none here: cannot happen once served
    finish_list_local(slot, list_archive_unreadable);
    return;
  }
  ArchiveLookupJob job;
  job.token = token.pack();
  job.purpose = purpose;
  job.list = slot.list.work;
  const bool valid = Id::from(job.list->query.merchant_id, &job.merchant_id);
  PAYCORE_ASSERT(valid);
  job.order_id = job.list->cursor_order_id;
  if (!lookup_->submit(producer_, job)) finish_list_local(slot, list_archive_busy);
}

void IoThread::finish_list(Slot& slot) {
  ListAnswer& list = slot.list;  // reset by execute_list: page and refunds empty
  if (list.work->kind == ListKind::refunds) {
    list.refunds = merge_refunds(*list.work);
  } else {
    list.has_more = merge_payment_page(*list.work, &list.page);
  }
  drop_list(list.work);
  list.work = nullptr;
  slot.state = SlotState::ready;
}

// The core's answer to a step.
void IoThread::on_list_step(Slot& slot, const AnswerToken& token, const Result& result) {
  PaymentListWork& work = *slot.list.work;
  PAYCORE_ASSERT(result.list == &work);
  switch (result.code) {
    case ResultCode::ok: break;
    case ResultCode::archive_check_needed:
      list_lookup(slot, token, ArchiveLookupPurpose::list_cursor);
      return;
    case ResultCode::invalid_field:
      finish_list_local(slot, unknown_cursor(work));
      return;
    case ResultCode::payment_not_found:
      finish_list_local(slot, list_payment_not_found);
      return;
    default:  // nothing else is answered to a listing
      finish_list_local(slot, list_engine_busy);
      return;
  }
  if (work.kind == ListKind::refunds) {
    if (work.refunds_in_archive) {
      list_lookup(slot, token, ArchiveLookupPurpose::list_refunds);
    } else {
      finish_list(slot);
    }
  } else if (!work.hot_done) {
    list_step(slot, token);
  } else if (payment_list_needs_archive(work)) {
    list_lookup(slot, token, ArchiveLookupPurpose::list_archive);
  } else {
    finish_list(slot);
  }
}

// A worker's answer: the cursor's place, or the archive's part of the page.
void IoThread::on_list_lookup(Slot& slot, const AnswerToken& token, const ArchiveLookupDone& done) {
  PAYCORE_ASSERT(done.job.list == slot.list.work);
  if (done.outcome == ArchiveLookupOutcome::error) {
    log_line(LogLevel::warn, "archive listing failed",
             {{"merchant_id", done.job.merchant_id.view()}, {"error", done.error.to_string()}});
    finish_list_local(slot, list_archive_unreadable);
    return;
  }
  PaymentListWork& work = *slot.list.work;
  if (done.job.purpose == ArchiveLookupPurpose::list_refunds &&
      done.outcome == ArchiveLookupOutcome::not_found && !work.refunds_payment_in_memory) {
    finish_list_local(slot, list_payment_not_found);
    return;
  }
  if (done.job.purpose != ArchiveLookupPurpose::list_cursor) {
    finish_list(slot);
    return;
  }
  if (done.outcome == ArchiveLookupOutcome::not_found) {
    finish_list_local(slot, unknown_cursor(work));
    return;
  }
  work.query.cursor_position = {done.payment.created_at_us,
                                std::string(done.payment.order_id.view())};
  work.cursor_resolved = true;
  list_step(slot, token);
}

}  // namespace paycore::net
