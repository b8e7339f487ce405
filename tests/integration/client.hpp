#pragma once
// Test helpers for the integration suites: run the real `paycore serve` binary on a free port
// and talk to it over real sockets, signing requests as merchants, the operator and channels.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/credentials.hpp"

namespace paycore::it {

std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& dir);
std::string read_file(const std::string& path);

// A `paycore serve` child process. Its stderr is read by a thread (so the pipe never fills)
// and kept; the listening line gives the port.
class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts `paycore serve --listen 127.0.0.1:0 --data-dir DIR [--keys FILE] extra...` and
  // waits (up to 30 s) for "listening on". False (with the log) if it did not come up.
  bool start(const std::string& data_dir, const std::string& keys_path,
             const std::vector<std::string>& extra_args = {});
  // Sends `signal` and waits for the exit; returns the exit status (128+n for a signal).
  int stop(int signal_number);
  void kill_hard() { (void)stop(9); }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  std::uint16_t port() const { return port_; }
  std::string log() const;

 private:
  void read_stderr(int fd);

  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::string log_;
  std::atomic<bool> listening_{false};
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool closed = false;  // the server closed the connection after this response (or instead)
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

// A TLS client's settings (Connection's optional TLS mode).
struct TlsClientOptions {
  std::string ca_file;  // PEM; the server's chain must verify against it
  bool verify = true;
};

// One TCP connection; with `tls`, a TLS session on it (the handshake is done by the
// constructor; ok() is false if it failed).
class Connection {
 public:
  explicit Connection(std::uint16_t port);
  Connection(std::uint16_t port, const TlsClientOptions& tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool send_all(const std::string& bytes);
  // Reads one response (Content-Length framed). status 0 if the connection closed first or
  // nothing came within `timeout_ms`.
  HttpResponse read_response(int timeout_ms = 10'000);
  // The answer to a HEAD request: its Content-Length describes a body that is not sent
  // (RFC 9110 9.3.2), so none is read.
  HttpResponse read_head_response(int timeout_ms = 10'000);
  // Half-closes: the server sees EOF after what was sent.
  bool shutdown_write();
  // True if the server closes the connection (EOF) within `timeout_ms`.
  bool wait_closed(int timeout_ms);
  void close();
  // TLS mode: lowercase hex SHA-256 of the server's certificate (DER), "TLSv1.3" or similar.
  std::string peer_fingerprint() const;
  std::string tls_version() const;

 private:
  bool fill(int timeout_ms);
  HttpResponse read_one(int timeout_ms, bool has_body);
  ssize_t receive(char* data, std::size_t size);
  int fd_ = -1;
  std::string buffer_;
  struct ssl_ctx_st* tls_ctx_ = nullptr;
  struct ssl_st* tls_ = nullptr;
};

// amount_max of the mandates that tests grant when the limit is not what they test.
inline constexpr std::int64_t mandate_amount_max_default = 1'000'000'000'000'000;

// Who signs: a merchant or the operator (HMAC), built from the keys file.
struct Signer {
  std::string id;
  std::string secret;
};

class Client {
 public:
  Client(std::uint16_t port, std::shared_ptr<const auth::Keys> keys);

  Signer operator_signer() const;
  Signer merchant(const std::string& id) const;

  // The raw request text with signature headers.
  static std::string signed_request(const Signer& who, const std::string& method,
                                    const std::string& target, const std::string& body,
                                    std::int64_t timestamp = 0, const std::string& nonce = {},
                                    const std::string& extra_headers = {});
  static std::string fresh_nonce();

  HttpResponse call(const Signer& who, const std::string& method, const std::string& target,
                    const std::string& body = {});
  HttpResponse get(const std::string& target);  // unsigned
  HttpResponse raw(const std::string& request);  // on a fresh connection

  std::uint16_t port() const { return port_; }
  const auth::Keys& keys() const { return *keys_; }

 private:
  std::uint16_t port_;
  std::shared_ptr<const auth::Keys> keys_;
  std::unique_ptr<Connection> connection_;
};

// The body of POST /v1/mandates (docs/api.md "Mandates"): `expires_at` is an RFC 3339 time, or
// empty for a mandate that never expires (the member is left out).
std::string mandate_body(const std::string& request_id, const std::string& mandate_id,
                         const std::string& payer, const std::string& merchant,
                         std::int64_t amount_max, const std::string& expires_at = {},
                         bool single_use = false);
// Records, as the operator, the mandate that lets `merchant` debit `payer`, and returns the
// answer (201 with the mandate). The mandate_id and request_id are "mandate-<payer>-<merchant>"
// and "rm-<payer>-<merchant>": granting the same pair twice replays the first answer.
HttpResponse grant_mandate(Client& client, const std::string& payer, const std::string& merchant,
                           std::int64_t amount_max = mandate_amount_max_default);

// A channel notification request, RSA-signed with the private key PEM.
std::string notification_request(const std::string& channel, const std::string& private_key_pem,
                                 const std::string& body, bool corrupt_signature = false);

// Small JSON field readers for assertions (simdjson underneath). Missing: nullopt.
std::optional<std::int64_t> json_int(const std::string& json, const std::string& pointer);
std::optional<std::string> json_string(const std::string& json, const std::string& pointer);
// A gauge or counter sample of a /metrics exposition ("name value" or "name{labels} value");
// -1 when absent.
std::int64_t metric(const std::string& exposition, const std::string& sample);
bool json_is_null(const std::string& json, const std::string& pointer);
std::size_t json_array_size(const std::string& json, const std::string& pointer);

// A server shared by a test suite: data dir and keys in a temp dir, removed at the end.
struct Fixture {
  std::string dir;
  std::string data_dir;
  std::string keys_path;
  std::shared_ptr<const auth::Keys> keys;
  std::unique_ptr<ServerProcess> server;
  bool start(const std::vector<std::string>& extra_args = {});
  bool restart(const std::vector<std::string>& extra_args = {});
  void destroy();
  std::string private_key(const std::string& channel) const;
};

}  // namespace paycore::it
