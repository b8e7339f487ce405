// The I/O thread's side of the events and webhook routes (issue 15; docs/api.md "Events and
// webhooks"). The events service may block on disk (RocksDB reads, synced writes), so the
// call goes to the events pool's workers (net/worker_pool.hpp), which render the whole answer
// (net/events_call.hpp); it comes back here through this thread's completion eventfd, and the
// request's slot is found again by its AnswerToken (answers for closed connections are
// dropped). A full queue is 503 at once.
//
// Durability (docs/api.md "Durability"): the events service answers from the event store,
// which holds only events derived from the durable log, and its writes (endpoints,
// redeliveries) are synced before it returns, so these answers wait for no log position. A
// request's Paycore-Min-Lsn is waited for on the worker, until the events are derived that far
// (bounded: events_min_lsn_wait_ms).

#include "base/assert.hpp"
#include "net/io_thread.hpp"

namespace paycore::net {
namespace {

const LocalError events_queue_full{503, "unavailable",
                                   "too many calls of the events service in flight; retry", {}};
const LocalError events_off{404, "not_found", "events and webhooks are off on this server", {}};

}  // namespace

void IoThread::execute_events(Connection& c, Slot& slot, const EventsCall& call) {
  if (events_calls_ == nullptr) {  // decide() answered these already: cannot happen
    finish_local(slot, events_off);
    return;
  }
  slot.kind = SlotKind::events;
  slot.events = EventsReply{};
  EventsJob job;
  job.token = AnswerToken::for_request(c.index, c.generation, slot_index(c, slot)).pack();
  job.call = call;
  job.call.min_lsn = slot.min_lsn;
  job.call.min_lsn_wait_ms = config_.events_min_lsn_wait_ms;
  if (!events_calls_->submit(producer_, std::move(job))) finish_local(slot, events_queue_full);
}

void IoThread::take_events_answers() {
  PAYCORE_ASSERT(events_calls_ != nullptr);
  events_calls_->take(producer_, &events_answers_);
  for (EventsDone& done : events_answers_) {
    const AnswerToken token = AnswerToken::unpack(done.token);
    Connection* c = nullptr;
    Slot* slot = waiting_slot(token, &c);
    if (slot == nullptr) continue;  // the connection closed meanwhile
    PAYCORE_ASSERT(slot->kind == SlotKind::events);
    slot->events = std::move(done.reply);
    slot->state = SlotState::ready;
    mark_dirty(*c);
  }
  events_answers_.clear();
}

}  // namespace paycore::net
