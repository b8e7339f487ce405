#include "bench/loadgen/engine.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "base/assert.hpp"

namespace paycore::loadgen {

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool parse_url(std::string_view url, Target* out, std::string* error) {
  constexpr std::string_view scheme = "http://";
  constexpr std::string_view tls_scheme = "https://";
  out->tls = url.substr(0, tls_scheme.size()) == tls_scheme;
  if (!out->tls && url.substr(0, scheme.size()) != scheme) {
    *error = "url must start with http:// or https:// (got '" + std::string(url) + "')";
    return false;
  }
  url.remove_prefix(out->tls ? tls_scheme.size() : scheme.size());
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (url.find('/') != std::string_view::npos) {
    *error = "url must be http://HOST:PORT without a path";
    return false;
  }
  std::string_view host = url;
  std::string_view port = out->tls ? "443" : "80";
  if (!url.empty() && url.front() == '[') {
    const std::size_t close = url.find(']');
    if (close == std::string_view::npos) {
      *error = "unterminated [IPv6] host in url";
      return false;
    }
    host = url.substr(1, close - 1);
    if (close + 1 < url.size()) {
      if (url[close + 1] != ':') {
        *error = "expected :PORT after [IPv6] host";
        return false;
      }
      port = url.substr(close + 2);
    }
  } else if (const std::size_t colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
    *error = "url needs a host and a port 1..65535";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string host_text(host);
  const std::string port_text(port);
  const int rc = ::getaddrinfo(host_text.c_str(), port_text.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    *error = "cannot resolve " + host_text + ": " + ::gai_strerror(rc);
    return false;
  }
  out->host = host_text;
  out->port = static_cast<std::uint16_t>(std::stoi(port_text));
  std::memcpy(&out->address, found->ai_addr, found->ai_addrlen);
  out->address_bytes = found->ai_addrlen;
  ::freeaddrinfo(found);
  return true;
}

void RunStats::merge(const RunStats& other) {
  latency.merge(other.latency);
  service.merge(other.service);
  for (std::size_t i = 0; i < ops_count; ++i) {
    OpStats& mine = ops[i];
    const OpStats& theirs = other.ops[i];
    mine.completed += theirs.completed;
    mine.ok += theirs.ok;
    mine.refused += theirs.refused;
    mine.errors += theirs.errors;
    mine.violations += theirs.violations;
    mine.latency.merge(theirs.latency);
  }
  for (const auto& [key, count] : other.statuses) statuses[key] += count;
  for (const auto& [key, count] : other.violations) violations[key] += count;
  for (const auto& [key, count] : other.errors) errors[key] += count;
  sent += other.sent;
  completed += other.completed;
  timeouts += other.timeouts;
  transport_errors += other.transport_errors;
  unsent += other.unsent;
  replayed += other.replayed;
  payments_accepted += other.payments_accepted;
  scheduled += other.scheduled;
  elapsed_ns = std::max(elapsed_ns, other.elapsed_ns);
}

std::uint64_t RunStats::errors_total() const {
  std::uint64_t total = timeouts + transport_errors + unsent;
  for (const OpStats& op : ops) total += op.errors;
  return total;
}

std::uint64_t RunStats::violations_total() const {
  std::uint64_t total = 0;
  for (const OpStats& op : ops) total += op.violations;
  return total;
}

namespace {

enum class ConnState : std::uint8_t { closed, connecting, idle, busy };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // https only; the handshake runs while the state is `connecting`
  ConnState state = ConnState::closed;
  bool watching_out = false;
  std::string out;
  std::size_t out_sent = 0;
  std::vector<char> in;
  std::size_t in_bytes = 0;
  Expect expect;
  std::int64_t intended_ns = 0;
  std::int64_t sent_ns = 0;
  std::int64_t reconnect_at_ns = 0;
};

constexpr std::uint64_t timer_key = UINT64_MAX;
constexpr std::int64_t reconnect_delay_ns = 10'000'000;  // after a failure: no busy retry loop
constexpr int wait_ms_max = 50;                          // timeouts are checked this often
constexpr std::size_t recv_chunk_bytes = 64 * 1024;
constexpr int epoll_events_max = 64;

class Engine {
 public:
  Engine(const EngineConfig& config, Workload& workload)
      : config_(config), workload_(workload), conns_(config.connections) {
    PAYCORE_ASSERT(config.connections > 0);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    PAYCORE_ASSERT_GE(epoll_fd_, 0);
    PAYCORE_ASSERT_GE(timer_fd_, 0);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = timer_key;
    const int added = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &event);
    PAYCORE_ASSERT_EQ(added, 0);
    limits_.body_bytes_max = config.response_body_bytes_max;
    if (config.target.tls) {
      tls_ = SSL_CTX_new(TLS_client_method());
      PAYCORE_ASSERT(tls_ != nullptr);
      SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
      if (!config.tls_ca_file.empty()) {
        SSL_CTX_set_verify(tls_, SSL_VERIFY_PEER, nullptr);
        tls_ca_ok_ = SSL_CTX_load_verify_locations(tls_, config.tls_ca_file.c_str(), nullptr) == 1;
      }
    }
  }
  ~Engine() {
    for (Conn& conn : conns_) {
      if (conn.ssl != nullptr) SSL_free(conn.ssl);
      if (conn.fd >= 0) ::close(conn.fd);
    }
    if (tls_ != nullptr) SSL_CTX_free(tls_);
    ::close(timer_fd_);
    ::close(epoll_fd_);
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  RunStats run();

 private:
  bool open_loop() const { return config_.rate_per_s > 0.0; }
  std::int64_t intended(std::uint64_t k) const {
    return start_ns_ + static_cast<std::int64_t>(std::llround(static_cast<double>(k) * interval_ns_));
  }
  bool issuing(std::int64_t now) const;
  void issue_to_idle(std::int64_t now);
  void open(std::size_t i, std::int64_t now);
  void close_conn(std::size_t i, std::int64_t now, bool failed);
  void fail(std::size_t i, std::int64_t now, const std::string& reason, bool timeout);
  void flush(std::size_t i, std::int64_t now);
  void watch_out(std::size_t i, bool on);
  void on_event(std::size_t i, std::uint32_t events, std::int64_t now);
  void on_readable(std::size_t i, std::int64_t now);
  void handshake(std::size_t i, std::int64_t now);
  ssize_t receive(Conn& conn, char* data, std::size_t size);
  ssize_t transmit(Conn& conn, const char* data, std::size_t size);
  void complete(std::size_t i, const HttpResponse& response, std::int64_t now);
  void violation_without_answer(std::size_t i, std::int64_t now, std::string_view reason);
  int wait_ms(std::int64_t now);

  const EngineConfig& config_;
  Workload& workload_;
  std::vector<Conn> conns_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  ResponseLimits limits_;
  SSL_CTX* tls_ = nullptr;  // https only
  bool tls_ca_ok_ = true;
  simdjson::dom::parser parser_;
  RunStats stats_;
  std::int64_t start_ns_ = 0;
  std::int64_t deadline_ns_ = 0;
  std::int64_t drain_deadline_ns_ = 0;
  double interval_ns_ = 0.0;
  std::uint64_t next_k_ = 0;      // open loop: next intended send
  std::uint64_t issued_ = 0;
  bool source_done_ = false;
  std::int64_t last_answer_ns_ = 0;
};

bool Engine::issuing(std::int64_t now) const {
  if (source_done_) return false;
  if (open_loop()) return next_k_ < stats_.scheduled && now < drain_deadline_ns_;
  return issued_ < config_.requests_max && now < deadline_ns_;
}

void Engine::open(std::size_t i, std::int64_t now) {
  Conn& conn = conns_[i];
  PAYCORE_ASSERT(conn.state == ConnState::closed);
  PAYCORE_ASSERT_LT(conn.fd, 0);
  const auto& address = config_.target.address;
  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  PAYCORE_ASSERT_GE(fd, 0);
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), config_.target.address_bytes);
  if (rc != 0 && errno != EINPROGRESS) {
    stats_.transport_errors += 1;
    stats_.errors[std::string("connect: ") + std::strerror(errno)] += 1;
    ::close(fd);
    conn.reconnect_at_ns = now + reconnect_delay_ns;
    return;
  }
  conn.fd = fd;
  // Over TLS a connection is `connecting` until its handshake is done (EPOLLOUT starts it).
  const bool wait = rc != 0 || tls_ != nullptr;
  conn.state = wait ? ConnState::connecting : ConnState::idle;
  conn.in_bytes = 0;
  epoll_event event{};
  event.events = EPOLLIN | (wait ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
  event.data.u64 = i;
  conn.watching_out = wait;
  const int added = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  PAYCORE_ASSERT_EQ(added, 0);
}

void Engine::close_conn(std::size_t i, std::int64_t now, bool failed) {
  Conn& conn = conns_[i];
  if (conn.ssl != nullptr) SSL_free(conn.ssl);
  conn.ssl = nullptr;
  if (conn.fd >= 0) ::close(conn.fd);  // also leaves the epoll set
  conn.fd = -1;
  conn.state = ConnState::closed;
  conn.in_bytes = 0;
  conn.reconnect_at_ns = failed ? now + reconnect_delay_ns : now;
}

void Engine::fail(std::size_t i, std::int64_t now, const std::string& reason, bool timeout) {
  Conn& conn = conns_[i];
  if (conn.state == ConnState::busy) {
    (timeout ? stats_.timeouts : stats_.transport_errors) += 1;
    stats_.errors[reason] += 1;
  } else if (conn.state == ConnState::connecting) {
    stats_.transport_errors += 1;
    stats_.errors[reason] += 1;
  }
  close_conn(i, now, true);
}

void Engine::watch_out(std::size_t i, bool on) {
  Conn& conn = conns_[i];
  if (conn.watching_out == on) return;
  epoll_event event{};
  event.events = EPOLLIN | (on ? static_cast<std::uint32_t>(EPOLLOUT) : 0u);
  event.data.u64 = i;
  const int modified = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &event);
  PAYCORE_ASSERT_EQ(modified, 0);
  conn.watching_out = on;
}

