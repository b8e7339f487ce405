#pragma once
// One I/O thread of the server (net/server.hpp says how the threads, the engine and the
// connections meet): its epoll loop and the glue between the units that do the work --
// ConnectionTable moves bytes (net/connection.hpp), decide() says what a request means
// (net/decide.hpp), the engine executes, render_slot() writes the answer (net/render.hpp).
// io_thread.cpp holds the loop and the answers' way back; io_thread_requests.cpp the way in
// (parsing, admission, submission); io_thread_archive.cpp the answers that need the archive
// of payments that left memory (net/archive_lookup.hpp); io_thread_events.cpp the events and
// webhook routes, answered by the events service's workers (net/events_call.hpp).

#include <pthread.h>
#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"
#include "net/answer_token.hpp"
#include "net/connection.hpp"
#include "net/decide.hpp"
#include "net/metrics.hpp"
#include "net/server.hpp"

namespace paycore::net {

/// CLOCK_MONOTONIC in microseconds: latencies and timeouts.
std::int64_t monotonic_us();
/// CLOCK_REALTIME in seconds: the signature time window and nonce expiry.
std::int64_t wall_seconds();

class IoThread {
 public:
  /// I/O thread `index` of `server`: the engine's producer `index`.
  IoThread(Server& server, std::uint32_t index);
  ~IoThread();

  /// Its epoll set with the listener, the engine's result eventfd, its wake eventfd (and with
  /// drive_engine the core's poll fd). An io error naming the call if one fails.
  Status init();
  /// Starts the thread; it runs until the server stops and its connections are closed.
  void start() {
    thread_ = std::thread([this] { run(); });
    (void)::pthread_setname_np(thread_.native_handle(), "paycore-io");  // top -H, perf
  }
  /// Wakes the loop from another thread (stop, the nonce journal's fdatasync).
  void wake();
  /// Waits for the thread to end (after Server::stop set stopping_).
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  ServerMetrics metrics;  // this thread's counters; /metrics of any thread reads them

 private:
  // io_thread.cpp: the loop, scheduling, the engine's answers, rendering.
  void run();
  void dispatch_events(const epoll_event* events, int count, bool* results, bool* archive_answers);
  void serve_pending_lists();
  void on_event(std::uint32_t index, std::uint32_t events);
  void serve_tls_pending();
  void refresh_journal();
  bool drive_engine();
  void take_responses();
  void on_response(const Response& response, std::int64_t received_ns);
  Slot* waiting_slot(const AnswerToken& token, Connection** connection);
  static void finish_item(Slot& slot);
  bool render_ready(Connection& c);
  bool answer(Connection& c, Slot& slot);
  void log_answer(const Slot& slot, int status, std::uint64_t latency_us);
  void service(Connection& c);
  void service_dirty();
  void mark_dirty(Connection& c);
  void mark_pending(Connection& c);
  void begin_shutdown();
  const auth::Keys& keys();
  std::int64_t now_ms() const { return now_us_ / 1000; }

  // io_thread_archive.cpp: answers the engine could not give from memory, finished by reading
  // the archive off this thread (net/archive_lookup.hpp).
  bool single_lookup_started(Slot& slot, const AnswerToken& token);
  bool item_lookup_started(BatchEntry& entry, const AnswerToken& token);
  const LocalError* submit_lookup(const ArchiveLookupJob& job, std::uint8_t* lookups);
  void take_archive_answers();
  void on_archive_answer(const ArchiveLookupDone& done);
  void answer_single_lookup(Slot& slot, const AnswerToken& token, const ArchiveLookupDone& done);
  void answer_item_lookup(Slot& slot, const AnswerToken& token, const ArchiveLookupDone& done);
  bool submit_again(const AnswerToken& token, const ArchiveLookupDone& done);

  // io_thread_list.cpp: GET /v1/payments, served by the core's steps and the archive.
  void execute_list(Connection& c, Slot& slot, const PaymentListRequest& request);
  void list_step(Slot& slot, const AnswerToken& token);
  void list_lookup(Slot& slot, const AnswerToken& token, ArchiveLookupPurpose purpose);
  void on_list_step(Slot& slot, const AnswerToken& token, const Result& result);
  void on_list_lookup(Slot& slot, const AnswerToken& token, const ArchiveLookupDone& done);
  void finish_list(Slot& slot);
  void finish_list_local(Slot& slot, const LocalError& error);
  void drop_list(PaymentListWork* work);

