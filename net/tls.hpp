#pragma once
// TLS on the listener (docs/api.md "Conventions": TLS terminated by `paycore serve`, certificate
// and key files from the configuration, reloaded on SIGHUP; docs/operations.md `tls_cert`).
//
// OpenSSL 3, TLS 1.2 and 1.3 only (SSL_CTX_set_min_proto_version), no renegotiation. The
// certificate chain file is PEM: the server's certificate first, then intermediates
// (SSL_CTX_use_certificate_chain_file); the key file is PEM and must match it
// (SSL_CTX_check_private_key).
//
// Reload: TlsContext holds the SSL_CTX that new connections use; reload() builds a complete new
// one from the files and swaps it in only if everything loaded, so a bad file on SIGHUP keeps the
// old certificate. A session made earlier holds a reference to the SSL_CTX it was made from
// (SSL_new takes one), so existing connections keep theirs until they close.
//
// The I/O is non-blocking and driven by the epoll loop: the handshake happens inside the first
// tls_read() calls (the session is in accept state); every call reports whether the socket
// must become readable or writable before it can go on.

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.hpp"

namespace paycore::net {

struct TlsConfig {
  std::string cert_chain_path;  // PEM, leaf first
  std::string key_path;         // PEM
};

class TlsContext {
 public:
  /// The context for `config`; an io error (the file and OpenSSL's reason) if a file cannot be
  /// used.
  static StatusOr<std::unique_ptr<TlsContext>> create(const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /// Re-reads the files; on failure keeps the current context and returns the error.
  Status reload();
  // A server-side session on `fd` (accept state) with the current context; nullptr if OpenSSL
  // cannot allocate one. Thread-safe.
  SSL* new_session(int fd);

 private:
  explicit TlsContext(const TlsConfig& config) : config_(config) {}
  TlsConfig config_;
  std::mutex mutex_;
  SSL_CTX* current_ = nullptr;
};

enum class TlsIo : unsigned char {
  ok,          // `bytes` moved
  want_read,   // call again when the socket is readable
  want_write,  // call again when the socket is writable
  closed,      // the peer closed the TLS session (close_notify or EOF)
  failed,      // a protocol error (garbage, a refused version, a bad record): close
};

struct TlsIoResult {
  TlsIo status = TlsIo::failed;
  std::size_t bytes = 0;
};

TlsIoResult tls_read(SSL* ssl, char* data, std::size_t size);
TlsIoResult tls_write(SSL* ssl, const char* data, std::size_t size);
// Decrypted bytes already held by OpenSSL (no socket event will announce them).
bool tls_has_pending(SSL* ssl);
// Sends close_notify if it can without blocking, then frees the session.
void tls_close(SSL* ssl);

}  // namespace paycore::net
