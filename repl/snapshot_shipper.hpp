#pragma once
// The primary's side of the snapshot bucket (issue 14; docs/replication.md "Bootstrap"): a
// thread that looks at the snapshots directory every interval and, while this process is the
// primary, publishes the newest snapshot there if it is newer than the published one
// (repl/snapshot_objects.hpp), with the checksum of the log record at its LSN as the stream
// holds it. Its own NATS connection: an upload never delays the lease's heartbeats or the log.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "repl/nats_link.hpp"

namespace paycore::repl {

struct ShipperConfig {
  LinkConfig link;
  std::string log_stream;       // log_stream_name(cluster)
  std::string snapshot_bucket;  // snapshot_bucket_name(cluster)
  int replicas = 1;             // the bucket's copies, as the log stream's
  std::string snapshots_dir;    // Engine::snapshots_dir()
  std::int64_t interval_ms = 1000;
};

class SnapshotShipper {
 public:
  /// Starts the thread. `is_primary` is asked before each publish (any thread may answer it);
  /// `published_lsn` (EngineMetrics::snapshot_published_lsn) is set after each. Both outlive
  /// the shipper.
  SnapshotShipper(const ShipperConfig& config, std::function<bool()> is_primary,
                  std::atomic<std::uint64_t>* published_lsn);
  /// Stops the thread (an upload under way is finished first).
  ~SnapshotShipper();
  SnapshotShipper(const SnapshotShipper&) = delete;
  SnapshotShipper& operator=(const SnapshotShipper&) = delete;

 private:
  void run();
  void ship_newest();
  bool connect();

  ShipperConfig config_;
  std::function<bool()> is_primary_;
  std::atomic<std::uint64_t>* published_lsn_;
  std::unique_ptr<NatsLink> link_;   // this thread's
  std::uint64_t shipped_lsn_ = 0;    // the bucket's snapshot, as last read or written
  std::uint64_t skipped_lsn_ = 0;    // a snapshot that could not be chained: not tried again
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace paycore::repl
