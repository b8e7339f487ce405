#pragma once
// The core's side of replication (issue 14; docs/design.md "Beyond one machine"): the engine
// hands every batch of log records it writes to a ReplicaPort, which sends it to the shared
// log (repl/ implements it on NATS JetStream). An answer leaves only once its LSN is durable
// in the local log *and* acknowledged by the shared log (rule 4 extended). The core knows
// only this interface: without one (single node), nothing of it runs.

#include <cstdint>
#include <span>
#include <vector>

namespace paycore {

/// What the shared log says about the writes handed to it. Read by the core thread each turn;
/// written by the port's own threads (relaxed reads are enough: each figure only grows, and
/// `fenced` never goes back to false).
struct ReplicaStatus {
  /// Every record up to this LSN is acknowledged by the shared log's quorum.
  std::uint64_t acknowledged_lsn = 0;
  /// Another process appended to the shared log: this one is no longer the writer. Nothing
  /// beyond acknowledged_lsn may be answered, and writes are refused from now on.
  bool fenced = false;
  /// The oldest unacknowledged batch has waited longer than the port's acknowledgement
  /// timeout (the shared log has no quorum, or is unreachable): new writes are refused with
  /// `unavailable` until it is acknowledged; those already applied keep waiting.
  bool stalled = false;
};

class ReplicaPort {
 public:
  virtual ~ReplicaPort() = default;
  /// Called on the core thread by the log as it writes a batch: `records` are the batch's
  /// record frames exactly as the local log holds them (wal/format.hpp), LSNs first_lsn ..
  /// last_lsn. The port copies what it needs and never blocks the caller for the network.
  virtual void publish(std::uint64_t first_lsn, std::uint64_t last_lsn,
                       std::span<const std::byte> records) = 0;
  /// The shared log's answers so far (any thread).
  virtual ReplicaStatus status() const = 0;
  /// An eventfd written whenever status() changes: the core sleeps on it in its epoll.
  virtual int ready_fd() const = 0;
};

/// Records of the shared log for a standby to apply: the frames of one stream message
/// (wal/format.hpp), LSNs first_lsn.. in order, exactly as the primary's log holds them.
struct ReplicatedBatch {
  std::uint64_t sequence = 0;  // the stream message's sequence
  std::uint64_t first_lsn = 0;
  std::vector<std::byte> frames;
};

/// A standby's source of records (repl/ reads them from the stream). The core takes batches in
/// order, checks each record's checksum and chain against its own log, applies the commands
/// through the same apply() and appends the records to its local log at the same LSNs.
class FollowSource {
 public:
  virtual ~FollowSource() = default;
  /// The next batch, if one is waiting (core thread; never blocks). Batches come in stream
  /// order with consecutive LSNs.
  virtual bool take(ReplicatedBatch* out) = 0;
  /// An eventfd written when a batch is waiting or the source fails.
  virtual int ready_fd() const = 0;
  /// True once the source cannot go on (the stream lost what this process needs next; it
  /// logged why). Read every turn: a load, no lock.
  virtual bool failed() const = 0;
};

}  // namespace paycore