void Engine::flush(std::size_t i, std::int64_t now) {
  Conn& conn = conns_[i];
  while (conn.out_sent < conn.out.size()) {
    const ssize_t n = transmit(conn, conn.out.data() + conn.out_sent, conn.out.size() - conn.out_sent);
    if (n > 0) {
      conn.out_sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watch_out(i, true);
      return;
    } else {
      fail(i, now, std::string("send: ") + std::strerror(errno), false);
      return;
    }
  }
  watch_out(i, false);
}

void Engine::issue_to_idle(std::int64_t now) {
  for (std::size_t i = 0; i < conns_.size() && issuing(now); ++i) {
    Conn& conn = conns_[i];
    if (conn.state == ConnState::closed && now >= conn.reconnect_at_ns) open(i, now);
    if (conn.state != ConnState::idle) continue;
    std::int64_t intended_ns = now;
    if (open_loop()) {
      intended_ns = intended(next_k_);
      if (intended_ns > now) return;  // not due yet; the timer wakes us
    }
    conn.out.clear();
    conn.out_sent = 0;
    if (!workload_.next(conn.out, conn.expect)) {
      source_done_ = true;
      return;
    }
    conn.state = ConnState::busy;
    conn.intended_ns = intended_ns;
    conn.sent_ns = now;
    ++issued_;
    ++next_k_;
    ++stats_.sent;
    flush(i, now);
  }
}

