// The primary cut from NATS by a network partition (issue 14; docs/replication.md "What is lost
// under which failure"), with real `paycore serve` processes on a real nats-server. Process 0
// reaches NATS only through a TCP proxy in this test process (tests/support/tcp_blackhole.hpp),
// process 1 directly. While a client writes, the proxy becomes a blackhole: process 0's
// connections stay open and nothing comes back, as in a real partition. Process 1 must take
// over and take writes; process 0 must answer no success for a write sent to it afterwards and
// stop (exit 3); the new primary's balance must be exactly the acknowledged deposits. Healed
// and restarted on its own data directory, process 0 rejoins as a standby with that balance.
//
// What this does not cover: a partition made by the network (a firewall rule in a network
// namespace), where the kernel, not a proxy, drops the packets and TCP retransmits; a partition
// that cuts process 0 from some NATS servers of three and not others.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "auth/keys.hpp"
#include "client.hpp"
#include "tests/support/nats_cluster.hpp"
#include "tests/support/tcp_blackhole.hpp"

namespace paycore::it {
namespace {
using paycore::testing::NatsCluster;
using paycore::testing::TcpBlackhole;
using Clock = std::chrono::steady_clock;

// The cluster's timing, as integration.failover runs it.
constexpr int lease_timeout_ms = 1'000;
// A standby takes the lease after lease_timeout_ms without a renewal, then catches up: seconds
// of slack for a debug build on a loaded machine.
constexpr int takeover_wait_ms = lease_timeout_ms + 10'000;
// NATS's answer to one request of paycore's (repl::LinkConfig::timeout_ms, not a setting).
constexpr int nats_request_timeout_ms = 2'000;
// When a holder cut from NATS decides to stop (logs "another process is primary"): a renewal
// that fails is judged by the time taken before it began (Lease::renew gets the heartbeat's
// `now`), so the lease counts as lost only once an attempt that began past the timeout has
// failed too, two failed attempts of up to a request timeout each after its last renewal
// (5.4-5.9 s measured here), not the "about twice the timeout" of docs/replication.md
// "Leadership". Plus slack for a loaded machine.
constexpr int stop_wait_ms = lease_timeout_ms + 2 * nats_request_timeout_ms + 4'000;
// Then it exits (status 3) after its shutdown: the HTTP server's shutdown_grace_ms (5 s by
// default) for the requests held for the stream, which never answers, then the lease release
// and the stream writer's teardown, each bounded by NATS request timeouts (about 10 s more).
constexpr int exit_wait_ms = stop_wait_ms + 5'000 + 6 * nats_request_timeout_ms + 5'000;
// One HTTP request's answer. A write the cut-off primary holds for the stream is never
// answered: the writer gives up on it after this and sends it to the other process.
constexpr int request_timeout_ms = 3'000;
// How long the writer retries one deposit before it gives up (the test then fails).
constexpr int deposit_wait_ms = 60'000;
constexpr int acks_before_cut = 20;
constexpr int acks_on_new_primary = 20;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string deposit_body(const std::string& request_id, std::int64_t amount) {
  return R"({"request_id":")" + request_id + R"(","amount":)" + std::to_string(amount) +
         R"(,"currency":"CNY"})";
}

// ---- The proxy by itself, against a listening socket of this test ----

// A socket: listening on a free port of 127.0.0.1 (connect_to == 0), or connected to it.
int loopback_socket(std::uint16_t connect_to, std::uint16_t* bound_port = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(connect_to);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  socklen_t length = sizeof(address);
  const bool ready = connect_to != 0 ? ::connect(fd, raw, length) == 0
                                     : ::bind(fd, raw, length) == 0 && ::listen(fd, 8) == 0 &&
                                           ::getsockname(fd, raw, &length) == 0;
  if (!ready) {
    ::close(fd);
    return -1;
  }
  if (bound_port != nullptr) *bound_port = ntohs(address.sin_port);
  return fd;
}

// Closes every socket given to it when the test ends, however it ends.
struct Sockets {
  std::vector<int> fds;
  Sockets() = default;
  Sockets(const Sockets&) = delete;
  Sockets& operator=(const Sockets&) = delete;
  ~Sockets() {
    for (const int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int add(int fd) { return fds.emplace_back(fd); }
};

// What `fd` receives within timeout_ms: the bytes, "" if nothing came, "EOF" if it closed.
std::string receive_within(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return "";
  char chunk[256];
  const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
  return n <= 0 ? "EOF" : std::string(chunk, static_cast<std::size_t>(n));
}

// The target's side of the next connection the proxy makes; -1 if none within timeout_ms.
int accept_within(int listen_fd, int timeout_ms) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return -1;
  return ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
}

bool send_text(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// Forwards both ways; cut, drops both ways without closing and accepts new connections it
// never forwards; healed, closes the cut connections and forwards new ones.
TEST(TcpBlackholeProxy, ForwardsThenDropsWithoutClosingThenClosesWhatItCutWhenHealed) {
  constexpr int silence_ms = 300;
  std::uint16_t target_port = 0;
  Sockets sockets;
  const int target = sockets.add(loopback_socket(0, &target_port));
  ASSERT_GE(target, 0);
  TcpBlackhole proxy(target_port);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  const int client = sockets.add(loopback_socket(proxy.port()));
  const int server = sockets.add(accept_within(target, 2'000));
  ASSERT_GE(client, 0);
  ASSERT_GE(server, 0);
  ASSERT_TRUE(send_text(client, "ping"));
  EXPECT_EQ(receive_within(server, 2'000), "ping");
  ASSERT_TRUE(send_text(server, "pong"));
  EXPECT_EQ(receive_within(client, 2'000), "pong");

  ASSERT_TRUE(proxy.partition());
  ASSERT_TRUE(send_text(client, "lost"));
  ASSERT_TRUE(send_text(server, "lost too"));
  EXPECT_EQ(receive_within(server, silence_ms), "");  // neither data nor EOF
  EXPECT_EQ(receive_within(client, silence_ms), "");
  const int late = sockets.add(loopback_socket(proxy.port()));
  ASSERT_GE(late, 0) << "a connection made during the partition is accepted";
  EXPECT_LT(sockets.add(accept_within(target, silence_ms)), 0) << "and never forwarded";
  EXPECT_EQ(receive_within(late, silence_ms), "");
  EXPECT_EQ(proxy.bytes_dropped(), std::string("lostlost too").size());
  EXPECT_EQ(proxy.connections_blackholed(), 1u);

  ASSERT_TRUE(proxy.heal());
  EXPECT_EQ(receive_within(client, 2'000), "EOF");
  EXPECT_EQ(receive_within(late, 2'000), "EOF");
  const int again = sockets.add(loopback_socket(proxy.port()));
  const int again_server = sockets.add(accept_within(target, 2'000));
  ASSERT_GE(again_server, 0);
  ASSERT_TRUE(send_text(again, "back"));
  EXPECT_EQ(receive_within(again_server, 2'000), "back");
}

// ---- The cluster ----

// What the writer saw acknowledged.
struct Acknowledged {
  std::int64_t sum = 0;
  std::uint64_t lsn_max = 0;  // the highest Paycore-Lsn of an acknowledged write
  std::map<int, int> count_by_process;
};

class Partition : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = make_temp_dir("partition");
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
    proxy_ = std::make_unique<TcpBlackhole>(nats_.client_port(0));
    ASSERT_TRUE(proxy_->ok()) << proxy_->error();
    keys_path_ = dir_ + "/keys.json";
  }
  void TearDown() override {
    stop_writer();
    for (auto& s : servers_) {
      if (s && s->running()) s->kill_hard();
    }
    proxy_.reset();
    remove_tree(dir_);
  }

  // Process 0 reaches NATS through the proxy only; the others directly.
  std::vector<std::string> args(int i) const {
    const std::string url = i == 0 ? "nats://" + proxy_->address() : nats_.urls();
    std::vector<std::string> out = {"--nats-url", url, "--lease-timeout-ms",
                                    std::to_string(lease_timeout_ms)};
    out.insert(out.end(), {"--cluster-name", "pt", "--log-stream-replicas", "1", "--archive=false",
                           "--lease-heartbeat-ms", "100", "--replication-ack-timeout-ms", "1000",
                           "--snapshot-every-records", "2000"});
    return out;
  }

  bool start(int i) {
    const auto at = static_cast<std::size_t>(i);
    auto process = std::make_unique<ServerProcess>();
    const bool up = process->start(dir_ + "/node" + std::to_string(i), keys_path_, args(i));
    {
      const std::lock_guard lock(servers_mu_);
      if (servers_.size() <= at) servers_.resize(at + 1);
      servers_[at] = std::move(process);
    }
    if (up && keys_ == nullptr) {
      StatusOr<std::shared_ptr<const auth::Keys>> loaded = auth::keys_load(keys_path_);
      if (loaded.is_ok()) keys_ = *loaded;
    }
    return up;
  }
  ServerProcess& server(int i) { return *servers_[static_cast<std::size_t>(i)]; }

  // (index, port) of the processes running; any thread.
  std::vector<std::pair<int, std::uint16_t>> live_ports() {
    const std::lock_guard lock(servers_mu_);
    std::vector<std::pair<int, std::uint16_t>> out;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (servers_[i] && servers_[i]->running()) {
        out.emplace_back(static_cast<int>(i), servers_[i]->port());
      }
    }
    return out;
  }

  // One signed request as the operator on a fresh connection, one attempt (Client::call sends
  // twice when the first gets no answer): status 0 if nothing came within timeout_ms.
  HttpResponse send_once(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body, const std::string& extra_headers = {},
                         int timeout_ms = request_timeout_ms) {
    Connection connection(port);
    const Signer who = Client(port, keys_).operator_signer();
    if (!connection.ok() || !connection.send_all(Client::signed_request(who, method, target, body,
                                                                        0, {}, extra_headers))) {
      return {};
    }
    return connection.read_response(timeout_ms);
  }

  // `body` to whichever process answers it as primary, retried with the same request_id until
  // acknowledged (200 or 201) or wait_ms has passed (then status 0).
  HttpResponse write_on_primary(const std::string& target, const std::string& body, int wait_ms,
                                int* which = nullptr) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (Clock::now() < deadline) {
      for (const auto& [i, port] : live_ports()) {
        HttpResponse r = send_once(port, "POST", target, body);
        if (r.status == 200 || r.status == 201) {
          if (which != nullptr) *which = i;
          return r;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return {};
  }

  // Deposits into alice continuously, each retried until acknowledged; the stop is looked at
  // between deposits only, so a deposit that may have been executed is always counted.
  void start_writer() {
    writer_ = std::jthread([this](const std::stop_token& stop) {
      for (int k = 0; !stop.stop_requested(); ++k) {
        const std::int64_t amount = k % 7 + 1;
        int which = -1;
        const HttpResponse r = write_on_primary("/v1/accounts/alice/deposits",
                                                deposit_body("w-" + std::to_string(k), amount),
                                                deposit_wait_ms, &which);
        if (r.status == 0) {
          writer_failed_ = true;  // possibly executed, never acknowledged: the sums can't tell
          return;
        }
        record(amount, r, which);
      }
    });
  }
  void stop_writer() {
    if (!writer_.joinable()) return;
    writer_.request_stop();
    writer_.join();
  }
  void record(std::int64_t amount, const HttpResponse& r, int which) {
    const std::lock_guard lock(acknowledged_mu_);
    acknowledged_.sum += amount;
    const std::uint64_t lsn = std::stoull("0" + r.header("paycore-lsn"));
    acknowledged_.lsn_max = std::max(acknowledged_.lsn_max, lsn);
    ++acknowledged_.count_by_process[which];
  }
  Acknowledged acknowledged() {
    const std::lock_guard lock(acknowledged_mu_);
    return acknowledged_;
  }
  // True once process `which` has acknowledged `count` of the writer's deposits.
  bool wait_acknowledged_by(int which, int count, int wait_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (acknowledged().count_by_process[which] < count) {
      if (Clock::now() >= deadline || writer_failed_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Process i stopping by itself: when it said so in its log, when it exited (ms after
  // `since`) and its exit status. Reaped once exited; -1s for what did not happen in wait_ms.
  struct OwnExit {
    int status = -1;
    double stop_logged_ms = -1;
    double exited_ms = -1;
  };
  OwnExit wait_own_exit(int i, Clock::time_point since, int wait_ms) {
    const auto deadline = since + std::chrono::milliseconds(wait_ms);
    const pid_t pid = server(i).pid();
    OwnExit out;
    while (Clock::now() < deadline) {
      if (out.stop_logged_ms < 0 &&
          server(i).log().find("another process is primary") != std::string::npos) {
        out.stop_logged_ms = ms_since(since);
      }
      siginfo_t info{};
      // WNOWAIT: looked at, not reaped, so that ServerProcess::stop() reaps it and reads the
      // status (SIGKILL to a process that has exited does nothing).
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        out.exited_ms = ms_since(since);
        const std::lock_guard lock(servers_mu_);
        out.status = server(i).stop(SIGKILL);
        return out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return out;
  }

  // Reads alice on `port` every 50 ms until nothing listens there any more or wait_ms has
  // passed: how many were answered 200 and when the last was (ms after `since`).
  struct Reads {
    int answered = 0;
    double last_answered_ms = -1;
  };
  Reads read_until_gone(std::uint16_t port, Clock::time_point since, int wait_ms) {
    constexpr int read_timeout_ms = 500;
    Reads out;
    while (ms_since(since) < wait_ms) {
      if (!Connection(port).ok()) break;  // exited: its listener is closed
      const HttpResponse r = send_once(port, "GET", "/v1/accounts/alice", "", {}, read_timeout_ms);
      if (r.status == 200) {
        ++out.answered;
        out.last_answered_ms = ms_since(since);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return out;
  }

  std::int64_t balance_on(int i) {
    const HttpResponse r = send_once(server(i).port(), "GET", "/v1/accounts/alice", "");
    EXPECT_EQ(r.status, 200) << r.body;
    return json_int(r.body, "/balance").value_or(-1);
  }

  // Process i's balance read with Paycore-Min-Lsn: lsn, retried while it catches up (503).
  HttpResponse read_at_lsn(int i, std::uint64_t lsn, int wait_ms) {
    const std::string header = "Paycore-Min-Lsn: " + std::to_string(lsn) + "\r\n";
    const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    HttpResponse r;
    do {
      r = send_once(server(i).port(), "GET", "/v1/accounts/alice", "", header);
      if (r.status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (Clock::now() < deadline);
    return r;
  }

  // Every process's log without the per-request lines, for failure messages.
  std::string logs() {
    const std::lock_guard lock(servers_mu_);
    std::string out;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (!servers_[i]) continue;
      out += "--- process " + std::to_string(i) + "\n";
      std::istringstream lines(servers_[i]->log());
      for (std::string line; std::getline(lines, line);) {
        if (line.find("\"msg\":\"request\"") == std::string::npos) out += line + "\n";
      }
    }
    return out;
  }

  // Process 0 alone takes the lease and is the primary; the account; process 1, a standby.
  void start_primary_and_standby() {
    ASSERT_TRUE(start(0)) << server(0).log();
    const std::string open = R"({"request_id":"open-alice","account_id":"alice",)"
                             R"("currency":"CNY","kind":"customer"})";
    ASSERT_EQ(write_on_primary("/v1/accounts", open, 15'000).status, 201) << logs();
    ASSERT_TRUE(start(1)) << server(1).log();
  }

  // Sends one deposit to process i, directly and with the same request_id, until it is
  // acknowledged: the ms from `cut_at` to that answer (counted as acknowledged), or -1 if it
  // never was within takeover_wait_ms.
  double first_write_on(int i, Clock::time_point cut_at) {
    constexpr std::int64_t amount = 100'000;
    while (ms_since(cut_at) < takeover_wait_ms) {
      const HttpResponse r = send_once(server(i).port(), "POST", "/v1/accounts/alice/deposits",
                                       deposit_body("first-on-" + std::to_string(i), amount));
      if (r.status == 200) {
        const double ms = ms_since(cut_at);
        record(amount, r, i);
        return ms;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  // Restarts process i on its data directory: it follows as a standby, its read at the last
  // acknowledged LSN shows every acknowledged deposit, and it refuses writes.
  void rejoin_as_standby(int i, const Acknowledged& acked, double* rejoined_ms) {
    const auto restarted_at = Clock::now();
    ASSERT_TRUE(start(i)) << server(i).log();
    const HttpResponse read = read_at_lsn(i, acked.lsn_max, 15'000);
    *rejoined_ms = ms_since(restarted_at);
    ASSERT_EQ(read.status, 200) << read.body << "\n" << logs();
    EXPECT_EQ(json_int(read.body, "/balance").value_or(-1), acked.sum);
    const HttpResponse refused = send_once(server(i).port(), "POST", "/v1/accounts/alice/deposits",
                                           deposit_body("to-the-standby", 1));
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(json_string(refused.body, "/error/code").value_or(""), "not_primary");
  }

  std::string dir_;
  std::string keys_path_;
  NatsCluster nats_;
  std::unique_ptr<TcpBlackhole> proxy_;
  std::shared_ptr<const auth::Keys> keys_;
  std::mutex servers_mu_;  // servers_: the writer reads it
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  std::mutex acknowledged_mu_;
  Acknowledged acknowledged_;
  std::atomic<bool> writer_failed_{false};
  std::jthread writer_;  // stopped and joined by TearDown if a test returns early
};

TEST_F(Partition, APrimaryCutFromNatsIsReplacedLosesNothingAndRejoinsAsAStandby) {
  ASSERT_NO_FATAL_FAILURE(start_primary_and_standby());
  start_writer();
  ASSERT_TRUE(wait_acknowledged_by(0, acks_before_cut, 20'000)) << logs();

  ASSERT_TRUE(proxy_->partition());
  const auto cut_at = Clock::now();
  const std::uint16_t old_port = server(0).port();
  // Sent to the cut-off primary after the cut, while the standby takes over: it may be held
  // for the stream, refused or dropped by the exit, never acknowledged.
  std::future<HttpResponse> late = std::async(std::launch::async, [&] {
    return send_once(old_port, "POST", "/v1/accounts/alice/deposits", deposit_body("late", 1000),
                     {}, exit_wait_ms);
  });
  std::future<Reads> reads = std::async(
      std::launch::async, [&] { return read_until_gone(old_port, cut_at, exit_wait_ms); });
  const double takeover_ms = first_write_on(1, cut_at);
  ASSERT_GE(takeover_ms, 0) << "process 1 took no write after the cut\n" << logs();
  const OwnExit old = wait_own_exit(0, cut_at, exit_wait_ms);
  EXPECT_GE(old.stop_logged_ms, 0) << logs();
  EXPECT_LE(old.stop_logged_ms, stop_wait_ms) << logs();
  EXPECT_EQ(old.status, 3) << "the cut-off primary did not stop with status 3 in time\n" << logs();
  const HttpResponse late_answer = late.get();
  EXPECT_TRUE(late_answer.status == 0 || late_answer.status == 503)
      << late_answer.status << " " << late_answer.body;
  EXPECT_GT(proxy_->bytes_dropped(), 0u) << "the partition cut no traffic";

  ASSERT_TRUE(wait_acknowledged_by(1, acks_on_new_primary, 30'000)) << logs();
  stop_writer();
  ASSERT_FALSE(writer_failed_.load()) << "a deposit was never acknowledged\n" << logs();
  const Acknowledged acked = acknowledged();
  EXPECT_EQ(balance_on(1), acked.sum) << "lost or doubled deposits\n" << logs();

  // Healed, the old primary comes back on its own data directory, through the proxy again.
  ASSERT_TRUE(proxy_->heal());
  double rejoined_ms = -1;
  ASSERT_NO_FATAL_FAILURE(rejoin_as_standby(0, acked, &rejoined_ms));
  const bool set_aside = server(0).log().find("never acknowledged: set aside") != std::string::npos;
  const Reads read = reads.get();
  std::printf(
      "partition: the new primary acknowledged its first write %.0f ms after the cut; the old "
      "primary said it stops after %.0f ms, exited (status %d) after %.0f ms, answered %d "
      "reads after the cut (the last at %.0f ms) and the late write with status %d; %d "
      "deposits acknowledged before the cut, %d by the new primary; %llu bytes dropped, %llu "
      "connections blackholed; it rejoined as a standby at LSN %llu in %.0f ms%s\n",
      takeover_ms, old.stop_logged_ms, old.status, old.exited_ms, read.answered,
      read.last_answered_ms, late_answer.status, acked.count_by_process.at(0),
      acked.count_by_process.at(1), static_cast<unsigned long long>(proxy_->bytes_dropped()),
      static_cast<unsigned long long>(proxy_->connections_blackholed()),
      static_cast<unsigned long long>(acked.lsn_max), rejoined_ms,
      set_aside ? " (its log set aside)" : "");
}

}  // namespace
}  // namespace paycore::it
