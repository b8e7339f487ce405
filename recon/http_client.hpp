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

#include "base/status.hpp"

namespace paycore::recon {

struct HttpEndpoint {
  std::string host;
  std::uint16_t port = 80;
};

// "http://HOST:PORT" (an optional trailing "/"); HOST may be a name, an IPv4 address or a
// bracketed IPv6 address. kInvalidArgument for anything else (https included).
[[nodiscard]] StatusOr<HttpEndpoint> parse_http_url(std::string_view url);

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
  // meanwhile is reopened once (the requests made here are all safe to repeat). kIoError on a
  // connection, timeout or framing failure ("timed out sending", "bad Content-Length", ...).
  [[nodiscard]] StatusOr<HttpResult> request(
      std::string_view method, std::string_view target,
      const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body);

 private:
  Status open();
  void close();
  Status send_all(std::string_view bytes);
  Status read_response(HttpResult* out, bool* keep_alive);
  Status fill();

  HttpEndpoint endpoint_;
  int timeout_ms_;
  int fd_ = -1;
  bool reused_ = false;  // the connection has carried a request already
  std::string buffer_;
};

}  // namespace paycore::recon
