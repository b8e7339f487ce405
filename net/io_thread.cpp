#include "net/io_thread.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "net/render.hpp"

namespace paycore::net {
namespace {

constexpr std::uint64_t tag_listener = ~std::uint64_t{0};
constexpr std::uint64_t tag_results = ~std::uint64_t{0} - 1;
constexpr std::uint64_t tag_wake = ~std::uint64_t{0} - 2;
constexpr std::uint64_t tag_engine = ~std::uint64_t{0} - 3;
constexpr std::uint64_t tag_archive = ~std::uint64_t{0} - 4;
constexpr std::uint64_t tag_events = ~std::uint64_t{0} - 5;
// Run to completion: at most this many core turns before the connections are served again.
constexpr int drive_turns_max = 64;
constexpr std::size_t responses_per_take = 256;
constexpr std::size_t service_rounds_max = 8;
constexpr int epoll_events_max = 256;
constexpr int epoll_timeout_ms = 250;
constexpr std::int64_t timeout_check_every_ms = 1000;
static_assert(responses_per_take > 0);
static_assert(service_rounds_max > 0);

Status epoll_add(int epoll_fd, int fd, std::uint32_t events, std::uint64_t tag,
                 std::string_view what) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) return errno_status(what, errno);
  return Status::ok();
}

}  // namespace

std::int64_t monotonic_us() { return monotonic_ns() / 1000; }

std::int64_t wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec);
}

IoThread::IoThread(Server& server, std::uint32_t index)
    : server_(server),
      config_(server.config_),
      producer_(index),
      connections_(server.config_, metrics, server.connections_open_, server.tls_),
      decoder_(DecodeLimits{server.config_.amount_max, server.config_.batch_items_max, 16,
                            server.config_.http.body_bytes_max}),
      body_(64u << 20, 64 * 1024),
      responses_(responses_per_take),
      lookup_(server.archive_lookup_.get()),
      events_calls_(server.events_calls_.get()) {
  connections_.set_on_close([this](Connection& c) { settle_nonces_of_closed(c); });
}

IoThread::~IoThread() {
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status IoThread::init() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return errno_status("epoll/eventfd: epoll_create1", errno);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return errno_status("epoll/eventfd: eventfd", errno);
  connections_.set_epoll_fd(epoll_fd_);
  // EPOLLEXCLUSIVE: one of the I/O threads wakes for a new connection, not all of them.
  PAYCORE_RETURN_IF_ERROR(epoll_add(epoll_fd_, server_.listen_fd_, EPOLLIN | EPOLLEXCLUSIVE,
                                    tag_listener, "epoll_ctl(listener)"));
  PAYCORE_RETURN_IF_ERROR(epoll_add(epoll_fd_, server_.engine_.result_fd(producer_), EPOLLIN,
                                    tag_results, "epoll_ctl(result fd)"));
  PAYCORE_RETURN_IF_ERROR(epoll_add(epoll_fd_, wake_fd_, EPOLLIN, tag_wake, "epoll_ctl(wake fd)"));
  if (lookup_ != nullptr) {
    PAYCORE_RETURN_IF_ERROR(epoll_add(epoll_fd_, lookup_->completion_fd(producer_), EPOLLIN,
                                      tag_archive, "epoll_ctl(archive fd)"));
  }
  if (events_calls_ != nullptr) {
    PAYCORE_RETURN_IF_ERROR(epoll_add(epoll_fd_, events_calls_->completion_fd(producer_), EPOLLIN,
                                      tag_events, "epoll_ctl(events fd)"));
  }
  if (!server_.config_.drive_engine) return Status::ok();
  // The core's own epoll set (log completions, snapshot child): readable when it has work.
  return epoll_add(epoll_fd_, server_.engine_.poll_fd(), EPOLLIN, tag_engine,
                   "epoll_ctl(engine fd)");
}

void IoThread::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

