// The io_uring flush path: one IORING_OP_FSYNC with IORING_FSYNC_DATASYNC per batch, up to
// slots_max of them in flight, each on an open file of its own (writer.hpp says why). The Log
// has already written the batch with pwrite, in order, before it asks for the flush.
//
// Why pwrite + an asynchronous fdatasync rather than a linked write + fdatasync chain (the
// first version) or O_DSYNC writes: a buffered pwrite returns once the bytes are in the page
// cache (microseconds), so batches reach the file strictly in LSN order, the batch buffer is
// free again at once, and the next batch's flush can start while the previous one is still in
// the device. A flush that completes covers every batch written before it was issued, so no
// answer waits for a flush that was already running when its batch was applied plus one of its
// own. With O_DSYNC each write would carry its own flush and short writes would pay one each.
//
// Ring setup flags: none, on purpose. SQPOLL would keep a kernel thread polling the SQ, a whole
// core on a 2-core machine that also runs the engine and the load generator; SINGLE_ISSUER ties
// the ring to the task that created it, and the log is opened on one thread and driven on
// another; COOP_TASKRUN only saves IPIs when the issuer polls often, and the engine sleeps on
// the eventfd instead.

#include <cerrno>
#include <cstring>
#include <vector>

#include <liburing.h>
#include <unistd.h>

#include "base/assert.hpp"
#include "wal/log.hpp"
#include "wal/writer.hpp"

namespace paycore::wal::detail {
namespace {

class UringWriter final : public Writer {
 public:
  UringWriter(FaultInjector* faults, std::uint32_t slots_max)
      : faults_(faults), slots_(slots_max) {}
  UringWriter(const UringWriter&) = delete;
  UringWriter& operator=(const UringWriter&) = delete;

  ~UringWriter() override {
    if (!ring_ready_) return;
    SyncDone ignored;
    while (in_flight_ > 0) wait(&ignored);
    io_uring_queue_exit(&ring_);
  }

  Status init(int event_fd) {
    PAYCORE_ASSERT(slots_max() >= 1 && slots_max() <= kSyncSlotsMax);
    event_fd_ = event_fd;
    // One SQE per flush in flight; a power of two at least as large.
    const int rc = io_uring_queue_init(kSyncSlotsMax, &ring_, 0);
    if (rc < 0) return Status(StatusCode::kIoError, std::string("io_uring_queue_init: ") + std::strerror(-rc));
    ring_ready_ = true;
    // Kernels before 5.1 have no IORING_OP_FSYNC: probe, do not assume.
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    const bool ops_ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!ops_ok) return Status(StatusCode::kIoError, "io_uring lacks IORING_OP_FSYNC");
    const int erc = io_uring_register_eventfd(&ring_, event_fd);
    if (erc < 0) return Status(StatusCode::kIoError, std::string("io_uring_register_eventfd: ") + std::strerror(-erc));
    return Status::ok();
  }

  int start(const SyncRequest& request) override {
    PAYCORE_ASSERT_LT(request.slot, slots_max());
    PAYCORE_ASSERT(!slots_[request.slot].busy);
    PAYCORE_ASSERT_GE(request.fd, 0);
    Slot& slot = slots_[request.slot];
    slot.fault = faults_ != nullptr ? faults_->next(FaultOp::kFsync).error : 0;
    io_uring_sqe* f = io_uring_get_sqe(&ring_);
    PAYCORE_ASSERT(f != nullptr);  // the ring has an entry for every slot
    io_uring_prep_fsync(f, request.fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(f, request.slot);
    int rc;
    do {
      rc = io_uring_submit(&ring_);
    } while (rc == -EINTR);
    if (rc < 0) return -rc;
    PAYCORE_ASSERT(rc == 1);
    slot.busy = true;
    ++in_flight_;
    ++fsyncs_count_;
    return 0;
  }

  bool poll(SyncDone* done) override { return reap(false, done); }

  void wait(SyncDone* done) override {
    PAYCORE_ASSERT_GT(in_flight_, 0U);
    const bool reaped = reap(true, done);
    PAYCORE_ASSERT(reaped);
  }

  std::uint32_t in_flight() const override { return in_flight_; }
  std::uint32_t slots_max() const override { return static_cast<std::uint32_t>(slots_.size()); }
  bool io_uring() const override { return true; }
  std::uint64_t fsyncs_count() const override { return fsyncs_count_; }

 private:
  struct Slot {
    int fault = 0;  // errno armed by the fault tests for this flush
    bool busy = false;
  };

  // Takes one completion. Every CQE bumps the eventfd: it is drained before looking, so a CQE
  // that arrives after the look leaves the fd readable for the engine's epoll. The Log calls
  // poll() until it returns false, so CQEs already queued are all taken.
  bool reap(bool block, SyncDone* done) {
    if (in_flight_ == 0) return false;
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(event_fd_, &count, sizeof count);
    io_uring_cqe* cqe = nullptr;
    int rc;
    do {
      rc = block ? io_uring_wait_cqe(&ring_, &cqe) : io_uring_peek_cqe(&ring_, &cqe);
    } while (rc == -EINTR);
    if (rc == -EAGAIN && !block) return false;
    if (rc < 0) {
      // The ring itself failed, so which flush is lost is unknown: each call fails one more.
      return finish(first_busy(), -rc, "io_uring_wait_cqe", done);
    }
    const auto index = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    PAYCORE_ASSERT_LT(index, slots_max());
    Slot& slot = slots_[index];
    return finish(index, slot.fault != 0 ? slot.fault : (res < 0 ? -res : 0), "fdatasync", done);
  }

  std::uint32_t first_busy() const {
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].busy) return i;
    }
    PAYCORE_ASSERT(false);  // called only with a flush in flight
    return 0;
  }

  bool finish(std::uint32_t index, int error, const char* what, SyncDone* done) {
    Slot& slot = slots_[index];
    PAYCORE_ASSERT(slot.busy);
    slot.busy = false;
    --in_flight_;
    *done = {index, error, what};
    return true;
  }

  FaultInjector* faults_;
  std::vector<Slot> slots_;
  int event_fd_ = -1;
  struct ::io_uring ring_{};
  bool ring_ready_ = false;
  std::uint32_t in_flight_ = 0;
  std::uint64_t fsyncs_count_ = 0;
};

}  // namespace

Status make_uring_writer(int event_fd, FaultInjector* faults, std::uint32_t slots_max,
                         std::unique_ptr<Writer>* out) {
  auto writer = std::make_unique<UringWriter>(faults, slots_max);
  Status s = writer->init(event_fd);
  if (!s.is_ok()) return s;
  *out = std::move(writer);
  return Status::ok();
}

}  // namespace paycore::wal::detail
