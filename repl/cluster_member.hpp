#pragma once
// One paycore process in a cluster (issue 14; docs/replication.md): it starts as a standby
// that follows the log stream, and a leadership thread makes it the primary when it takes the
// lease (repl/lease.hpp): it asks the engine to promote itself once it has applied the stream
// as far as the stream went when the lease was taken, and the engine then starts the stream's
// writer (repl/stream_publisher.hpp) on its core thread. A primary that loses the lease says
// so (lease_lost); the process then stops, and comes back as a standby.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.hpp"
#include "core/engine.hpp"
#include "repl/lease.hpp"
#include "repl/nats_link.hpp"
#include "repl/snapshot_shipper.hpp"
#include "repl/stream_follower.hpp"
#include "repl/stream_publisher.hpp"

namespace paycore::repl {

struct MemberConfig {
  LinkConfig link;
  PublisherConfig publisher;  // its writer_id is this process's for its whole life
  FollowerConfig follower;
  LeaseConfig lease;          // its holder names the same writer_id
  // The snapshot bucket (its link and snapshots_dir are filled in by join).
  ShipperConfig snapshots;
  std::int64_t heartbeat_ms = 250;
};

class ClusterMember {
 public:
  /// Joins with `engine` opened (EngineConfig::register_channels_at_open false) and not yet
  /// started, which must outlive the member's use of it (stop() or the destructor first).
  /// Normally a standby following the stream from the local log's end. A local log ahead of
  /// the stream (a primary that stopped before its last batches were acknowledged) cannot
  /// follow: it takes the lease at once and becomes the primary, sending what the stream
  /// lacks, or the join fails with kConflict. kNotFound: the stream no longer holds the
  /// records after the local log (a snapshot is needed first). NATS errors.
  static StatusOr<std::unique_ptr<ClusterMember>> join(const MemberConfig& config, Engine& engine);
  ~ClusterMember();
  ClusterMember(const ClusterMember&) = delete;
  ClusterMember& operator=(const ClusterMember&) = delete;

  /// Stops the leadership thread and gives the lease up if held (before the engine stops).
  void stop();
  /// This process was primary and another took the lease, or as a standby it met a record
  /// that does not continue its log: it must stop (serve exits 3).
  bool must_stop() const { return lease_lost_.load() || follow_failed_.load(); }
  bool primary() const { return primary_.load(); }
  /// This process's base URL, written into the lease from the next heartbeat on (when the
  /// listener's port is known only after join). Any thread.
  void advertise(const std::string& url);
  /// The primary's base URL as the lease names it ("" while no holder is known). Any thread.
  std::string primary_url() const;

 private:
  ClusterMember(const MemberConfig& config, Engine& engine) : config_(config), engine_(engine) {}
  Status start_as_primary();
  Status start_writer(const LocalLogView& local);
  void run();
  void heartbeat(std::int64_t now_ms);
  void ask_promotion();
  ReplicaPort* make_primary(const Engine::PrimaryStart& start);
  std::int64_t write_window_ms() const;
  void note_lease_written();

  MemberConfig config_;
  Engine& engine_;
  std::unique_ptr<Lease> lease_;
  std::unique_ptr<NatsLink> link_;  // for reading the stream's position
  std::unique_ptr<StreamFollower> follower_;
  std::unique_ptr<StreamPublisher> publisher_;
  std::unique_ptr<SnapshotShipper> shipper_;  // publishes snapshots while primary
  std::atomic<bool> primary_{false};
  std::atomic<bool> lease_lost_{false};
  std::atomic<bool> follow_failed_{false};
  std::atomic<bool> promotion_asked_{false};
  std::atomic<bool> promotion_failed_{false};
  // The publisher's write guard (PublisherConfig::writes_until_ms): the last lease write plus
  // write_window_ms().
  std::atomic<std::int64_t> writes_until_ms_{0};

  mutable std::mutex url_mu_;
  std::string primary_url_;  // under url_mu_
  std::string advertised_;   // under url_mu_: a holder value not yet given to the lease

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace paycore::repl
