#include "repl/stream_follower.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <optional>

#include "base/assert.hpp"
#include "base/eventfd.hpp"
#include "base/log.hpp"
#include "repl/stream_format.hpp"

namespace paycore::repl {

namespace {

// The local log's last record must be the stream's record at that LSN (same checksum): a
// process killed as primary may hold a last record the cluster never took, at an LSN the next
// primary then wrote. It lies in message `first_after` or the one before it.
Status check_same_record(jsCtx* js, const std::string& stream, std::uint64_t first_after,
                         std::uint64_t lsn, std::uint64_t checksum) {
  if (lsn == 0) return Status::ok();
  for (std::uint64_t seq = first_after; seq + 1 >= first_after && seq >= 1; --seq) {
    StatusOr<StoredMessage> m = read_message(js, stream, seq);
    if (!m.is_ok() && m.status().code() == StatusCode::kNotFound) continue;  // past the end
    if (!m.is_ok()) return m.status();
    if (m->first_lsn > lsn) continue;
    if (m->last_lsn < lsn) break;
    std::uint64_t found = 0;
    const Status s = wal::for_each_frame_in(m->data, m->first_lsn, [&](const FrameView& f) {
      if (f.lsn == lsn) found = f.checksum;
    });
    if (!s.is_ok()) return s;
    if (found == checksum) return Status::ok();
    return Status(StatusCode::kConflict,
                  "this process's record LSN " + std::to_string(lsn) +
                      " differs from the log stream's: it holds records the cluster never "
                      "acknowledged");
  }
  return Status::ok();  // not in the stream any more (retention): nothing to compare
}

// The first message (sequence) whose last LSN is past `lsn`, last_sequence + 1 if none:
// messages' LSNs grow with their sequence, so a binary search over [first, last + 1).
StatusOr<std::uint64_t> first_message_past(jsCtx* js, const std::string& stream,
                                           const StreamPosition& position, std::uint64_t lsn) {
  std::uint64_t low = position.first_sequence;
  std::uint64_t high = position.last_sequence + 1;
  while (low < high) {
    const std::uint64_t middle = low + (high - low) / 2;
    StatusOr<StoredMessage> m = read_message(js, stream, middle);
    if (!m.is_ok()) return m.status();
    if (m->last_lsn <= lsn) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

}  // namespace

StatusOr<std::uint64_t> find_follow_start(jsCtx* js, const std::string& stream,
                                        std::uint64_t local_last_lsn,
                                        std::uint64_t local_last_checksum) {
  StatusOr<StreamPosition> position = read_position(js, stream);
  if (!position.is_ok()) return position.status();
  if (position->last_sequence == 0) return std::uint64_t{1};  // the first message to come
  StatusOr<StoredMessage> first = read_message(js, stream, position->first_sequence);
  if (!first.is_ok()) return first.status();
  if (first->first_lsn > local_last_lsn + 1) {
    return Status::not_found("the log stream starts at LSN " + std::to_string(first->first_lsn) +
                             ", after this process's next LSN " +
                             std::to_string(local_last_lsn + 1) + ": a snapshot is needed first");
  }
  StatusOr<StoredMessage> last = read_message(js, stream, position->last_sequence);
  if (!last.is_ok()) return last.status();
  if (last->last_lsn < local_last_lsn) {
    return Status(StatusCode::kConflict,
                  "this process's log (LSN " + std::to_string(local_last_lsn) +
                      ") is ahead of the log stream (LSN " + std::to_string(last->last_lsn) +
                      "): it holds records the cluster never acknowledged");
  }
  StatusOr<std::uint64_t> low = first_message_past(js, stream, *position, local_last_lsn);
  if (!low.is_ok()) return low.status();
  if (Status s = check_same_record(js, stream, *low, local_last_lsn, local_last_checksum);
      !s.is_ok()) {
    return s;
  }
  return *low;
}

StatusOr<std::uint64_t> record_checksum(jsCtx* js, const std::string& stream, std::uint64_t lsn) {
  StatusOr<StreamPosition> position = read_position(js, stream);
  if (!position.is_ok()) return position.status();
  const std::string missing = "the log stream does not hold LSN " + std::to_string(lsn);
  if (lsn == 0 || position->last_sequence == 0) return Status::not_found(missing);
  StatusOr<std::uint64_t> at = first_message_past(js, stream, *position, lsn - 1);
  if (!at.is_ok()) return at.status();
  if (*at > position->last_sequence) return Status::not_found(missing);
  StatusOr<StoredMessage> m = read_message(js, stream, *at);
  if (!m.is_ok()) return m.status();
  if (m->first_lsn > lsn) return Status::not_found(missing + " (retention dropped it)");
  std::optional<std::uint64_t> found;
  const Status s = wal::for_each_frame_in(m->data, m->first_lsn, [&](const FrameView& f) {
    if (f.lsn == lsn) found = f.checksum;
  });
  if (!s.is_ok()) return s;
  if (!found) return Status::not_found(missing);
  return *found;
}

namespace {

// Visits the records of message `m` from read->next_lsn to to_lsn, checking that the first one
// chains from read->last_checksum when it is known. Leaves `read` after the last visited;
// *stopped when `visit` asked to stop. kCorruption if the message's frames end elsewhere than
// its Paycore-Last-Lsn says.
Status visit_message(const StoredMessage& m, std::uint64_t to_lsn, StreamRead* read,
                     wal::CommittedVisitor visit, bool* stopped) {
  std::uint64_t end_lsn = 0;
  PAYCORE_RETURN_IF_ERROR(wal::for_each_frame_in(
      m.data, m.first_lsn,
      [&](const FrameView& f) -> Status {
        if (*stopped || f.lsn < read->next_lsn || f.lsn > to_lsn) return Status::ok();
        if (read->last_checksum.has_value() && f.prev_checksum != *read->last_checksum) {
          return Status(StatusCode::kConflict, "the log stream's record at LSN " + std::to_string(f.lsn) +
                                                   " (sequence " + std::to_string(m.sequence) +
                                                   ") does not chain from the record before it");
        }
        read->last_checksum = f.checksum;
        read->next_lsn = f.lsn + 1;
        *stopped = !visit(f.lsn, f.type, f.payload);
        return Status::ok();
      },
      &end_lsn));
  if (end_lsn != m.last_lsn + 1) {
    return Status::corruption("the log stream's message " + std::to_string(m.sequence) + " ends at LSN " +
                              std::to_string(end_lsn - 1) + ", not at its Paycore-Last-Lsn " +
                              std::to_string(m.last_lsn));
  }
  return Status::ok();
}

// A message the stream no longer holds while it is read (retention moved on meanwhile): the
// read is tried again, never taken for a gap.
Status read_again_if_gone(const Status& status) {
  if (status.code() != StatusCode::kNotFound) return status;
  return Status(StatusCode::kUnavailable, status.message() + " (the stream dropped it while it was read: read again)");
}

}  // namespace

Status read_stream_records(jsCtx* js, const std::string& stream, std::uint64_t to_lsn,
                           wal::CommittedVisitor visit, StreamRead* read) {
  const std::uint64_t from_lsn = read->next_lsn;
  PAYCORE_ASSERT_GE(from_lsn, 1U);
  read->resumes_at_lsn = 0;
  StatusOr<StreamPosition> position = read_position(js, stream);
  if (!position.is_ok()) return read_again_if_gone(position.status());
  const std::string missing = "the log stream does not hold LSN " + std::to_string(from_lsn);
  if (position->last_sequence == 0) return Status::not_found(missing + " (it is empty)");
  StatusOr<std::uint64_t> at = first_message_past(js, stream, *position, from_lsn - 1);
  if (!at.is_ok()) return read_again_if_gone(at.status());
  if (*at > position->last_sequence) return Status::not_found(missing + " (not written yet)");
  bool stopped = false;
  for (std::uint64_t seq = *at; seq <= position->last_sequence && read->next_lsn <= to_lsn && !stopped; ++seq) {
    StatusOr<StoredMessage> m = read_message(js, stream, seq);
    if (!m.is_ok()) return read_again_if_gone(m.status());
    if (m->first_lsn > read->next_lsn) {
      read->resumes_at_lsn = m->first_lsn;
      return Status::not_found("the log stream does not hold LSN " + std::to_string(read->next_lsn) +
                               " (retention dropped it; it holds LSN " + std::to_string(m->first_lsn) + " on)");
    }
    PAYCORE_RETURN_IF_ERROR(visit_message(*m, to_lsn, read, visit, &stopped));
  }
  return Status::ok();
}

StreamRecordReader::StreamRecordReader(LinkConfig link, std::string stream)
    : link_config_(std::move(link)), stream_(std::move(stream)) {}

StreamRecordReader::~StreamRecordReader() = default;

Status StreamRecordReader::read(std::uint64_t from_lsn, std::uint64_t to_lsn, wal::CommittedVisitor visit,
                                std::uint64_t* resumes_at_lsn) {
  if (link_ == nullptr) {
    StatusOr<std::unique_ptr<NatsLink>> connected = NatsLink::connect(link_config_);
    if (!connected.is_ok()) return connected.status();
    link_ = std::move(connected.value());
  }
  StreamRead read;
  read.next_lsn = from_lsn;
  if (from_lsn == last_.next_lsn) read.last_checksum = last_.last_checksum;  // the chain goes on
  const Status s = read_stream_records(link_->js(), stream_, to_lsn, visit, &read);
  last_ = read;
  if (resumes_at_lsn != nullptr) *resumes_at_lsn = read.resumes_at_lsn;
  if (!s.is_ok() && s.code() != StatusCode::kNotFound) link_.reset();
  return s;
}

StatusOr<std::unique_ptr<StreamFollower>> StreamFollower::start(
    const LinkConfig& link, const FollowerConfig& config, std::uint64_t local_last_lsn,
    std::uint64_t local_last_checksum) {
  std::unique_ptr<StreamFollower> f(new StreamFollower(config));
  StatusOr<std::unique_ptr<NatsLink>> connected = NatsLink::connect(link);
  if (!connected.is_ok()) return connected.status();
  f->link_ = std::move(connected.value());
  StatusOr<std::uint64_t> first =
      find_follow_start(f->link_->js(), config.stream, local_last_lsn, local_last_checksum);
  if (!first.is_ok()) return first.status();
  f->first_sequence_ = *first;
  f->next_sequence_ = *first;
  const natsStatus s =
      natsConnection_SubscribeSync(&f->wake_, f->link_->connection(), config.subject.c_str());
  if (s != NATS_OK) return nats_status(s, jsErrCode{}, "subscribe to " + config.subject);
  // Only a wake-up: a few pending are enough (more are dropped, harmlessly), not 64 MiB of
  // copies of the stream's messages while this standby catches up.
  (void)natsSubscription_SetPendingLimits(f->wake_, 16, 1 << 20);
  f->ready_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  PAYCORE_ASSERT_GE(f->ready_fd_, 0);
  f->thread_ = std::thread([raw = f.get()] { raw->run(); });
  return f;
}

StreamFollower::~StreamFollower() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  room_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (wake_ != nullptr) natsSubscription_Destroy(wake_);
  link_.reset();
  if (ready_fd_ >= 0) ::close(ready_fd_);
}

bool StreamFollower::take(ReplicatedBatch* out) {
  {
    const std::lock_guard lock(mu_);
    if (queue_.empty()) return false;
    *out = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= out->frames.size();
  }
  room_.notify_one();
  return true;
}

void StreamFollower::fail(const Status& status) {
  log_line(LogLevel::error, "cannot follow the log stream: " + status.to_string(),
           {{"sequence", std::to_string(next_sequence_)}});
  failed_.store(true, std::memory_order_release);
  write_eventfd(ready_fd_);
}

void StreamFollower::run() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      room_.wait(lock, [&] { return stopping_ || queued_bytes_ < config_.queued_bytes_max; });
      if (stopping_ || failed_.load()) return;
    }
    if (!read_next()) wait_for_publish();
  }
}

