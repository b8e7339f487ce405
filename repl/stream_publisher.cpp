#include "repl/stream_publisher.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "base/assert.hpp"
#include "base/eventfd.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "wal/format.hpp"

namespace paycore::repl {
namespace {

// The checksum of the last frame of a stored message (the chain's head after it).
StatusOr<std::uint64_t> last_checksum_of(const StoredMessage& m) {
  std::uint64_t next = 0;
  std::uint64_t prev = 0;
  const Status s =
      wal::for_each_frame_in(m.data, m.first_lsn, [](const FrameView&) {}, &next, &prev);
  if (!s.is_ok()) return s.with_context("stream message " + std::to_string(m.sequence));
  if (next != m.last_lsn + 1) {
    return Status::corruption("stream message " + std::to_string(m.sequence) +
                              ": its records end at LSN " + std::to_string(next - 1) +
                              ", its header says " + std::to_string(m.last_lsn));
  }
  return prev;
}

// A message of the log stream: subject, data, the Paycore-* headers and the compare-and-set
// header. Null on failure (only on memory exhaustion).
natsMsg* make_message(const std::string& subject, std::uint64_t writer_id, std::uint64_t first_lsn,
                      std::uint64_t last_lsn, std::uint64_t expected_sequence,
                      std::span<const std::byte> bytes) {
  natsMsg* msg = nullptr;
  if (natsMsg_Create(&msg, subject.c_str(), nullptr, reinterpret_cast<const char*>(bytes.data()),
                     static_cast<int>(bytes.size())) != NATS_OK) {
    return nullptr;
  }
  const std::string id = message_id(writer_id, first_lsn);
  const std::string writer = writer_id_text(writer_id);
  const std::string first = std::to_string(first_lsn);
  const std::string last = std::to_string(last_lsn);
  // Set by hand, not through jsPubOptions.ExpectLastSeq: there 0 means "no expectation",
  // and the first message of an empty stream must expect exactly 0.
  const std::string expected = std::to_string(expected_sequence);
  natsStatus s = natsMsgHeader_Set(msg, kHeaderMsgId, id.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderExpectedLastSequence, expected.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderFirstLsn, first.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderLastLsn, last.c_str());
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, kHeaderWriter, writer.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return nullptr;
  }
  return msg;
}

// caught_up_log's replay_frames: of static storage, as the FunctionRef refers to it.
constexpr auto kNoFrames = [](std::uint64_t, std::uint64_t,
                              FunctionRef<void(std::uint64_t, std::span<const std::byte>)>) {
  return Status(StatusCode::kConflict, "the stream holds records this process has not applied");
};

}  // namespace

LocalLogView caught_up_log(std::uint64_t last_lsn, std::uint64_t last_checksum) {
  return LocalLogView{last_lsn, last_checksum, kNoFrames};
}

StreamPublisher::StreamPublisher(const PublisherConfig& config) : config_(config) {
  ready_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  PAYCORE_ASSERT_GE(ready_fd_, 0);
}

StreamPublisher::~StreamPublisher() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  link_.reset();  // no ack callback runs after this
  ::close(ready_fd_);
}

StatusOr<std::unique_ptr<StreamPublisher>> StreamPublisher::start(const LinkConfig& link,
                                                                  const PublisherConfig& config,
                                                                  const LocalLogView& local) {
  std::unique_ptr<StreamPublisher> p(new StreamPublisher(config));
  LinkConfig with_handler = link;
  with_handler.ack_handler = &StreamPublisher::on_ack;
  with_handler.ack_closure = p.get();
  StatusOr<std::unique_ptr<NatsLink>> connected = NatsLink::connect(with_handler);
  if (!connected.is_ok()) return connected.status();
  p->link_ = std::move(connected.value());
  if (Status s = ensure_stream(p->link_->js(), config.stream); !s.is_ok()) return s;
  if (Status s = p->align(local); !s.is_ok()) return s;
  p->thread_ = std::thread([raw = p.get()] { raw->run(); });
  return p;
}

// ---- Alignment at start ----------------------------------------------------------------------