void Engine::violation_without_answer(std::size_t i, std::int64_t now, std::string_view reason) {
  Conn& conn = conns_[i];
  OpStats& op = stats_.ops[static_cast<std::size_t>(conn.expect.op)];
  if (conn.state == ConnState::busy) {
    op.completed += 1;
    stats_.completed += 1;
  }
  op.violations += 1;
  stats_.violations[std::string(reason)] += 1;
  stats_.statuses["malformed"] += 1;
  close_conn(i, now, true);
}

void Engine::complete(std::size_t i, const HttpResponse& response, std::int64_t now) {
  Conn& conn = conns_[i];
  const Check check = check_response(conn.expect, response, parser_);
  const auto latency = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - conn.intended_ns));
  const auto service = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - conn.sent_ns));
  OpStats& op = stats_.ops[static_cast<std::size_t>(conn.expect.op)];
  stats_.latency.record(latency);
  stats_.service.record(service);
  op.latency.record(latency);
  op.completed += 1;
  stats_.completed += 1;
  last_answer_ns_ = now;
  switch (check.verdict) {
    case Verdict::ok: op.ok += 1; break;
    case Verdict::refused: op.refused += 1; break;
    case Verdict::error:
      op.errors += 1;
      stats_.errors[std::string(check.reason)] += 1;
      break;
    case Verdict::violation:
      op.violations += 1;
      stats_.violations[std::string(check.reason)] += 1;
      break;
  }
  std::string key = std::to_string(response.status);
  if (!check.error_code.empty()) key += " " + check.error_code;
  stats_.statuses[key] += 1;
  if (response.idempotent_replayed) stats_.replayed += 1;
  if (check.verdict == Verdict::ok) {
    if (conn.expect.op == Op::pay || conn.expect.op == Op::ext) stats_.payments_accepted += 1;
    if (conn.expect.op == Op::batch) stats_.payments_accepted += check.batch_paid;
  }
  workload_.on_result(conn.expect, check);
  conn.state = ConnState::idle;
}

