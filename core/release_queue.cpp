#include "release_queue.hpp"

#include <unistd.h>

#include <cerrno>

#include "base/assert.hpp"

namespace paycore {

void write_eventfd(int fd) {
  const std::uint64_t one = 1;
  while (::write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

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

bool ReleaseQueue::release(std::uint64_t durable_lsn) {
  bool any = false;
  while (count_ > 0) {
    const Waiting& front = waiting_[head_];
    if (front.response.lsn > durable_lsn) break;
    hand_back(front.producer, front.response);
    head_ = (head_ + 1) % waiting_.size();
    --count_;
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

void ReleaseQueue::refuse_beyond(std::uint64_t durable_lsn) {
  for (std::size_t i = 0; i < count_; ++i) {
    Response& r = waiting_[(head_ + i) % waiting_.size()].response;
    if (r.lsn <= durable_lsn) continue;
    const CommandKind kind = r.result.kind;
    r.result = Result{};
    r.result.kind = kind;
    r.result.code = ResultCode::unavailable;
    r.lsn = durable_lsn;
  }
}

}  // namespace paycore