Status StreamPublisher::align(const LocalLogView& local) {
  const std::string& stream = config_.stream.name;
  StatusOr<StreamPosition> position = read_position(link_->js(), stream);
  if (!position.is_ok()) return position.status();
  alignment_.stream_last_sequence = position->last_sequence;
  std::uint64_t from_lsn = 1;
  if (position->last_sequence == 0) {
    // An empty stream starts with this process's next record; what the local log holds before
    // it reaches a standby through a snapshot (docs/replication.md "Not yet").
    from_lsn = local.last_lsn + 1;
  } else {
    StatusOr<StoredMessage> last = read_message(link_->js(), stream, position->last_sequence);
    if (!last.is_ok()) return last.status();
    StatusOr<std::uint64_t> checksum = last_checksum_of(*last);
    if (!checksum.is_ok()) return checksum.status();
    alignment_.stream_last_lsn = last->last_lsn;
    if (last->last_lsn > local.last_lsn) {
      return Status(StatusCode::kConflict,
                    "the shared log is ahead of this process's log (LSN " +
                        std::to_string(last->last_lsn) + " against " +
                        std::to_string(local.last_lsn) + "): this process must follow it");
    }
    std::uint64_t local_checksum = local.last_checksum;
    if (last->last_lsn < local.last_lsn) {
      auto read = [&](std::uint64_t, std::span<const std::byte> frame) {
        local_checksum = wal::format::decode_record_header(frame.data()).checksum;
      };
      if (Status s = local.replay_frames(last->last_lsn, last->last_lsn, read); !s.is_ok()) return s;
    }
    if (local_checksum != *checksum) {
      return Status(StatusCode::kConflict, "record LSN " + std::to_string(last->last_lsn) +
                                               " differs between the shared log and this process's"
                                               " log: the histories diverged");
    }
    from_lsn = last->last_lsn + 1;
  }
  next_expected_sequence_ = alignment_.stream_last_sequence;
  if (Status s = send_tail(local, from_lsn); !s.is_ok()) return s;
  acknowledged_lsn_.store(local.last_lsn, std::memory_order_relaxed);
  next_publish_lsn_ = local.last_lsn + 1;
  return Status::ok();
}

// Sends local records [from_lsn, last] one message at a time, each waiting for its ack.
Status StreamPublisher::send_tail(const LocalLogView& local, std::uint64_t from_lsn) {
  if (from_lsn > local.last_lsn) return Status::ok();
  std::vector<std::byte> message;
  std::uint64_t first = from_lsn;
  Status failed = Status::ok();
  auto add = [&](std::uint64_t lsn, std::span<const std::byte> frame) {
    if (!failed.is_ok()) return;
    if (!message.empty() && message.size() + frame.size() > config_.message_bytes_max) {
      failed = send_now(first, lsn - 1, message);
      message.clear();
      first = lsn;
    }
    message.insert(message.end(), frame.begin(), frame.end());
  };
  if (Status s = local.replay_frames(from_lsn, local.last_lsn, add); !s.is_ok()) return s;
  if (failed.is_ok() && !message.empty()) failed = send_now(first, local.last_lsn, message);
  if (failed.is_ok()) alignment_.tail_records_sent = local.last_lsn - from_lsn + 1;
  return failed;
}

Status StreamPublisher::send_now(std::uint64_t first_lsn, std::uint64_t last_lsn,
                                 std::span<const std::byte> bytes) {
  natsMsg* msg = make_message(config_.stream.subject, config_.writer_id, first_lsn, last_lsn,
                              next_expected_sequence_, bytes);
  if (msg == nullptr) return Status::io_error("cannot make a NATS message");
  jsPubAck* ack = nullptr;
  jsErrCode error{};
  const natsStatus s = js_PublishMsg(&ack, link_->js(), msg, nullptr, &error);
  natsMsg_Destroy(msg);
  const std::uint64_t sequence = ack != nullptr ? ack->Sequence : 0;
  if (ack != nullptr) jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    return nats_status(s, error, "publish LSN " + std::to_string(first_lsn) + ".." +
                                     std::to_string(last_lsn));
  }
  PAYCORE_ASSERT_EQ(sequence, next_expected_sequence_ + 1);
  next_expected_sequence_ = sequence;
  alignment_.stream_last_sequence = sequence;
  return Status::ok();
}

// ---- The core's side -------------------------------------------------------------------------

void StreamPublisher::publish(std::uint64_t first_lsn, std::uint64_t last_lsn,
                              std::span<const std::byte> records) {
  // Batches follow one another from the alignment's end: anything else would put a record
  // into the stream twice or leave a gap.
  PAYCORE_ASSERT_EQ(first_lsn, next_publish_lsn_);
  next_publish_lsn_ = last_lsn + 1;
  {
    const std::lock_guard lock(mu_);
    const std::int64_t now = monotonic_ms();
    queue_.push_back(
        Queued{first_lsn, std::vector<std::byte>(records.begin(), records.end()), now});
    if (oldest_unacknowledged_ms_.load(std::memory_order_relaxed) == 0) {
      oldest_unacknowledged_ms_.store(now, std::memory_order_relaxed);
    }
  }
  wake_.notify_one();
}

ReplicaStatus StreamPublisher::status() const {
  ReplicaStatus s;
  s.acknowledged_lsn = acknowledged_lsn_.load(std::memory_order_acquire);
  s.fenced = fenced_.load(std::memory_order_acquire);
  const std::int64_t oldest = oldest_unacknowledged_ms_.load(std::memory_order_relaxed);
  const std::int64_t now = monotonic_ms();
  s.stalled = oldest != 0 && now - oldest > config_.ack_timeout_ms;
  if (config_.writes_until_ms != nullptr) {
    const std::int64_t until = config_.writes_until_ms->load(std::memory_order_relaxed);
    s.stalled = s.stalled || (until != 0 && now > until);
  }
  return s;
}

