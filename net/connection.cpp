#include "net/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "net/answer_token.hpp"
#include "net/server.hpp"

namespace paycore::net {
namespace {

constexpr std::size_t in_initial_bytes = 4096;
constexpr std::size_t out_initial_bytes = 4096;
constexpr std::size_t in_kept_bytes_max = 64 * 1024;  // a closed connection keeps at most this
constexpr std::size_t accepts_per_wake_max = 64;
constexpr std::size_t reads_per_wake_max = 4;
constexpr std::uint32_t connections_per_thread_max = 1u << answer_token_connection_bits;

std::size_t in_bytes_max(const ServerConfig& config) {
  return config.http.header_bytes_max + config.http.body_bytes_max;
}

}  // namespace

Connection::Connection(std::uint32_t index_, const ServerConfig& config)
    : index(index_),
      parser(config.http),
      out(config.out_bytes_max, out_initial_bytes),
      slots(config.pipeline_depth) {}

ConnectionTable::ConnectionTable(const ServerConfig& config, ServerMetrics& metrics,
                                 std::atomic<std::uint32_t>& connections_open,
                                 const std::unique_ptr<TlsContext>& tls)
    : config_(config),
      metrics_(metrics),
      connections_open_(connections_open),
      tls_(tls) {}

ConnectionTable::~ConnectionTable() {
  for (auto& c : connections_) {
    if (c && c->ssl != nullptr) tls_close(c->ssl);
    if (c && c->fd >= 0) ::close(c->fd);
  }
}

void ConnectionTable::accept_all(int listen_fd, std::string_view refusal, std::int64_t now_ms) {
  for (std::size_t i = 0; i < accepts_per_wake_max; ++i) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log_line(LogLevel::warn, "accept failed", {{"error", std::strerror(errno)}});
      }
      return;
    }
    if (over_limit()) {
      // Over TLS there is no session to answer in: the connection is only closed.
      [[maybe_unused]] const ssize_t sent =
          tls_ ? 0 : ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      ServerMetrics::bump(metrics_.connections_refused);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!adopt(fd, now_ms)) continue;
    ++open_count_;
    ServerMetrics::bump(metrics_.connections_accepted);
  }
}

// Counts the new connection against the shared limit; true (and not counted) when over it.
bool ConnectionTable::over_limit() {
  const std::uint32_t open = connections_open_.fetch_add(1, std::memory_order_relaxed);
  const bool table_full =
      free_connections_.empty() && connections_.size() >= connections_per_thread_max;
  if (open < config_.connections_max && !table_full) return false;
  connections_open_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

// Gives `fd` a connection (TLS session, epoll registration); false (fd closed, the count given
// back) when either fails.
bool ConnectionTable::adopt(int fd, std::int64_t now_ms) {
  const std::uint32_t index = take_free_index();
  Connection& c = *connections_[index];
  PAYCORE_ASSERT_LT(c.fd, 0);
  PAYCORE_ASSERT_EQ(c.count, 0u);
  PAYCORE_ASSERT(c.ssl == nullptr);
  if (tls_) {
    c.ssl = tls_->new_session(fd);
    if (c.ssl == nullptr) {
      ::close(fd);
      release_index(index);
      return false;
    }
  }
  c.fd = fd;
  c.last_active_ms = now_ms;
  // Over TLS the handshake must complete within the header timeout, like a request's head.
  c.request_started_ms = c.ssl != nullptr ? now_ms : 0;
  c.tls_read_wants_write = false;
  c.closing = c.peer_closed = c.close_after_flush = false;
  c.continue_state = ContinueState::none;
  c.interest = EPOLLIN;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = index;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    tls_close(c.ssl);
    c.ssl = nullptr;
    ::close(fd);
    c.fd = -1;
    release_index(index);
    return false;
  }
  return true;
}

std::uint32_t ConnectionTable::take_free_index() {
  if (!free_connections_.empty()) {
    const std::uint32_t index = free_connections_.back();
    free_connections_.pop_back();
    return index;
  }
  const auto index = static_cast<std::uint32_t>(connections_.size());
  connections_.push_back(std::make_unique<Connection>(index, config_));
  return index;
}

void ConnectionTable::release_index(std::uint32_t index) {
  free_connections_.push_back(index);
  connections_open_.fetch_sub(1, std::memory_order_relaxed);
}

void ConnectionTable::grow_input(Connection& c) {
  const std::size_t in_max = in_bytes_max(config_);
  const std::size_t grown = c.in_capacity == 0           ? in_initial_bytes
                            : c.in_capacity * 2 > in_max ? in_max
                                                         : c.in_capacity * 2;
  std::unique_ptr<char[]> bigger(new char[grown]);
  if (c.in_end > 0) std::memcpy(bigger.get(), c.in.get(), c.in_end);
  c.in = std::move(bigger);
  c.in_capacity = grown;
}