void Engine::on_readable(std::size_t i, std::int64_t now) {
  Conn& conn = conns_[i];
  while (conn.fd >= 0) {
    if (conn.in.size() - conn.in_bytes < recv_chunk_bytes / 4) {
      const std::size_t cap = limits_.body_bytes_max + limits_.header_bytes_max + recv_chunk_bytes;
      if (conn.in.size() >= cap) {
        violation_without_answer(i, now, "response larger than the limit");
        return;
      }
      conn.in.resize(std::min(cap, std::max(recv_chunk_bytes, conn.in.size() * 2)));
    }
    const ssize_t n = receive(conn, conn.in.data() + conn.in_bytes, conn.in.size() - conn.in_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (conn.state == ConnState::busy) {
        fail(i, now, n == 0 ? std::string("connection closed before the answer")
                            : std::string("recv: ") + std::strerror(errno), false);
      } else {
        close_conn(i, now, false);  // the server closed an idle keep-alive connection
      }
      return;
    }
    conn.in_bytes += static_cast<std::size_t>(n);
    while (conn.in_bytes > 0 && conn.fd >= 0) {
      if (conn.state != ConnState::busy) {
        violation_without_answer(i, now, "bytes received with no request in flight");
        return;
      }
      HttpResponse response;
      const ResponseParseResult parsed =
          parse_http_response({conn.in.data(), conn.in_bytes}, limits_, &response);
      if (parsed.status == ResponseParseStatus::need_more) break;
      if (parsed.status == ResponseParseStatus::error) {
        violation_without_answer(i, now, parsed.reason);
        return;
      }
      complete(i, response, now);
      std::memmove(conn.in.data(), conn.in.data() + parsed.consumed_bytes, conn.in_bytes - parsed.consumed_bytes);
      conn.in_bytes -= parsed.consumed_bytes;
      if (!response.keep_alive) {
        close_conn(i, now, false);
        return;
      }
    }
  }
}

