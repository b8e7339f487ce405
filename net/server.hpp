#pragma once
// The HTTP/1.1 server: N I/O threads, each an epoll loop over its connections, the shared
// listening socket (EPOLLEXCLUSIVE: one thread wakes per connection) and its engine result
// eventfd. I/O thread i is the engine's producer i: it parses requests in place, verifies
// signatures, builds Commands and submits them; results come back through the engine's ring
// and are written to their connection in request order (pipelining).
//
// A request in flight is a Slot of its connection (net/slot.hpp); the engine carries an
// AnswerToken (net/answer_token.hpp: its layout and lifetime) back with each answer.
//
// Where a request goes (net/io_thread.hpp): ConnectionTable reads its bytes
// (net/connection.hpp), the HTTP parser frames it (net/http_parser.hpp), the I/O thread
// authenticates the signer, decide() says what it means (net/decide.hpp), the thread admits it
// (rate limit, nonce) and submits it; the answer comes back through the result ring and
// render_slot() writes it (net/render.hpp).
//
// No work is left behind by a budget (docs/api.md: every complete request in the buffer is
// answered without waiting for more bytes). The per-wake limits either leave their work where
// level-triggered epoll reports it again (epoll_events_max, accepts_per_wake_max,
// reads_per_wake_max: the bytes stay in the socket), or drain until short (the result ring),
// or are re-armed by an event that must come (pipeline_depth: the engine's answers; the
// output high-water mark: EPOLLOUT). The two that have no event to come for them -- the
// service rounds, and answers held back by the high-water mark when the output then drained
// in one send -- put the connection on a pending list served on the next loop iteration, and
// that iteration polls instead of sleeping. Run to completion likewise never sleeps while the
// core stopped at its turn budget or has just been given requests.
//
// With an archive (ServerConfig::archive), what the engine cannot answer from memory -- a GET
// of a payment that left memory, a command answered archive_check_needed -- is finished by a
// read of the archive on the ArchiveLookup's workers, never on an I/O thread
// (net/io_thread_archive.cpp, docs/api.md "Payments that left memory"). With an events service
// (ServerConfig::events) the events and webhook routes are answered likewise, by the events
// pool's workers (net/events_call.hpp, net/io_thread_events.cpp).
//
// HTTP details (docs/api.md): `Expect: 100-continue` is answered with 100 once the header
// section is in and no body byte is (after every earlier pipelined answer), or with the final
// answer at once when the header section decides it (404/405, and 401 for missing signature
// headers, here; 400/411/413/431 by the parser), the connection then closing; HEAD is routed and
// executed as GET and answered without the body.
//
// Why epoll and not io_uring: requests are small and answered from memory, so the cost per
// request is syscalls; with level-triggered epoll one recv and one send per wake-up carry every
// pipelined request and answer of a connection. io_uring multishot recv could save the
// epoll_wait but needs provided-buffer rings and another buffer-ownership model; it was not
// built, so no comparison was measured. What was measured (docs/operations.md): with 64
// connections payments are bounded by fsync latency times the requests in flight.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.hpp"
#include "core/engine.hpp"
#include "events/service.hpp"
#include "net/archive_lookup.hpp"
#include "net/credentials.hpp"
#include "net/events_call.hpp"
#include "net/http_parser.hpp"
#include "net/metrics.hpp"
#include "net/nonce_journal.hpp"
#include "net/rate_limit.hpp"
#include "net/tls.hpp"

