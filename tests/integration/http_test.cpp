// HTTP/1.1 behaviour of the server: keep-alive, pipelining, partial reads, limits, malformed
// and smuggling requests, timeouts, the connection limit, graceful shutdown.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "tests/integration/client.hpp"

namespace paycore::it {
namespace {

constexpr int connections_max = 8;

class Http : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture;
    ASSERT_TRUE(fixture_->start({"--header-timeout-ms", "1000", "--idle-timeout-ms", "2000",
                                 "--connections-max", std::to_string(connections_max),
                                 "--header-bytes-max", "4096", "--body-bytes-max", "65536"}))
        << (fixture_->server ? fixture_->server->log() : "");
  }
  static void TearDownTestSuite() {
    fixture_->destroy();
    delete fixture_;
    fixture_ = nullptr;
  }
  std::uint16_t port() const { return fixture_->server->port(); }
  Signer m1() const { return Client(port(), fixture_->keys).merchant("m_001"); }

  static Fixture* fixture_;
};
Fixture* Http::fixture_ = nullptr;

std::string healthz(const std::string& request_id, const std::string& extra = {}) {
  return "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: " + request_id + "\r\n" + extra + "\r\n";
}

TEST_F(Http, KeepAliveServesManyRequestsOnOneConnection) {
  Connection c(port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send_all(healthz("k" + std::to_string(i))));
    const HttpResponse r = c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("connection"), "keep-alive");
  }
}

TEST_F(Http, PipelinedRequestsAreAnsweredInOrder) {
  Connection c(port());
  const Signer merchant = m1();
  std::string burst;
  for (int i = 0; i < 40; ++i) {
    // Engine reads and local answers interleaved: the order must hold across both.
    if (i % 2 == 0) {
      burst += healthz("p" + std::to_string(i));
    } else {
      burst += Client::signed_request(merchant, "GET", "/v1/payments/none", "", 0, {},
                                      "X-Request-Id: p" + std::to_string(i) + "\r\n");
    }
  }
  ASSERT_TRUE(c.send_all(burst));
  for (int i = 0; i < 40; ++i) {
    const HttpResponse r = c.read_response();
    EXPECT_EQ(r.header("x-request-id"), "p" + std::to_string(i));
    EXPECT_EQ(r.status, i % 2 == 0 ? 200 : 404) << r.body;
  }
}

TEST_F(Http, RequestDribbledOneByteAtATime) {
  Connection c(port());
  const std::string body = R"({"request_id":"dribble-1","order_id":"dribble-1","amount":3,"currency":"CNY","channel":"alipay"})";
  const std::string request = Client::signed_request(m1(), "POST", "/v1/payments", body) + healthz("after");
  for (char ch : request) {
    ASSERT_TRUE(c.send_all(std::string(1, ch)));
  }
  const HttpResponse r = c.read_response();
  // The merchant account may not exist in this suite's server: either answer is a whole one.
  EXPECT_TRUE(r.status == 201 || r.status == 404) << r.status << " " << r.body;
  EXPECT_EQ(c.read_response().header("x-request-id"), "after");
}

TEST_F(Http, ConnectionCloseIsHonoured) {
  Connection c(port());
  ASSERT_TRUE(c.send_all(healthz("bye", "Connection: close\r\n")));
  const HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(c.wait_closed(2000));
}

TEST_F(Http, OversizedHeadersAre431) {
  Connection c(port());
  ASSERT_TRUE(c.send_all("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n"));
  const HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(c.wait_closed(2000));
}

TEST_F(Http, OversizedBodyIs413) {
  Connection c(port());
  ASSERT_TRUE(c.send_all("POST /v1/payments HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"));
  const HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 413);
}

TEST_F(Http, ChunkedBodyIsLengthRequired) {
  Connection c(port());
  ASSERT_TRUE(c.send_all("POST /v1/payments HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 411);
}

TEST_F(Http, MalformedRequestIs400AndCloses) {
  Connection c(port());
  ASSERT_TRUE(c.send_all("GARBAGE\r\n\r\n"));
  const HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(c.wait_closed(2000));
}

TEST_F(Http, SmugglingAttemptsAre400) {
  for (const std::string& request : {
           std::string("POST /v1/payments HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"),
           std::string("POST /v1/payments HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"),
           std::string("POST /v1/payments HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}"),
           std::string("POST /v1/payments HTTP/1.1\nContent-Length: 2\n\n{}"),
           std::string("GET /healthz HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n"),
       }) {
    Connection c(port());
    ASSERT_TRUE(c.send_all(request));
    const HttpResponse r = c.read_response();
    EXPECT_EQ(r.status, 400) << request;
    EXPECT_TRUE(c.wait_closed(2000)) << request;
  }
}

TEST_F(Http, IncompleteHeaderTimesOut) {
  Connection c(port());
  ASSERT_TRUE(c.send_all("GET /healthz HTTP/1.1\r\nHost: slow"));
  EXPECT_TRUE(c.wait_closed(3500));
}

TEST_F(Http, IdleConnectionTimesOut) {
  Connection c(port());
  ASSERT_TRUE(c.send_all(healthz("idle")));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_TRUE(c.wait_closed(4500));
}

TEST_F(Http, ConnectionsOverTheLimitAre503) {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // earlier tests' sockets are gone
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < connections_max; ++i) {
    held.push_back(std::make_unique<Connection>(port()));
    ASSERT_TRUE(held.back()->send_all(healthz("hold")));
    ASSERT_EQ(held.back()->read_response().status, 200);
  }
  // The refusal is sent as soon as the connection is accepted (before any request: a request
  // already sent could make the close a reset that discards the answer).
  Connection extra(port());
  const HttpResponse r = extra.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(extra.wait_closed(2000));
  held.pop_back();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Connection again(port());
  ASSERT_TRUE(again.send_all(healthz("again")));
  EXPECT_EQ(again.read_response().status, 200);
}

TEST(HttpShutdown, SigtermAnswersInFlightAndExitsZero) {
  Fixture fixture;
  ASSERT_TRUE(fixture.start());
  Connection c(fixture.server->port());
  ASSERT_TRUE(c.send_all(healthz("last")));
  EXPECT_EQ(c.read_response().status, 200);
  EXPECT_EQ(fixture.server->stop(SIGTERM), 0);
  EXPECT_NE(fixture.server->log().find("stopped"), std::string::npos);
  fixture.destroy();
}

TEST(HttpShutdown, SighupReloadsKeys) {
  Fixture fixture;
  ASSERT_TRUE(fixture.start());
  Client client(fixture.server->port(), fixture.keys);
  // Rewrite the keys file with a new merchant m_009 and send SIGHUP.
  std::string text = read_file(fixture.keys_path);
  const std::size_t merchants = text.find("\"merchants\"");
  ASSERT_NE(merchants, std::string::npos);
  const std::size_t brace = text.find('{', merchants);
  text.insert(brace + 1, "\"m_009\": \"new-secret-of-m_009\", ");
  {
    FILE* f = std::fopen(fixture.keys_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  const Signer m9{"m_009", "new-secret-of-m_009"};
  EXPECT_EQ(client.raw(Client::signed_request(m9, "GET", "/v1/payments/x", "")).status, 401);
  ASSERT_EQ(::kill(fixture.server->pid(), SIGHUP), 0);
  int status = 0;
  for (int i = 0; i < 50 && status != 404; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = client.raw(Client::signed_request(m9, "GET", "/v1/payments/x", "")).status;
  }
  EXPECT_EQ(status, 404);  // authenticated now: payment_not_found
  fixture.destroy();
}

}  // namespace
}  // namespace paycore::it
