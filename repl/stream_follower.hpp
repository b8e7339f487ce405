#pragma once
// A standby's side of the shared log (issue 14; docs/replication.md "Standbys"): reads the log
// stream in sequence order from the message that holds the local log's next LSN and hands each
// message to the core as a ReplicatedBatch (core/replica_port.hpp).
//
// Reading is by sequence (JetStream's "get message"), one request per message, so no consumer
// state lives on the server and a restart needs nothing but the local log. At the stream's end
// the reader waits on a plain NATS subscription to the log's subject: a publish wakes it at
// once (the message itself is taken from the stream, never from the subscription, which also
// carries messages the stream refused).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.hpp"
#include "core/replica_port.hpp"
#include "repl/nats_link.hpp"
#include "wal/committed.hpp"

namespace paycore::repl {

struct FollowerConfig {
  std::string stream;   // log_stream_name(cluster)
  std::string subject;  // log_subject(cluster)
  std::int64_t idle_wait_ms = 100;           // at the stream's end, between looks
  std::size_t queued_bytes_max = 64u << 20;  // read ahead of the core at most this much
};

/// The sequence of the first stream message holding a record after local_last_lsn (binary
/// search over the messages' LSN headers; 1 on an empty stream). kNotFound if the stream starts after local_last_lsn + 1: this
/// process needs a snapshot first (below the stream's retention). kConflict if the local log
/// holds a record the stream does not: beyond its end, or another record (checksum) at the
/// local log's last LSN.
StatusOr<std::uint64_t> find_follow_start(jsCtx* js, const std::string& stream,
                                        std::uint64_t local_last_lsn,
                                        std::uint64_t local_last_checksum);

/// The checksum of the log record at `lsn` as the stream holds it (the hash chain a log that
/// starts at lsn + 1 continues from). kNotFound if the stream does not hold it (not written
/// yet, or past retention); kCorruption for a damaged message; NATS errors.
StatusOr<std::uint64_t> record_checksum(jsCtx* js, const std::string& stream, std::uint64_t lsn);

/// Where a read of the log stream stands (read_stream_records).
struct StreamRead {
  std::uint64_t next_lsn = 0;                  // in: the first to read (>= 1); out: after the
                                               // last record visited
  std::optional<std::uint64_t> last_checksum;  // in: of the record before next_lsn, if known
                                               // (checked); out: of the last record visited
  std::uint64_t resumes_at_lsn = 0;            // kNotFound: the first LSN past the missing ones
                                               // the stream holds (0: none yet)
};

/// Visits the records read->next_lsn..to_lsn (inclusive) in LSN order as the log
/// stream holds them, checking each record's checksum, the hash chain between them
/// (wal/frames.hpp) and that each message's frames end at its Paycore-Last-Lsn; stops early
/// when `visit` returns false, and at the stream's end when to_lsn is past it. For a reader of
/// the cluster's history whose local log no longer holds it (the event deriver after a member
/// started from a snapshot: docs/events.md "Gaps"). kNotFound if the stream does not hold
/// read->next_lsn (past its retention: read->resumes_at_lsn says where it resumes; or not
/// written yet); kUnavailable if a message vanished while read (retention moving on: read
/// again); kCorruption for a damaged message; kConflict for a broken chain; NATS errors.
Status read_stream_records(jsCtx* js, const std::string& stream, std::uint64_t to_lsn,
                           wal::CommittedVisitor visit, StreamRead* read);

/// read_stream_records on a NATS connection of its own, made at the first read and made again
/// after a read fails (kUnavailable while NATS does not answer). A read that starts where the
/// previous one ended checks the chain across the two. One thread at a time.
class StreamRecordReader {
 public:
  StreamRecordReader(LinkConfig link, std::string stream);
  ~StreamRecordReader();
  StreamRecordReader(const StreamRecordReader&) = delete;
  StreamRecordReader& operator=(const StreamRecordReader&) = delete;

  /// `*resumes_at_lsn` (optional): read_stream_records's StreamRead::resumes_at_lsn.
  Status read(std::uint64_t from_lsn, std::uint64_t to_lsn, wal::CommittedVisitor visit,
              std::uint64_t* resumes_at_lsn = nullptr);

 private:
  LinkConfig link_config_;
  std::string stream_;
  std::unique_ptr<NatsLink> link_;  // null until the first read, and after a failed one
  StreamRead last_;                 // where the previous read ended
};

class StreamFollower final : public FollowSource {
 public:
  /// Connects and starts reading at find_follow_start(local_last_lsn). Errors: its errors,
  /// kUnavailable when NATS does not answer.
  static StatusOr<std::unique_ptr<StreamFollower>> start(const LinkConfig& link,
                                                         const FollowerConfig& config,
                                                         std::uint64_t local_last_lsn,
                                                         std::uint64_t local_last_checksum);
  ~StreamFollower() override;
  StreamFollower(const StreamFollower&) = delete;
  StreamFollower& operator=(const StreamFollower&) = delete;

  bool take(ReplicatedBatch* out) override;
  int ready_fd() const override { return ready_fd_; }
  bool failed() const override { return failed_.load(std::memory_order_acquire); }

  /// The first sequence this follower read (find_follow_start's answer).
  std::uint64_t first_sequence() const { return first_sequence_; }

 private:
  explicit StreamFollower(const FollowerConfig& config) : config_(config) {}
  void run();
  bool read_next();
  void check_retained();
  void wait_for_publish();
  void fail(const Status& status);

  FollowerConfig config_;
  std::unique_ptr<NatsLink> link_;
  natsSubscription* wake_ = nullptr;
  std::uint64_t first_sequence_ = 0;
  int ready_fd_ = -1;
  std::uint64_t next_sequence_ = 0;  // reader thread only

  mutable std::mutex mu_;
  std::condition_variable room_;
  std::deque<ReplicatedBatch> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

}  // namespace paycore::repl