namespace paycore::net {

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see Server::port())
  std::uint32_t io_threads = 1;
  // Run to completion (`--io-threads 0`): one I/O thread also drives the engine's core
  // (Engine::turn), so a request is parsed, applied and answered on one thread, as in Redis.
  // The engine must not have been start()ed. io_threads must then be 1.
  bool drive_engine = false;
  HttpLimits http;
  std::uint32_t connections_max = 10'000;
  std::int64_t header_timeout_ms = 10'000;  // a started request must arrive whole in this time
  std::int64_t idle_timeout_ms = 60'000;    // a connection with nothing in flight
  std::int64_t shutdown_grace_ms = 5'000;   // finishing in-flight requests at stop
  std::uint32_t pipeline_depth = 32;        // requests in flight per connection (<= 256)
  std::size_t out_bytes_max =
      16u << 20;  // per connection; unsent answers beyond 1 MiB pause reading
  std::uint32_t listen_backlog = 1024;
  std::int64_t auth_window_s = auth::auth_window_s_default;
  std::size_t nonce_entries_max = std::size_t{1} << 22;
  std::uint32_t batch_items_max = 1000;
  Amount amount_max = amount_max_default;
  bool access_log = false;  // one log line per request (otherwise only 5xx and protocol errors)
  // Accepted nonces are made durable before their answers leave: a single write's in its log
  // record (Command::nonce), every other one in the nonce journal kept here
  // (net/nonce_journal.hpp). Empty: nonces are kept in memory only (forgotten at restart).
  std::string nonce_journal_dir;
  // The nonce cache, when the caller made it before the engine so that recovery could put the
  // logged nonces back into it (EngineConfig::on_recovered_nonce); its window must be
  // auth_window_s. Null: the server makes its own. Must outlive the server.
  auth::NonceCache* nonces = nullptr;
  RateLimitConfig rate_limits;  // off unless a class has per_s > 0 (net/rate_limit.hpp)
  TlsConfig tls;  // both paths empty: plain HTTP; otherwise every connection is TLS (net/tls.hpp)
  // The archive of payments that left memory (docs/design.md "Hot and cold"); must outlive
  // the server. Null: a single tier, no archive lookups (nothing was ever archived, so the
  // engine never answers archive_check_needed).
  const ArchiveReader* archive = nullptr;
  std::uint32_t archive_read_threads = 2;         // workers reading it (net/archive_lookup.hpp)
  std::uint32_t archive_lookups_queued_max = 4096;  // beyond: 503 at once
  // Events and webhooks (issue 15; docs/api.md "Events and webhooks"): what GET /v1/events,
  // the webhook endpoint routes, deliveries and redeliver call, on events_threads workers of
  // their own (its calls may block on disk: never on an I/O thread; net/events_call.hpp).
  // Must outlive the server. Null: events are off, and those routes answer 404 not_found.
  events::EventsService* events = nullptr;
  std::uint32_t events_threads = 2;           // 1..64
  std::uint32_t events_calls_queued_max = 1024;  // calls waiting for a worker; beyond: 503
  // A call with Paycore-Min-Lsn waits on its worker, at most this long, for the events of the
  // log up to that LSN to be derived; then 503 unavailable (min_lsn_wait_ms).
  std::int64_t events_min_lsn_wait_ms = 1000;
  // In a cluster (docs/replication.md): the primary's base URL as last known ("" when
  // unknown), sent as Paycore-Primary with every `503 not_primary`. Called from the I/O
  // threads, only for such answers. Null on a single node.
  std::function<std::string()> primary_url;
};

class IoThread;

class Server {
 public:
  /// Binds and listens; the I/O threads start serving at start(). Engine producers
  /// 0..io_threads-1 belong to the server. An invalid_argument Status for a configuration
  /// outside its limits, an io error (naming the call, host and port, or file) otherwise.
  static StatusOr<std::unique_ptr<Server>> create(const ServerConfig& config, Engine& engine,
                                                  auth::KeysHolder& keys);
  ~Server();

  std::uint16_t port() const { return port_; }  // the bound port
  const std::string& host() const { return config_.host; }

  void start();
  // Stops accepting, stops reading new requests, answers those in flight (up to the grace
  // period), closes every connection and joins the threads. The engine keeps running.
  void stop();
  // Call after KeysHolder::set: I/O threads pick the new keys up before their next request.
  void keys_changed() { keys_version_.fetch_add(1, std::memory_order_release); }
  bool tls_enabled() const { return tls_ != nullptr; }
  /// SIGHUP: re-reads the certificate and key files for new connections; existing ones keep
  /// theirs. An error (the old files stay in use) if they cannot be used.
  Status reload_tls() { return tls_ == nullptr ? Status::ok() : tls_->reload(); }

  const ServerConfig& config() const { return config_; }

 private:
  friend class IoThread;
  Server(const ServerConfig& config, Engine& engine, auth::KeysHolder& keys);
  Status listen();
  Status open_nonce_journal();
  Status start_tls();
  Status create_archive_lookup();
  Status create_events_calls();
  void prepare_refusal();

  ServerConfig config_;
  Engine& engine_;
  auth::KeysHolder& keys_;
  std::atomic<std::uint64_t> keys_version_{0};
  std::unique_ptr<auth::NonceCache> own_nonces_;  // when config_.nonces is null
  auth::NonceCache& nonces_;
  std::unique_ptr<NonceJournal> journal_;  // null when config_.nonce_journal_dir is empty
  // A single write's nonce goes in its command to the log instead of the journal (with a
  // journal, a nonce cache given by the caller, and an engine that keeps and recovers logged
  // nonces long enough: recovery can only have filled a cache made before the engine).
  bool log_carries_nonces_ = false;
  RateLimiter rate_limiter_;
  std::unique_ptr<TlsContext> tls_;  // null: plain HTTP
  std::unique_ptr<ArchiveLookup> archive_lookup_;  // null without config_.archive
  std::unique_ptr<EventsCalls> events_calls_;      // null without config_.events
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<std::uint32_t> connections_open_{0};
  std::string refusal_;  // the whole 503 response for connections over the limit
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::vector<const ServerMetrics*> metrics_;
};

}  // namespace paycore::net
