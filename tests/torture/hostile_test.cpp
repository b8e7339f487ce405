// Hostile clients against the real binary: each failure mode gets its documented answer, and
// the server keeps serving everyone else. The last test runs the hostile clients all at once
// while a well-behaved client makes 500 requests, and prints its latency next to the latency
// without them (asserting only that every well-behaved request succeeded).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <thread>

#include "tests/torture/support.hpp"

namespace paycore::torture {
namespace {

constexpr int connections_max = 128;
constexpr int header_timeout_ms = 1000;
constexpr int idle_timeout_ms = 2000;
constexpr int header_bytes_max = 8192;
constexpr int body_bytes_max = 65536;
constexpr int auth_window_s = 2;

class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new ScopedFixture;
    ASSERT_TRUE(fixture_->start({"--connections-max", std::to_string(connections_max), "--header-timeout-ms",
                                 std::to_string(header_timeout_ms), "--idle-timeout-ms",
                                 std::to_string(idle_timeout_ms), "--header-bytes-max",
                                 std::to_string(header_bytes_max), "--body-bytes-max",
                                 std::to_string(body_bytes_max), "--auth-window-s", std::to_string(auth_window_s)}))
        << fixture_->log();
    Client client(port(), fixture_->keys);
    ASSERT_TRUE(open_accounts(client, {"m_001", "m_002"}, {"payer0"}, 1'000'000'000'000));
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(fixture_, nullptr);
    ASSERT_TRUE(wait_served()) << "the server no longer serves a new connection";
  }

