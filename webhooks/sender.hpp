#pragma once
// One webhook POST, many at once: libcurl's multi interface driven by one thread (the
// dispatcher's), so that a slow or dead endpoint holds one transfer slot and never the thread
// (issue 15: "A slow or dead endpoint never slows payments or other merchants' deliveries").
//
// Each request is `POST url` with the event JSON as the body and the headers of API.md "Events
// and webhooks": Content-Type: application/json, Paycore-Signature, Paycore-Event-Id, and
// User-Agent: paycore/<version>. Redirects are not followed (a 3xx is a failed attempt); TLS
// peers and host names are verified; proxies from the environment are ignored; only http and
// https; every connection's address passes check_connect_address (webhooks/endpoint_url.hpp)
// in libcurl's open-socket callback, after resolution, so DNS rebinding cannot bypass it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "webhooks/endpoint_url.hpp"

namespace paycore::webhooks {

inline constexpr std::int64_t send_timeout_ms_default = 10'000;  // API.md: a 2xx within 10 s
inline constexpr std::int64_t connect_timeout_ms_default = 5'000;

struct SenderConfig {
  std::int64_t timeout_ms = send_timeout_ms_default;  // the whole transfer, connect included
  std::int64_t connect_timeout_ms = connect_timeout_ms_default;
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system's (libcurl's default)
  std::size_t transfers_max = 256;  // transfers at once; start() answers kFull beyond
  /// Response bytes read at most (and thrown away): past this the transfer is cut, and judged
  /// by the status line it had. Headers are libcurl's to bound (CURL_MAX_HTTP_HEADER, 100 KB).
  std::size_t response_bytes_max = std::size_t{64} << 10;
  EndpointPolicy policy;  // the address check of every connection
};

/// What to send; the caller's `tag` comes back with the result.
struct SendRequest {
  std::uint64_t tag = 0;
  std::string url;  // an EndpointUrl::normalized
  std::string body;
  std::string signature;  // the Paycore-Signature value (signature_header_value)
  std::string event_id;   // the Paycore-Event-Id value
};

struct SendResult {
  std::uint64_t tag = 0;
  std::int32_t http_status = 0;  // 0: no response (see error)
  std::string error;             // transport error, refused address, timeout; empty otherwise
  std::int64_t duration_ms = 0;
  /// API.md: any 2xx is delivered. Every other status, and every error, is a failed attempt.
  bool delivered() const { return error.empty() && http_status >= 200 && http_status <= 299; }
};

/// The value of the User-Agent header: "paycore/<project version>".
const std::string& user_agent();

/// Transfers in flight on one libcurl multi handle. One thread calls start() and poll();
/// wake() may be called from any thread.
class HttpSender {
 public:
  /// kInvalidArgument for a bad config (timeouts <= 0, transfers_max 0); kIoError when libcurl
  /// cannot be initialised.
  static StatusOr<std::unique_ptr<HttpSender>> create(const SenderConfig& config);
  ~HttpSender();
  HttpSender(const HttpSender&) = delete;
  HttpSender& operator=(const HttpSender&) = delete;

  /// Starts `request`. kFull when transfers_max transfers are running (start it later);
  /// kInvalidArgument when libcurl refuses an option (the message names it).
  Status start(SendRequest request);
  /// Moves the transfers on: waits up to `wait_ms` (0: not at all) for network activity or a
  /// wake(), and appends every finished transfer's result to `*finished`.
  Status poll(std::int64_t wait_ms, std::vector<SendResult>* finished);
  /// Makes a poll() that waits return now (curl_multi_wakeup). Any thread.
  void wake();
  std::size_t running_count() const;

 private:
  struct Impl;
  explicit HttpSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// One POST, waited for: for tools and tests. Errors of create/start come back in `error`.
SendResult send_one(const SenderConfig& config, SendRequest request);

}  // namespace paycore::webhooks
