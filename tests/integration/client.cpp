#include "tests/integration/client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "net/credentials.hpp"

#ifndef PAYCORE_BINARY
#error "PAYCORE_BINARY must name the paycore executable"
#endif

namespace paycore::it {

std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

void remove_tree(const std::string& dir) {
  std::error_code ignored;
  if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// ---- ServerProcess ----

ServerProcess::~ServerProcess() {
  if (pid_ > 0) (void)stop(SIGKILL);
  if (reader_.joinable()) reader_.join();
}

bool ServerProcess::start(const std::string& data_dir, const std::string& keys_path,
                          const std::vector<std::string>& extra_args) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return false;
  std::vector<std::string> args = {PAYCORE_BINARY, "serve", "--listen", "127.0.0.1:0",
                                   "--data-dir", data_dir};
  if (!keys_path.empty()) {
    args.push_back("--keys");
    args.push_back(keys_path);
  }
  // PAYCORE_IT_SERVE_ARGS (space-separated) runs a whole suite in another configuration, e.g.
  // "--io-threads 0" for run to completion.
  if (const char* more = std::getenv("PAYCORE_IT_SERVE_ARGS")) {
    std::istringstream words(more);
    for (std::string word; words >> word;) args.push_back(word);
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    if (null_fd >= 0) ::dup2(null_fd, 1);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  pid_ = pid;
  listening_ = false;
  port_ = 0;
  {
    std::lock_guard lock(mutex_);
    log_.clear();
  }
  if (reader_.joinable()) reader_.join();
  reader_ = std::thread([this, fd = pipe_fds[0]] { read_stderr(fd); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (listening_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      // Read to the end of the pipe: the lines written just before the exit (why it did not
      // start) may still be in it, and callers look for them in log().
      if (reader_.joinable()) reader_.join();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void ServerProcess::read_stderr(int fd) {
  char chunk[4096];
  std::string line;
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    log_.append(chunk, static_cast<std::size_t>(n));
    if (!listening_) {
      const std::size_t at = log_.find("listening on 127.0.0.1:");
      if (at != std::string::npos) {
        const std::size_t digits = at + std::strlen("listening on 127.0.0.1:");
        port_ = static_cast<std::uint16_t>(std::stoi(log_.substr(digits, 6)));
        listening_ = true;
      }
    }
  }
  ::close(fd);
}

int ServerProcess::stop(int signal_number) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal_number);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ServerProcess::log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

// ---- Connection ----

Connection::Connection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

Connection::Connection(std::uint16_t port, const TlsClientOptions& tls) : Connection(port) {
  if (fd_ < 0) return;
  // Blocking socket: a read that hangs mid-record gives up after 10 s.
  const timeval limit{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  tls_ctx_ = SSL_CTX_new(TLS_client_method());
  if (tls_ctx_ == nullptr) {
    close();
    return;
  }
  if (tls.verify) {
    SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(tls_ctx_, tls.ca_file.c_str(), nullptr) != 1) {
      close();
      return;
    }
  }
  tls_ = SSL_new(tls_ctx_);
  if (tls_ == nullptr || SSL_set_fd(tls_, fd_) != 1 || SSL_connect(tls_) != 1) {
    ERR_clear_error();
    close();
  }
}

Connection::~Connection() { close(); }

void Connection::close() {
  if (tls_ != nullptr) SSL_free(tls_);
  if (tls_ctx_ != nullptr) SSL_CTX_free(tls_ctx_);
  tls_ = nullptr;
  tls_ctx_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string Connection::peer_fingerprint() const {
  if (tls_ == nullptr) return {};
  X509* cert = SSL_get1_peer_certificate(tls_);
  if (cert == nullptr) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  X509_free(cert);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    char byte[3];
    std::snprintf(byte, sizeof(byte), "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

std::string Connection::tls_version() const { return tls_ == nullptr ? std::string{} : SSL_get_version(tls_); }

ssize_t Connection::receive(char* data, std::size_t size) {
  if (tls_ == nullptr) return ::recv(fd_, data, size, 0);
  std::size_t bytes = 0;
  if (SSL_read_ex(tls_, data, size, &bytes) == 1) return static_cast<ssize_t>(bytes);
  ERR_clear_error();
  return 0;
}

bool Connection::send_all(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = 0;
    if (tls_ != nullptr) {
      std::size_t written = 0;
      n = SSL_write_ex(tls_, bytes.data() + sent, bytes.size() - sent, &written) == 1 ? static_cast<ssize_t>(written) : -1;
    } else {
      n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    }
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool Connection::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const bool buffered = tls_ != nullptr && SSL_pending(tls_) > 0;
  if (!buffered && ::poll(&p, 1, timeout_ms) <= 0) return false;
  char chunk[65536];
  const ssize_t n = receive(chunk, sizeof(chunk));
  if (n <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

HttpResponse Connection::read_response(int timeout_ms) { return read_one(timeout_ms, true); }

HttpResponse Connection::read_head_response(int timeout_ms) { return read_one(timeout_ms, false); }

bool Connection::shutdown_write() { return fd_ >= 0 && ::shutdown(fd_, SHUT_WR) == 0; }

HttpResponse Connection::read_one(int timeout_ms, bool has_body) {
  HttpResponse response;
  if (fd_ < 0) return response;
  std::size_t header_end = std::string::npos;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(timeout_ms)) {
      response.closed = true;
      return response;
    }
  }
  std::istringstream head(buffer_.substr(0, header_end));
  std::string line;
  std::getline(head, line);
  if (line.size() >= 12) response.status = std::stoi(line.substr(9, 3));
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::size_t value_at = colon + 1;
    while (value_at < line.size() && line[value_at] == ' ') ++value_at;
    response.headers[name] = line.substr(value_at);
  }
  const std::size_t length =
      !has_body ? 0
                : static_cast<std::size_t>(std::stoull(response.header("content-length").empty()
                                                           ? "0"
                                                           : response.header("content-length")));
  const std::size_t body_at = header_end + 4;
  while (buffer_.size() < body_at + length) {
    if (!fill(timeout_ms)) {
      response.status = 0;
      response.closed = true;
      return response;
    }
  }
  response.body = buffer_.substr(body_at, length);
  buffer_.erase(0, body_at + length);
  response.closed = response.header("connection") == "close";
  return response;
}

bool Connection::wait_closed(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char chunk[4096];
    const ssize_t n = receive(chunk, sizeof(chunk));
    if (n <= 0) return true;
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  return false;
}

// ---- Client ----

Client::Client(std::uint16_t port, std::shared_ptr<const auth::Keys> keys)
    : port_(port), keys_(std::move(keys)) {}

Signer Client::operator_signer() const {
  const auth::Principal& p = keys_->operator_principal();
  return Signer{std::string(p.id.view()), p.secret};
}

Signer Client::merchant(const std::string& id) const {
  const auth::Principal* p = keys_->find_principal(id);
  if (p == nullptr) throw std::runtime_error("no merchant " + id);
  return Signer{id, p->secret};
}

std::string Client::fresh_nonce() {
  static std::atomic<std::uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  return "n" + std::to_string(random()) + "-" + std::to_string(counter.fetch_add(1));
}

std::string Client::signed_request(const Signer& who, const std::string& method, const std::string& target,
                                   const std::string& body, std::int64_t timestamp, const std::string& nonce,
                                   const std::string& extra_headers) {
  const std::string ts = std::to_string(timestamp != 0 ? timestamp : static_cast<std::int64_t>(::time(nullptr)));
  const std::string n = nonce.empty() ? fresh_nonce() : nonce;
  const auth::HexSignature signature =
      auth::sign_request(who.secret, auth::SignedFields{method, target, ts, n, body});
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: test\r\n";
  request += "X-Merchant-Id: " + who.id + "\r\nX-Timestamp: " + ts + "\r\nX-Nonce: " + n +
             "\r\nX-Signature: " + std::string(signature.view()) + "\r\n";
  request += extra_headers;
  if (!body.empty() || method == "POST") {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  return request;
}

HttpResponse Client::call(const Signer& who, const std::string& method, const std::string& target,
                          const std::string& body) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!connection_ || !connection_->ok()) connection_ = std::make_unique<Connection>(port_);
    if (connection_->send_all(signed_request(who, method, target, body))) {
      HttpResponse response = connection_->read_response();
      if (response.status != 0) {
        if (response.closed) connection_.reset();
        return response;
      }
    }
    connection_.reset();  // the server closed an idle keep-alive connection: once more
  }
  return {};
}

HttpResponse Client::get(const std::string& target) {
  return raw("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n");
}

HttpResponse Client::raw(const std::string& request) {
  Connection connection(port_);
  if (!connection.send_all(request)) return {};
  return connection.read_response();
}

std::string notification_request(const std::string& channel, const std::string& private_key_pem,
                                 const std::string& body, bool corrupt_signature) {
  const auto key = auth::pem_private_key(private_key_pem);
  const std::string ts = std::to_string(::time(nullptr));
  const std::string nonce = Client::fresh_nonce();
  std::string signature = auth::sign_notification(key.get(), ts, nonce, body);
  if (corrupt_signature) signature[5] = signature[5] == 'A' ? 'B' : 'A';
  return "POST /v1/notify/" + channel + " HTTP/1.1\r\nHost: test\r\nX-Channel-Timestamp: " + ts +
         "\r\nX-Channel-Nonce: " + nonce + "\r\nX-Channel-Signature: " + signature +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// ---- JSON ----

namespace {
simdjson::dom::element at(simdjson::dom::parser& parser, const std::string& json, const std::string& pointer,
                          bool* found) {
  simdjson::dom::element root;
  *found = false;
  if (parser.parse(json).get(root) != simdjson::SUCCESS) return {};
  simdjson::dom::element value;
  if (root.at_pointer(pointer).get(value) != simdjson::SUCCESS) return {};
  *found = true;
  return value;
}
}  // namespace

std::optional<std::int64_t> json_int(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  bool found = false;
  const auto value = at(parser, json, pointer, &found);
  std::int64_t out = 0;
  if (!found || value.get_int64().get(out) != simdjson::SUCCESS) return std::nullopt;
  return out;
}

std::int64_t metric(const std::string& exposition, const std::string& sample) {
  const std::string key = "\n" + sample + " ";
  const std::size_t at = exposition.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(exposition.substr(at + key.size()));
}

std::optional<std::string> json_string(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  bool found = false;
  const auto value = at(parser, json, pointer, &found);
  std::string_view out;
  if (!found || value.get_string().get(out) != simdjson::SUCCESS) return std::nullopt;
  return std::string(out);
}

bool json_is_null(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  bool found = false;
  const auto value = at(parser, json, pointer, &found);
  return found && value.is_null();
}

std::size_t json_array_size(const std::string& json, const std::string& pointer) {
  simdjson::dom::parser parser;
  bool found = false;
  const auto value = at(parser, json, pointer, &found);
  simdjson::dom::array array;
  if (!found || value.get_array().get(array) != simdjson::SUCCESS) return 0;
  return array.size();
}

// ---- Mandates ----

std::string mandate_body(const std::string& request_id, const std::string& mandate_id,
                         const std::string& payer, const std::string& merchant,
                         std::int64_t amount_max, const std::string& expires_at, bool single_use) {
  std::string body = R"({"request_id":")" + request_id + R"(","mandate_id":")" + mandate_id +
                     R"(","payer_account_id":")" + payer + R"(","merchant_id":")" + merchant +
                     R"(","amount_max":)" + std::to_string(amount_max);
  if (!expires_at.empty()) body += R"(,"expires_at":")" + expires_at + '"';
  if (single_use) body += R"(,"single_use":true)";
  return body + "}";
}

HttpResponse grant_mandate(Client& client, const std::string& payer, const std::string& merchant,
                           std::int64_t amount_max) {
  const std::string pair = payer + "-" + merchant;
  return client.call(client.operator_signer(), "POST", "/v1/mandates",
                     mandate_body("rm-" + pair, "mandate-" + pair, payer, merchant, amount_max));
}

// ---- Fixture ----

bool Fixture::start(const std::vector<std::string>& extra_args) {
  if (dir.empty()) {
    dir = make_temp_dir("paycore-it");
    data_dir = dir + "/data";
    keys_path = dir + "/keys.json";
  }
  server = std::make_unique<ServerProcess>();
  if (!server->start(data_dir, keys_path, extra_args)) return false;
  const auto loaded = auth::keys_load(keys_path);
  if (!loaded.is_ok()) return false;
  keys = *loaded;
  return true;
}

bool Fixture::restart(const std::vector<std::string>& extra_args) {
  server.reset();
  return start(extra_args);
}

void Fixture::destroy() {
  if (server) (void)server->stop(SIGTERM);
  server.reset();
  remove_tree(dir);
  dir.clear();
}

std::string Fixture::private_key(const std::string& channel) const {
  return read_file(dir + "/private/" + channel + ".private.pem");
}

}  // namespace paycore::it