const auth::Keys& IoThread::keys() {
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
    int timeout_ms =
        drive ? std::min(epoll_timeout_ms, server_.engine_.timeout_ms()) : epoll_timeout_ms;
    // Work left behind by a budget (or a TLS session with buffered bytes) has no event to wake
    // us: look for events, do not wait.
    if (!pending_.empty() || engine_busy || !connections_.tls_pending_empty()) timeout_ms = 0;
    const int n = ::epoll_wait(epoll_fd_, events, epoll_events_max, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_line(LogLevel::error, "epoll_wait failed", {{"error", std::strerror(errno)}});
      break;
    }
    now_us_ = monotonic_us();
    bool results = false;
    bool archive_answers = false;
    dispatch_events(events, n, &results, &archive_answers);
    if (results) take_responses();
    if (archive_answers) take_archive_answers();
    serve_pending_lists();
    engine_busy = drive && drive_engine();
    if (server_.stopping_.load(std::memory_order_acquire) && !shutting_down_) begin_shutdown();
    if (now_ms() >= next_timeout_check_ms_) {
      connections_.close_timed_out(now_ms());
      next_timeout_check_ms_ = now_ms() + timeout_check_every_ms;
    }
    const bool drained = connections_.open_count() == 0 || now_ms() >= shutdown_deadline_ms_;
    if (shutting_down_ && drained) break;
  }
  for (const auto& c : connections_.all()) {
    if (c && c->fd >= 0) connections_.close(*c);
  }
}

void IoThread::dispatch_events(const epoll_event* events, int count, bool* results,
                               bool* archive_answers) {
  for (int i = 0; i < count; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    if (tag == tag_listener) {
      if (!shutting_down_) connections_.accept_all(server_.listen_fd_, server_.refusal_, now_ms());
    } else if (tag == tag_results) {
      *results = true;
    } else if (tag == tag_archive) {
      *archive_answers = true;
    } else if (tag == tag_events) {
      take_events_answers();
    } else if (tag == tag_engine) {
      // handled by drive_engine() in run()
    } else if (tag == tag_wake) {
      std::uint64_t value = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &value, sizeof(value));
    } else {
      on_event(static_cast<std::uint32_t>(tag), events[i].events);
    }
  }
}

// The connections that no socket event will report: answers released by the nonce journal,
// decrypted TLS input, work left behind by a budget; then every connection touched.
void IoThread::serve_pending_lists() {
  refresh_journal();
  serve_tls_pending();
  for (const std::uint32_t index : pending_) {
    Connection& c = connections_.at(index);
    c.pending = false;
    if (c.fd >= 0) mark_dirty(c);
  }
  pending_.clear();
  service_dirty();
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
    Connection& c = connections_.at(dirty_[i]);
    c.dirty = false;
    if (c.fd >= 0) service(c);
  }
  dirty_.clear();
}

void IoThread::begin_shutdown() {
  shutting_down_ = true;
  shutdown_deadline_ms_ = now_ms() + config_.shutdown_grace_ms;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, server_.listen_fd_, nullptr);
  for (const auto& c : connections_.all()) {
    if (!c || c->fd < 0) continue;
    c->closing = true;
    if (c->count == 0 && c->out.empty()) {
      connections_.close(*c);
    } else {
      service(*c);
    }
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
  Connection* found = connections_.find(index);
  if (found == nullptr || found->fd < 0) return;
  Connection& c = *found;
  if ((events & EPOLLERR) != 0) {
    connections_.close(c);
    return;
  }
  const bool handshake_writable = c.tls_read_wants_write && (events & EPOLLOUT) != 0;
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 || handshake_writable) {
    connections_.read_input(c, now_ms());
  }
  if (c.fd >= 0) mark_dirty(c);
}

// Connections with decrypted input inside OpenSSL: read as if the socket had said so.
void IoThread::serve_tls_pending() {
  if (connections_.tls_pending_empty()) return;
  for (const std::uint32_t index : connections_.take_tls_pending()) {
    const Connection& c = connections_.at(index);
    if (c.fd >= 0 && c.ssl != nullptr) on_event(index, EPOLLIN);
  }
}

