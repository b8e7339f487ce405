#include "recon/http_client.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::recon {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

StatusOr<HttpEndpoint> parse_http_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) {
    return Status::invalid_argument("the server URL must be http://HOST:PORT");
  }
  std::string_view rest = url.substr(scheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || rest.find('/') != std::string_view::npos) {
    return Status::invalid_argument("the server URL must be http://HOST:PORT (no path)");
  }
  HttpEndpoint endpoint;
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  endpoint.host = std::string(host);
  const std::string_view port = rest.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::invalid_argument("the server URL's port must be 1-65535");
  }
  endpoint.port = static_cast<std::uint16_t>(value);
  return endpoint;
}

HttpClient::HttpClient(HttpEndpoint endpoint, int timeout_ms)
    : endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms) {
  PAYCORE_ASSERT(timeout_ms > 0);
}

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  reused_ = false;
  buffer_.clear();
}

Status HttpClient::open() {
  PAYCORE_ASSERT(fd_ < 0);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(endpoint_.port);
  if (const int rc = ::getaddrinfo(endpoint_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::io_error(endpoint_.host + ": " + ::gai_strerror(rc));
  }
  int last_errno = 0;
  for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    last_errno = errno;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (fd_ < 0) {
    return Status::io_error("cannot connect to " + endpoint_.host + ":" + port + ": " + std::strerror(last_errno));
  }
  const int one = 1;
  (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Status::ok();
}

Status HttpClient::send_all(std::string_view bytes) {
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms_) <= 0) {
      return Status::io_error("timed out sending");
    }
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::io_error(std::string("send: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::ok();
}

Status HttpClient::fill() {
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, timeout_ms_);
  if (ready <= 0) {
    return Status::io_error(ready == 0 ? "timed out waiting for the response" : std::string("poll: ") + std::strerror(errno));
  }
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) {
    return Status::io_error(n == 0 ? "the server closed the connection" : std::string("recv: ") + std::strerror(errno));
  }
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return Status::ok();
}

Status HttpClient::read_response(HttpResult* out, bool* keep_alive) {
  std::size_t head_end = 0;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > header_bytes_max) {
      return Status::io_error("response headers too large");
    }
    PAYCORE_RETURN_IF_ERROR(fill());
  }
  const std::string_view head(buffer_.data(), head_end);
  if (!head.starts_with("HTTP/1.") || head.size() < 12) {
    return Status::io_error("not an HTTP/1.x response");
  }
  int status = 0;
  const auto [end, ec] = std::from_chars(head.data() + 9, head.data() + 12, status);
  if (ec != std::errc{} || end != head.data() + 12) {
    return Status::io_error("bad status line");
  }
  std::size_t content_length = 0;
  *keep_alive = true;
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos && at < head.size()) {
    const std::size_t line_end = std::min(head.find("\r\n", at + 2), head.size());
    const std::string_view line = head.substr(at + 2, line_end - at - 2);
    at = line_end == head.size() ? std::string_view::npos : line_end;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_spaces(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      const auto [e, c] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (c != std::errc{} || e != value.data() + value.size() || content_length > body_bytes_max) {
        return Status::io_error("bad Content-Length");
      }
    } else if (iequals(name, "connection") && iequals(value, "close")) {
      *keep_alive = false;
    }
  }
  const std::size_t body_at = head_end + 4;
  while (buffer_.size() < body_at + content_length) {
    PAYCORE_RETURN_IF_ERROR(fill());
  }
  out->status = status;
  out->body.assign(buffer_, body_at, content_length);
  buffer_.erase(0, body_at + content_length);
  return Status::ok();
}

StatusOr<HttpResult> HttpClient::request(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body) {
  std::string text;
  text.reserve(256 + body.size());
  text.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  text.append(endpoint_.host).append(":").append(std::to_string(endpoint_.port)).append("\r\n");
  for (const auto& [name, value] : headers) text.append(name).append(": ").append(value).append("\r\n");
  text.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n").append(body);
  // At most two tries: the second only when a reused connection turned out to be closed.
  Status failure;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) PAYCORE_RETURN_IF_ERROR(open());
    const bool was_reused = reused_;
    bool keep_alive = true;
    HttpResult result;
    failure = send_all(text);
    if (failure.is_ok()) failure = read_response(&result, &keep_alive);
    if (failure.is_ok()) {
      reused_ = true;
      if (!keep_alive) close();
      return result;
    }
    close();
    if (!was_reused) return failure;
  }
  return failure;
}

}  // namespace paycore::recon