void Engine::on_event(std::size_t i, std::uint32_t events, std::int64_t now) {
  Conn& conn = conns_[i];
  if (conn.fd < 0) return;
  if (conn.state == ConnState::connecting) {
    int error = 0;
    socklen_t error_bytes = sizeof error;
    (void)::getsockopt(conn.fd, SOL_SOCKET, SO_ERROR, &error, &error_bytes);
    if (error != 0) {
      fail(i, now, std::string("connect: ") + std::strerror(error), false);
      return;
    }
    if ((events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    if (tls_ != nullptr) {
      handshake(i, now);
      return;
    }
    conn.state = ConnState::idle;
    watch_out(i, false);
    return;
  }
  if ((events & EPOLLOUT) != 0 && conn.state == ConnState::busy) flush(i, now);
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(i, now);
}

// One step of a non-blocking TLS handshake (SSL_do_handshake); `idle` once done.
void Engine::handshake(std::size_t i, std::int64_t now) {
  Conn& conn = conns_[i];
  if (!tls_ca_ok_) {
    fail(i, now, "tls: cannot load the CA file " + config_.tls_ca_file, false);
    return;
  }
  if (conn.ssl == nullptr) {
    conn.ssl = SSL_new(tls_);
    PAYCORE_ASSERT(conn.ssl != nullptr);
    const int fd_set = SSL_set_fd(conn.ssl, conn.fd);
    PAYCORE_ASSERT_EQ(fd_set, 1);
    SSL_set_connect_state(conn.ssl);
  }
  const int rc = SSL_do_handshake(conn.ssl);
  if (rc == 1) {
    conn.state = ConnState::idle;
    watch_out(i, false);
    return;
  }
  const int error = SSL_get_error(conn.ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    watch_out(i, error == SSL_ERROR_WANT_WRITE);
    return;
  }
  char reason[256] = "tls handshake failed";
  if (const unsigned long code = ERR_get_error()) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  fail(i, now, std::string("tls: ") + reason, false);
}

// recv(2)/send(2), or SSL_read_ex/SSL_write_ex with their results mapped onto recv's and
// send's: bytes, 0 at the peer's close, -1 with EAGAIN to wait, another errno to fail.
ssize_t Engine::receive(Conn& conn, char* data, std::size_t size) {
  if (conn.ssl == nullptr) return ::recv(conn.fd, data, size, 0);
  std::size_t bytes = 0;
  const int rc = SSL_read_ex(conn.ssl, data, size, &bytes);
  if (rc == 1) return static_cast<ssize_t>(bytes);
  const int error = SSL_get_error(conn.ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  ERR_clear_error();
  if (error == SSL_ERROR_ZERO_RETURN) return 0;
  errno = EPROTO;
  return -1;
}

ssize_t Engine::transmit(Conn& conn, const char* data, std::size_t size) {
  if (conn.ssl == nullptr) return ::send(conn.fd, data, size, MSG_NOSIGNAL);
  std::size_t bytes = 0;
  const int rc = SSL_write_ex(conn.ssl, data, size, &bytes);
  if (rc == 1) return static_cast<ssize_t>(bytes);
  const int error = SSL_get_error(conn.ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  ERR_clear_error();
  errno = EPIPE;
  return -1;
}

int Engine::wait_ms(std::int64_t now) {
  std::int64_t wake_ns = now + std::int64_t{wait_ms_max} * 1'000'000;
  for (const Conn& conn : conns_) {
    if (conn.state == ConnState::closed && issuing(now)) wake_ns = std::min(wake_ns, conn.reconnect_at_ns);
  }
  if (open_loop() && issuing(now)) {
    const std::int64_t next_ns = intended(next_k_);
    if (next_ns > now) {
      // Sub-millisecond precision: the timerfd fires at the intended time itself.
      itimerspec spec{};
      spec.it_value.tv_sec = next_ns / 1'000'000'000;
      spec.it_value.tv_nsec = next_ns % 1'000'000'000;
      const int armed = ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
      PAYCORE_ASSERT_EQ(armed, 0);
    }
  }
  if (wake_ns <= now) return 0;
  return static_cast<int>((wake_ns - now + 999'999) / 1'000'000);
}

RunStats Engine::run() {
  start_ns_ = monotonic_ns();
  deadline_ns_ = start_ns_ + config_.duration_ns;
  drain_deadline_ns_ = deadline_ns_ + config_.timeout_ns;
  if (open_loop()) {
    interval_ns_ = 1e9 / config_.rate_per_s;
    const double in_duration = std::ceil(static_cast<double>(config_.duration_ns) / interval_ns_);
    stats_.scheduled = std::min<std::uint64_t>(config_.requests_max, static_cast<std::uint64_t>(in_duration));
  }
  for (std::size_t i = 0; i < conns_.size(); ++i) open(i, start_ns_);
  epoll_event events[epoll_events_max];
  while (true) {
    std::int64_t now = monotonic_ns();
    issue_to_idle(now);
    const bool busy = std::any_of(conns_.begin(), conns_.end(),
                                  [](const Conn& c) { return c.state == ConnState::busy; });
    if (!busy && !issuing(now)) break;
    if (now >= drain_deadline_ns_) {
      for (std::size_t i = 0; i < conns_.size(); ++i) {
        if (conns_[i].state == ConnState::busy) fail(i, now, "timeout (run ended)", true);
      }
      break;
    }
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i].state == ConnState::busy && now - conns_[i].sent_ns > config_.timeout_ns) {
        fail(i, now, "timeout", true);
      }
    }
    const int n = ::epoll_wait(epoll_fd_, events, epoll_events_max, wait_ms(now));
    const bool waited = n >= 0 || errno == EINTR;  // one fact: the wait did not fail
    PAYCORE_ASSERT(waited);
    now = monotonic_ns();
    for (int e = 0; e < n; ++e) {
      if (events[e].data.u64 == timer_key) {
        std::uint64_t expirations = 0;
        (void)::read(timer_fd_, &expirations, sizeof expirations);
        continue;
      }
      on_event(static_cast<std::size_t>(events[e].data.u64), events[e].events, now);
    }
  }
  if (open_loop()) stats_.unsent = stats_.scheduled - std::min(stats_.scheduled, next_k_);
  stats_.elapsed_ns = std::max<std::int64_t>(0, (last_answer_ns_ != 0 ? last_answer_ns_ : monotonic_ns()) - start_ns_);
  return std::move(stats_);
}

}  // namespace

RunStats run_engine(const EngineConfig& config, Workload& workload) {
  Engine engine(config, workload);
  return engine.run();
}

}  // namespace paycore::loadgen