// Connections whose next answer waited for the nonce journal are served again once it moved.
void IoThread::refresh_journal() {
  const NonceJournal* journal = server_.journal_.get();
  if (journal == nullptr) return;
  const std::uint64_t durable = journal->durable_seq();
  if (durable == journal_durable_) return;
  journal_durable_ = durable;
  for (std::uint32_t index : journal_waiters_) {
    Connection& c = connections_.at(index);
    c.journal_wait = false;
    if (c.fd >= 0) mark_dirty(c);
  }
  journal_waiters_.clear();
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
    connections_.send_output(c, now_ms());
    if (c.fd < 0) return;
    // Another round only if answering freed slots while complete requests may be waiting.
    const bool more_input = c.in_begin < c.in_end && !c.closing;
    const bool progressed = c.count != count_before || c.in_begin != begin_before;
    if (!rendered || !more_input || !progressed) break;
  }
  if (c.fd < 0) return;
  // Requests still buffered after the peer's EOF are answered before the close.
  const bool input_done = c.closing || c.in_begin == c.in_end;
  const bool close_now =
      c.close_after_flush || (c.peer_closed && input_done) || (c.closing && shutting_down_);
  if (c.out.empty() && c.count == 0 && close_now) {
    connections_.close(c);
    return;
  }
  // The rounds budget can stop with complete requests buffered and free slots, and the output
  // high-water mark with answers ready but not rendered while the output then drained: no
  // event comes for either (the bytes were read already, nothing is left to send), so come
  // back on the next iteration. Full slots wait for the engine's answers, a full output
  // buffer for EPOLLOUT: both of those re-arm by themselves.
  const bool parse_left =
      !starved && !c.closing && c.in_begin < c.in_end && c.count < c.slots.size();
  const bool render_left = c.count > 0 && c.slots[c.head].state == SlotState::ready;
  if ((parse_left || render_left) && c.out.size() < out_high_water_bytes) mark_pending(c);
  connections_.update_interest(c);
}

// ---- The way back: engine answers to connections ----

void IoThread::take_responses() {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t r =
      ::read(server_.engine_.result_fd(producer_), &value, sizeof(value));
  while (true) {
    const std::size_t n = server_.engine_.take(producer_, responses_);
    const std::int64_t received_ns = n > 0 ? monotonic_ns() : 0;
    for (std::size_t i = 0; i < n; ++i) on_response(responses_[i], received_ns);
    if (n < responses_.size()) break;
  }
}

// The waiting slot `token` names, with its connection; null if the answer is stale (the
// connection closed, or its index was reused, since the request was submitted).
Slot* IoThread::waiting_slot(const AnswerToken& token, Connection** connection) {
  Connection* c = connections_.find(token.connection);
  const bool live = c != nullptr && c->fd >= 0 && c->generation == token.generation &&
                    token.slot < c->slots.size();
  if (!live || c->slots[token.slot].state != SlotState::waiting) {
    ServerMetrics::bump(metrics.stale_responses);
    return nullptr;
  }
  *connection = c;
  return &c->slots[token.slot];
}

// One more item of a batch slot answered.
void IoThread::finish_item(Slot& slot) {
  PAYCORE_ASSERT_GT(slot.batch.pending, 0u);
  --slot.batch.pending;
  if (slot.batch.pending == 0) slot.state = SlotState::ready;
}

