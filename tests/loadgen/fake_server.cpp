#include "tests/loadgen/fake_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "auth/signing.hpp"
#include "net/credentials.hpp"
#include "net/http_parser.hpp"
#include "base/assert.hpp"

namespace paycore::loadgen::testing {
namespace {

// "name": (GCC 12 warns falsely (-Wrestrict) about "literal" + std::string; appends do not).
std::string key_of(std::string_view name, std::string_view after) {
  std::string key;
  key += '"';
  key += name;
  key += "\":";
  key += after;
  return key;
}

std::string_view json_string(std::string_view body, std::string_view name, std::size_t from = 0) {
  const std::string key = key_of(name, "\"");
  const std::size_t at = body.find(key, from);
  if (at == std::string_view::npos) return {};
  const std::size_t begin = at + key.size();
  return body.substr(begin, body.find('"', begin) - begin);
}

std::int64_t json_int(std::string_view body, std::string_view name, std::size_t from = 0) {
  const std::string key = key_of(name, "");
  const std::size_t at = body.find(key, from);
  if (at == std::string_view::npos) return -1;
  std::int64_t value = -1;
  const char* begin = body.data() + at + key.size();
  (void)std::from_chars(begin, body.data() + body.size(), value);
  return value;
}

struct Payment {
  std::string merchant;
  std::int64_t amount = 0;
  std::int64_t refunded = 0;
  std::string status;
  std::string channel;
};

std::string payment_json(const std::string& order_id, const Payment& p, std::int64_t amount_shown) {
  return "{\"merchant_id\":\"" + p.merchant + "\",\"order_id\":\"" + order_id +
         "\",\"amount\":" + std::to_string(amount_shown) + ",\"currency\":\"CNY\",\"status\":\"" +
         p.status + "\",\"refunded_amount\":" + std::to_string(p.refunded) + ",\"channel\":\"" +
         p.channel + "\"}";
}

std::string response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string error_body(std::string_view code) {
  return "{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"fake\"}}";
}

struct Client {
  int fd = -1;
  std::string in;
  std::string out;
};
}  // namespace

struct FakeServer::Impl {
  std::shared_ptr<const auth::Keys> keys;
  FakeBehaviour behaviour;
  int listen_fd = -1;
  auth::NonceCache nonces;
  std::map<std::string, Payment> payments;  // by order_id
  std::set<std::string> mandate_ids;
  // (payer, merchant) pairs with a mandate: a balance payment without one is 404
  // account_not_found, as paycore answers (docs/api.md "Mandates").
  std::set<std::pair<std::string, std::string>> mandates;
  mutable std::mutex routes_mutex;
  std::map<std::string, std::uint64_t> routes;
  bool stalled = false;