// Reads message next_sequence_ into the queue: false when there is none yet (or NATS does not
// answer: tried again after the wait).
bool StreamFollower::read_next() {
  StatusOr<StoredMessage> m = read_message(link_->js(), config_.stream, next_sequence_);
  if (!m.is_ok()) {
    if (m.status().code() == StatusCode::kCorruption) fail(m.status());
    if (m.status().code() == StatusCode::kNotFound) check_retained();
    return false;
  }
  ReplicatedBatch batch{m->sequence, m->first_lsn, std::move(m->data)};
  {
    const std::lock_guard lock(mu_);
    queued_bytes_ += batch.frames.size();
    queue_.push_back(std::move(batch));
  }
  ++next_sequence_;
  write_eventfd(ready_fd_);
  return true;
}

// Not found is the stream's end, unless the stream has moved past the message (its retention
// dropped it before this standby read it): then this process needs a snapshot to go on.
void StreamFollower::check_retained() {
  StatusOr<StreamPosition> position = read_position(link_->js(), config_.stream);
  if (!position.is_ok()) return;
  if (position->first_sequence > next_sequence_) {
    fail(Status::not_found("stream message " + std::to_string(next_sequence_) +
                           " left the stream's retention (its first is now " +
                           std::to_string(position->first_sequence) +
                           "): a snapshot is needed first"));
  }
}

// At the stream's end: a publish on the subject, or the idle wait, whichever comes first.
void StreamFollower::wait_for_publish() {
  natsMsg* msg = nullptr;
  if (natsSubscription_NextMsg(&msg, wake_, config_.idle_wait_ms) == NATS_OK) natsMsg_Destroy(msg);
  // Skip the wake-ups already queued: one look at the stream reads all they announced.
  while (natsSubscription_NextMsg(&msg, wake_, 0) == NATS_OK) natsMsg_Destroy(msg);
}

}  // namespace paycore::repl
