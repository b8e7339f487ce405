#include "net/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "net/render.hpp"
#include "net/request_json.hpp"
#include "net/routes.hpp"
#include "base/assert.hpp"
#include "base/log.hpp"

namespace paycore::net {
namespace {

std::int64_t monotonic_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::int64_t wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

constexpr std::uint64_t tag_listener = ~std::uint64_t{0};
constexpr std::uint64_t tag_results = ~std::uint64_t{0} - 1;
constexpr std::uint64_t tag_wake = ~std::uint64_t{0} - 2;
constexpr std::uint64_t tag_engine = ~std::uint64_t{0} - 3;
// Run to completion: at most this many core turns before the connections are served again.
constexpr int drive_turns_max = 64;

constexpr std::size_t in_initial_bytes = 4096;
constexpr std::size_t out_initial_bytes = 4096;
// Unsent answers above this pause reading and parsing (the client is not reading).
constexpr std::size_t out_high_water_bytes = 1u << 20;
constexpr std::size_t accepts_per_wake_max = 64;
constexpr std::size_t reads_per_wake_max = 4;
constexpr std::size_t responses_per_take = 256;
constexpr std::size_t service_rounds_max = 8;
constexpr int epoll_events_max = 256;
constexpr int epoll_timeout_ms = 250;
constexpr std::uint32_t connections_per_thread_max = 1u << token_connection_bits;
static_assert(responses_per_take > 0 && service_rounds_max > 0);

enum class SlotKind : std::uint8_t { local_error, engine, batch, healthz, readyz, metrics, snapshot };
enum class SlotState : std::uint8_t { free, waiting, ready };
// The request being received asked for `Expect: 100-continue` (RFC 9110 10.1.1).
enum class ContinueState : std::uint8_t {
  none,     // not asked, or not yet looked at
  due,      // send 100 Continue once every earlier answer is written (answers stay in order)
  sent,     // sent; the body is on its way
  settled,  // nothing to send: the body had already started, or a final answer went instead
};

struct BatchEntry {
  bool local = false;
  LocalError error;
  Result result;
};

// One request in flight on a connection, answered when it reaches the head of the queue.
struct Slot {
  SlotState state = SlotState::free;
  SlotKind kind = SlotKind::local_error;
  Route route = Route::unmatched;
  bool keep_alive = true;
  bool head = false;  // a HEAD request: answered as GET without the body
  std::int64_t start_us = 0;
  RequestId request_id;
  LocalError error;
  std::string_view allow;  // 405
  Response response;
  std::vector<BatchEntry> batch;  // capacity kept between batches
  std::uint32_t pending = 0;      // batch entries still with the engine
  std::uint64_t nonce_seq = 0;     // rendered only once the nonce journal has this durable
  std::uint32_t retry_after_s = 0;  // 429: the Retry-After header
};

struct Connection {
  Connection(std::uint32_t index_, const ServerConfig& config)
      : index(index_), parser(config.http), out(config.out_bytes_max, out_initial_bytes),
        slots(config.pipeline_depth) {}

  int fd = -1;
  std::uint32_t index = 0;
  std::uint32_t generation = 0;  // token_generation_bits wide
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
  bool closing = false;            // parse nothing more (error, Connection: close, shutdown)
  bool peer_closed = false;        // read returned 0
  bool close_after_flush = false;  // close once `out` is sent
  ContinueState continue_state = ContinueState::none;  // of the request being received
  bool dirty = false;
  bool pending = false;  // in IoThread::pending_: complete requests left behind by a budget
  bool journal_wait = false;  // listed in IoThread::journal_waiters_
  SSL* ssl = nullptr;                 // TLS session, or null for plain HTTP
  bool tls_read_wants_write = false;  // the handshake waits for the socket to be writable
  bool tls_pending = false;           // listed in IoThread::tls_pending_
  std::uint32_t interest = 0;
};

std::string_view snapshot_path_of(std::string* scratch, const std::string& dir, std::uint64_t lsn) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.snap", static_cast<unsigned long long>(lsn));
  scratch->assign(dir);
  scratch->append("/");
  scratch->append(name);
  return *scratch;
}

}  // namespace

class IoThread {
 public:
  IoThread(Server& server, std::uint32_t index)
      : server_(server),
        config_(server.config_),
        producer_(index),
        decoder_(DecodeLimits{server.config_.amount_max, server.config_.batch_items_max, 16,
                              server.config_.http.body_bytes_max}),
        body_(64u << 20, 64 * 1024),
        responses_(responses_per_take) {}

