#pragma once
// NATS JetStream servers for the replication suites: 1 or 3 `nats-server` processes on free
// 127.0.0.1 ports, each with JetStream in a directory of the caller's, started, killed, paused
// and restarted by the test. Every process this class starts is killed (SIGKILL, by PID) and
// waited for by its destructor, and, should the test process die first, by the kernel
// (PR_SET_PDEATHSIG), so no server outlives the suite.
//
// Files, for node i (0-based, also in the server names n0, n1, n2): DIR/n<i>.conf (its
// configuration), DIR/n<i>.log (stdout and stderr; start() begins it afresh, restart() appends),
// DIR/n<i>/ (its JetStream store). Each node uses three ports on 127.0.0.1: clients, cluster
// routes (3 nodes only) and HTTP monitoring, picked below the kernel's ephemeral port range so
// that no client connection can take a killed node's port before restart() binds it again.
//
// Disk sync: nats-server 2.9.10 (Debian bookworm) has no JetStream sync option (it refuses
// `jetstream { sync_interval: always }` with `unknown field "sync_interval"`); its stores fsync
// on timers (stream data every 2 min, stream Raft log every 5 min). A server that accepts
// `sync_interval: always` (2.10 and later) is given it: see sync_always_supported().
//
// Not thread-safe: one thread drives a cluster. Start it from a thread that outlives it (the
// test's main thread): the kernel kills the servers when the thread that forked them exits.
//
//   paycore::testing::NatsCluster cluster;
//   ASSERT_TRUE(cluster.start(dir, 3)) << cluster.error();
//   connect(cluster.urls());  // "nats://127.0.0.1:P0,nats://127.0.0.1:P1,nats://127.0.0.1:P2"
//   cluster.kill(cluster.meta_leader());

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>

namespace paycore::testing {

class NatsCluster {
 public:
  static constexpr int nodes_max = 3;
  static constexpr int ready_timeout_ms_default = 30'000;

  /// `ready_timeout_ms` bounds each wait for readiness in start() and restart() (> 0).
  explicit NatsCluster(int ready_timeout_ms = ready_timeout_ms_default);
  /// Kills (SIGKILL) every server still running, paused ones too, and waits for each.
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  /// True if a `nats-server` executable is found: $PAYCORE_NATS_SERVER if set, else the first
  /// on $PATH, else /usr/local/sbin or /usr/sbin (Debian's place, often not on a user's PATH).
  /// Suites call it to skip (GTEST_SKIP) on machines without the server.
  static bool available();
  /// True if the server accepts `jetstream { sync_interval: always }` (fsync before every
  /// acknowledgement). Probed once per process with `nats-server -t`; false for 2.9.10.
  static bool sync_always_supported();

  /// Starts `nodes` servers (1, or 3 as one JetStream cluster named "paycore") with their
  /// files in `dir` (created if missing; a store left there by an earlier run is reused), and
  /// waits until each answers its health check with JetStream enabled and, for 3, until every
  /// node follows one meta leader that is running. Ports are picked free at run time; a start
  /// that loses a port race is retried with new ports (3 attempts). False on failure, with
  /// error() saying why (and the tail of the failing node's log); the servers are then killed.
  /// Call once per object.
  [[nodiscard]] bool start(const std::string& dir, int nodes);

  /// The client URLs of every node, running or not, in index order, comma-separated:
  /// "nats://127.0.0.1:P0,nats://127.0.0.1:P1". natsConnection_ConnectTo takes it as is;
  /// split at the commas for natsOptions_SetServers. Empty before start().
  std::string urls() const;
  /// "nats://127.0.0.1:P", the client URL of node i (0 <= i < nodes()).
  std::string url(int i) const;
  /// The number of nodes start() was given; 0 before start().
  int nodes() const { return nodes_count_; }
  /// Node i's client port and HTTP monitoring port (/varz, /jsz, /healthz).
  std::uint16_t client_port(int i) const;
  std::uint16_t monitor_port(int i) const;
  /// DIR/n<i>.log: what node i wrote since start(), across its restarts.
  std::string log_path(int i) const;
  /// True while node i's process exists (paused or not).
  bool running(int i) const;

  /// SIGKILL to node i and waits for its exit: a crash, nothing flushed. No-op if not running.
  void kill(int i);
  /// SIGTERM to node i (SIGCONT too if paused), waits up to 10 s for a clean exit, then
  /// SIGKILL. No-op if not running.
  void stop(int i);
  /// Starts node i again after kill() or stop(): same ports, same configuration, same store.
  /// Waits as start() does for that node (its health, and for 3 nodes a running meta leader
  /// that it follows). False with error() if it exits or is not ready in time; a node that
  /// is still running is a programming error (asserted).
  [[nodiscard]] bool restart(int i);
  /// SIGSTOP / SIGCONT to node i, returning once the process is stopped / continued: a server
  /// that hangs (its sockets stay open, nothing answers). Node i must be running.
  void pause(int i);
  void resume(int i);

  /// The index of the node that the running, unpaused nodes name as JetStream meta leader, if
  /// that node is itself running and not paused; -1 otherwise (and for a single node, which
  /// has no meta group). Survivors keep naming a killed leader until they elect another
  /// (seconds), so poll until the answer is what the test needs.
  int meta_leader() const;

  /// Why the last start() or restart() failed; empty after a success.
  const std::string& error() const { return error_; }

 private:
  struct Node {
    std::uint16_t client_port = 0;
    std::uint16_t cluster_port = 0;
    std::uint16_t monitor_port = 0;
    pid_t pid = -1;
    bool paused = false;
  };

  bool start_once(int nodes);
  bool pick_ports();
  bool write_config(int i) const;
  bool spawn(int i);
  bool wait_node_ready(int i);
  bool wait_cluster_ready();
  bool node_exited(int i);
  bool fail(int i, const std::string& what);
  std::string config_path(int i) const;
  void check_index(int i) const;

  int ready_timeout_ms_;
  std::string dir_;
  std::string server_path_;
  int nodes_count_ = 0;
  std::array<Node, nodes_max> nodes_{};
  std::string error_;
};

}  // namespace paycore::testing