// ---- Acknowledgements (libnats's thread) -----------------------------------------------------

void StreamPublisher::on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error,
                             void* closure) {
  auto* self = static_cast<StreamPublisher*>(closure);
  std::uint64_t first_lsn = 0;
  if (ack != nullptr && error == nullptr && header_number(msg, kHeaderFirstLsn, &first_lsn)) {
    self->acknowledge(first_lsn, ack->Sequence);
  } else {
    // Refused (wrong last sequence: a gap of ours or another writer) or unanswered: the
    // publisher thread asks the stream which it is.
    {
      const std::lock_guard lock(self->mu_);
      self->resync_needed_ = true;
    }
    self->wake_.notify_one();
  }
  natsMsg_Destroy(msg);
}

void StreamPublisher::acknowledge(std::uint64_t first_lsn, std::uint64_t sequence) {
  bool advanced = false;
  {
    const std::lock_guard lock(mu_);
    for (Outgoing& out : in_flight_) {
      if (out.first_lsn != first_lsn) continue;
      // Stored where it was expected: the compare-and-set guarantees nothing else was.
      if (sequence == out.expected_sequence + 1) {
        out.acknowledged = true;
      } else {
        resync_needed_ = true;
      }
      break;
    }
    advanced = pop_acknowledged();
  }
  if (advanced) write_eventfd(ready_fd_);
  wake_.notify_one();
}

bool StreamPublisher::pop_acknowledged() {
  bool advanced = false;
  while (!in_flight_.empty() && in_flight_.front().acknowledged) {
    acknowledged_lsn_.store(in_flight_.front().last_lsn, std::memory_order_release);
    in_flight_.pop_front();
    advanced = true;
  }
  std::int64_t oldest = 0;
  if (!in_flight_.empty()) {
    oldest = in_flight_.front().queued_ms;
  } else if (!queue_.empty()) {
    oldest = queue_.front().queued_ms;
  }
  oldest_unacknowledged_ms_.store(oldest, std::memory_order_relaxed);
  return advanced;
}

// ---- The publisher thread -------------------------------------------------------------------

void StreamPublisher::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (fenced_.load(std::memory_order_relaxed)) {
      // Nothing more is sent; what the core still hands over is dropped.
      queue_.clear();
      wake_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_; });
      continue;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(50),
                   [&] { return stopping_ || resync_needed_ || !queue_.empty(); });
    if (stopping_) continue;
    const std::int64_t oldest = oldest_unacknowledged_ms_.load(std::memory_order_relaxed);
    if (!in_flight_.empty() && oldest != 0 && monotonic_ms() - oldest > config_.ack_timeout_ms) {
      resync_needed_ = true;  // no answer in time: ask the stream
    }
    if (resync_needed_) {
      lock.unlock();
      resync();
      lock.lock();
      continue;
    }
    send_queued(lock);
  }
}

// Splits each queued batch into messages and sends them, in order, each expecting the one
// before it. Called and returns with `lock` held; sends without it (only this thread sends,
// so the order holds), so that libnats's ack thread never waits for a send.
void StreamPublisher::send_queued(std::unique_lock<std::mutex>& lock) {
  std::vector<MessageSlice> slices;
  std::vector<natsMsg*> messages;
  while (!queue_.empty() && !resync_needed_) {
    Queued batch = std::move(queue_.front());
    queue_.pop_front();
    const Status split =
        split_frames(batch.bytes, batch.first_lsn, config_.message_bytes_max, &slices);
    PAYCORE_ASSERT(split.is_ok());  // records are far below the message limit
    for (const MessageSlice& slice : slices) {
      Outgoing out;
      out.first_lsn = slice.first_lsn;
      out.last_lsn = slice.last_lsn;
      out.expected_sequence = next_expected_sequence_++;
      if (slices.size() == 1) {
        out.bytes = std::move(batch.bytes);  // the usual case: the batch is one message
      } else {
        out.bytes.assign(batch.bytes.begin() + static_cast<std::ptrdiff_t>(slice.offset),
                         batch.bytes.begin() + static_cast<std::ptrdiff_t>(slice.offset + slice.bytes));
      }
      out.queued_ms = batch.queued_ms;
      messages.push_back(prepare(out));
      in_flight_.push_back(std::move(out));
    }
    lock.unlock();
    const bool sent = send_all(messages);
    lock.lock();
    if (!sent) resync_needed_ = true;
  }
}