  std::string handle(const net::HttpRequest& request, std::uint64_t number, std::atomic<std::uint64_t>& auth_failures);
};

std::string FakeServer::Impl::handle(const net::HttpRequest& request, std::uint64_t number,
                                     std::atomic<std::uint64_t>& auth_failures) {
  const std::string_view path = request.path;
  const std::string_view body = request.body;
  std::string route = std::string(request.method) + " " + std::string(path);
  if (path.starts_with("/v1/notify/")) route = "POST /v1/notify";
  else if (path.starts_with("/v1/accounts/")) route = "POST /v1/accounts/deposits";
  else if (path.ends_with("/refunds")) route = "POST /v1/payments/refunds";
  else if (request.method == "GET") route = "GET /v1/payments";
  {
    std::lock_guard lock(routes_mutex);
    ++routes[route];
  }
  if (behaviour.fail_every > 0 && (number + 1) % static_cast<std::uint64_t>(behaviour.fail_every) == 0) {
    return response(500, error_body("internal"));
  }
  const std::int64_t now_s = static_cast<std::int64_t>(std::time(nullptr));
  if (route == "POST /v1/notify") {
    const auth::ChannelKey* channel = keys->find_channel(path.substr(std::strlen("/v1/notify/")));
    if (channel == nullptr ||
        auth::verify_notification(channel->public_key.get(), net::notification_credentials(request), body) !=
            auth::AuthStatus::ok) {
      ++auth_failures;
      return response(401, error_body("bad_signature"));
    }
    auto it = payments.find(std::string(json_string(body, "order_id")));
    if (it != payments.end() && it->second.status == "PENDING") it->second.status = "PAID";
    return response(200, "{\"code\":\"SUCCESS\"}");
  }
  const auth::AuthResult auth = auth::verify_request(*keys, net::request_credentials(request), now_s, nonces);
  if (auth.status != auth::AuthStatus::ok) {
    ++auth_failures;
    return response(401, error_body(auth::auth_status_code(auth.status)));
  }
  const std::string merchant(auth.principal->id.view());
  const std::int64_t skew = behaviour.wrong_amount ? 1 : 0;
  if (route == "POST /v1/accounts") {
    return response(201, "{\"account_id\":\"" + std::string(json_string(body, "account_id")) + "\",\"balance\":0}");
  }
  if (route == "POST /v1/accounts/deposits") return response(200, "{\"account_id\":\"x\",\"balance\":1}");
  if (route == "POST /v1/mandates") {
    const std::string mandate_id(json_string(body, "mandate_id"));
    if (!mandate_ids.insert(mandate_id).second) return response(409, error_body("mandate_exists"));
    mandates.emplace(json_string(body, "payer_account_id"), json_string(body, "merchant_id"));
    return response(201, "{\"mandate_id\":\"" + mandate_id + "\",\"status\":\"ACTIVE\"}");
  }
  if (route == "POST /v1/payments") {
    Payment p{merchant, json_int(body, "amount"), 0, "", std::string(json_string(body, "channel"))};
    if (behaviour.require_mandates && p.channel == "balance" &&
        !mandates.contains({std::string(json_string(body, "payer_account_id")), merchant})) {
      return response(404, error_body("account_not_found"));
    }
    p.status = p.channel == "balance" ? "PAID" : "PENDING";
    const std::string order_id(json_string(body, "order_id"));
    payments[order_id] = p;
    return response(201, payment_json(order_id, p, p.amount + skew));
  }
  if (route == "POST /v1/payments/batch") {
    std::string results = "{\"results\":[";
    std::size_t at = 0;
    bool first = true;
    while ((at = body.find("\"order_id\":\"", at)) != std::string_view::npos) {
      Payment p{merchant, json_int(body, "amount", at), 0, "PAID", "balance"};
      const std::string order_id(json_string(body, "order_id", at));
      results += first ? "" : ",";
      first = false;
      if (behaviour.require_mandates &&
          !mandates.contains({std::string(json_string(body, "payer_account_id", at)), merchant})) {
        results += "{\"status\":404,\"error\":{\"code\":\"account_not_found\",\"message\":\"fake\"}}";
        ++at;
        continue;
      }
      payments[order_id] = p;
      results += "{\"status\":201,\"payment\":" + payment_json(order_id, p, p.amount + skew) + "}";
      ++at;
    }
    return response(200, results + "]}");
  }
  const std::string_view rest = path.substr(std::strlen("/v1/payments/"));
  const std::string order_id(rest.substr(0, rest.find('/')));
  auto it = payments.find(order_id);
  if (it == payments.end() || it->second.merchant != merchant) {
    return response(404, error_body("payment_not_found"));
  }
  Payment& p = it->second;
  if (route == "POST /v1/payments/refunds") {
    const std::int64_t amount = json_int(body, "amount");
    if (p.refunded + amount > p.amount) return response(422, error_body("refund_exceeds_payment"));
    p.refunded += amount;
    if (p.refunded == p.amount) p.status = "REFUNDED";
    return response(201, payment_json(order_id, p, p.amount));
  }
  return response(200, payment_json(order_id, p, p.amount + skew));
}

FakeServer::FakeServer(std::shared_ptr<const auth::Keys> keys, FakeBehaviour behaviour)
    : impl_(std::make_unique<Impl>()) {
  impl_->keys = std::move(keys);
  impl_->behaviour = behaviour;
  impl_->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PAYCORE_ASSERT(impl_->listen_fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  PAYCORE_ASSERT(::bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  PAYCORE_ASSERT(::listen(impl_->listen_fd, 512) == 0);
  socklen_t bytes = sizeof address;
  PAYCORE_ASSERT(::getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&address), &bytes) == 0);
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeServer::~FakeServer() {
  stop_ = true;
  thread_.join();
  ::close(impl_->listen_fd);
}

std::map<std::string, std::uint64_t> FakeServer::routes() const {
  std::lock_guard lock(impl_->routes_mutex);
  return impl_->routes;
}

void FakeServer::serve() {
  std::vector<Client> clients;
  const net::HttpLimits limits;
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({impl_->listen_fd, POLLIN, 0});
    for (const Client& c : clients) {
      fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) {
      const int fd = ::accept4(impl_->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        clients.push_back(Client{fd, {}, {}});
        ++connections_;
      }
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      Client& c = clients[i - 1];
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char chunk[65536];
        const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
        c.in.append(chunk, static_cast<std::size_t>(n));
      }
      while (!c.in.empty()) {
        net::HttpRequest request;
        const net::HttpParseResult parsed = net::parse_http_request(c.in, limits, &request);
        if (parsed.status != net::HttpParseStatus::complete) break;
        const std::uint64_t number = requests_++;
        const FakeBehaviour& b = impl_->behaviour;
        if (!impl_->stalled && b.stall_at_request >= 0 && number >= static_cast<std::uint64_t>(b.stall_at_request)) {
          impl_->stalled = true;
          std::this_thread::sleep_for(std::chrono::milliseconds(b.stall_ms));
        }
        if (b.delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(b.delay_us));
        c.out += b.garbage ? std::string("NOT HTTP AT ALL\r\n\r\n") : impl_->handle(request, number, auth_failures_);
        c.in.erase(0, parsed.consumed_bytes);
      }
      while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        c.out.erase(0, static_cast<std::size_t>(n));
      }
    }
    std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
  }
  for (const Client& c : clients) ::close(c.fd);
}

const std::string& dev_keys_path() {
  static const std::string path = [] {
    char pattern[] = "/tmp/paycore-loadgen-test-XXXXXX";
    const char* dir = ::mkdtemp(pattern);
    PAYCORE_ASSERT(dir != nullptr);
    const std::string keys_path = std::string(dir) + "/keys.json";
    const bool made = auth::keys_init(keys_path, dir).is_ok();
    PAYCORE_ASSERT(made);
    return keys_path;
  }();
  return path;
}

}  // namespace paycore::loadgen::testing