  ~IoThread() {
    for (auto& c : connections_) {
      if (c && c->ssl != nullptr) tls_close(c->ssl);
      if (c && c->fd >= 0) ::close(c->fd);
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool init(std::string* error);
  void start() { thread_ = std::thread([this] { run(); }); }
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  ServerMetrics metrics;

 private:
  void run();
  void accept_connections();
  void on_event(std::uint32_t index, std::uint32_t events);
  void read_input(Connection& c);
  void service(Connection& c);
  bool parse_requests(Connection& c);
  void expect_continue(Connection& c, std::size_t body_bytes_received);
  void send_continue_if_due(Connection& c);
  bool refuse_by_route(Slot& slot, const RouteMatch& match);
  std::optional<LocalError> refusal_before_body(const RouteMatch& match, const HttpRequest& request);
  void refuse_malformed(Connection& c, const HttpParseResult& parsed);
  void handle_request(Connection& c, const HttpRequest& request);
  void handle_signed(Connection& c, Slot& slot, const RouteMatch& match, const HttpRequest& request);
  void handle_batch(Connection& c, Slot& slot, const AuthResult& auth, std::int64_t now_s,
                    const HttpRequest& request);
  bool admit_signed(Slot& slot, const AuthResult& auth);
  bool record_signed_nonce(Slot& slot, const AuthResult& auth, std::int64_t now_s);
  bool rate_limited(Slot& slot, const Principal& principal, Route route, const HttpRequest& request,
                    std::uint32_t cost);
  void refresh_journal();
  ssize_t receive(Connection& c, char* data, std::size_t size);
  ssize_t transmit(Connection& c, const char* data, std::size_t size);
  void serve_tls_pending();
  void handle_notify(Connection& c, Slot& slot, const RouteMatch& match, const HttpRequest& request);
  bool submit(Connection& c, std::uint32_t slot_index, std::uint32_t item, const Command& command,
              RequestOp op = RequestOp::command);
  void take_responses();
  bool drive_engine();
  void on_response(const Response& response);
  bool render_ready(Connection& c);
  bool render_slot(Connection& c, Slot& slot);
  void render_batch(Slot& slot);
  void send_output(Connection& c);
  void update_interest(Connection& c);
  void close_connection(Connection& c);
  void check_timeouts();
  void begin_shutdown();
  void mark_dirty(Connection& c);
  void mark_pending(Connection& c);
  void service_dirty();
  Slot& push_slot(Connection& c, std::uint32_t* slot_index);
  void finish_local(Slot& slot, const LocalError& error) {
    slot.kind = SlotKind::local_error;
    slot.error = error;
    slot.state = SlotState::ready;
  }
  const Keys& keys();
  std::int64_t now_ms() const { return now_us_ / 1000; }

  Server& server_;
  const ServerConfig& config_;
  std::uint32_t producer_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  JsonDecoder decoder_;
  RequestIdGenerator request_ids_;
  OutBuffer body_;  // scratch for the body of the response being rendered
  std::vector<Response> responses_;
  std::vector<BatchItem> batch_items_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::uint32_t> free_connections_;
  std::vector<std::uint32_t> dirty_;
  // Connections that a per-wake budget (service rounds, pipeline depth) left with complete
  // requests in their buffer and no event to come for them: served again on the next loop
  // iteration, which then does not sleep in epoll_wait.
  std::vector<std::uint32_t> pending_;
  std::uint32_t open_count_ = 0;
  std::shared_ptr<const Keys> keys_;
  std::uint64_t keys_version_ = ~std::uint64_t{0};
  std::int64_t now_us_ = 0;
  std::int64_t next_timeout_check_ms_ = 0;
  bool shutting_down_ = false;
  std::uint64_t submitted_ = 0;  // requests handed to the engine (run to completion: more work)
  std::int64_t shutdown_deadline_ms_ = 0;
  std::string path_scratch_;
  std::uint64_t journal_durable_ = 0;            // the nonce journal's durable_seq(), last seen
  std::vector<std::uint32_t> journal_waiters_;  // connections whose next answer waits for it
  std::vector<std::uint32_t> tls_pending_;      // decrypted input waiting inside OpenSSL
};

bool IoThread::init(std::string* error) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    *error = std::string("epoll/eventfd: ") + std::strerror(errno);
    return false;
  }
  epoll_event ev{};
  // EPOLLEXCLUSIVE: one of the I/O threads wakes for a new connection, not all of them.
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u64 = tag_listener;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, server_.listen_fd_, &ev) != 0) {
    *error = std::string("epoll_ctl(listener): ") + std::strerror(errno);
    return false;
  }
  ev.events = EPOLLIN;
  ev.data.u64 = tag_results;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, server_.engine_.result_fd(producer_), &ev) != 0) {
    *error = std::string("epoll_ctl(result fd): ") + std::strerror(errno);
    return false;
  }
  ev.data.u64 = tag_wake;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    *error = std::string("epoll_ctl(wake fd): ") + std::strerror(errno);
    return false;
  }
  if (server_.config_.drive_engine) {
    // The core's own epoll set (log completions, snapshot child): readable when it has work.
    ev.data.u64 = tag_engine;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, server_.engine_.poll_fd(), &ev) != 0) {
      *error = std::string("epoll_ctl(engine fd): ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Run to completion: turns of the core until it has nothing left to do right now (bounded, so
// that connections are served between bursts), then the answers it released. True when the
// core may have work right now: it stopped at its turn budget, or serving the answers let
// connections submit further requests. Nothing else wakes this thread for that work (the
// engine's wake-up is for a core thread that sleeps), so the caller must not sleep.
bool IoThread::drive_engine() {
  bool busy = false;
  for (int turns = 0; turns < drive_turns_max; ++turns) {
    busy = server_.engine_.turn();
    if (!busy) break;
  }
  take_responses();
  const std::uint64_t submitted_before = submitted_;
  service_dirty();
  return busy || submitted_ != submitted_before;
}

void IoThread::service_dirty() {
  for (std::size_t i = 0; i < dirty_.size(); ++i) {
    Connection& c = *connections_[dirty_[i]];
    c.dirty = false;
    if (c.fd >= 0) service(c);
  }
  dirty_.clear();
}

const Keys& IoThread::keys() {
  const std::uint64_t version = server_.keys_version_.load(std::memory_order_acquire);
  if (version != keys_version_ || !keys_) {
    keys_ = server_.keys_.get();
    keys_version_ = version;
  }
  return *keys_;
}

void IoThread::run() {
  epoll_event events[epoll_events_max];
  bool engine_busy = false;  // run to completion: the core has work right now
  while (true) {
    const bool drive = server_.config_.drive_engine;
    int timeout_ms = drive ? std::min(epoll_timeout_ms, server_.engine_.timeout_ms()) : epoll_timeout_ms;
    // Work left behind by a budget (or a TLS session with buffered bytes) has no event to wake
    // us: look for events, do not wait.
    if (!pending_.empty() || engine_busy || !tls_pending_.empty()) timeout_ms = 0;
    const int n = ::epoll_wait(epoll_fd_, events, epoll_events_max, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_line(LogLevel::error, "epoll_wait failed", {{"error", std::strerror(errno)}});
      break;
    }
    now_us_ = monotonic_us();
    bool results = false;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == tag_listener) {
        if (!shutting_down_) accept_connections();
      } else if (tag == tag_results) {
        results = true;
      } else if (tag == tag_engine) {
        // handled by drive_engine() below
      } else if (tag == tag_wake) {
        std::uint64_t value = 0;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &value, sizeof(value));
      } else {
        on_event(static_cast<std::uint32_t>(tag), events[i].events);
      }
    }
    if (results) take_responses();
    refresh_journal();
    serve_tls_pending();
    for (const std::uint32_t index : pending_) {
      Connection& c = *connections_[index];
      c.pending = false;
      if (c.fd >= 0) mark_dirty(c);
    }
    pending_.clear();
    service_dirty();
    engine_busy = drive && drive_engine();
    if (server_.stopping_.load(std::memory_order_acquire) && !shutting_down_) begin_shutdown();
    if (now_ms() >= next_timeout_check_ms_) {
      check_timeouts();
      next_timeout_check_ms_ = now_ms() + 1000;
    }
    if (shutting_down_ && (open_count_ == 0 || now_ms() >= shutdown_deadline_ms_)) break;
  }
  for (auto& c : connections_) {
    if (c && c->fd >= 0) close_connection(*c);
  }
}

