#pragma once
// A small blocking HTTP/1.1 client for `paycore recon apply`: one keep-alive connection to one
// server, one request at a time, Content-Length framed responses (the only framing paycore's
// server uses). Plain TCP; the repairs go to the operator's own server, usually on 127.0.0.1.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace paycore::recon {

struct HttpEndpoint {
  std::string host;
  std::uint16_t port = 80;
};

// "http://HOST:PORT" (an optional trailing "/"); HOST may be a name, an IPv4 address or a
// bracketed IPv6 address. nullopt and *error for anything else (https included).
std::optional<HttpEndpoint> parse_http_url(std::string_view url, std::string* error);

struct HttpResult {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  static constexpr std::size_t header_bytes_max = 64 * 1024;
  static constexpr std::size_t body_bytes_max = 16 * 1024 * 1024;

  HttpClient(HttpEndpoint endpoint, int timeout_ms);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads its response. A kept-alive connection the server has closed
  // meanwhile is reopened once (the requests made here are all safe to repeat). False and
  // *error on a connection, timeout or framing failure.
  [[nodiscard]] bool request(std::string_view method, std::string_view target,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             std::string_view body, HttpResult* out, std::string* error);

 private:
  bool open(std::string* error);
  void close();
  bool send_all(std::string_view bytes, std::string* error);
  bool read_response(HttpResult* out, bool* keep_alive, std::string* error);
  bool fill(std::string* error);

  HttpEndpoint endpoint_;
  int timeout_ms_;
  int fd_ = -1;
  bool reused_ = false;  // the connection has carried a request already
  std::string buffer_;
};

}  // namespace paycore::recon
