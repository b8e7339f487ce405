#pragma once
// The connections of one I/O thread and their I/O: accepting, reading, sending (plain or TLS),
// the epoll interest of each socket, closing and timeouts. Nothing here decides what a request
// means (net/decide.hpp) or renders an answer (net/render.hpp): this unit moves bytes between
// sockets and each connection's buffers. Single-threaded: one ConnectionTable per I/O thread.

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "net/http_parser.hpp"
#include "net/metrics.hpp"
#include "net/response.hpp"
#include "net/slot.hpp"
#include "net/tls.hpp"

namespace paycore::net {

struct ServerConfig;

/// Unsent answers above this pause reading and parsing (the client is not reading).
inline constexpr std::size_t out_high_water_bytes = 1u << 20;

/// The request being received asked for `Expect: 100-continue` (RFC 9110 10.1.1).
enum class ContinueState : std::uint8_t {
  none,     // not asked, or not yet looked at
  due,      // send 100 Continue once every earlier answer is written (answers stay in order)
  sent,     // sent; the body is on its way
  settled,  // nothing to send: the body had already started, or a final answer went instead
};

/// One client connection: its socket, input buffer (parsed in place), pipeline of slots and
/// output buffer. Reused for a new client after close (the generation tells them apart).
struct Connection {
  Connection(std::uint32_t index_, const ServerConfig& config);

  int fd = -1;
  std::uint32_t index = 0;
  std::uint32_t generation = 0;  // answer_token_generation_bits wide (net/answer_token.hpp)
  std::unique_ptr<char[]> in;
  std::size_t in_capacity = 0;
  std::size_t in_begin = 0;  // first byte not yet consumed by a complete request
  std::size_t in_end = 0;
  HttpRequestParser parser;
  HttpRequest request;
  OutBuffer out;
  std::vector<Slot> slots;  // a ring: `count` slots from `head`
  std::uint32_t head = 0;
  std::uint32_t count = 0;
  std::int64_t last_active_ms = 0;
  std::int64_t request_started_ms = 0;  // 0: no partial request buffered
  bool closing = false;                 // parse nothing more (error, Connection: close, shutdown)
  bool peer_closed = false;             // read returned 0
  bool close_after_flush = false;       // close once `out` is sent
  ContinueState continue_state = ContinueState::none;  // of the request being received
  bool dirty = false;                                  // listed in IoThread::dirty_
  bool pending = false;       // in IoThread::pending_: complete requests left behind by a budget
  bool journal_wait = false;  // listed in IoThread::journal_waiters_
  SSL* ssl = nullptr;         // TLS session, or null for plain HTTP
  bool tls_read_wants_write = false;  // the handshake waits for the socket to be writable
  bool tls_pending = false;           // listed in ConnectionTable's TLS pending list
  std::uint32_t interest = 0;         // the epoll events registered for fd
};

/// The connections of one I/O thread, indexed by the `connection` of an AnswerToken.
class ConnectionTable {
 public:
  /// `tls` is read at each accept (null: plain HTTP); `connections_open` is the count shared
  /// by every I/O thread against config.connections_max.
  ConnectionTable(const ServerConfig& config, ServerMetrics& metrics,
                  std::atomic<std::uint32_t>& connections_open,
                  const std::unique_ptr<TlsContext>& tls);
  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  /// The epoll set that connection sockets join (the thread's own; the table does not own it).
  void set_epoll_fd(int epoll_fd) { epoll_fd_ = epoll_fd; }

  /// Accepts up to accepts_per_wake_max connections from `listen_fd`; a connection over the
  /// limits gets `refusal` (plain HTTP only) and is closed.
  void accept_all(int listen_fd, std::string_view refusal, std::int64_t now_ms);
  /// Reads what the socket has (up to reads_per_wake_max reads, growing the input buffer up
  /// to header + body limits); closes the connection on a read error.
  void read_input(Connection& c, std::int64_t now_ms);
  /// Sends `out` until it is empty or the socket is full; closes on a send error.
  void send_output(Connection& c, std::int64_t now_ms);
  /// Registers the events the connection waits for now (input while it takes requests,
  /// output while it has bytes to send); lists it if OpenSSL holds decrypted input.
  void update_interest(Connection& c);
  /// Closes the socket, bumps the generation (answers still due become stale) and frees it,
  /// after handing it to the on_close callback while its slots are still in place.
  void close(Connection& c);
  /// Called by close() with the connection's slots still as they were (IoThread: nonces of
  /// requests that will never be answered on it, net/io_thread_requests.cpp).
  void set_on_close(std::function<void(Connection&)> on_close) { on_close_ = std::move(on_close); }
  /// Closes every connection past its header or idle timeout (none waiting for the engine).
  void close_timed_out(std::int64_t now_ms);
  /// Connections with decrypted input inside OpenSSL (listed by update_interest), taken.
  std::vector<std::uint32_t> take_tls_pending();

  /// The connection at `index`, or null if there is none (a stale token may name any index).
  Connection* find(std::uint32_t index) {
    return index < connections_.size() ? connections_[index].get() : nullptr;
  }
  Connection& at(std::uint32_t index) { return *connections_[index]; }
  const std::vector<std::unique_ptr<Connection>>& all() { return connections_; }
  bool tls_pending_empty() const { return tls_pending_.empty(); }
  std::uint32_t open_count() const { return open_count_; }

 private:
  bool over_limit();
  bool adopt(int fd, std::int64_t now_ms);
  std::uint32_t take_free_index();
  void release_index(std::uint32_t index);
  void grow_input(Connection& c);
  ssize_t receive(Connection& c, char* data, std::size_t size);
  ssize_t transmit(Connection& c, const char* data, std::size_t size);

  const ServerConfig& config_;
  ServerMetrics& metrics_;
  std::atomic<std::uint32_t>& connections_open_;
  const std::unique_ptr<TlsContext>& tls_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::uint32_t> free_connections_;
  std::vector<std::uint32_t> tls_pending_;  // decrypted input waiting inside OpenSSL
  std::uint32_t open_count_ = 0;
  std::function<void(Connection&)> on_close_;
};

}  // namespace paycore::net