void IoThread::begin_shutdown() {
  shutting_down_ = true;
  shutdown_deadline_ms_ = now_ms() + config_.shutdown_grace_ms;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, server_.listen_fd_, nullptr);
  for (auto& c : connections_) {
    if (!c || c->fd < 0) continue;
    c->closing = true;
    if (c->count == 0 && c->out.empty()) {
      close_connection(*c);
    } else {
      service(*c);
    }
  }
}

void IoThread::accept_connections() {
  for (std::size_t i = 0; i < accepts_per_wake_max; ++i) {
    const int fd = ::accept4(server_.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log_line(LogLevel::warn, "accept failed", {{"error", std::strerror(errno)}});
      }
      return;
    }
    const std::uint32_t open = server_.connections_open_.fetch_add(1, std::memory_order_relaxed);
    const bool over = open >= config_.connections_max ||
                      (free_connections_.empty() && connections_.size() >= connections_per_thread_max);
    if (over) {
      server_.connections_open_.fetch_sub(1, std::memory_order_relaxed);
      const std::string& refusal = server_.refusal_;
      // Over TLS there is no session to answer in: the connection is only closed.
      [[maybe_unused]] const ssize_t sent =
          server_.tls_ ? 0 : ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      ServerMetrics::bump(metrics.connections_refused);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::uint32_t index = 0;
    if (!free_connections_.empty()) {
      index = free_connections_.back();
      free_connections_.pop_back();
    } else {
      index = static_cast<std::uint32_t>(connections_.size());
      connections_.push_back(std::make_unique<Connection>(index, config_));
    }
    Connection& c = *connections_[index];
    PAYCORE_ASSERT(c.fd < 0 && c.count == 0 && c.ssl == nullptr);
    if (server_.tls_) {
      c.ssl = server_.tls_->new_session(fd);
      if (c.ssl == nullptr) {
        ::close(fd);
        free_connections_.push_back(index);
        server_.connections_open_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
    }
    c.fd = fd;
    c.last_active_ms = now_ms();
    // Over TLS the handshake must complete within the header timeout, like a request's head.
    c.request_started_ms = c.ssl != nullptr ? now_ms() : 0;
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
      free_connections_.push_back(index);
      server_.connections_open_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    ++open_count_;
    ServerMetrics::bump(metrics.connections_accepted);
  }
}

void IoThread::mark_dirty(Connection& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(c.index);
}

void IoThread::mark_pending(Connection& c) {
  if (c.pending) return;
  c.pending = true;
  pending_.push_back(c.index);
}

void IoThread::on_event(std::uint32_t index, std::uint32_t events) {
  if (index >= connections_.size()) return;
  Connection& c = *connections_[index];
  if (c.fd < 0) return;
  if ((events & EPOLLERR) != 0) {
    close_connection(c);
    return;
  }
  const bool handshake_writable = c.tls_read_wants_write && (events & EPOLLOUT) != 0;
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 || handshake_writable) read_input(c);
  if (c.fd >= 0) mark_dirty(c);
}