  // io_thread_events.cpp: the events and webhook routes, called on the events pool's workers.
  void execute_events(Connection& c, Slot& slot, const EventsCall& call);
  void take_events_answers();

  // io_thread_requests.cpp: from bytes to a slot that waits for its answer.
  bool parse_requests(Connection& c);
  void expect_continue(Connection& c, std::size_t body_bytes_received);
  void send_continue_if_due(Connection& c);
  void refuse_malformed(Connection& c, const HttpParseResult& parsed);
  void handle_request(Connection& c, const HttpRequest& request);
  bool authenticate(Slot& slot, const HttpRequest& request, const auth::Keys& keys, auth::AuthResult* auth);
  void execute(Connection& c, Slot& slot, const Decision& decision, const auth::AuthResult* auth,
               const HttpRequest& request);
  void execute_batch(Connection& c, Slot& slot, const auth::AuthResult& auth, const HttpRequest& request);
  bool admit_batch_items(Slot& slot, const auth::AuthResult& auth, const HttpRequest& request,
                         std::uint32_t* granted);
  void submit_batch_items(Connection& c, Slot& slot, const auth::AuthResult& auth, std::uint32_t granted);
  bool admit(Slot& slot, const auth::AuthResult& auth, Route route, const HttpRequest& request,
             bool nonce_to_log);
  bool record_signed_nonce(Slot& slot, const auth::AuthResult& auth, bool nonce_to_log = false);
  void settle_nonce(Slot& slot);
  void settle_nonces_of_closed(Connection& c);
  bool rate_limited(Slot& slot, const auth::Principal& principal, Route route, const HttpRequest& request,
                    std::uint32_t cost);
  // `nonce`: the signer's, carried in the command to the log (null: none). `min_lsn`: the
  // request's Paycore-Min-Lsn (Request::min_lsn; 0: none).
  bool submit(const AnswerToken& token, const Command& command, RequestOp op = RequestOp::command,
              const LoggedNonce* nonce = nullptr, std::uint64_t min_lsn = 0);
  void submit_single(Connection& c, Slot& slot, const Command& command, RequestOp op);
  Slot& push_slot(Connection& c);
  static std::uint32_t slot_index(const Connection& c, const Slot& slot) {
    return static_cast<std::uint32_t>(&slot - c.slots.data());
  }
  static void finish_local(Slot& slot, const LocalError& error) {
    slot.kind = SlotKind::local_error;
    slot.error = error;
    slot.state = SlotState::ready;
  }

  Server& server_;
  const ServerConfig& config_;
  std::uint32_t producer_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  ConnectionTable connections_;
  JsonDecoder decoder_;
  TraceIdGenerator trace_ids_;
  OutBuffer body_;  // scratch for the body of the response being rendered
  std::vector<Response> responses_;
  ArchiveLookup* lookup_ = nullptr;  // the server's, null without an archive
  std::vector<ArchiveLookupDone> archive_answers_;
  EventsCalls* events_calls_ = nullptr;  // the server's, null when events are off
  std::vector<EventsDone> events_answers_;
  std::vector<BatchItem> batch_items_;
  // Listings in flight, by their work's address (lent to the core or a worker by pointer).
  std::unordered_map<const PaymentListWork*, std::unique_ptr<PaymentListWork>> lists_;
  std::vector<std::uint32_t> dirty_;
  // Connections that a per-wake budget (service rounds, pipeline depth) left with complete
  // requests in their buffer and no event to come for them: served again on the next loop
  // iteration, which then does not sleep in epoll_wait.
  std::vector<std::uint32_t> pending_;
  std::shared_ptr<const auth::Keys> keys_;
  std::uint64_t keys_version_ = ~std::uint64_t{0};
  std::int64_t now_us_ = 0;
  std::int64_t now_s_ = 0;  // wall clock, read per signed request (auth time window)
  std::int64_t next_timeout_check_ms_ = 0;
  bool shutting_down_ = false;
  std::uint64_t submitted_ = 0;  // requests handed to the engine (run to completion: more work)
  std::int64_t shutdown_deadline_ms_ = 0;
  std::uint64_t journal_durable_ = 0;           // the nonce journal's durable_seq(), last seen
  std::vector<std::uint32_t> journal_waiters_;  // connections whose next answer waits for it
};

}  // namespace paycore::net