void IoThread::on_response(const Response& response, std::int64_t received_ns) {
  const AnswerToken token = AnswerToken::unpack(response.token);
  Connection* c = nullptr;
  Slot* found = waiting_slot(token, &c);
  if (found == nullptr) {
    if (response.result.list != nullptr) drop_list(response.result.list);  // closed meanwhile
    return;
  }
  Slot& slot = *found;
  switch (slot.kind) {
    case SlotKind::list:
      on_list_step(slot, token, response.result);
      break;
    case SlotKind::batch: {
      BatchAnswer& batch = slot.batch;
      if (token.item >= batch.entries.size() || batch.entries[token.item].local) return;
      BatchEntry& entry = batch.entries[token.item];
      entry.result = response.result;
      if (!item_lookup_started(entry, token)) finish_item(slot);
      break;
    }
    case SlotKind::snapshot:
      slot.snapshot = SnapshotAnswer{response.snapshot_ok, response.snapshot_lsn,
                                     response.snapshot_accounts, response.snapshot_payments};
      slot.state = SlotState::ready;
      break;
    default:
      slot.response = response;
      slot.response.stamps.received_ns = received_ns;
      if (!single_lookup_started(slot, token)) slot.state = SlotState::ready;
      break;
  }
  mark_dirty(*c);
}

bool IoThread::render_ready(Connection& c) {
  bool rendered = false;
  while (c.count > 0 && c.out.size() < out_high_water_bytes) {
    Slot& slot = c.slots[c.head];
    if (slot.state != SlotState::ready) break;
    if (slot.logged_nonce.pending) settle_nonce(slot);
    if (slot.nonce_seq > journal_durable_) {  // its nonce is not durable yet: wait (in order)
      if (!c.journal_wait) {
        c.journal_wait = true;
        journal_waiters_.push_back(c.index);
      }
      break;
    }
    const bool ok = answer(c, slot);
    slot.state = SlotState::free;
    slot.batch.entries.clear();
    if (slot.kind == SlotKind::events) std::string().swap(slot.events.body);
    c.head = (c.head + 1) % static_cast<std::uint32_t>(c.slots.size());
    --c.count;
    rendered = true;
    if (!ok) {
      connections_.close(c);
      return rendered;
    }
  }
  return rendered;
}

// Renders `slot` into the connection's output, counts and logs it; false if the output buffer
// is full (the connection is then closed).
bool IoThread::answer(Connection& c, Slot& slot) {
  const RenderContext context{server_.engine_.metrics(),       server_.stopping_,
                              server_.connections_open_,       server_.metrics_,
                              server_.engine_.snapshots_dir(), shutting_down_,
                              lookup_ == nullptr ? nullptr : &lookup_->metrics(),
                              &server_.config().primary_url,   server_.config().events};
  ExtraHeaderLines extra;
  const ResponseHead head = render_slot(slot, context, body_, &extra);
  const std::int64_t answered_ns = monotonic_ns();
  const auto latency_us = static_cast<std::uint64_t>(answered_ns / 1000 - slot.start_us);
  metrics.record(slot.route, head.status, latency_us);
  // One command's way through the server. An answer that needed the archive went through the
  // core twice (net/archive_lookup.hpp): its stamps are the second trip's, so it is left out.
  if (slot.kind == SlotKind::engine && slot.archive_lookups == 0) {
    PipelineStamps stamps = slot.response.stamps;
    stamps.read_ns = slot.start_us * 1000;
    stamps.answered_ns = answered_ns;
    metrics.stages.record(stamps);
  }
  if (config_.access_log || head.status >= 500) log_answer(slot, head.status, latency_us);
  if (!write_response(c.out, head, body_.view())) return false;
  if (!head.keep_alive) {
    c.closing = true;
    c.close_after_flush = true;
  }
  return true;
}

void IoThread::log_answer(const Slot& slot, int status, std::uint64_t latency_us) {
  char status_text[8];
  std::snprintf(status_text, sizeof(status_text), "%d", status);
  char latency_text[24];
  std::snprintf(latency_text, sizeof(latency_text), "%llu",
                static_cast<unsigned long long>(latency_us));
  log_line(status >= 500 ? LogLevel::warn : LogLevel::info, "request",
           {{"request_id", slot.trace_id.view()},
            {"route", route_name(slot.route)},
            {"status", status_text},
            {"latency_us", latency_text}});
}

}  // namespace paycore::net
