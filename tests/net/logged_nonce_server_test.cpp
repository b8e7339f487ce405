// A single write's nonce rides in its log record (docs/design.md "Who may move whose money"):
// the server in process, with the real engine and nonce journal, for the case the log cannot
// cover: a connection that closes before its answer came back. Its nonce must then be in the
// journal, since the request may still be executed, or refused with nothing kept.

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "engine_harness.hpp"
#include "net/nonce_journal.hpp"
#include "net/server.hpp"
#include "tests/integration/client.hpp"
#include "tests/net/test_keys.hpp"

namespace paycore::net {
namespace {

constexpr std::int64_t window_s = 300;

TEST(LoggedNonceServer, ANonceWhoseConnectionClosesBeforeItsAnswerIsJournaled) {
  const std::string dir = paycore::testing::make_temp_dir();
  EngineConfig engine_config = paycore::testing::test_config(dir);
  engine_config.nonce_retention_us = 2 * window_s * 1'000'000;
  engine_config.on_recovered_nonce = [](const Command&) {};
  // Never started: the command waits in the ring, and its answer never comes back.
  std::unique_ptr<Engine> engine = paycore::testing::open_engine(engine_config);
  ASSERT_NE(engine, nullptr);
  auth::NonceCache nonces(auth::NonceCacheConfig{1 << 16, 64, window_s});
  auth::KeysHolder keys(testing::dev_keys().keys);
  ServerConfig config;
  config.port = 0;
  config.io_threads = 1;
  config.auth_window_s = window_s;
  config.nonces = &nonces;
  config.nonce_journal_dir = dir + "/nonces";
  config.shutdown_grace_ms = 100;
  StatusOr<std::unique_ptr<Server>> created = Server::create(config, *engine, keys);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  std::unique_ptr<Server> server = std::move(*created);
  server->start();

  const it::Client client(server->port(), testing::dev_keys().keys);
  const std::int64_t now_s = ::time(nullptr);
  const std::string nonce = "closed-before-answer-1";
  const std::string body =
      R"({"request_id":"r1","order_id":"o1","amount":100,"currency":"CNY","channel":"alipay"})";
  it::Connection connection(server->port());
  ASSERT_TRUE(connection.send_all(
      it::Client::signed_request(client.merchant("m_001"), "POST", "/v1/payments", body, now_s, nonce)));
  // Accepted (the nonce is in the cache) and submitted on the same turn of the I/O thread.
  for (int waited_ms = 0; !nonces.seen("m_001", nonce, now_s) && waited_ms < 10'000; waited_ms += 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(nonces.seen("m_001", nonce, now_s));
  server->stop();  // the grace runs out with the answer still due: the connection closes
  server.reset();
  engine.reset();

  auth::NonceCache reloaded(auth::NonceCacheConfig{1 << 16, 64, window_s});
  NonceJournalLoad load;
  StatusOr<std::unique_ptr<NonceJournal>> journal =
      NonceJournal::open(dir + "/nonces", window_s, now_s, reloaded, &load);
  ASSERT_TRUE(journal.is_ok()) << journal.status().to_string();
  EXPECT_EQ(load.live, 1u);
  EXPECT_TRUE(reloaded.seen("m_001", nonce, now_s));
  (*journal)->stop();
  paycore::testing::remove_tree(dir);
}

}  // namespace
}  // namespace paycore::net
