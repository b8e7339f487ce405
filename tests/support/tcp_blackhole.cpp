#include "tests/support/tcp_blackhole.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace paycore::testing {
namespace {

// The poll timeout: a control request wakes the thread at once; this only bounds how long a
// lost wake-up could delay it.
constexpr int poll_timeout_ms = 100;
constexpr std::size_t chunk_bytes = 64 * 1024;
constexpr int listen_backlog = 64;

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

void set_nonblocking_nodelay(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  // Small NATS messages (pings, acks) must not wait for Nagle: the proxy adds no delay.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// A blocking connect to 127.0.0.1:port (on the loopback it completes or is refused at once).
int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_in address = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TcpBlackhole::TcpBlackhole(std::uint16_t target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const sockaddr_in address = loopback(0);
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  if (listen_fd_ < 0 || wake_fd_ < 0 ||
      ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, listen_backlog) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    error_ = std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno);
    return;
  }
  port_ = ntohs(bound.sin_port);
  thread_ = std::thread([this] { run(); });
}

TcpBlackhole::~TcpBlackhole() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();  // the thread closes every link as it ends
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::string TcpBlackhole::address() const { return "127.0.0.1:" + std::to_string(port_); }

bool TcpBlackhole::partition() { return request_mode(true); }
bool TcpBlackhole::heal() { return request_mode(false); }

// Asks the thread for the mode and waits until it has applied it: sockets are touched by that
// thread only (a descriptor closed here could be reused before its poll() saw it go).
bool TcpBlackhole::request_mode(bool partitioned) {
  if (!ok()) return false;
  std::unique_lock lock(mu_);
  want_partitioned_ = partitioned;
  const std::uint64_t request = ++requested_;
  lock.unlock();
  wake();
  lock.lock();
  return applied_cv_.wait_for(lock, std::chrono::milliseconds(control_timeout_ms),
                              [&] { return applied_ >= request; });
}

void TcpBlackhole::wake() const {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void TcpBlackhole::run() {
  while (apply_control()) poll_once();
  for (Link& link : links_) close_link(link);
  links_.clear();
}

// Applies the mode last asked for, before any further byte moves. False once stopping.
bool TcpBlackhole::apply_control() {
  const std::lock_guard lock(mu_);
  if (stopping_) return false;
  if (applied_ == requested_) return true;
  if (want_partitioned_ && !partitioned_) blackhole_all();
  if (!want_partitioned_ && partitioned_) close_blackholed();
  partitioned_ = want_partitioned_;
  applied_ = requested_;
  applied_cv_.notify_all();
  return true;
}

// What was read but not yet written is dropped too: it was still "on the wire".
void TcpBlackhole::blackhole_all() {
  for (Link& link : links_) {
    link.blackholed = true;
    for (std::string& bytes : link.pending) {
      bytes_dropped_ += bytes.size();
      bytes.clear();
    }
  }
}

void TcpBlackhole::close_blackholed() {
  for (Link& link : links_) {
    if (link.blackholed) close_link(link);
  }
}

void TcpBlackhole::poll_once() {
  std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
  std::vector<std::pair<std::size_t, int>> owners;  // (link, side) of fds[2...]
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const Link& link = links_[i];
    for (int side = 0; side < 2; ++side) {
      if (link.fds[side] < 0) continue;
      // Forwarding, a side is read only once what it sent before has been written on (so a
      // slow reader slows the writer, as TCP would); blackholed, it is always read.
      short events = 0;
      if (link.blackholed || link.pending[side].empty()) events |= POLLIN;
      if (!link.blackholed && !link.pending[1 - side].empty()) events |= POLLOUT;
      fds.push_back({link.fds[side], events, 0});
      owners.emplace_back(i, side);
    }
  }
  if (::poll(fds.data(), fds.size(), poll_timeout_ms) <= 0) return;
  if ((fds[0].revents & POLLIN) != 0) {
    std::uint64_t count = 0;
    (void)!::read(wake_fd_, &count, sizeof(count));
  }
  for (std::size_t k = 2; k < fds.size(); ++k) {
    if (fds[k].revents != 0)
      service(links_[owners[k - 2].first], owners[k - 2].second, fds[k].revents);
  }
  std::erase_if(links_, [](const Link& link) { return link.fds[0] < 0 && link.fds[1] < 0; });
  // Accepted after the erase: a control request applied meanwhile sees the new link.
  if ((fds[1].revents & POLLIN) != 0) accept_one();
}

void TcpBlackhole::accept_one() {
  const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  Link link;
  link.fds[0] = client;
  bool partitioned = false;
  {
    const std::lock_guard lock(mu_);
    partitioned = partitioned_;
  }
  if (partitioned) {  // accepted, then silence: never forwarded
    link.blackholed = true;
    ++connections_blackholed_;
  } else {
    link.fds[1] = connect_loopback(target_port_);
    if (link.fds[1] < 0) {  // the target is down: the client sees its connection end
      ::close(client);
      return;
    }
    set_nonblocking_nodelay(link.fds[1]);
  }
  set_nonblocking_nodelay(client);
  links_.push_back(std::move(link));
}

void TcpBlackhole::service(Link& link, int side, short revents) {
  if ((revents & POLLOUT) != 0 && link.fds[side] >= 0) flush(link, side);
  if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && link.fds[side] >= 0) receive(link, side);
}

void TcpBlackhole::receive(Link& link, int side) {
  char chunk[chunk_bytes];
  const ssize_t n = ::recv(link.fds[side], chunk, sizeof(chunk), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    // A partition carries no FIN or reset across: only the side that ended is closed.
    if (link.blackholed) {
      close_side(link, side);
    } else {
      close_link(link);
    }
    return;
  }
  if (link.blackholed) {
    bytes_dropped_ += static_cast<std::uint64_t>(n);
    return;
  }
  link.pending[side].append(chunk, static_cast<std::size_t>(n));
  flush(link, 1 - side);
}

// Writes what side 1 - to_side sent to to_side, as much as the socket takes now.
void TcpBlackhole::flush(Link& link, int to_side) {
  std::string& bytes = link.pending[1 - to_side];
  if (bytes.empty() || link.fds[to_side] < 0) return;
  const ssize_t n =
      ::send(link.fds[to_side], bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n < 0) {
    close_link(link);
    return;
  }
  bytes_forwarded_ += static_cast<std::uint64_t>(n);
  bytes.erase(0, static_cast<std::size_t>(n));
}

void TcpBlackhole::close_side(Link& link, int side) {
  if (link.fds[side] >= 0) ::close(link.fds[side]);
  link.fds[side] = -1;
}

void TcpBlackhole::close_link(Link& link) {
  close_side(link, 0);
  close_side(link, 1);
  link.pending[0].clear();
  link.pending[1].clear();
}

}  // namespace paycore::testing