natsMsg* StreamPublisher::prepare(const Outgoing& out) const {
  return make_message(config_.stream.subject, config_.writer_id, out.first_lsn, out.last_lsn,
                      out.expected_sequence, out.bytes);
}

// Sends and empties `messages` in order; false if any could not be handed to libnats (the
// rest are still sent: a resync sorts out what the stream holds).
bool StreamPublisher::send_all(std::vector<natsMsg*>& messages) {
  bool all = true;
  for (natsMsg*& msg : messages) {
    if (msg == nullptr) {
      all = false;
      continue;
    }
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = config_.ack_timeout_ms;  // then on_ack hears NATS_TIMEOUT
    const natsStatus s = js_PublishMsgAsync(link_->js(), &msg, &options);
    if (msg != nullptr) natsMsg_Destroy(msg);  // not taken by the library
    all = all && s == NATS_OK;
  }
  messages.clear();
  return all;
}

// ---- Resync: ask the stream what it holds ----------------------------------------------------

void StreamPublisher::resync() {
  // Let the answers still on their way arrive first (bounded by the ack timeout).
  (void)link_->drain_publishes(config_.ack_timeout_ms);
  const Status s = resync_once();
  if (s.is_ok()) return;
  if (s.code() == StatusCode::kConflict) {
    fence(s.message());
    return;
  }
  // NATS unreachable or without quorum: try again shortly; the core sees `stalled`.
  log_line(LogLevel::warn, "shared log does not answer; retrying",
           {{"error", s.to_string()},
            {"acknowledged_lsn", std::to_string(acknowledged_lsn_.load())}});
  std::unique_lock lock(mu_);
  resync_needed_ = true;
  wake_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_; });
}

// For each message not yet acknowledged, in order: the stream holds it where expected (ours:
// acknowledged; another writer's: kConflict), or it ends just before it (sent again, with all
// that follow), or it ends earlier still (a message of ours vanished: kConflict). The lock is
// not held while asking the stream: acks may arrive meanwhile, so entries are found again by
// their first LSN.
Status StreamPublisher::resync_once() {
  StatusOr<StreamPosition> position = read_position(link_->js(), config_.stream.name);
  if (!position.is_ok()) return position.status();
  const std::string writer = writer_id_text(config_.writer_id);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> waiting;  // first LSN, expected sequence
  {
    const std::lock_guard lock(mu_);
    for (const Outgoing& out : in_flight_) {
      if (!out.acknowledged) waiting.emplace_back(out.first_lsn, out.expected_sequence);
    }
  }
  std::vector<std::uint64_t> found;  // first LSNs the stream holds where they were expected
  std::optional<std::uint64_t> resend_from;
  for (const auto& [first_lsn, expected] : waiting) {
    if (position->last_sequence < expected) {
      return Status(StatusCode::kConflict, "the shared log ends at sequence " +
                                               std::to_string(position->last_sequence) +
                                               ", before messages it acknowledged");
    }
    if (position->last_sequence == expected) {
      resend_from = first_lsn;
      break;
    }
    StatusOr<StoredMessage> stored = read_message(link_->js(), config_.stream.name, expected + 1);
    if (!stored.is_ok()) return stored.status();
    if (stored->writer != writer || stored->first_lsn != first_lsn) {
      return Status(StatusCode::kConflict, "sequence " + std::to_string(expected + 1) +
                                               " of the shared log holds writer " +
                                               stored->writer + "'s LSN " +
                                               std::to_string(stored->first_lsn));
    }
    found.push_back(first_lsn);
  }
  return settle_resync(found, resend_from);
}

// Marks `found` acknowledged and sends again, in order, every message from `resend_from` on.
Status StreamPublisher::settle_resync(std::span<const std::uint64_t> found,
                                      std::optional<std::uint64_t> resend_from) {
  std::unique_lock lock(mu_);
  bool resending = false;
  std::vector<natsMsg*> messages;
  for (Outgoing& out : in_flight_) {
    if (std::find(found.begin(), found.end(), out.first_lsn) != found.end()) {
      out.acknowledged = true;
    }
    resending = resending || (resend_from && out.first_lsn == *resend_from);
    if (resending && !out.acknowledged) messages.push_back(prepare(out));
  }
  resync_needed_ = false;
  const bool advanced = pop_acknowledged();
  lock.unlock();
  const bool sent = send_all(messages);
  if (advanced) write_eventfd(ready_fd_);
  if (!sent) return Status(StatusCode::kUnavailable, "could not hand messages to NATS");
  return Status::ok();
}

void StreamPublisher::fence(const std::string& why) {
  log_line(LogLevel::error, "fenced: this process no longer writes the shared log",
           {{"why", why}, {"acknowledged_lsn", std::to_string(acknowledged_lsn_.load())}});
  fenced_.store(true, std::memory_order_release);
  write_eventfd(ready_fd_);
}

}  // namespace paycore::repl