void ConnectionTable::read_input(Connection& c, std::int64_t now_ms) {
  for (std::size_t round = 0; round < reads_per_wake_max; ++round) {
    if (c.in_begin > 0 && (c.in_begin == c.in_end || c.in_end == c.in_capacity)) {
      std::memmove(c.in.get(), c.in.get() + c.in_begin, c.in_end - c.in_begin);
      c.in_end -= c.in_begin;
      c.in_begin = 0;
    }
    if (c.in_end == c.in_capacity) {
      if (c.in_capacity >= in_bytes_max(config_)) return;  // full: parse first (reading paused)
      grow_input(c);
    }
    const std::size_t room = c.in_capacity - c.in_end;
    const ssize_t n = receive(c, c.in.get() + c.in_end, room);
    if (n > 0) {
      c.in_end += static_cast<std::size_t>(n);
      c.last_active_ms = now_ms;
      if (c.request_started_ms == 0) c.request_started_ms = now_ms;
      const bool drained = c.ssl == nullptr || !tls_has_pending(c.ssl);
      if (static_cast<std::size_t>(n) < room && drained) return;
      continue;
    }
    if (n == 0) {
      c.peer_closed = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    close(c);
    return;
  }
}

// recv(2) or TLS (net/tls.hpp) with recv's results: bytes, 0 at the peer's close, -1 with errno
// EAGAIN to wait for the socket, any other errno to close.
ssize_t ConnectionTable::receive(Connection& c, char* data, std::size_t size) {
  if (c.ssl == nullptr) return ::recv(c.fd, data, size, 0);
  const TlsIoResult r = tls_read(c.ssl, data, size);
  c.tls_read_wants_write = r.status == TlsIo::want_write;
  switch (r.status) {
    case TlsIo::ok: return static_cast<ssize_t>(r.bytes);
    case TlsIo::want_read:
    case TlsIo::want_write: errno = EAGAIN; return -1;
    case TlsIo::closed: return 0;
    case TlsIo::failed: break;
  }
  ServerMetrics::bump(metrics_.protocol_errors);  // garbage, an old TLS version, a bad record
  errno = EPROTO;
  return -1;
}

// send(2) or TLS, with send's results. A TLS write that waits for input (a TLS 1.3 key update)
// is retried on the next event: the connection is readable whenever it is waiting for input.
ssize_t ConnectionTable::transmit(Connection& c, const char* data, std::size_t size) {
  if (c.ssl == nullptr) return ::send(c.fd, data, size, MSG_NOSIGNAL);
  const TlsIoResult r = tls_write(c.ssl, data, size);
  switch (r.status) {
    case TlsIo::ok: return static_cast<ssize_t>(r.bytes);
    case TlsIo::want_read:
    case TlsIo::want_write: errno = EAGAIN; return -1;
    case TlsIo::closed:
    case TlsIo::failed: break;
  }
  errno = EPIPE;
  return -1;
}

void ConnectionTable::send_output(Connection& c, std::int64_t now_ms) {
  while (!c.out.empty()) {
    const std::string_view pending = c.out.view();
    const ssize_t n = transmit(c, pending.data(), pending.size());
    if (n > 0) {
      c.out.consume(static_cast<std::size_t>(n));
      c.last_active_ms = now_ms;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close(c);
    return;
  }
}

void ConnectionTable::update_interest(Connection& c) {
  const bool in_room = c.in_begin > 0 || c.in_end < in_bytes_max(config_);
  const bool want_in = !c.closing && !c.peer_closed && c.count < c.slots.size() && in_room &&
                       c.out.size() < out_high_water_bytes;
  std::uint32_t interest = 0;
  if (want_in) interest |= EPOLLIN;
  if (!c.out.empty() || c.tls_read_wants_write) interest |= EPOLLOUT;
  // Input already decrypted inside OpenSSL announces itself with no socket event.
  if (want_in && c.ssl != nullptr && !c.tls_pending && tls_has_pending(c.ssl)) {
    c.tls_pending = true;
    tls_pending_.push_back(c.index);
  }
  if (interest == c.interest) return;
  epoll_event ev{};
  ev.events = interest;
  ev.data.u64 = c.index;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) == 0) c.interest = interest;
}

std::vector<std::uint32_t> ConnectionTable::take_tls_pending() {
  std::vector<std::uint32_t> pending;
  pending.swap(tls_pending_);
  for (const std::uint32_t index : pending) connections_[index]->tls_pending = false;
  return pending;
}

void ConnectionTable::close(Connection& c) {
  if (c.fd < 0) return;
  tls_close(c.ssl);
  c.ssl = nullptr;
  c.tls_read_wants_write = false;
  ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.generation = next_generation(c.generation);
  if (on_close_) on_close_(c);
  for (Slot& slot : c.slots) {
    slot.state = SlotState::free;
    slot.batch.entries.clear();
  }
  c.head = c.count = 0;
  c.in_begin = c.in_end = 0;
  if (c.in_capacity > in_kept_bytes_max) {  // give back what a large request made it grow to
    c.in.reset();
    c.in_capacity = 0;
  }
  c.parser.reset();
  c.continue_state = ContinueState::none;
  c.out.clear();
  c.interest = 0;
  free_connections_.push_back(c.index);
  PAYCORE_ASSERT_GT(open_count_, 0u);
  --open_count_;
  connections_open_.fetch_sub(1, std::memory_order_relaxed);
}

void ConnectionTable::close_timed_out(std::int64_t now_ms) {
  for (auto& owned : connections_) {
    if (!owned || owned->fd < 0) continue;
    Connection& c = *owned;
    if (c.count > 0) continue;  // waiting for the engine, not for the client
    const bool header_late =
        c.request_started_ms != 0 && now_ms - c.request_started_ms > config_.header_timeout_ms;
    const bool idle = now_ms - c.last_active_ms > config_.idle_timeout_ms;
    if (header_late || idle) {
      ServerMetrics::bump(metrics_.connections_timed_out);
      close(c);
    }
  }
}

}  // namespace paycore::net
