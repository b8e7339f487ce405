#pragma once
// A tiny in-process HTTP/1.1 server that speaks enough of docs/api.md for the load generator's
// tests: one thread, poll(), keep-alive, every request's signature checked with auth/signing
// (nonce replays included). Its behaviour can be bent: stall once, answer slowly, answer a
// wrong amount, fail with 500s, or send garbage, so that the tests can see the load
// generator notice.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/keys.hpp"

namespace paycore::loadgen::testing {

struct FakeBehaviour {
  std::int64_t stall_at_request = -1;  // before answering request number N (0-based), once
  int stall_ms = 0;
  int delay_us = 0;                    // before every answer
  bool wrong_amount = false;           // payments come back with amount + 1
  int fail_every = 0;                  // every Nth request is answered 500
  bool garbage = false;                // answers are not HTTP
  // A balance payment from a payer without a mandate (POST /v1/mandates) for the calling
  // merchant is 404 account_not_found, as paycore answers; off: every payer may be debited
  // (for the tests that skip the set-up).
  bool require_mandates = false;
};

class FakeServer {
 public:
  FakeServer(std::shared_ptr<const auth::Keys> keys, FakeBehaviour behaviour);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t auth_failures() const { return auth_failures_.load(); }
  std::uint64_t connections_accepted() const { return connections_.load(); }
  // Requests by "METHOD route" ("POST /v1/payments", "POST /v1/notify", ...).
  std::map<std::string, std::uint64_t> routes() const;

 private:
  struct Impl;
  void serve();

  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> auth_failures_{0};
  std::atomic<std::uint64_t> connections_{0};
  std::thread thread_;
};

// A development keys file (operator, m_001..m_004, RSA keys for alipay, wechat, card with
// their private PEMs next to it), made once per test process in a temp dir.
const std::string& dev_keys_path();

}  // namespace paycore::loadgen::testing
