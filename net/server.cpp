#include "net/server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "net/answer_token.hpp"
#include "net/io_thread.hpp"

namespace paycore::net {
namespace {

Status check_config(const ServerConfig& config, const Engine& engine) {
  if (config.drive_engine && config.io_threads != 1) {
    return Status::invalid_argument(
        "running the engine on the I/O thread needs exactly one I/O thread");
  }
  if (config.nonces != nullptr && config.nonces->window_s() != config.auth_window_s) {
    return Status::invalid_argument("the nonce cache's window is not auth_window_s");
  }
  if (config.pipeline_depth == 0 || config.pipeline_depth > (1u << answer_token_slot_bits)) {
    return Status::invalid_argument("pipeline depth must be 1..256");
  }
  if (config.batch_items_max == 0 || config.batch_items_max > (1u << answer_token_item_bits)) {
    return Status::invalid_argument(
        "batch_items_max must be 1..4096 (the item's bits in an engine token)");
  }
  if (engine.config().producers < config.io_threads) {
    return Status::invalid_argument("the engine has fewer producers than I/O threads");
  }
  return Status::ok();
}

std::uint16_t bound_port(int fd) {
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

}  // namespace

Server::Server(const ServerConfig& config, Engine& engine, auth::KeysHolder& keys)
    : config_(config),
      engine_(engine),
      keys_(keys),
      own_nonces_(config.nonces != nullptr
                      ? nullptr
                      : std::make_unique<auth::NonceCache>(auth::NonceCacheConfig{
                            config.nonce_entries_max, 64, config.auth_window_s})),
      nonces_(config.nonces != nullptr ? *config.nonces : *own_nonces_),
      rate_limiter_(config.rate_limits) {}

Server::~Server() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

StatusOr<std::unique_ptr<Server>> Server::create(const ServerConfig& config, Engine& engine,
                                                 auth::KeysHolder& keys) {
  PAYCORE_ASSERT_GE(config.io_threads, 1u);
  PAYCORE_RETURN_IF_ERROR(check_config(config, engine));
  std::unique_ptr<Server> server(new Server(config, engine, keys));
  PAYCORE_RETURN_IF_ERROR(server->listen());
  server->prepare_refusal();
  PAYCORE_RETURN_IF_ERROR(server->create_archive_lookup());
  PAYCORE_RETURN_IF_ERROR(server->create_events_calls());
  for (std::uint32_t i = 0; i < config.io_threads; ++i) {
    auto thread = std::make_unique<IoThread>(*server, i);
    PAYCORE_RETURN_IF_ERROR(thread->init());
    server->metrics_.push_back(&thread->metrics);
    server->threads_.push_back(std::move(thread));
  }
  if (!config.nonce_journal_dir.empty()) PAYCORE_RETURN_IF_ERROR(server->open_nonce_journal());
  PAYCORE_RETURN_IF_ERROR(server->start_tls());
  return server;
}

// The listening socket on config_.host:config_.port (port 0: any free one).
Status Server::listen() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(config_.port);
  const int gai = ::getaddrinfo(config_.host.empty() ? nullptr : config_.host.c_str(),
                                port_text.c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) {
    return Status::io_error("cannot resolve " + config_.host + ": " + ::gai_strerror(gai));
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool listening = fd >= 0 && ::bind(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                         ::listen(fd, static_cast<int>(config_.listen_backlog)) == 0;
  const int listen_errno = errno;
  ::freeaddrinfo(found);
  if (!listening) {
    if (fd >= 0) ::close(fd);
    return errno_status("cannot listen on " + config_.host + ":" + port_text, listen_errno);
  }
  port_ = bound_port(fd);
  listen_fd_ = fd;
  return Status::ok();
}

// The whole 503 answer for a connection over the limit, made once.
void Server::prepare_refusal() {
  OutBuffer body(256);
  OutBuffer whole(1024);
  ResponseHead head;
  head.status = 503;
  head.keep_alive = false;
  const bool body_made = write_error_body(body, "unavailable", "too many connections; retry later");
  PAYCORE_ASSERT(body_made);
  const bool made = write_response(whole, head, body.view());
  PAYCORE_ASSERT(made);
  refusal_.assign(whole.view());
}

Status Server::open_nonce_journal() {
  NonceJournalLoad load;
  StatusOr<std::unique_ptr<NonceJournal>> journal = NonceJournal::open(
      config_.nonce_journal_dir, config_.auth_window_s, wall_seconds(), nonces_, &load);
  if (!journal.is_ok()) return journal.status();
  journal_ = std::move(journal).value();
  // A write's nonce may ride in its log record only if recovery gives back those of the whole
  // time a nonce lives (its timestamp may be a window ahead, and it lives a window after it).
  const EngineConfig& engine = engine_.config();
  log_carries_nonces_ = config_.nonces != nullptr && engine.on_recovered_nonce &&
                        engine.nonce_retention_us >= 2 * config_.auth_window_s * 1'000'000;
  journal_->set_on_durable([this] {
    for (auto& thread : threads_) thread->wake();
  });
  log_line(LogLevel::info, "nonce journal loaded",
           {{"dir", config_.nonce_journal_dir},
            {"files", std::to_string(load.files)},
            {"records", std::to_string(load.records)},
            {"live", std::to_string(load.live)},
            {"torn_files", std::to_string(load.torn)},
            {"cache_full", std::to_string(load.cache_full)}});
  return Status::ok();
}

// TLS when a certificate or a key is configured (both are then needed).
Status Server::start_tls() {
  const TlsConfig& tls = config_.tls;
  if (tls.cert_chain_path.empty() && tls.key_path.empty()) return Status::ok();
  if (tls.cert_chain_path.empty() || tls.key_path.empty()) {
    return Status::invalid_argument("TLS needs both a certificate chain file and a key file");
  }
  StatusOr<std::unique_ptr<TlsContext>> context = TlsContext::create(tls);
  if (!context.is_ok()) return context.status();
  tls_ = std::move(context).value();
  return Status::ok();
}

// The archive readers, one completion queue per I/O thread (before the threads register it).
Status Server::create_archive_lookup() {
  if (config_.archive == nullptr) return Status::ok();
  const ArchiveLookupConfig lookup{config_.archive_read_threads, config_.archive_lookups_queued_max};
  StatusOr<std::unique_ptr<ArchiveLookup>> created =
      ArchiveLookup::create(*config_.archive, lookup, config_.io_threads);
  if (!created.is_ok()) return created.status();
  archive_lookup_ = std::move(created).value();
  return Status::ok();
}

// The events service's workers, one completion queue per I/O thread (before the threads
// register it).
Status Server::create_events_calls() {
  if (config_.events == nullptr) return Status::ok();
  events::EventsService* service = config_.events;
  StatusOr<std::unique_ptr<EventsCalls>> created = EventsCalls::create(
      "events calls", WorkerPoolConfig{config_.events_threads, config_.events_calls_queued_max},
      config_.io_threads, [service](const EventsJob& job) {
        return EventsDone{job.token, answer_events_call(*service, job.call)};
      });
  if (!created.is_ok()) return created.status();
  events_calls_ = std::move(created).value();
  return Status::ok();
}

void Server::start() {
  if (archive_lookup_) archive_lookup_->start();
  if (events_calls_) events_calls_->start();
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
  // After the threads too: they finish requests whose lookups are still in flight.
  if (archive_lookup_) archive_lookup_->stop();
  if (events_calls_) events_calls_->stop();
}

}  // namespace paycore::net
