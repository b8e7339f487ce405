#pragma once
// The release queue (docs/design.md rule 4): an answer leaves the process only when the log is
// durable up to the LSN it depends on. Answers wait here in the order the core applied their
// commands; release() hands the ready ones back to their producers' result rings and
// wake_producers() writes the eventfd of each producer that got some.
//
// Core thread only. Every taken request is counted against its producer's result ring
// (room/note_taken), so that a released answer always has a place to go.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/assert.hpp"
#include "base/eventfd.hpp"
#include "engine.hpp"
#include "ring.hpp"

namespace paycore {

// The per-command calls (room, note_taken, enqueue) are defined inline here, as they were when
// this was part of the core's loop.
class ReleaseQueue {
 public:
  /// `results[p]` is producer p's result ring and `result_fds[p]` the eventfd that wakes it;
  /// both outlive the queue. Capacity: every producer's ring full of waiting answers.
  ReleaseQueue(std::span<const std::unique_ptr<SpscRing<Response>>> results,
               std::span<const int> result_fds, std::uint32_t ring_capacity);

  /// How many more requests of producer `p` may be taken: its result ring's free places not
  /// yet promised to a request taken earlier.
  std::uint32_t room(std::uint32_t p) const { return ring_capacity_ - promised_[p]; }
  /// A request of producer `p` was taken: its answer is promised a place in the result ring.
  void note_taken(std::uint32_t p) {
    PAYCORE_ASSERT_LT(promised_[p], ring_capacity_);
    ++promised_[p];
  }

  /// Queues the answer to producer `p`'s request `token`; it leaves once `lsn` is durable.
  /// `stamps` carries its submitted_ns and taken_ns (core/pipeline.hpp); the queue adds the rest.
  /// `nonce_logged`: Response::nonce_logged.
  void enqueue(std::uint32_t p, std::uint64_t token, const Result& result, std::uint64_t lsn,
               const PipelineStamps& stamps, bool nonce_logged) {
    PAYCORE_ASSERT_LT(count_, waiting_.size());
    Waiting& slot = waiting_[(head_ + count_) % waiting_.size()];
    slot.producer = p;
    slot.response = Response{};
    slot.response.result = result;
    slot.response.token = token;
    slot.response.lsn = lsn;
    slot.response.stamps = stamps;
    slot.response.nonce_logged = nonce_logged;
    ++count_;
  }
  /// Stamps applied_ns = `now_ns` on every answer queued since the last call: the chunk of
  /// commands they answer is applied and appended.
  void stamp_applied(std::int64_t now_ns);
  /// Stamps write_submitted_ns = `now_ns` on every answer queued since the last call whose LSN
  /// is above `durable_lsn`: the log batch just submitted holds what they depend on.
  void stamp_write_submitted(std::int64_t now_ns, std::uint64_t durable_lsn);
  /// Hands `response` to producer `p` at once (snapshot answers, which wait elsewhere).
  void answer_now(std::uint32_t p, const Response& response);
  /// Hands back, in order, every queued answer whose LSN is <= `durable_lsn`, then wakes the
  /// producers that got one. Returns whether any left. `durable_seen_ns`: when the core saw
  /// the log reach `durable_lsn` (the answers' durable_ns stamp).
  bool release(std::uint64_t durable_lsn, std::int64_t durable_seen_ns);
  /// Writes the eventfd of each producer that was handed answers since the last call.
  void wake_producers();

  /// After a storage fault the state was rebuilt from what is durable: an answer that depended
  /// on a record beyond `durable_lsn` is rewritten to `code` (and released at it). Also used
  /// when a primary is fenced: nothing the shared log did not acknowledge is answered.
  void refuse_beyond(std::uint64_t durable_lsn, ResultCode code = ResultCode::unavailable);

  std::size_t waiting_count() const { return count_; }

 private:
  struct Waiting {
    Response response;
    std::uint32_t producer = 0;
  };

  void hand_back(std::uint32_t p, const Response& response);
  // Calls fn(response) for each answer queued at or after the absolute position *mark, then
  // moves the mark past the last one queued.
  template <typename Fn>
  void for_each_since(std::uint64_t* mark, Fn fn) {
    const std::uint64_t end = released_total_ + count_;
    for (std::uint64_t s = std::max(*mark, released_total_); s < end; ++s) {
      fn(waiting_[(head_ + (s - released_total_)) % waiting_.size()].response);
    }
    *mark = end;
  }

  std::span<const std::unique_ptr<SpscRing<Response>>> results_;
  std::span<const int> result_fds_;
  std::uint32_t ring_capacity_;
  std::vector<Waiting> waiting_;  // circular: head_, count_
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  // Absolute positions (answers ever queued are numbered from 0): released so far, and the
  // first not yet stamped applied / write-submitted.
  std::uint64_t released_total_ = 0;
  std::uint64_t applied_mark_ = 0;
  std::uint64_t write_submitted_mark_ = 0;
  std::vector<std::uint32_t> promised_;  // per producer: taken, not yet handed back
  std::vector<bool> has_new_results_;    // per producer: handed answers, not yet woken
};

}  // namespace paycore
