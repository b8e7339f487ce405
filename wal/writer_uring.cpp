// The io_uring write path: per batch, one IORING_OP_WRITE linked (IOSQE_IO_LINK) to one
// IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, submitted with a single io_uring_enter.
//
// Why linked write + fdatasync rather than O_DSYNC writes: the two completions tell a failed
// write apart from a failed flush (rule 7 needs to know the flush failed), a short write is
// resubmitted as a new write+fsync pair without a sync per fragment, and the engine can keep
// filling the next batch while the kernel works. With O_DSYNC every resubmitted fragment of a
// short write would pay its own flush.
//
// Ring setup flags: none, on purpose. SQPOLL would keep a kernel thread polling the SQ, a whole
// core on a 2-core machine that also runs the engine and the load generator; SINGLE_ISSUER ties
// the ring to the task that created it, and the log is opened on one thread and driven on
// another; COOP_TASKRUN only saves IPIs when the issuer polls often, and the engine sleeps on
// the eventfd instead. Two SQEs per batch, at most one batch in flight: 8 entries is plenty.

#include <cerrno>
#include <cstring>

#include <liburing.h>
#include <unistd.h>

#include "base/assert.hpp"
#include "wal/writer.hpp"

namespace paycore::wal::detail {
namespace {

constexpr unsigned kRingEntries = 8;
constexpr std::uint64_t kWriteTag = 1;
constexpr std::uint64_t kFsyncTag = 2;
constexpr int kChainSqes = 2;

class UringWriter final : public Writer {
 public:
  explicit UringWriter(FaultInjector* faults) : faults_(faults) {}
  UringWriter(const UringWriter&) = delete;
  UringWriter& operator=(const UringWriter&) = delete;

  ~UringWriter() override {
    if (ring_ready_) {
      if (busy_) {
        Status ignored;
        wait(&ignored);
      }
      io_uring_queue_exit(&ring_);
    }
  }

  Status init(int event_fd) {
    event_fd_ = event_fd;
    const int rc = io_uring_queue_init(kRingEntries, &ring_, 0);
    if (rc < 0) return Status(StatusCode::kIoError, std::string("io_uring_queue_init: ") + std::strerror(-rc));
    ring_ready_ = true;
    // Kernels before 5.6 have io_uring but not IORING_OP_WRITE: probe, do not assume.
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    const bool ops_ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                        io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!ops_ok) return Status(StatusCode::kIoError, "io_uring lacks IORING_OP_WRITE or IORING_OP_FSYNC");
    const int erc = io_uring_register_eventfd(&ring_, event_fd);
    if (erc < 0) return Status(StatusCode::kIoError, std::string("io_uring_register_eventfd: ") + std::strerror(-erc));
    return Status::ok();
  }

  Status start(const Batch& batch) override {
    PAYCORE_ASSERT(!busy_);
    PAYCORE_ASSERT_GT(batch.bytes, 0U);
    PAYCORE_ASSERT_GE(batch.fd, 0);
    batch_ = &batch;
    written_ = 0;
    busy_ = true;
    Status s = submit_chain();
    if (!s.is_ok()) busy_ = false;
    return s;
  }

  bool poll(Status* result) override { return advance(false, result); }

  void wait(Status* result) override {
    const bool done = advance(true, result);
    PAYCORE_ASSERT(done);
  }

  bool busy() const override { return busy_; }
  bool io_uring() const override { return true; }
  WriterCounters counters() const override { return counters_; }