  static std::uint16_t port() { return fixture_->server->port(); }
  static Signer merchant(const std::string& id) { return Client(port(), fixture_->keys).merchant(id); }
  // A new connection gets an answer (slots freed by earlier tests' clients, within 5 s).
  static bool wait_served() {
    for (int i = 0; i < 100; ++i) {
      Connection c(port());
      if (c.send_all("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") && c.read_response(2000).status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // One request on a fresh connection: the answer, and whether the server then closed.
  static HttpResponse once(const std::string& request, bool* closed = nullptr) {
    Connection c(port());
    EXPECT_TRUE(c.send_all(request));
    HttpResponse r = c.read_response(5000);
    if (closed != nullptr) *closed = r.closed || c.wait_closed(2000);
    return r;
  }
  static std::string error_code(const HttpResponse& r) { return it::json_string(r.body, "/error/code").value_or(""); }
  static std::string error_field(const HttpResponse& r) {
    return it::json_string(r.body, "/error/field").value_or("");
  }

  static ScopedFixture* fixture_;
};
ScopedFixture* Hostile::fixture_ = nullptr;

std::string healthz() { return "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"; }

// ---- Slow clients

TEST_F(Hostile, SlowlorisHeadersAreDisconnected) {
  Connection c(port());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + std::string(40, 'a') + "\r\n\r\n";
  const std::int64_t started = now_ms();
  bool closed = false;
  // One byte every 100 ms: the whole header would take ~7 s, far past the header timeout.
  for (std::size_t i = 0; i < request.size() && !closed; ++i) {
    if (!c.send_all(request.substr(i, 1))) break;
    closed = c.wait_closed(100);
  }
  if (!closed) closed = c.wait_closed(header_timeout_ms * 2);
  EXPECT_TRUE(closed) << "a dribbled header was never cut off";
  EXPECT_LT(now_ms() - started, 4 * header_timeout_ms);
}

TEST_F(Hostile, SlowBodyIsDisconnected) {
  Connection c(port());
  const std::string body(200, ' ');
  ASSERT_TRUE(c.send_all(Client::signed_request(merchant("m_001"), "POST", "/v1/payments", body).substr(
      0, Client::signed_request(merchant("m_001"), "POST", "/v1/payments", body).size() - body.size())));
  const std::int64_t started = now_ms();
  bool closed = false;
  for (std::size_t i = 0; i < body.size() && !closed; ++i) {
    if (!c.send_all(" ")) break;
    closed = c.wait_closed(100);
  }
  if (!closed) closed = c.wait_closed(header_timeout_ms * 2);
  EXPECT_TRUE(closed) << "a dribbled body was never cut off";
  EXPECT_LT(now_ms() - started, 4 * header_timeout_ms);
}

// ---- Connection flood

TEST_F(Hostile, IdleConnectionFloodPastTheLimitIs503AndClosed) {
  // A well-behaved client connected before the flood keeps being served through it.
  Connection good(port());
  ASSERT_TRUE(good.send_all(healthz()));
  ASSERT_EQ(good.read_response().status, 200);
  // 2000 descriptors in this process: raise the soft limit to the hard one, and flood less
  // where even that is lower.
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  ::getrlimit(RLIMIT_NOFILE, &files);
  const int flood = static_cast<int>(std::min<rlim_t>(2000, files.rlim_cur > 300 ? files.rlim_cur - 200 : 100));
  ASSERT_GT(flood, connections_max + 50) << "RLIMIT_NOFILE too low for a flood";
  std::vector<std::unique_ptr<Connection>> held;
  // The well-behaved client stays busy (so never idle) through the flood.
  auto ping = [&good] {
    return good.send_all(healthz()) && good.read_response().status == 200;
  };
  const std::int64_t started = now_ms();
  for (int i = 0; i < flood; ++i) {
    held.push_back(std::make_unique<Connection>(port()));
    if (i % 100 == 0) {
      ASSERT_TRUE(ping()) << "the well-behaved client lost its connection at " << i;
    }
  }
  const std::int64_t connected_ms = now_ms() - started;
  int refused = 0, closed_silently = 0, kept = 0;
  for (std::size_t i = 0; i < held.size(); ++i) {
    Connection& c = *held[i];
    if (i % 25 == 0) {
      ASSERT_TRUE(ping()) << "the well-behaved client lost its connection";
    }
    if (!c.ok()) {
      ++closed_silently;
      continue;
    }
    // Past the limit the refusal comes unasked, right after the accept, and then the close.
    const bool closed = c.wait_closed(20);
    const HttpResponse r = c.read_response(0);
    if (r.status == 503) {
      EXPECT_TRUE(closed);
      EXPECT_EQ(r.header("connection"), "close");
      ++refused;
    } else if (!closed) {
      ++kept;
    } else {
      ++closed_silently;
    }
  }
  std::printf("hostile: %d connections opened in %lld ms: %d kept, %d refused 503 + close, %d closed without "
              "an answer (idle timeout)\n",
              flood,
              static_cast<long long>(connected_ms), kept, refused, closed_silently);
  EXPECT_LE(kept, connections_max);
  EXPECT_GE(refused, flood - connections_max);
  ASSERT_TRUE(good.send_all(healthz()));
  EXPECT_EQ(good.read_response().status, 200) << "the well-behaved client lost its connection";
  held.clear();
  EXPECT_TRUE(wait_served());
}

TEST_F(Hostile, IdleFloodIsClosedByTheIdleTimeout) {
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < connections_max; ++i) held.push_back(std::make_unique<Connection>(port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(idle_timeout_ms + 1500));
  int closed = 0;
  for (auto& c : held) closed += c->wait_closed(10) ? 1 : 0;
  EXPECT_GE(closed, connections_max - 2) << "idle connections were not closed";
  Connection fresh(port());
  ASSERT_TRUE(fresh.send_all(healthz()));
  EXPECT_EQ(fresh.read_response().status, 200);
}

// ---- Headers and framing

TEST_F(Hostile, HugeHeaderCountIs431) {
  std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 200; ++i) request += "X-" + std::to_string(i) + ": v\r\n";  // 200 small headers, < 8 KiB
  ASSERT_LT(request.size(), static_cast<std::size_t>(header_bytes_max));
  bool closed = false;
  const HttpResponse r = once(request + "\r\n", &closed);
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(error_code(r), "headers_too_large");
  EXPECT_TRUE(closed);
}

TEST_F(Hostile, HugeHeaderBytesAre431) {
  std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 20; ++i) request += "X-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
  bool closed = false;
  EXPECT_EQ(once(request + "\r\n", &closed).status, 431);
  EXPECT_TRUE(closed);
}

TEST_F(Hostile, SmugglingAttemptsAre400AndClose) {
  // Each hides a second request; it must never be answered.
  const std::string hidden = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string chunked_hidden = "0\r\n\r\n" + hidden;
  for (const std::string& request : {
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(chunked_hidden.size()) +
               "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" +
               chunked_hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: " +
               std::to_string(2 + hidden.size()) + "\r\n\r\n{}" + hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n 2\r\n\r\n{}" + hidden,
           "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n\tb\r\n\r\n" + hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 2, 2\r\n\r\n{}" + hidden,
           "POST /v1/payments HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}" +
               hidden,
       }) {
    Connection c(port());
    ASSERT_TRUE(c.send_all(request));
    const HttpResponse r = c.read_response(5000);
    EXPECT_EQ(r.status, 400) << request;
    const HttpResponse second = c.read_response(1000);
    EXPECT_EQ(second.status, 0) << "a smuggled request was answered: " << request;
    EXPECT_TRUE(r.closed || c.wait_closed(2000)) << request;
  }
}

// ---- Bodies

std::string payment_with(const std::string& field, const std::string& raw_value) {
  std::string order = R"("order_id":"o-ok")";
  std::string request = R"("request_id":"rq-ok")";
  std::string payer = R"("payer_account_id":"payer0")";
  if (field == "order_id") order = R"("order_id":)" + raw_value;
  if (field == "request_id") request = R"("request_id":)" + raw_value;
  if (field == "payer_account_id") payer = R"("payer_account_id":)" + raw_value;
  return "{" + request + "," + order + R"(,"amount":5,"currency":"CNY","channel":"balance",)" + payer + "}";
}

TEST_F(Hostile, ControlCharactersAndBadBytesInIdsAre400InvalidField) {
  Client client(port(), fixture_->keys);
  const Signer m = merchant("m_001");
  for (const std::string field : {"order_id", "request_id", "payer_account_id"}) {
    for (const std::string& value : {std::string(R"("a\u0001b")"), std::string(R"("a\nb")"), std::string(R"("a\tb")"),
                                    std::string(R"("a\u0000b")"), std::string("\"caf\xc3\xa9\""),
                                    std::string("\"a b\""), std::string("\"" + std::string(65, 'x') + "\""),
                                    std::string("\"\"")}) {
      const HttpResponse r = client.call(m, "POST", "/v1/payments", payment_with(field, value));
      EXPECT_EQ(r.status, 400) << field << "=" << value << ": " << r.body;
      if (value == "\"\"") continue;  // empty: missing_field or invalid_field, both name it
      EXPECT_EQ(error_code(r), "invalid_field") << field << "=" << value << ": " << r.body;
      EXPECT_EQ(error_field(r), field) << field << "=" << value << ": " << r.body;
    }
  }
  // Ids in the path: percent-encoded control bytes and a raw byte over 0x7f.
  for (const std::string target : {"/v1/payments/a%01b", "/v1/payments/a%FFb", "/v1/payments/a\xff" "b"}) {
    const HttpResponse r = client.call(m, "GET", target);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << target << ": " << r.status << " " << r.body;
  }
}

TEST_F(Hostile, InvalidUtf8OrRawControlBytesInIdsAre400) {
  Client client(port(), fixture_->keys);
  const Signer m = merchant("m_001");
  for (const std::string field : {"order_id", "request_id", "payer_account_id"}) {
    for (const std::string& value : {std::string("\"a\xff\xfe" "b\""), std::string("\"a\xc3\""), std::string("\"a\tb\""),
                                    std::string("\"\xed\xa0\x80\"")}) {
      const HttpResponse r = client.call(m, "POST", "/v1/payments", payment_with(field, value));
      EXPECT_EQ(r.status, 400) << field << ": " << r.body;
      // A body that is not UTF-8 (or has a raw control byte in a string) is not JSON: invalid_json; a server that checks the id first
      // says invalid_field and names it. Either is a 400 that names no other field.
      const std::string code = error_code(r);
      EXPECT_TRUE(code == "invalid_json" || (code == "invalid_field" && error_field(r) == field)) << r.body;
    }
  }
}

TEST_F(Hostile, DeeplyNestedJsonIs400) {
  Client client(port(), fixture_->keys);
  for (const std::size_t depth : {std::size_t{100}, std::size_t{5000}, std::size_t{30000}}) {
    const std::string body = R"({"request_id":"deep","order_id":"deep","amount":5,"currency":"CNY","channel":"balance","payer_account_id":"payer0","x":)" +
                             std::string(depth, '[') + std::string(depth, ']') + "}";
    const HttpResponse r = client.call(merchant("m_001"), "POST", "/v1/payments", body);
    if (body.size() > static_cast<std::size_t>(body_bytes_max)) {
      EXPECT_EQ(r.status, 413) << depth;
    } else {
      EXPECT_EQ(r.status, 400) << depth << ": " << r.body;
    }
  }
  EXPECT_EQ(client.get("/healthz").status, 200);
}

TEST_F(Hostile, HugeJsonIs413) {
  const std::string body = R"({"request_id":"huge","pad":")" + std::string(body_bytes_max, 'x') + "\"}";
  bool closed = false;
  const HttpResponse r = once(Client::signed_request(merchant("m_001"), "POST", "/v1/payments", body), &closed);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(error_code(r), "body_too_large");
  // Only the declared length, nothing sent: refused as early.
  const HttpResponse declared =
      once("POST /v1/payments HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999999\r\n\r\n", &closed);
  EXPECT_EQ(declared.status, 413);
  EXPECT_TRUE(closed);
}