void IoThread::read_input(Connection& c) {
  const std::size_t in_max = config_.http.header_bytes_max + config_.http.body_bytes_max;
  for (std::size_t round = 0; round < reads_per_wake_max; ++round) {
    if (c.in_begin > 0 && (c.in_begin == c.in_end || c.in_end == c.in_capacity)) {
      std::memmove(c.in.get(), c.in.get() + c.in_begin, c.in_end - c.in_begin);
      c.in_end -= c.in_begin;
      c.in_begin = 0;
    }
    if (c.in_end == c.in_capacity) {
      if (c.in_capacity >= in_max) return;  // full: parse first (reading is paused)
      const std::size_t grown = c.in_capacity == 0 ? in_initial_bytes
                                : c.in_capacity * 2 > in_max ? in_max
                                                             : c.in_capacity * 2;
      std::unique_ptr<char[]> bigger(new char[grown]);
      if (c.in_end > 0) std::memcpy(bigger.get(), c.in.get(), c.in_end);
      c.in = std::move(bigger);
      c.in_capacity = grown;
    }
    const std::size_t room = c.in_capacity - c.in_end;
    const ssize_t n = receive(c, c.in.get() + c.in_end, room);
    if (n > 0) {
      c.in_end += static_cast<std::size_t>(n);
      c.last_active_ms = now_ms();
      if (c.request_started_ms == 0) c.request_started_ms = now_ms();
      if (static_cast<std::size_t>(n) < room && (c.ssl == nullptr || !tls_has_pending(c.ssl))) return;
      continue;
    }
    if (n == 0) {
      c.peer_closed = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    close_connection(c);
    return;
  }
}

Slot& IoThread::push_slot(Connection& c, std::uint32_t* slot_index) {
  PAYCORE_ASSERT(c.count < c.slots.size());
  const std::uint32_t index = (c.head + c.count) % static_cast<std::uint32_t>(c.slots.size());
  ++c.count;
  Slot& slot = c.slots[index];
  PAYCORE_ASSERT(slot.state == SlotState::free);
  slot.state = SlotState::waiting;
  slot.kind = SlotKind::local_error;
  slot.route = Route::unmatched;
  slot.keep_alive = true;
  slot.head = false;
  slot.start_us = now_us_;
  slot.allow = {};
  slot.pending = 0;
  slot.nonce_seq = 0;
  slot.retry_after_s = 0;
  slot.batch.clear();
  *slot_index = index;
  return slot;
}

void IoThread::service(Connection& c) {
  bool starved = false;  // the last parse stopped for want of bytes, not for a budget
  for (std::size_t round = 0; round < service_rounds_max && c.fd >= 0; ++round) {
    const std::uint32_t count_before = c.count;
    const std::size_t begin_before = c.in_begin;
    starved = parse_requests(c);
    const bool rendered = render_ready(c);
    if (c.fd < 0) return;
    send_continue_if_due(c);
    send_output(c);
    if (c.fd < 0) return;
    // Another round only if answering freed slots while complete requests may be waiting.
    const bool more_input = c.in_begin < c.in_end && !c.closing;
    if (!rendered || !more_input || (c.count == count_before && c.in_begin == begin_before)) break;
  }
  if (c.fd < 0) return;
  // Requests still buffered after the peer's EOF are answered before the close.
  const bool input_done = c.closing || c.in_begin == c.in_end;
  if (c.out.empty() && c.count == 0 &&
      (c.close_after_flush || (c.peer_closed && input_done) || (c.closing && shutting_down_))) {
    close_connection(c);
    return;
  }
  // The rounds budget can stop with complete requests buffered and free slots, and the output
  // high-water mark with answers ready but not rendered while the output then drained: no
  // event comes for either (the bytes were read already, nothing is left to send), so come
  // back on the next iteration. Full slots wait for the engine's answers, a full output
  // buffer for EPOLLOUT: both of those re-arm by themselves.
  const bool parse_left = !starved && !c.closing && c.in_begin < c.in_end && c.count < c.slots.size();
  const bool render_left = c.count > 0 && c.slots[c.head].state == SlotState::ready;
  if ((parse_left || render_left) && c.out.size() < out_high_water_bytes) mark_pending(c);
  update_interest(c);
}

void IoThread::send_continue_if_due(Connection& c) {
  // After every earlier answer, which are all in `out` once nothing is in flight.
  if (c.continue_state != ContinueState::due || c.count != 0 || c.closing) return;
  PAYCORE_ASSERT(c.request.expect_continue && c.request.version_minor == 1);
  if (write_continue(c.out)) c.continue_state = ContinueState::sent;
}

// RFC 9110 10.1.1. Called while the body of c.request (header section parsed) is incomplete.
void IoThread::expect_continue(Connection& c, std::size_t body_bytes_received) {
  if (c.continue_state != ContinueState::none || !c.request.expect_continue) return;
  // The client did not wait (or sent the body with the header): 100 MAY be omitted.
  if (body_bytes_received > 0) {
    c.continue_state = ContinueState::settled;
    return;
  }
  // A final answer decided from the header section goes instead of 100. The body is then
  // never read, so the connection closes after the answer (RFC 9110 10.1.1: a server that
  // answers before reading the content says whether it closes). Framing errors (411, 413,
  // 400 Host) were refused by the parser and check_http_request already.
  const bool head = c.request.method_kind == HttpMethod::head;
  const RouteMatch match = match_route(head ? HttpMethod::get : c.request.method_kind, c.request.path);
  std::optional<LocalError> refusal;
  if (match.status == MatchStatus::ok) {
    refusal = refusal_before_body(match, c.request);
    if (!refusal) {
      c.continue_state = ContinueState::due;
      return;
    }
  }
  std::uint32_t index = 0;
  Slot& slot = push_slot(c, &index);
  slot.request_id = request_ids_.for_request(c.request.header("X-Request-Id"));
  slot.keep_alive = false;
  slot.head = head;
  if (!refuse_by_route(slot, match)) finish_local(slot, *refusal);
  c.closing = true;
  c.continue_state = ContinueState::settled;
}

// For a matched route: the answer that the header section decides without the body, the same
// one the whole request would get (handle_signed, handle_notify). The signature covers the
// body, so only missing signature headers (401) and an unknown channel (404) qualify.
std::optional<LocalError> IoThread::refusal_before_body(const RouteMatch& match,
                                                        const HttpRequest& request) {
  switch (route_access(match.route)) {
    case RouteAccess::open:
      return std::nullopt;
    case RouteAccess::channel:
      if (keys().find_channel(match.param) == nullptr) return local_error_not_found();
      return std::nullopt;
    default: {
      const RequestCredentials credentials = request_credentials(request);
      if (!credentials.principal_id.empty() && !credentials.timestamp.empty() &&
          !credentials.nonce.empty() && !credentials.signature.empty()) {
        return std::nullopt;
      }
      return LocalError{auth_status_http(AuthStatus::unauthenticated),
                        auth_status_code(AuthStatus::unauthenticated),
                        "the request's signature headers were refused", {}};
    }
  }
}

void IoThread::refuse_malformed(Connection& c, const HttpParseResult& parsed) {
  std::uint32_t index = 0;
  Slot& slot = push_slot(c, &index);
  slot.request_id = request_ids_.next();
  slot.keep_alive = false;
  finish_local(slot, LocalError{http_error_status(parsed.error), http_error_code(parsed.error),
                                parsed.reason, {}});
  c.closing = true;
  ServerMetrics::bump(metrics.protocol_errors);
  log_line(LogLevel::warn, "malformed request",
           {{"request_id", slot.request_id.view()}, {"reason", parsed.reason},
            {"status", http_error_code(parsed.error)}});
}

bool IoThread::refuse_by_route(Slot& slot, const RouteMatch& match) {
  if (match.status == MatchStatus::not_found) {
    finish_local(slot, local_error_not_found());
    return true;
  }
  if (match.status == MatchStatus::method_not_allowed) {
    // HEAD is served wherever GET is (RFC 9110 9.1: both are to be supported).
    slot.allow = match.allow == "GET" ? std::string_view("GET, HEAD") : match.allow;
    finish_local(slot, LocalError{405, "method_not_allowed", "this method is not allowed here", {}});
    return true;
  }
  return false;
}

// Parses and dispatches the complete requests in the buffer while the pipeline depth and the
// output high-water mark allow. True when it stopped for want of bytes (nothing buffered, a
// partial request) or because the connection takes no more requests; false when a budget
// stopped it, complete requests possibly still buffered (see service()).
bool IoThread::parse_requests(Connection& c) {
  while (c.count < c.slots.size() && c.out.size() < out_high_water_bytes) {
    if (c.closing || c.in_begin == c.in_end) return true;
    const std::string_view buffer(c.in.get() + c.in_begin, c.in_end - c.in_begin);
    HttpParseResult parsed = c.parser.parse(buffer, &c.request);
    if (parsed.status != HttpParseStatus::error && parsed.header_bytes != 0) {
      const HttpParseResult checked = check_http_request(c.request);
      if (checked.status == HttpParseStatus::error) parsed = checked;
    }
    if (parsed.status == HttpParseStatus::error) {
      refuse_malformed(c, parsed);
      return true;
    }
    if (parsed.status == HttpParseStatus::need_more) {
      if (c.peer_closed) {
        c.closing = true;  // a request cut short by the client: nothing to answer
      } else if (parsed.header_bytes != 0) {
        expect_continue(c, buffer.size() - parsed.header_bytes);
      }
      return true;
    }
    PAYCORE_ASSERT(parsed.consumed_bytes > 0);
    PAYCORE_ASSERT(parsed.consumed_bytes <= buffer.size());
    handle_request(c, c.request);
    c.in_begin += parsed.consumed_bytes;
    c.parser.reset();
    c.continue_state = ContinueState::none;
    c.request_started_ms = c.in_begin < c.in_end ? now_ms() : 0;
    if (!c.request.keep_alive) c.closing = true;
  }
  return false;
}

void IoThread::handle_request(Connection& c, const HttpRequest& request) {
  std::uint32_t index = 0;
  Slot& slot = push_slot(c, &index);
  slot.keep_alive = request.keep_alive;
  slot.request_id = request_ids_.for_request(request.header("X-Request-Id"));
  // HEAD is routed (and authorised, and executed) as GET; only the body is left out.
  slot.head = request.method_kind == HttpMethod::head;
  const RouteMatch match = match_route(slot.head ? HttpMethod::get : request.method_kind, request.path);
  if (refuse_by_route(slot, match)) return;
  slot.route = match.route;
  switch (match.route) {
    case Route::healthz: slot.kind = SlotKind::healthz; slot.state = SlotState::ready; return;
    case Route::readyz: slot.kind = SlotKind::readyz; slot.state = SlotState::ready; return;
    case Route::metrics: slot.kind = SlotKind::metrics; slot.state = SlotState::ready; return;
    case Route::notify: handle_notify(c, slot, match, request); return;
    default: handle_signed(c, slot, match, request); return;
  }
}

void IoThread::handle_signed(Connection& c, Slot& slot, const RouteMatch& match,
                             const HttpRequest& request) {
  const Keys& current = keys();
  const std::int64_t now_s = wall_seconds();
  const AuthResult auth =
      verify_signature(current, request_credentials(request), now_s, server_.nonces_.window_s());
  if (auth.status != AuthStatus::ok) {
    finish_local(slot, LocalError{auth_status_http(auth.status), auth_status_code(auth.status),
                                  "the request's signature headers were refused", {}});
    return;
  }
  // With rate limits on, a replay is refused before it costs its principal anything (a captured
  // request replayed by someone else must not spend the principal's rate limit). Without them
  // the insert below refuses it, and one cache probe per request is enough.
  if (server_.rate_limiter_.enabled() && server_.nonces_.seen(auth.principal->id.view(), auth.nonce, now_s)) {
    finish_local(slot, LocalError{401, auth_status_code(AuthStatus::replayed_nonce),
                                  "this nonce was used within the window", {}});
    return;
  }
  const Principal& principal = *auth.principal;
  const std::uint32_t slot_index = static_cast<std::uint32_t>(&slot - c.slots.data());
  if (!principal_may_call(principal, match.route)) {
    finish_local(slot, local_error_not_found());
    return;
  }
  // A batch is charged per item, once decoded (handle_batch). The nonce takes room in the
  // shared cache only after the rate limit let the request through.
  if (match.route != Route::payment_batch) {
    if (rate_limited(slot, principal, match.route, request, 1)) return;
    if (!record_signed_nonce(slot, auth, now_s)) return;
  }
  if (match.route == Route::payment_batch) {
    handle_batch(c, slot, auth, now_s, request);
    return;
  }
  if (match.route == Route::admin_snapshot) {
    slot.kind = SlotKind::snapshot;
    if (!submit(c, slot_index, 0, Command{}, RequestOp::snapshot)) {
      finish_local(slot, LocalError{503, "unavailable", "the server is busy; retry", {}});
    }
    return;
  }
  Command command;
  if (auto refusal = build_command(match, principal, request.body, decoder_, &command)) {
    finish_local(slot, *refusal);
    return;
  }
  // A mandate names a merchant the keys file knows: a typo would otherwise be a mandate that
  // nobody can ever use (the core does not know the keys file).
  if (command.kind == CommandKind::create_mandate) {
    const Principal* merchant = keys().find_principal(command.merchant_id.view());
    if (merchant == nullptr || merchant->kind != PrincipalKind::merchant) {
      finish_local(slot, LocalError{400, "invalid_field", "no merchant with this merchant_id in the keys file",
                                    "merchant_id"});
      return;
    }
  }
  slot.kind = SlotKind::engine;
  if (!submit(c, slot_index, 0, command)) {
    finish_local(slot, LocalError{503, "unavailable", "the server is busy; retry", {}});
  }
}

void IoThread::handle_batch(Connection& c, Slot& slot, const AuthResult& auth, std::int64_t now_s,
                            const HttpRequest& request) {
  const Principal& principal = *auth.principal;
  if (auto error = decoder_.decode_batch(request.body, &batch_items_)) {
    finish_local(slot, local_error_from(*error));
    return;
  }
  const auto items = static_cast<std::uint32_t>(batch_items_.size());
  // One token per item, as many as the bucket holds: the items beyond are answered 429 one by
  // one (a batch cannot carry a principal past its burst); none at all is a 429 for the batch.
  std::uint32_t granted = items;
  RateLimiter& limiter = server_.rate_limiter_;
  if (limiter.enabled()) {
    granted = limiter.take_up_to(principal.id.view(), rate_class_of(Route::payment_batch, false), items, now_us_);
    if (granted == 0) {
      if (rate_limited(slot, principal, Route::payment_batch, request, 1)) return;
      granted = 1;
    }
  }
  if (!record_signed_nonce(slot, auth, now_s)) return;
  const std::uint32_t slot_index = static_cast<std::uint32_t>(&slot - c.slots.data());
  PAYCORE_ASSERT(batch_items_.size() <= (1u << token_item_bits));
  slot.kind = SlotKind::batch;
  slot.batch.resize(batch_items_.size());
  slot.pending = 0;
  for (std::size_t i = 0; i < batch_items_.size(); ++i) {
    BatchEntry& entry = slot.batch[i];
    entry.local = true;
    if (batch_items_[i].error) {
      entry.error = local_error_from(*batch_items_[i].error);
      continue;
    }
    if (i >= granted) {
      entry.error = LocalError{429, "rate_limited", "over the rate limit: this item was not executed; retry it later", {}};
      continue;
    }
    const Command command = payment_command(principal, batch_items_[i].request);
    if (submit(c, slot_index, static_cast<std::uint32_t>(i), command)) {
      entry.local = false;
      ++slot.pending;
    } else {
      entry.error = LocalError{503, "unavailable", "the server is busy; retry", {}};
    }
  }
  if (slot.pending == 0) slot.state = SlotState::ready;
}

// The nonce journal (net/nonce_journal.hpp): an authentic request's nonce is journaled and its
// answer waits until that record is durable (or its batch failed: see there).
bool IoThread::admit_signed(Slot& slot, const AuthResult& auth) {
  NonceJournal* journal = server_.journal_.get();
  if (journal == nullptr) return true;
  slot.nonce_seq = journal->append(auth.principal->id.view(), auth.nonce, auth.timestamp_s);
  return true;
}

// Records the request's nonce once authorization and the rate limit let it through; false (with
// the answer) for a replay that raced this one, or a full nonce cache.
bool IoThread::record_signed_nonce(Slot& slot, const AuthResult& auth, std::int64_t now_s) {
  const AuthStatus status = record_nonce(server_.nonces_, auth, now_s);
  if (status == AuthStatus::replayed_nonce) {
    finish_local(slot, LocalError{401, auth_status_code(status), "this nonce was used within the window", {}});
    return false;
  }
  if (status == AuthStatus::nonce_cache_full) {
    finish_local(slot, LocalError{503, auth_status_code(status),
                                  "too many signed requests within the window (nonce cache full); retry later", {}});
    return false;
  }
  return admit_signed(slot, auth);
}

// Per-principal token buckets (net/rate_limit.hpp): true (and a 429 answer) when over the limit.
bool IoThread::rate_limited(Slot& slot, const Principal& principal, Route route,
                            const HttpRequest& request, std::uint32_t cost) {
  RateLimiter& limiter = server_.rate_limiter_;
  if (!limiter.enabled()) return false;
  const RateClass rate_class = rate_class_of(route, request.method_kind == HttpMethod::get);
  const std::uint32_t wait_s = limiter.take(principal.id.view(), rate_class, cost, now_us_);
  if (wait_s == 0) return false;
  slot.retry_after_s = wait_s;
  finish_local(slot, LocalError{429, "rate_limited", "too many requests; retry after Retry-After seconds", {}});
  return true;
}

// Connections whose next answer waited for the nonce journal are served again once it moved.
void IoThread::refresh_journal() {
  const NonceJournal* journal = server_.journal_.get();
  if (journal == nullptr) return;
  const std::uint64_t durable = journal->durable_seq();
  if (durable == journal_durable_) return;
  journal_durable_ = durable;
  for (std::uint32_t index : journal_waiters_) {
    Connection& c = *connections_[index];
    c.journal_wait = false;
    if (c.fd >= 0) mark_dirty(c);
  }
  journal_waiters_.clear();
}

// recv(2) or TLS (net/tls.hpp) with recv's results: bytes, 0 at the peer's close, -1 with errno
// EAGAIN to wait for the socket, any other errno to close.
ssize_t IoThread::receive(Connection& c, char* data, std::size_t size) {
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
  ServerMetrics::bump(metrics.protocol_errors);  // garbage, an old TLS version, a bad record
  errno = EPROTO;
  return -1;
}

// send(2) or TLS, with send's results. A TLS write that waits for input (a TLS 1.3 key update)
// is retried on the next event: the connection is readable whenever it is waiting for input.
ssize_t IoThread::transmit(Connection& c, const char* data, std::size_t size) {
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

// Connections with decrypted input inside OpenSSL: read as if the socket had said so.
void IoThread::serve_tls_pending() {
  if (tls_pending_.empty()) return;
  std::vector<std::uint32_t> pending;
  pending.swap(tls_pending_);
  for (std::uint32_t index : pending) {
    Connection& c = *connections_[index];
    c.tls_pending = false;
    if (c.fd >= 0 && c.ssl != nullptr) on_event(index, EPOLLIN);
  }
}

void IoThread::handle_notify(Connection& c, Slot& slot, const RouteMatch& match,
                             const HttpRequest& request) {
  const ChannelKey* channel = keys().find_channel(match.param);
  if (channel == nullptr) {
    finish_local(slot, local_error_not_found());
    return;
  }
  const AuthStatus status =
      verify_notification(channel->public_key.get(), notification_credentials(request), request.body);
  if (status != AuthStatus::ok) {
    finish_local(slot, LocalError{401, auth_status_code(status),
                                  "the notification's signature was refused", {}});
    return;
  }
  Command command;
  if (auto refusal = build_notify_command(match.param, request.body, decoder_, &command)) {
    finish_local(slot, *refusal);
    return;
  }
  slot.kind = SlotKind::engine;
  const std::uint32_t slot_index = static_cast<std::uint32_t>(&slot - c.slots.data());
  if (!submit(c, slot_index, 0, command)) {
    finish_local(slot, LocalError{503, "unavailable", "the server is busy; retry", {}});
  }
}

bool IoThread::submit(Connection& c, std::uint32_t slot_index, std::uint32_t item,
                      const Command& command, RequestOp op) {
  Request request;
  request.command = command;
  request.op = op;
  request.token = token_pack(Token{c.index, c.generation, slot_index, item});
  if (!server_.engine_.submit(producer_, request)) return false;
  ++submitted_;
  return true;
}

void IoThread::take_responses() {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t r = ::read(server_.engine_.result_fd(producer_), &value, sizeof(value));
  while (true) {
    const std::size_t n = server_.engine_.take(producer_, responses_);
    for (std::size_t i = 0; i < n; ++i) on_response(responses_[i]);
    if (n < responses_.size()) break;
  }
}

void IoThread::on_response(const Response& response) {
  const Token token = token_unpack(response.token);
  if (token.connection >= connections_.size()) {
    ServerMetrics::bump(metrics.stale_responses);
    return;
  }
  Connection& c = *connections_[token.connection];
  if (c.fd < 0 || c.generation != token.generation || token.slot >= c.slots.size()) {
    ServerMetrics::bump(metrics.stale_responses);
    return;
  }
  Slot& slot = c.slots[token.slot];
  if (slot.state != SlotState::waiting) {
    ServerMetrics::bump(metrics.stale_responses);
    return;
  }
  if (slot.kind == SlotKind::batch) {
    if (token.item >= slot.batch.size() || slot.batch[token.item].local) return;
    slot.batch[token.item].result = response.result;
    PAYCORE_ASSERT(slot.pending > 0);
    if (--slot.pending == 0) slot.state = SlotState::ready;
  } else {
    slot.response = response;
    slot.state = SlotState::ready;
  }
  mark_dirty(c);
}

bool IoThread::render_ready(Connection& c) {
  bool rendered = false;
  while (c.count > 0 && c.out.size() < out_high_water_bytes) {
    Slot& slot = c.slots[c.head];
    if (slot.state != SlotState::ready) break;
    if (slot.nonce_seq > journal_durable_) {  // its nonce is not durable yet: wait (in order)
      if (!c.journal_wait) {
        c.journal_wait = true;
        journal_waiters_.push_back(c.index);
      }
      break;
    }
    const bool ok = render_slot(c, slot);
    slot.state = SlotState::free;
    slot.batch.clear();
    c.head = (c.head + 1) % static_cast<std::uint32_t>(c.slots.size());
    --c.count;
    rendered = true;
    if (!ok) {
      close_connection(c);
      return rendered;
    }
  }
  return rendered;
}

void IoThread::render_batch(Slot& slot) {
  JsonWriter json(body_);
  json.begin_object().key("results").begin_array();
  for (const BatchEntry& entry : slot.batch) {
    json.begin_object();
    if (entry.local) {
      json.field("status", std::int64_t{entry.error.status}).key("error");
      write_error_object(json, entry.error.code, entry.error.message, entry.error.field);
    } else if (entry.result.code == ResultCode::ok) {
      json.field("status", std::int64_t{result_status(entry.result)}).key("payment");
      write_payment_json(json, entry.result.payment);
    } else {
      json.field("status", std::int64_t{result_status(entry.result)}).key("error");
      write_error_object(json, to_string(entry.result.code), result_message(entry.result.code, entry.result.kind),
                         to_string(entry.result.field));
    }
    json.end_object();
  }
  json.end_array().end_object();
}

bool IoThread::render_slot(Connection& c, Slot& slot) {
  body_.clear();
  ResponseHead head;
  head.trace_id = slot.request_id.view();
  head.keep_alive = slot.keep_alive && !shutting_down_;
  head.omit_body = slot.head;
  std::string_view extra_headers[2];
  std::size_t extra_count = 0;
  char allow_line[32];
  char retry_line[32];
  bool body_ok = true;
  switch (slot.kind) {
    case SlotKind::local_error:
      head.status = slot.error.status;
      body_ok = write_local_error_body(body_, slot.error);
      if (!slot.allow.empty()) {
        const int length = std::snprintf(allow_line, sizeof(allow_line), "Allow: %.*s",
                                         static_cast<int>(slot.allow.size()), slot.allow.data());
        extra_headers[extra_count++] = std::string_view(allow_line, static_cast<std::size_t>(length));
      }
      if (slot.retry_after_s != 0) {
        const int length = std::snprintf(retry_line, sizeof(retry_line), "Retry-After: %u", slot.retry_after_s);
        extra_headers[extra_count++] = std::string_view(retry_line, static_cast<std::size_t>(length));
      }
      head.extra_headers = std::span<const std::string_view>(extra_headers, extra_count);
      break;
    case SlotKind::healthz:
      head.status = 200;
      body_ok = body_.append("{\"status\":\"ok\"}");
      break;
    case SlotKind::readyz: {
      const EngineMetrics& m = server_.engine_.metrics();
      const bool ready = m.ready.load(std::memory_order_relaxed) &&
                         !m.read_only.load(std::memory_order_relaxed) &&
                         !server_.stopping_.load(std::memory_order_relaxed);
      head.status = ready ? 200 : 503;
      body_ok = ready ? body_.append("{\"status\":\"ready\"}")
                      : write_error_body(body_, "unavailable", "not ready: recovering, read-only or stopping");
      break;
    }
    case SlotKind::metrics: {
      head.status = 200;
      head.content_type = "text/plain; version=0.0.4; charset=utf-8";
      ServerGauges gauges;
      gauges.connections_open = server_.connections_open_.load(std::memory_order_relaxed);
      gauges.io_threads = server_.threads_.size();
      body_ok = write_metrics(body_, server_.metrics_, server_.engine_.metrics(), gauges, wall_clock_us());
      break;
    }
    case SlotKind::engine:
      head.status = result_status(slot.response.result);
      head.idempotent_replayed = slot.response.result.replayed;
      body_ok = write_result_body(body_, slot.route, slot.response.result);
      break;
    case SlotKind::snapshot:
      if (slot.response.snapshot_ok) {
        head.status = 200;
        JsonWriter json(body_);
        json.begin_object()
            .field("path", snapshot_path_of(&path_scratch_, server_.engine_.snapshots_dir(),
                                            slot.response.snapshot_lsn))
            .field("lsn", static_cast<std::int64_t>(slot.response.snapshot_lsn))
            .field("accounts", std::int64_t{slot.response.snapshot_accounts})
            .field("payments", std::int64_t{slot.response.snapshot_payments})
            .end_object();
        body_ok = json.complete();
      } else {
        head.status = 503;
        body_ok = write_error_body(body_, "unavailable", "the snapshot could not be written");
      }
      break;
    case SlotKind::batch:
      head.status = 200;
      render_batch(slot);
      break;
  }
  if (!body_ok) {
    body_.clear();
    head.status = 500;
    head.keep_alive = false;
    head.idempotent_replayed = false;
    head.extra_headers = {};
    (void)write_error_body(body_, "internal", "the response did not fit its buffer");
  }
  const std::uint64_t latency_us = static_cast<std::uint64_t>(monotonic_us() - slot.start_us);
  metrics.record(slot.route, head.status, latency_us);
  if (config_.access_log || head.status >= 500) {
    char status_text[8];
    std::snprintf(status_text, sizeof(status_text), "%d", head.status);
    char latency_text[24];
    std::snprintf(latency_text, sizeof(latency_text), "%llu", static_cast<unsigned long long>(latency_us));
    log_line(head.status >= 500 ? LogLevel::warn : LogLevel::info, "request",
             {{"request_id", slot.request_id.view()}, {"route", route_name(slot.route)},
              {"status", status_text}, {"latency_us", latency_text}});
  }
  if (!write_response(c.out, head, body_.view())) return false;
  if (!head.keep_alive) {
    c.closing = true;
    c.close_after_flush = true;
  }
  return true;
}

void IoThread::send_output(Connection& c) {
  while (!c.out.empty()) {
    const std::string_view pending = c.out.view();
    const ssize_t n = transmit(c, pending.data(), pending.size());
    if (n > 0) {
      c.out.consume(static_cast<std::size_t>(n));
      c.last_active_ms = now_ms();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_connection(c);
    return;
  }
}

void IoThread::update_interest(Connection& c) {
  const std::size_t in_max = config_.http.header_bytes_max + config_.http.body_bytes_max;
  const bool in_room = c.in_begin > 0 || c.in_end < in_max;
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

void IoThread::close_connection(Connection& c) {
  if (c.fd < 0) return;
  tls_close(c.ssl);
  c.ssl = nullptr;
  c.tls_read_wants_write = false;
  ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  c.generation = (c.generation + 1) & ((1u << token_generation_bits) - 1);
  for (Slot& slot : c.slots) {
    slot.state = SlotState::free;
    slot.batch.clear();
  }
  c.head = c.count = 0;
  c.in_begin = c.in_end = 0;
  if (c.in_capacity > 64 * 1024) {  // give back what a large request made it grow to
    c.in.reset();
    c.in_capacity = 0;
  }
  c.parser.reset();
  c.continue_state = ContinueState::none;
  c.out.clear();
  c.interest = 0;
  free_connections_.push_back(c.index);
  PAYCORE_ASSERT(open_count_ > 0);
  --open_count_;
  server_.connections_open_.fetch_sub(1, std::memory_order_relaxed);
}

void IoThread::check_timeouts() {
  const std::int64_t now = now_ms();
  for (auto& owned : connections_) {
    if (!owned || owned->fd < 0) continue;
    Connection& c = *owned;
    if (c.count > 0) continue;  // waiting for the engine, not for the client
    const bool header_late =
        c.request_started_ms != 0 && now - c.request_started_ms > config_.header_timeout_ms;
    const bool idle = now - c.last_active_ms > config_.idle_timeout_ms;
    if (header_late || idle) {
      ServerMetrics::bump(metrics.connections_timed_out);
      close_connection(c);
    }
  }
}

// ---- Server ----

Server::Server(const ServerConfig& config, Engine& engine, KeysHolder& keys)
    : config_(config),
      engine_(engine),
      keys_(keys),
      nonces_(NonceCacheConfig{config.nonce_entries_max, 64, config.auth_window_s}),
      rate_limiter_(config.rate_limits) {}

bool Server::open_nonce_journal(std::string* error) {
  NonceJournalLoad load;
  journal_ = NonceJournal::open(config_.nonce_journal_dir, config_.auth_window_s, wall_seconds(), nonces_,
                                &load, error);
  if (!journal_) return false;
  journal_->set_on_durable([this] {
    for (auto& thread : threads_) thread->wake();
  });
  log_line(LogLevel::info, "nonce journal loaded",
           {{"dir", config_.nonce_journal_dir}, {"files", std::to_string(load.files)},
            {"records", std::to_string(load.records)}, {"live", std::to_string(load.live)},
            {"torn_files", std::to_string(load.torn)}, {"cache_full", std::to_string(load.cache_full)}});
  return true;
}

Server::~Server() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::unique_ptr<Server> Server::create(const ServerConfig& config, Engine& engine, KeysHolder& keys,
                                       std::string* error) {
  PAYCORE_ASSERT(config.io_threads >= 1);
  if (config.drive_engine && config.io_threads != 1) {
    *error = "running the engine on the I/O thread needs exactly one I/O thread";
    return nullptr;
  }
  if (config.pipeline_depth == 0 || config.pipeline_depth > (1u << token_slot_bits)) {
    *error = "pipeline depth must be 1..256";
    return nullptr;
  }
  if (config.batch_items_max == 0 || config.batch_items_max > (1u << token_item_bits)) {
    *error = "batch_items_max must be 1..4096 (the item's bits in an engine token)";
    return nullptr;
  }
  if (engine.config().producers < config.io_threads) {
    *error = "the engine has fewer producers than I/O threads";
    return nullptr;
  }
  std::unique_ptr<Server> server(new Server(config, engine, keys));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(config.port);
  const int gai = ::getaddrinfo(config.host.empty() ? nullptr : config.host.c_str(),
                                port_text.c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    *error = "cannot resolve " + config.host + ": " + ::gai_strerror(gai);
    return nullptr;
  }
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
      ::listen(fd, static_cast<int>(config.listen_backlog)) != 0) {
    *error = "cannot listen on " + config.host + ":" + port_text + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::freeaddrinfo(found);
    return nullptr;
  }
  ::freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  server->port_ = ntohs(bound.ss_family == AF_INET6
                            ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  server->listen_fd_ = fd;
  {
    OutBuffer body(256);
    OutBuffer whole(1024);
    ResponseHead head;
    head.status = 503;
    head.keep_alive = false;
    const bool made = write_error_body(body, "unavailable", "too many connections; retry later") &&
                      write_response(whole, head, body.view());
    PAYCORE_ASSERT(made);
    server->refusal_.assign(whole.view());
  }
  for (std::uint32_t i = 0; i < config.io_threads; ++i) {
    auto thread = std::make_unique<IoThread>(*server, i);
    if (!thread->init(error)) return nullptr;
    server->metrics_.push_back(&thread->metrics);
    server->threads_.push_back(std::move(thread));
  }
  if (!config.nonce_journal_dir.empty() && !server->open_nonce_journal(error)) return nullptr;
  if (!config.tls.cert_chain_path.empty() || !config.tls.key_path.empty()) {
    if (config.tls.cert_chain_path.empty() || config.tls.key_path.empty()) {
      *error = "TLS needs both a certificate chain file and a key file";
      return nullptr;
    }
    server->tls_ = TlsContext::create(config.tls, error);
    if (!server->tls_) return nullptr;
  }
  return server;
}

void Server::start() {
  for (auto& thread : threads_) thread->start();
}

void Server::stop() {
  if (stopping_.exchange(true)) {
    for (auto& thread : threads_) thread->join();
    return;
  }
  for (auto& thread : threads_) thread->wake();
  for (auto& thread : threads_) thread->join();
  if (journal_) journal_->stop();  // after the threads: the answers they sent waited for it
}

}  // namespace paycore::net
