#include "tests/webhooks/test_receiver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "base/time.hpp"

namespace paycore::webhooks::test {
namespace {

int listen_on(std::uint16_t port, std::uint16_t* bound_port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    throw std::runtime_error("bind 127.0.0.1:" + std::to_string(port) + " errno " + std::to_string(errno));
  }
  if (listen(fd, 128) != 0) throw std::runtime_error("listen");
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *bound_port = ntohs(address.sin_port);
  return fd;
}

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Parses the head of a request ("POST /hook HTTP/1.1\r\nName: value\r\n...").
ReceivedRequest parse_head(const std::string& head) {
  ReceivedRequest request;
  std::size_t line_end = head.find("\r\n");
  const std::string first = head.substr(0, line_end);
  request.method = first.substr(0, first.find(' '));
  const std::size_t target_start = first.find(' ') + 1;
  request.target = first.substr(target_start, first.find(' ', target_start) - target_start);
  std::size_t at = line_end + 2;
  while (at < head.size()) {
    line_end = head.find("\r\n", at);
    if (line_end == std::string::npos) line_end = head.size();
    const std::string line = head.substr(at, line_end - at);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::size_t value_start = colon + 1;
      while (value_start < line.size() && line[value_start] == ' ') ++value_start;
      request.headers[lowercase(line.substr(0, colon))] = line.substr(value_start);
    }
    at = line_end + 2;
  }
  return request;
}

}  // namespace

TestReceiver::TestReceiver(std::function<Reply(std::size_t)> reply, std::uint16_t port,
                           std::string redirect_to)
    : reply_(std::move(reply)), redirect_to_(std::move(redirect_to)) {
  listen_fd_ = listen_on(port, &port_);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

TestReceiver::~TestReceiver() { stop(); }

std::string TestReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

bool TestReceiver::stopping() const {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

void TestReceiver::stop() {
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (const int fd : connection_fds_) shutdown(fd, SHUT_RDWR);
  }
  changed_.notify_all();
  accept_thread_.join();
  for (std::thread& thread : connection_threads_) thread.join();
  close(listen_fd_);
}

void TestReceiver::accept_loop() {
  while (!stopping()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const std::lock_guard lock(mutex_);
    if (stopping_) {
      close(fd);
      break;
    }
    connection_fds_.push_back(fd);
    connection_threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void TestReceiver::serve(int fd) {
  std::string buffer;
  char chunk[4096];
  while (!stopping()) {
    const std::size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const ssize_t got = read(fd, chunk, sizeof chunk);
      if (got <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(got));
      continue;
    }
    ReceivedRequest request = parse_head(buffer.substr(0, head_end));
    const std::size_t body_bytes = std::strtoul(request.headers["content-length"].c_str(), nullptr, 10);
    if (buffer.size() < head_end + 4 + body_bytes) {
      const ssize_t got = read(fd, chunk, sizeof chunk);
      if (got <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(got));
      continue;
    }
    request.body = buffer.substr(head_end + 4, body_bytes);
    buffer.erase(0, head_end + 4 + body_bytes);
    request.received_at_ns = monotonic_ns();
    std::size_t index = 0;
    {
      const std::lock_guard lock(mutex_);
      index = requests_.size();
      requests_.push_back(std::move(request));
    }
    changed_.notify_all();
    const Reply reply = reply_(index);
    if (reply == Reply::kHang) {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_; });
      break;
    }
    std::string response =
        reply == Reply::kOk ? "HTTP/1.1 200 OK\r\n"
        : reply == Reply::kServerError ? "HTTP/1.1 500 Internal Server Error\r\n"
                                       : "HTTP/1.1 302 Found\r\nLocation: " + redirect_to_ + "\r\n";
    response += "Content-Length: 2\r\n\r\nok";
    if (write(fd, response.data(), response.size()) < 0) break;
  }
  const std::lock_guard lock(mutex_);  // stop() must not shut down a number reused meanwhile
  std::erase(connection_fds_, fd);
  close(fd);
}

std::vector<ReceivedRequest> TestReceiver::requests() const {
  const std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t TestReceiver::count() const {
  const std::lock_guard lock(mutex_);
  return requests_.size();
}

bool TestReceiver::wait_for_count(std::size_t count, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return requests_.size() >= count; });
}

std::uint16_t unused_port() {
  std::uint16_t port = 0;
  const int fd = listen_on(0, &port);
  close(fd);
  return port;
}

}  // namespace paycore::webhooks::test
