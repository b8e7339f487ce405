// HttpSender on libcurl's multi interface: one easy handle per transfer, its headers and body
// owned by the transfer until libcurl says it is done.
#include "webhooks/sender.hpp"

#include <curl/curl.h>
#include <sys/socket.h>

#include <mutex>
#include <unordered_map>

#include "base/assert.hpp"
#include "base/time.hpp"

#ifndef PAYCORE_VERSION_TEXT
#define PAYCORE_VERSION_TEXT "0"
#endif

namespace paycore::webhooks {
namespace {

// curl_global_init is not thread-safe in every libcurl: once per process, before any handle.
bool curl_initialised() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

struct Transfer {
  SendRequest request;
  const SenderConfig* config = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::int64_t started_ns = 0;
  std::size_t response_bytes = 0;
  bool cut = false;          // the response went past response_bytes_max
  std::string refusal;       // the open-socket callback refused the address
  char error_buffer[CURL_ERROR_SIZE] = {};

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
};

// The send-time guard (webhooks/endpoint_url.hpp): runs after resolution, for every new
// connection, with the address libcurl is about to connect to.
curl_socket_t open_socket(void* data, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(data);
  const Status allowed =
      check_connect_address(&address->addr, address->addrlen, transfer->config->policy);
  if (!allowed.is_ok()) {
    transfer->refusal = allowed.message();
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// The response body is read and thrown away, up to response_bytes_max.
std::size_t discard_body(char* /*bytes*/, std::size_t size, std::size_t count, void* data) {
  auto* transfer = static_cast<Transfer*>(data);
  const std::size_t bytes = size * count;
  transfer->response_bytes += bytes;
  if (transfer->response_bytes > transfer->config->response_bytes_max) {
    transfer->cut = true;
    return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
  }
  return bytes;
}

template <typename T>
Status set_option(CURL* easy, CURLoption option, T value, const char* name) {
  const CURLcode code = curl_easy_setopt(easy, option, value);
  if (code == CURLE_OK) return Status::ok();
  return Status::invalid_argument(std::string("libcurl refused ") + name + ": " +
                                  curl_easy_strerror(code));
}

#define PAYCORE_CURL_SET(easy, option, value) \
  PAYCORE_RETURN_IF_ERROR(set_option(easy, option, value, #option))

Status set_headers(Transfer& t) {
  const std::string signature = "Paycore-Signature: " + t.request.signature;
  const std::string event_id = "Paycore-Event-Id: " + t.request.event_id;
  // "Expect:" turns off libcurl's 100-continue wait (up to 1 s) before bodies over 1 KiB.
  for (const std::string& line : {std::string("Content-Type: application/json"), signature,
                                  event_id, std::string("Expect:")}) {
    curl_slist* appended = curl_slist_append(t.headers, line.c_str());
    if (appended == nullptr) return Status::io_error("curl_slist_append: out of memory");
    t.headers = appended;
  }
  PAYCORE_CURL_SET(t.easy, CURLOPT_HTTPHEADER, t.headers);
  return Status::ok();
}

Status set_transfer_options(Transfer& t) {
  CURL* easy = t.easy;
  const SenderConfig& config = *t.config;
  PAYCORE_CURL_SET(easy, CURLOPT_URL, t.request.url.c_str());
  PAYCORE_CURL_SET(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  PAYCORE_CURL_SET(easy, CURLOPT_FOLLOWLOCATION, 0L);
  PAYCORE_CURL_SET(easy, CURLOPT_PROXY, "");  // never a proxy from the environment
  PAYCORE_CURL_SET(easy, CURLOPT_NOSIGNAL, 1L);
  PAYCORE_CURL_SET(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout_ms));
  PAYCORE_CURL_SET(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config.connect_timeout_ms));
  PAYCORE_CURL_SET(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  PAYCORE_CURL_SET(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config.ca_file.empty()) PAYCORE_CURL_SET(easy, CURLOPT_CAINFO, config.ca_file.c_str());
  PAYCORE_CURL_SET(easy, CURLOPT_USERAGENT, user_agent().c_str());
  PAYCORE_CURL_SET(easy, CURLOPT_POST, 1L);
  PAYCORE_CURL_SET(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(t.request.body.size()));
  PAYCORE_CURL_SET(easy, CURLOPT_POSTFIELDS, t.request.body.data());
  PAYCORE_CURL_SET(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  PAYCORE_CURL_SET(easy, CURLOPT_OPENSOCKETDATA, static_cast<void*>(&t));
  PAYCORE_CURL_SET(easy, CURLOPT_WRITEFUNCTION, discard_body);
  PAYCORE_CURL_SET(easy, CURLOPT_WRITEDATA, static_cast<void*>(&t));
  PAYCORE_CURL_SET(easy, CURLOPT_ERRORBUFFER, t.error_buffer);
  PAYCORE_CURL_SET(easy, CURLOPT_PRIVATE, static_cast<void*>(&t));
  return set_headers(t);
}

SendResult result_of(Transfer& t, CURLcode code) {
  SendResult result;
  result.tag = t.request.tag;
  result.duration_ms = (monotonic_ns() - t.started_ns) / 1'000'000;
  long status = 0;
  (void)curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  result.http_status = static_cast<std::int32_t>(status);
  if (code == CURLE_OK || (t.cut && status > 0)) return result;  // a cut body keeps its status
  result.http_status = 0;
  if (!t.refusal.empty()) {
    result.error = t.refusal;
  } else if (t.error_buffer[0] != '\0') {
    result.error = t.error_buffer;
  } else {
    result.error = curl_easy_strerror(code);
  }
  return result;
}

}  // namespace

const std::string& user_agent() {
  static const std::string value = std::string("paycore/") + PAYCORE_VERSION_TEXT;
  return value;
}

struct HttpSender::Impl {
  SenderConfig config;
  CURLM* multi = nullptr;
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> transfers;

  ~Impl() {
    for (auto& [raw, transfer] : transfers) curl_multi_remove_handle(multi, transfer->easy);
    transfers.clear();
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  void collect(std::vector<SendResult>* finished) {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      void* data = nullptr;
      (void)curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &data);
      auto* transfer = static_cast<Transfer*>(data);
      PAYCORE_ASSERT(transfer != nullptr);
      finished->push_back(result_of(*transfer, message->data.result));
      curl_multi_remove_handle(multi, transfer->easy);
      const std::size_t erased = transfers.erase(transfer);
      PAYCORE_ASSERT_EQ(erased, std::size_t{1});
    }
  }
};

HttpSender::HttpSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpSender::~HttpSender() = default;

StatusOr<std::unique_ptr<HttpSender>> HttpSender::create(const SenderConfig& config) {
  if (config.timeout_ms <= 0 || config.connect_timeout_ms <= 0 || config.transfers_max == 0) {
    return Status::invalid_argument("sender: timeouts and transfers_max must be > 0");
  }
  if (!curl_initialised()) return Status::io_error("curl_global_init failed");
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->multi = curl_multi_init();
  if (impl->multi == nullptr) return Status::io_error("curl_multi_init failed");
  // Idle connections kept for reuse, across endpoints: a bound on sockets held.
  (void)curl_multi_setopt(impl->multi, CURLMOPT_MAXCONNECTS, 64L);
  return std::unique_ptr<HttpSender>(new HttpSender(std::move(impl)));
}

Status HttpSender::start(SendRequest request) {
  if (impl_->transfers.size() >= impl_->config.transfers_max) return Status::full();
  auto transfer = std::make_unique<Transfer>();
  transfer->request = std::move(request);
  transfer->config = &impl_->config;
  transfer->easy = curl_easy_init();
  if (transfer->easy == nullptr) return Status::io_error("curl_easy_init failed");
  PAYCORE_RETURN_IF_ERROR(set_transfer_options(*transfer));
  transfer->started_ns = monotonic_ns();
  const CURLMcode added = curl_multi_add_handle(impl_->multi, transfer->easy);
  if (added != CURLM_OK) {
    return Status::io_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(added));
  }
  Transfer* raw = transfer.get();
  impl_->transfers.emplace(raw, std::move(transfer));
  return Status::ok();
}

Status HttpSender::poll(std::int64_t wait_ms, std::vector<SendResult>* finished) {
  PAYCORE_ASSERT_GE(wait_ms, 0);
  int running = 0;
  CURLMcode code = curl_multi_perform(impl_->multi, &running);
  const std::size_t before = finished->size();
  impl_->collect(finished);
  if (code == CURLM_OK && finished->size() == before && wait_ms > 0) {
    code = curl_multi_poll(impl_->multi, nullptr, 0, static_cast<int>(wait_ms), nullptr);
    if (code == CURLM_OK) code = curl_multi_perform(impl_->multi, &running);
    impl_->collect(finished);
  }
  if (code != CURLM_OK) return Status::io_error(std::string("libcurl: ") + curl_multi_strerror(code));
  return Status::ok();
}

void HttpSender::wake() { (void)curl_multi_wakeup(impl_->multi); }

std::size_t HttpSender::running_count() const { return impl_->transfers.size(); }

SendResult send_one(const SenderConfig& config, SendRequest request) {
  SendResult failed;
  failed.tag = request.tag;
  StatusOr<std::unique_ptr<HttpSender>> sender = HttpSender::create(config);
  if (!sender.is_ok()) {
    failed.error = sender.status().to_string();
    return failed;
  }
  const Status started = (*sender)->start(std::move(request));
  if (!started.is_ok()) {
    failed.error = started.to_string();
    return failed;
  }
  std::vector<SendResult> finished;
  // Bounded: every transfer ends by its timeout; 100 ms per poll, plus slack for the loop.
  const std::int64_t polls_max = config.timeout_ms / 100 + 50;
  for (std::int64_t i = 0; i < polls_max && finished.empty(); ++i) {
    const Status polled = (*sender)->poll(100, &finished);
    if (!polled.is_ok()) {
      failed.error = polled.to_string();
      return failed;
    }
  }
  if (finished.empty()) {
    failed.error = "no result within the timeout";
    return failed;
  }
  return finished.front();
}

}  // namespace paycore::webhooks
