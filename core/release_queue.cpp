#include "release_queue.hpp"

#include "base/assert.hpp"
#include "base/time.hpp"

namespace paycore {

ReleaseQueue::ReleaseQueue(std::span<const std::unique_ptr<SpscRing<Response>>> results,
                           std::span<const int> result_fds, std::uint32_t ring_capacity)
    : results_(results),
      result_fds_(result_fds),
      ring_capacity_(ring_capacity),
      waiting_(results.size() * ring_capacity),
      promised_(results.size(), 0),
      has_new_results_(results.size(), false) {
  PAYCORE_ASSERT_EQ(results.size(), result_fds.size());
}

void ReleaseQueue::hand_back(std::uint32_t p, const Response& response) {
  const bool pushed = results_[p]->try_push(response);
  PAYCORE_ASSERT(pushed);  // promised_[p] never exceeds the ring's capacity
  PAYCORE_ASSERT_GT(promised_[p], 0U);
  --promised_[p];
  has_new_results_[p] = true;
}

void ReleaseQueue::answer_now(std::uint32_t p, const Response& response) { hand_back(p, response); }

void ReleaseQueue::stamp_applied(std::int64_t now_ns) {
  for_each_since(&applied_mark_, [now_ns](Response& r) { r.stamps.applied_ns = now_ns; });
}

void ReleaseQueue::stamp_write_submitted(std::int64_t now_ns, std::uint64_t durable_lsn) {
  for_each_since(&write_submitted_mark_, [now_ns, durable_lsn](Response& r) {
    if (r.lsn > durable_lsn) r.stamps.write_submitted_ns = now_ns;
  });
}

bool ReleaseQueue::release(std::uint64_t durable_lsn, std::int64_t durable_seen_ns) {
  bool any = false;
  std::int64_t released_ns = 0;
  while (count_ > 0) {
    Waiting& front = waiting_[head_];
    if (front.response.lsn > durable_lsn) break;
    if (released_ns == 0) released_ns = monotonic_ns();
    PipelineStamps& stamps = front.response.stamps;
    // An answer that depended on nothing newer than the log already held waited for no write.
    if (stamps.write_submitted_ns == 0) stamps.write_submitted_ns = stamps.applied_ns;
    stamps.durable_ns = std::max(durable_seen_ns, stamps.write_submitted_ns);
    stamps.released_ns = released_ns;
    hand_back(front.producer, front.response);
    head_ = (head_ + 1) % waiting_.size();
    --count_;
    ++released_total_;
    any = true;
  }
  wake_producers();
  return any;
}

void ReleaseQueue::wake_producers() {
  for (std::size_t p = 0; p < has_new_results_.size(); ++p) {
    if (!has_new_results_[p]) continue;
    has_new_results_[p] = false;
    write_eventfd(result_fds_[p]);
  }
}

void ReleaseQueue::refuse_beyond(std::uint64_t durable_lsn, ResultCode code) {
  for (std::size_t i = 0; i < count_; ++i) {
    Response& r = waiting_[(head_ + i) % waiting_.size()].response;
    if (r.lsn <= durable_lsn) continue;
    const CommandKind kind = r.result.kind;
    r.result = Result{};
    r.result.kind = kind;
    r.result.code = code;
    r.lsn = durable_lsn;
    r.nonce_logged = false;  // its record never became durable
  }
}

}  // namespace paycore
