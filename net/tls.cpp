#include "net/tls.hpp"

#include <openssl/err.h>

#include "base/assert.hpp"

namespace paycore::net {
namespace {

// OpenSSL's queued errors as one line (and the queue emptied, so that a later call on this
// thread does not report them again).
std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(code, line, sizeof(line));
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? std::string("unknown OpenSSL error") : text;
}

// A context with the configuration's certificate chain and key; an io error naming the file
// and OpenSSL's reason if either cannot be used.
StatusOr<SSL_CTX*> build_context(const TlsConfig& config) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Status::io_error("SSL_CTX_new: " + openssl_errors());
  const auto fail = [&](const std::string& what) {
    Status status = Status::io_error(what + ": " + openssl_errors());
    SSL_CTX_free(ctx);
    return status;
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("TLS 1.2 minimum");
  // No renegotiation (a CPU sink and a source of old attacks); an EOF without close_notify is
  // an ordinary close (HTTP framing tells whether an answer was complete, RFC 9112 9.8).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  // The output buffer's front moves between a write that wanted to wait and its retry, and a
  // partial write is how a non-blocking socket works.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_chain_path.c_str()) != 1) {
    return fail(config.cert_chain_path);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(config.key_path);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(config.key_path + " does not match " + config.cert_chain_path);
  }
  return ctx;
}

TlsIoResult from_error(SSL* ssl, int ret) {
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ: return {TlsIo::want_read, 0};
    case SSL_ERROR_WANT_WRITE: return {TlsIo::want_write, 0};
    case SSL_ERROR_ZERO_RETURN: return {TlsIo::closed, 0};
    default:
      ERR_clear_error();  // per-thread queue: do not leak this connection's error to the next
      return {TlsIo::failed, 0};
  }
}

}  // namespace

StatusOr<std::unique_ptr<TlsContext>> TlsContext::create(const TlsConfig& config) {
  StatusOr<SSL_CTX*> ctx = build_context(config);
  if (!ctx.is_ok()) return ctx.status();
  std::unique_ptr<TlsContext> tls(new TlsContext(config));
  tls->current_ = *ctx;
  return tls;
}

TlsContext::~TlsContext() { SSL_CTX_free(current_); }

Status TlsContext::reload() {
  StatusOr<SSL_CTX*> built = build_context(config_);
  if (!built.is_ok()) return built.status();
  SSL_CTX* fresh = *built;
  SSL_CTX* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old = current_;
    current_ = fresh;
  }
  SSL_CTX_free(old);  // sessions made from it hold their own references
  return Status::ok();
}

SSL* TlsContext::new_session(int fd) {
  SSL* ssl = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ssl = SSL_new(current_);
  }
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_set_fd(ssl, fd) != 1) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

TlsIoResult tls_read(SSL* ssl, char* data, std::size_t size) {
  PAYCORE_ASSERT(size > 0);
  std::size_t bytes = 0;
  const int ret = SSL_read_ex(ssl, data, size, &bytes);
  if (ret == 1) return {TlsIo::ok, bytes};
  return from_error(ssl, ret);
}

TlsIoResult tls_write(SSL* ssl, const char* data, std::size_t size) {
  PAYCORE_ASSERT(size > 0);
  std::size_t bytes = 0;
  const int ret = SSL_write_ex(ssl, data, size, &bytes);
  if (ret == 1) return {TlsIo::ok, bytes};
  return from_error(ssl, ret);
}

// SSL_pending, not SSL_has_pending: the latter also counts a partial record, which only more
// bytes from the socket (an epoll event) can complete.
bool tls_has_pending(SSL* ssl) { return SSL_pending(ssl) > 0; }

void tls_close(SSL* ssl) {
  if (ssl == nullptr) return;
  // Only after a completed handshake; never waits for the peer's close_notify.
  if (SSL_is_init_finished(ssl) == 1) (void)SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
}

}  // namespace paycore::net