std::string amount_request(const std::string& id, const std::string& amount) {
  return R"({"request_id":")" + id + R"(","order_id":")" + id + R"(","amount":)" + amount +
         R"(,"currency":"CNY","channel":"balance","payer_account_id":"payer0"})";
}

TEST_F(Hostile, AmountsAtAndPastInt64LimitsAre400InvalidAmount) {
  Client client(port(), fixture_->keys);
  int n = 0;
  for (const std::string amount : {"9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                   "18446744073709551616", "99999999999999999999999999", "1000000000000001",
                                   "1e18", "1.0", "0", "-1", "\"5\"", "0x10", "true", "[5]"}) {
    const HttpResponse r =
        client.call(merchant("m_001"), "POST", "/v1/payments", amount_request("amt-" + std::to_string(n++), amount));
    EXPECT_EQ(r.status, 400) << amount << ": " << r.body;
    if (amount != "0x10") {  // 0x10 is not JSON: invalid_json
      EXPECT_EQ(error_code(r), "invalid_amount") << amount << ": " << r.body;
    }
  }
  // At the configured limit (amount_max, 10^15 by default) it is accepted.
  const HttpResponse limit = client.call(merchant("m_001"), "POST", "/v1/payments",
                                         payment_body("amt-max", "payer0", 1'000'000'000'000'000));
  EXPECT_EQ(limit.status, 402) << "amount_max itself is a valid amount (the payer cannot afford it): " << limit.body;
}

TEST_F(Hostile, NullAmountIs400MissingField) {
  Client client(port(), fixture_->keys);
  const HttpResponse r = client.call(merchant("m_001"), "POST", "/v1/payments", amount_request("amt-null", "null"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_field(r), "amount") << r.body;
}

// Found by this suite: these were `400 invalid_json` until f5ddeaa (net: an amount below
// INT64_MIN ... is invalid_amount); docs/api.md says a negative amount is `invalid_amount`.
TEST_F(Hostile, NegativeAmountBelowInt64MinIs400InvalidAmount) {
  Client client(port(), fixture_->keys);
  for (const std::string amount : {"-9223372036854775809", "-99999999999999999999999999", "1e400", "-1e400"}) {
    const HttpResponse r = client.call(merchant("m_001"), "POST", "/v1/payments", amount_request("amt-neg", amount));
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(error_code(r), "invalid_amount") << amount << ": " << r.body;
  }
}

// ---- Signatures, replays, other merchants

TEST_F(Hostile, WrongCaseTruncatedOrOtherBodySignaturesAre401BadSignature) {
  const Signer m = merchant("m_001");
  const std::string body = payment_body("sig-1", "payer0", 5);
  const std::string good = Client::signed_request(m, "POST", "/v1/payments", body);
  const std::size_t at = good.find("X-Signature: ") + 13;
  const std::string signature = good.substr(at, 64);
  std::string upper = signature;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  ASSERT_NE(upper, signature);
  auto with_signature = [&](const std::string& s) {
    std::string request = good;
    return request.replace(at, 64, s);
  };
  const std::string other_body = payment_body("sig-1", "payer0", 6);
  std::string for_other = good.substr(0, good.size() - body.size()) + other_body;
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"upper case", with_signature(upper)},
      {"truncated to 63", with_signature(signature.substr(0, 63))},
      {"truncated to 32", with_signature(signature.substr(0, 32))},
      {"one digit changed", with_signature((signature[0] == '0' ? "1" : "0") + signature.substr(1))},
      {"for another body", for_other}};
  for (const auto& [what, request] : cases) {
    const HttpResponse r = once(request);
    EXPECT_EQ(r.status, 401) << what << ": " << r.body;
    EXPECT_EQ(error_code(r), "bad_signature") << what << ": " << r.body;
  }
  const HttpResponse empty = once(with_signature(""));
  EXPECT_EQ(empty.status, 401);
  EXPECT_EQ(error_code(empty), "unauthenticated") << "an empty signature header is a missing one: " << empty.body;
  EXPECT_EQ(once(good).status, 201) << "the untouched request is accepted";
}

TEST_F(Hostile, ReplayWithinTheWindowIs401ReplayedNonceAndAfterItTimestampOutOfWindow) {
  const std::string request = Client::signed_request(merchant("m_001"), "GET", "/v1/payments/none", "");
  EXPECT_EQ(once(request).status, 404);
  const HttpResponse replay = once(request);
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(error_code(replay), "replayed_nonce") << replay.body;
  // Another connection, same bytes: the nonce cache is the server's, not the connection's.
  EXPECT_EQ(error_code(once(request)), "replayed_nonce");
  std::this_thread::sleep_for(std::chrono::milliseconds((auth_window_s + 1) * 1000 + 200));
  const HttpResponse late = once(request);
  EXPECT_EQ(late.status, 401);
  EXPECT_EQ(error_code(late), "timestamp_out_of_window") << late.body;
  const HttpResponse future = once(Client::signed_request(merchant("m_001"), "GET", "/v1/payments/none", "",
                                                          ::time(nullptr) + 3600));
  EXPECT_EQ(error_code(future), "timestamp_out_of_window") << future.body;
}

TEST_F(Hostile, AnotherMerchantsPaymentIs404) {
  Client client(port(), fixture_->keys);
  const Signer owner = merchant("m_002");
  const Signer thief = merchant("m_001");
  ASSERT_EQ(client.call(owner, "POST", "/v1/payments", payment_body("theirs-paid", "payer0", 50)).status, 201);
  ASSERT_EQ(client.call(owner, "POST", "/v1/payments",
                        R"({"request_id":"theirs-pending","order_id":"theirs-pending","amount":50,"currency":"CNY","channel":"alipay"})")
                .status,
            201);
  for (const auto& [method, target, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/v1/payments/theirs-paid", ""},
           {"GET", "/v1/payments/theirs-pending", ""},
           {"POST", "/v1/payments/theirs-pending/cancel", R"({"request_id":"steal-1"})"},
           {"POST", "/v1/payments/theirs-paid/refunds", R"({"request_id":"steal-2","amount":10})"},
           {"POST", "/v1/payments/theirs-paid/ship", R"({"request_id":"steal-3"})"},
           {"GET", "/v1/accounts/m_002", ""},
           {"POST", "/v1/accounts/m_002/deposits", R"({"request_id":"steal-4","amount":10,"currency":"CNY"})"},
       }) {
    const HttpResponse r = client.call(thief, method, target, body);
    EXPECT_EQ(r.status, 404) << method << " " << target << ": " << r.body;
  }
  // Nothing changed for the owner.
  const HttpResponse paid = client.call(owner, "GET", "/v1/payments/theirs-paid");
  EXPECT_EQ(it::json_int(paid.body, "/refunded_amount"), 0);
  EXPECT_EQ(it::json_string(paid.body, "/status"), "PAID");
  EXPECT_EQ(it::json_string(client.call(owner, "GET", "/v1/payments/theirs-pending").body, "/status"), "PENDING");
}

// ---- All at once, with a well-behaved client measuring

struct Measured {
  Latency latency;
  int failed = 0;
  std::string first_failure;
};

// 500 requests on one keep-alive connection: a payment and a read of it, alternately.
Measured well_behaved(Connection& c, const Signer& m, const std::string& prefix) {
  Measured out;
  std::vector<double> samples;
  for (int i = 0; i < 500; ++i) {
    const std::string id = prefix + std::to_string(i / 2);
    const bool write = i % 2 == 0;
    const std::string request = write ? Client::signed_request(m, "POST", "/v1/payments", payment_body(id, "payer0", 1))
                                      : Client::signed_request(m, "GET", "/v1/payments/" + id, "");
    const auto start = std::chrono::steady_clock::now();
    HttpResponse r;
    if (c.send_all(request)) r = c.read_response(10'000);
    samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    if (r.status != (write ? 201 : 200)) {
      if (out.failed++ == 0) out.first_failure = std::to_string(r.status) + " " + r.body + " at " + std::to_string(i);
    }
  }
  out.latency = summarize(std::move(samples));
  return out;
}

TEST_F(Hostile, WellBehavedClientIsServedWhileHostileClientsRun) {
  const Signer m = merchant("m_003");
  {
    Client client(port(), fixture_->keys);
    ASSERT_EQ(client.call(client.operator_signer(), "POST", "/v1/accounts", account_body("m_003", "merchant")).status,
              201);
    ASSERT_EQ(it::grant_mandate(client, "payer0", "m_003").status, 201);
  }
  Connection quiet_connection(port());
  const Measured quiet = well_behaved(quiet_connection, m, "quiet-");
  // Connected before the attack: the flood may take every other slot.
  Connection connection(port());

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> hostile_requests{0};
  std::vector<std::thread> hostile;
  // Slowloris: connections dribbling header bytes, reopened when cut off.
  for (int t = 0; t < 2; ++t) {
    hostile.emplace_back([&] {
      std::vector<std::unique_ptr<Connection>> slow;
      while (!stop) {
        while (slow.size() < 20) slow.push_back(std::make_unique<Connection>(port()));
        for (auto& c : slow) {
          if (!c->ok() || !c->send_all("X")) c = std::make_unique<Connection>(port());
          hostile_requests.fetch_add(1, std::memory_order_relaxed);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  // Idle connections up to and past the limit, held until the server lets go.
  hostile.emplace_back([&] {
    std::vector<std::unique_ptr<Connection>> idle;
    while (!stop) {
      for (int i = 0; i < 50 && !stop; ++i) idle.push_back(std::make_unique<Connection>(port()));
      hostile_requests.fetch_add(50, std::memory_order_relaxed);
      if (idle.size() > 600) idle.erase(idle.begin(), idle.begin() + 300);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // Malformed, oversized, smuggling, badly signed and nested requests on fresh connections.
  hostile.emplace_back([&] {
    const Signer bad{"m_001", "not-the-secret"};
    std::string many_headers = "GET /healthz HTTP/1.1\r\n";
    for (int i = 0; i < 200; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
    const std::vector<std::string> requests = {
        many_headers + "\r\n",
        "POST /v1/payments HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /v1/payments HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
        "GET /healthz HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
        Client::signed_request(bad, "POST", "/v1/payments", payment_body("bad", "payer0", 1)),
        Client::signed_request(merchant("m_001"), "POST", "/v1/payments",
                               "{\"x\":" + std::string(20000, '[') + std::string(20000, ']') + "}"),
        "POST /v1/payments HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
    };
    for (std::size_t i = 0; !stop; ++i) {
      Connection c(port());
      if (c.send_all(requests[i % requests.size()])) (void)c.read_response(2000);
      hostile_requests.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the attack fill the server
  const Measured attacked = well_behaved(connection, m, "attacked-");
  stop = true;
  for (std::thread& t : hostile) t.join();

  std::printf("hostile: well-behaved client, 500 requests (POST payment / GET payment alternately, one keep-alive "
              "connection)\n  without hostile clients: p50 %.0f us  p99 %.0f us  max %.0f us  failed %d\n"
              "  with hostile clients:    p50 %.0f us  p99 %.0f us  max %.0f us  failed %d  (%llu hostile "
              "requests/connections/bytes)\n",
              quiet.latency.p50_us, quiet.latency.p99_us, quiet.latency.max_us, quiet.failed,
              attacked.latency.p50_us, attacked.latency.p99_us, attacked.latency.max_us, attacked.failed,
              static_cast<unsigned long long>(hostile_requests.load()));
  EXPECT_EQ(quiet.failed, 0) << quiet.first_failure;
  EXPECT_EQ(attacked.failed, 0) << attacked.first_failure;
  // Generous: a second per request would mean the server was starved, not merely slow.
  EXPECT_LT(attacked.latency.p99_us, 1'000'000.0);
  EXPECT_EQ(::kill(fixture_->server->pid(), 0), 0) << "the server died";
}

// A merchant flooding payments over several connections, against a server with per-principal
// limits: it is answered 429 with Retry-After past its limit, and another merchant's latency
// stays within a bound of its own unloaded latency (a ratio within this run, not an absolute
// figure, so that a slow or shared machine does not make it flake).
TEST_F(Hostile, FloodingMerchantIsRateLimitedAndVictimLatencyHolds) {
  constexpr int limit_per_s = 200;
  ScopedFixture limited;
  ASSERT_TRUE(limited.start({"--rate-limit-write-per-s", std::to_string(limit_per_s), "--rate-limit-read-per-s",
                             std::to_string(limit_per_s)}))
      << limited.log();
  const std::uint16_t limited_port = limited.server->port();
  {
    Client client(limited_port, limited.keys);
    ASSERT_TRUE(open_accounts(client, {"m_001", "m_002"}, {"payer0"}, 1'000'000'000'000));
  }
  const Signer victim = Client(limited_port, limited.keys).merchant("m_002");
  const Signer flooder = Client(limited_port, limited.keys).merchant("m_001");
  Connection quiet_connection(limited_port);
  const Measured quiet = well_behaved(quiet_connection, victim, "quiet-");

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> accepted{0}, refused{0}, other{0};
  std::atomic<bool> retry_after_ok{true};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t) {
    flood.emplace_back([&, t] {
      Connection c(limited_port);
      for (int i = 0; !stop; ++i) {
        // 16 pipelined payments, then their answers.
        std::string burst;
        for (int j = 0; j < 16; ++j) {
          const std::string id = "flood-" + std::to_string(t) + "-" + std::to_string(i) + "-" + std::to_string(j);
          burst += Client::signed_request(flooder, "POST", "/v1/payments", payment_body(id, "payer0", 1));
        }
        if (!c.send_all(burst)) break;
        for (int j = 0; j < 16; ++j) {
          const HttpResponse r = c.read_response(10'000);
          if (r.status == 201) {
            accepted.fetch_add(1, std::memory_order_relaxed);
          } else if (r.status == 429) {
            refused.fetch_add(1, std::memory_order_relaxed);
            const std::string retry = r.header("retry-after");
            if (error_code(r) != "rate_limited" || retry.empty() || std::atoi(retry.c_str()) < 1) retry_after_ok = false;
          } else {
            other.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  Connection connection(limited_port);
  const Measured flooded = well_behaved(connection, victim, "flooded-");
  const double flood_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stop = true;
  for (std::thread& t : flood) t.join();

  std::printf("hostile: rate limit %d/s per merchant; a flooding merchant (4 connections, 16 pipelined payments "
              "each): %llu accepted, %llu refused 429, %llu other in about %.1f s\n"
              "  victim merchant, 500 requests: unloaded p50 %.0f us p99 %.0f us; during the flood p50 %.0f us "
              "p99 %.0f us (ratio %.1f)\n",
              limit_per_s, static_cast<unsigned long long>(accepted.load()),
              static_cast<unsigned long long>(refused.load()), static_cast<unsigned long long>(other.load()),
              flood_s + 0.3, quiet.latency.p50_us, quiet.latency.p99_us, flooded.latency.p50_us,
              flooded.latency.p99_us, flooded.latency.p99_us / quiet.latency.p99_us);
  EXPECT_EQ(quiet.failed, 0) << quiet.first_failure;
  EXPECT_EQ(flooded.failed, 0) << flooded.first_failure;
  EXPECT_GT(refused.load(), 0u);
  EXPECT_TRUE(retry_after_ok.load());
  EXPECT_EQ(other.load(), 0u);
  // The flooder got about its limit: the burst plus limit_per_s a second, with a margin.
  EXPECT_LE(static_cast<double>(accepted.load()), limit_per_s * (flood_s + 0.3) * 1.5 + limit_per_s);
  // Generous: the flood still costs the server parsing, verifying and answering 429s.
  EXPECT_LT(flooded.latency.p99_us, 10 * quiet.latency.p99_us + 20'000.0);
}

}  // namespace
}  // namespace paycore::torture
