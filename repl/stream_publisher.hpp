#pragma once
// The primary's side of the shared log (issue 14; docs/replication.md): a ReplicaPort that
// sends every batch the local log writes to the JetStream log stream as one message or more
// (repl/stream_format.hpp), each with the stream sequence it must follow, several in flight at
// once, and tells the core how far the stream has acknowledged.
//
// Threads: publish() on the core thread only queues a copy; the publisher's own thread sends;
// libnats's thread delivers each ack (on_ack). A refused or unanswered message starts a resync
// on the publisher thread: it asks the stream what it holds at each sequence it expected,
// counts a message found there as acknowledged if it is its own (same writer, same first LSN),
// sends again what is missing in order, and declares itself fenced if another writer's message
// is there. Safety never depends on a timeout: a timeout only leads to asking the stream.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/function_ref.hpp"
#include "base/status.hpp"
#include "core/replica_port.hpp"
#include "repl/nats_link.hpp"
#include "repl/stream_format.hpp"

namespace paycore::repl {

struct PublisherConfig {
  StreamSettings stream;
  std::size_t message_bytes_max = kMessageBytesMaxDefault;
  // An unacknowledged message older than this makes the publisher ask the stream, and the
  // port report `stalled` (new writes refused) until it is acknowledged.
  std::int64_t ack_timeout_ms = 2000;
  std::uint64_t writer_id = 0;  // random per process start
  // The lease's write guard (ClusterMember): past this monotonic_ms() the port reports
  // `stalled`, so that the engine takes no new write nor tick once the lease may be about to
  // pass to a standby. It only narrows the window in which an old primary's late append
  // fences the new primary (docs/replication.md "Leadership"); fencing, not this, keeps writes
  // safe. Null or 0: no guard.
  const std::atomic<std::int64_t>* writes_until_ms = nullptr;
};

/// The local log as alignment needs it (the engine before start(), wal::Log underneath).
struct LocalLogView {
  std::uint64_t last_lsn = 0;       // 0: empty
  std::uint64_t last_checksum = 0;  // of record last_lsn
  // Calls fn(lsn, frame) for each durable record in [from, to]; its errors.
  FunctionRef<Status(std::uint64_t from_lsn, std::uint64_t to_lsn,
                     FunctionRef<void(std::uint64_t lsn, std::span<const std::byte> frame)> fn)>
      replay_frames;
};

/// A local log that ends where the stream ends (a standby that applied it all, at promotion):
/// nothing to send; asking it for frames is kConflict (the stream moved on meanwhile).
LocalLogView caught_up_log(std::uint64_t last_lsn, std::uint64_t last_checksum);

/// How the stream and the local log were found at start.
struct Alignment {
  std::uint64_t stream_last_sequence = 0;  // after any tail this process sent
  std::uint64_t stream_last_lsn = 0;       // LSN of the stream's last record (0: empty)
  std::uint64_t tail_records_sent = 0;     // local records the stream lacked, sent at start
};

class StreamPublisher final : public ReplicaPort {
 public:
  /// Connects (link.ack_handler is set here), makes sure the stream exists, aligns it with the
  /// local log and starts the publishing thread. Alignment: the stream's last record must be a
  /// record of the local log (same LSN, same checksum); local records after it are sent now
  /// (they were never answered: an answer waits for the stream). Errors: kConflict when the
  /// stream holds another history or is ahead of the local log (this process must follow it
  /// as a standby), kUnavailable when NATS does not answer, the local log's errors.
  static StatusOr<std::unique_ptr<StreamPublisher>> start(const LinkConfig& link,
                                                          const PublisherConfig& config,
                                                          const LocalLogView& local);
  ~StreamPublisher() override;
  StreamPublisher(const StreamPublisher&) = delete;
  StreamPublisher& operator=(const StreamPublisher&) = delete;

  void publish(std::uint64_t first_lsn, std::uint64_t last_lsn,
               std::span<const std::byte> records) override;
  ReplicaStatus status() const override;
  int ready_fd() const override { return ready_fd_; }

  const Alignment& alignment() const { return alignment_; }

 private:
  struct Outgoing {
    std::uint64_t first_lsn = 0;
    std::uint64_t last_lsn = 0;
    std::uint64_t expected_sequence = 0;  // the stream's last sequence before it
    std::vector<std::byte> bytes;
    std::int64_t queued_ms = 0;  // when the core handed its batch over
    bool acknowledged = false;
  };
  struct Queued {
    std::uint64_t first_lsn = 0;
    std::vector<std::byte> bytes;
    std::int64_t queued_ms = 0;
  };

  explicit StreamPublisher(const PublisherConfig& config);
  Status align(const LocalLogView& local);
  Status send_tail(const LocalLogView& local, std::uint64_t from_lsn);
  Status send_now(std::uint64_t first_lsn, std::uint64_t last_lsn, std::span<const std::byte> bytes);
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure);
  void acknowledge(std::uint64_t first_lsn, std::uint64_t sequence);
  bool pop_acknowledged();  // under mu_: whether acknowledged_lsn_ advanced
  void run();
  void send_queued(std::unique_lock<std::mutex>& lock);
  natsMsg* prepare(const Outgoing& out) const;
  bool send_all(std::vector<natsMsg*>& messages);
  void resync();
  Status resync_once();
  Status settle_resync(std::span<const std::uint64_t> found,
                       std::optional<std::uint64_t> resend_from);
  void fence(const std::string& why);

  PublisherConfig config_;
  std::unique_ptr<NatsLink> link_;
  Alignment alignment_;
  int ready_fd_ = -1;
  std::uint64_t next_publish_lsn_ = 0;  // the core thread's: the LSN the next batch starts at

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;        // from the core, not yet sent
  std::deque<Outgoing> in_flight_;  // sent, in order; acknowledged ones leave from the front
  std::uint64_t next_expected_sequence_ = 0;
  bool resync_needed_ = false;
  bool stopping_ = false;

  std::atomic<std::uint64_t> acknowledged_lsn_{0};
  // When the oldest batch not yet acknowledged (queued or in flight) was handed over; 0: none.
  std::atomic<std::int64_t> oldest_unacknowledged_ms_{0};
  std::atomic<bool> fenced_{false};
  std::thread thread_;
};

}  // namespace paycore::repl
