#pragma once
// A TCP proxy on 127.0.0.1 that can cut the link it carries, for the partition tests (issue 14;
// docs/replication.md "What is lost under which failure"). A client is given port() instead of
// the server's; the proxy connects to the server for each connection it accepts and copies the
// bytes both ways.
//
// partition() makes it a blackhole, as a network that stops delivering would: from then on the
// bytes either side sends are read and dropped, no connection is closed (neither side sees a
// FIN or a reset: its peer just stops answering; a side the other end closes is closed on that
// side only), and a new connection is accepted but never forwarded (its connect succeeds, then
// silence). heal() closes every connection that was blackholed (both sides, as the timeouts of
// a real network would end them sooner or later) and forwards new ones again. Both return once
// the proxy's thread has applied them: no byte is forwarded after partition() returns.
//
// Not a firewall: loopback, one process, TCP only. What it cuts is exactly the connections made
// through it; a process also given the server's own address is not partitioned.
//
// Bounded: one thread polls every socket with a timeout and is woken for control requests; the
// destructor stops and joins it, and every socket is closed. Thread-safe: partition(), heal()
// and the counters may be called from any thread; the object must outlive them.
//
//   paycore::testing::TcpBlackhole proxy(nats.client_port(0));
//   ASSERT_TRUE(proxy.ok()) << proxy.error();
//   start_process("--nats-url", "nats://" + proxy.address());
//   ASSERT_TRUE(proxy.partition());
//   ...
//   ASSERT_TRUE(proxy.heal());

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace paycore::testing {

class TcpBlackhole {
 public:
  /// How long partition() and heal() wait for the proxy's thread to apply them.
  static constexpr int control_timeout_ms = 5'000;

  /// Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:target_port. ok() is false
  /// (with error()) if the listening socket or the thread could not be set up.
  explicit TcpBlackhole(std::uint16_t target_port);
  /// Stops and joins the thread; closes every socket.
  ~TcpBlackhole();
  TcpBlackhole(const TcpBlackhole&) = delete;
  TcpBlackhole& operator=(const TcpBlackhole&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::uint16_t port() const { return port_; }
  /// "127.0.0.1:<port()>".
  std::string address() const;

  /// Drops everything from now on (see above). True once applied (false only if the thread
  /// did not answer within control_timeout_ms).
  [[nodiscard]] bool partition();
  /// Closes the blackholed connections and forwards again. True once applied.
  [[nodiscard]] bool heal();

  /// Bytes written to the other side, and bytes read and dropped by the blackhole (including
  /// what was read but not yet written when partition() came).
  std::uint64_t bytes_forwarded() const { return bytes_forwarded_.load(); }
  std::uint64_t bytes_dropped() const { return bytes_dropped_.load(); }
  /// Connections accepted while partitioned (a client reconnecting into the blackhole).
  std::uint64_t connections_blackholed() const { return connections_blackholed_.load(); }

 private:
  // One proxied connection: side 0 the accepted client, side 1 the connection to the target.
  struct Link {
    int fds[2] = {-1, -1};
    std::string pending[2];  // read from side i, not yet written to side 1 - i
    bool blackholed = false;
  };

  [[nodiscard]] bool request_mode(bool partitioned);
  void run();
  bool apply_control();
  void blackhole_all();
  void close_blackholed();
  void poll_once();
  void accept_one();
  void service(Link& link, int side, short revents);
  void receive(Link& link, int side);
  void flush(Link& link, int to_side);
  static void close_side(Link& link, int side);
  static void close_link(Link& link);
  void wake() const;

  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: control requests and the stop
  std::string error_;
  std::vector<Link> links_;  // the proxy's thread only

  std::mutex mu_;  // guards the control state below
  std::condition_variable applied_cv_;
  bool stopping_ = false;
  bool want_partitioned_ = false;
  bool partitioned_ = false;
  std::uint64_t requested_ = 0;  // control requests made
  std::uint64_t applied_ = 0;    // control requests the thread has applied

  std::atomic<std::uint64_t> bytes_forwarded_{0};
  std::atomic<std::uint64_t> bytes_dropped_{0};
  std::atomic<std::uint64_t> connections_blackholed_{0};
  std::thread thread_;  // last: started once everything above is set up
};

}  // namespace paycore::testing