 private:
  // Queues write(rest of the batch) -> fdatasync as one linked chain.
  Status submit_chain() {
    PAYCORE_ASSERT(written_ < batch_->bytes);
    std::uint32_t len = batch_->bytes - written_;
    write_fault_ = 0;
    fsync_fault_ = 0;
    if (faults_ != nullptr) {
      const FaultAction w = faults_->next(FaultOp::kWrite);
      if (w.short_bytes > 0 && w.short_bytes < len) len = w.short_bytes;
      write_fault_ = w.error;
      fsync_fault_ = faults_->next(FaultOp::kFsync).error;
    }
    io_uring_sqe* w = io_uring_get_sqe(&ring_);
    io_uring_sqe* f = io_uring_get_sqe(&ring_);
    // One chain at a time in an 8-entry ring: both entries are always there.
    PAYCORE_ASSERT(w != nullptr);
    PAYCORE_ASSERT(f != nullptr);
    io_uring_prep_write(w, batch_->fd, batch_->data + written_, len,
                        batch_->file_offset + written_);
    w->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(w, kWriteTag);
    io_uring_prep_fsync(f, batch_->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(f, kFsyncTag);
    int rc;
    do {
      rc = io_uring_submit(&ring_);
    } while (rc == -EINTR);
    if (rc < 0) return io_status(-rc, "io_uring_submit", batch_->path, batch_->file_offset);
    PAYCORE_ASSERT(rc == kChainSqes);
    pending_ = kChainSqes;
    write_res_ = 0;
    fsync_res_ = 0;
    ++counters_.fsyncs_count;
    return Status::ok();
  }

  // Reaps the chain's completions; resubmits after a short write; true once the batch is done.
  bool advance(bool block, Status* result) {
    if (!busy_) return false;
    // Every CQE bumps the eventfd. After consuming some but not all of a chain's CQEs, drain it
    // and look once more, so that a sleeping engine wakes for the next CQE instead of spinning
    // on a readable fd between the write's completion and the fdatasync's.
    bool drained = true;
    for (;;) {
      while (pending_ > 0) {
        io_uring_cqe* cqe = nullptr;
        const int rc = block ? io_uring_wait_cqe(&ring_, &cqe) : io_uring_peek_cqe(&ring_, &cqe);
        if (rc == -EAGAIN && !block) {
          if (drained) return false;
          std::uint64_t count = 0;
          [[maybe_unused]] const ssize_t n = ::read(event_fd_, &count, sizeof count);
          drained = true;
          continue;
        }
        if (rc == -EINTR) continue;
        if (rc < 0) return finish(io_status(-rc, "io_uring_wait_cqe", batch_->path, batch_->file_offset), result);
        const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag == kWriteTag) {
          write_res_ = write_fault_ != 0 ? -write_fault_ : cqe->res;
        } else {
          PAYCORE_ASSERT(tag == kFsyncTag);
          fsync_res_ = fsync_fault_ != 0 ? -fsync_fault_ : cqe->res;
        }
        io_uring_cqe_seen(&ring_, cqe);
        --pending_;
        drained = false;
      }
      const std::uint64_t at = batch_->file_offset + written_;
      if (write_res_ < 0) return finish(io_status(-write_res_, "write", batch_->path, at), result);
      if (write_res_ == 0) {
        return finish(Status(StatusCode::kIoError, "write made no progress on " + batch_->path +
                                                       " at offset " + std::to_string(at)),
                      result);
      }
      written_ += static_cast<std::uint32_t>(write_res_);
      PAYCORE_ASSERT(written_ <= batch_->bytes);
      if (written_ < batch_->bytes) {
        // A short write breaks the link, so the fsync was cancelled (or synced only part):
        // write the rest with a fresh fsync behind it.
        ++counters_.short_writes_count;
        Status s = submit_chain();
        if (!s.is_ok()) return finish(std::move(s), result);
        continue;  // not blocking: the inner loop drains the eventfd and returns false
      }
      if (fsync_res_ < 0) return finish(io_status(-fsync_res_, "fdatasync", batch_->path, at), result);
      return finish(Status::ok(), result);
    }
  }

  bool finish(Status s, Status* result) {
    busy_ = false;
    pending_ = 0;
    *result = std::move(s);
    return true;
  }

  FaultInjector* faults_;
  int event_fd_ = -1;
  struct ::io_uring ring_{};
  bool ring_ready_ = false;
  bool busy_ = false;
  const Batch* batch_ = nullptr;
  std::uint32_t written_ = 0;
  int pending_ = 0;
  int write_res_ = 0;
  int fsync_res_ = 0;
  int write_fault_ = 0;
  int fsync_fault_ = 0;
  WriterCounters counters_;
};

}  // namespace

Status make_uring_writer(int event_fd, FaultInjector* faults, std::unique_ptr<Writer>* out) {
  auto writer = std::make_unique<UringWriter>(faults);
  Status s = writer->init(event_fd);
  if (!s.is_ok()) return s;
  *out = std::move(writer);
  return Status::ok();
}

Status io_status(int error, const char* what, const std::string& path, std::uint64_t offset) {
  const StatusCode code = error == ENOSPC ? StatusCode::kNoSpace : StatusCode::kIoError;
  return Status(code, std::string(what) + " failed on " + path + " at offset " +
                          std::to_string(offset) + ": " + std::strerror(error));
}

}  // namespace paycore::wal::detail
