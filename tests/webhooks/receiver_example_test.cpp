// examples/webhook_receiver.py, run by python3, against requests signed by webhooks/signature:
// a valid one is 200, a tampered, wrongly keyed or old one is 400, a repeat is 200 and is not
// processed twice.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "base/time.hpp"
#include "webhooks/sender.hpp"
#include "webhooks/signature.hpp"

namespace paycore::webhooks {
namespace {

constexpr const char* secret = "whsec_example";

// The receiver as a child process; its stdout comes back through a pipe.
class PythonReceiver {
 public:
  PythonReceiver() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      const std::string script = std::string(PAYCORE_SOURCE_DIR) + "/examples/webhook_receiver.py";
      execlp("python3", "python3", script.c_str(), "--secret", secret, "--port", "0", nullptr);
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    const std::string first = read_line(10'000);
    const std::size_t colon = first.rfind(':');
    EXPECT_EQ(first.rfind("listening on 127.0.0.1:", 0), 0U) << first;
    if (colon != std::string::npos) port_ = std::stoi(first.substr(colon + 1));
  }
  ~PythonReceiver() { stop(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  // Stops the child (by its pid) and returns what it printed after the first line.
  std::string stop() {
    if (pid_ <= 0) return {};
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::string rest;
    char buffer[4096];
    ssize_t got = 0;
    while ((got = read(out_fd_, buffer, sizeof buffer)) > 0) rest.append(buffer, static_cast<std::size_t>(got));
    close(out_fd_);
    return pending_ + rest;
  }

 private:
  std::string read_line(int timeout_ms) {
    const std::int64_t end_ms = monotonic_ms() + timeout_ms;
    while (pending_.find('\n') == std::string::npos && monotonic_ms() < end_ms) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buffer[256];
      const ssize_t got = read(out_fd_, buffer, sizeof buffer);
      if (got <= 0) break;
      pending_.append(buffer, static_cast<std::size_t>(got));
    }
    const std::size_t newline = pending_.find('\n');
    if (newline == std::string::npos) return pending_;
    std::string line = pending_.substr(0, newline);
    pending_.erase(0, newline + 1);
    return line;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string pending_;
};

SenderConfig loopback() {
  SenderConfig config;
  config.policy.http_hosts_allowed = {"127.0.0.1"};
  config.policy.addresses_allowed = {*parse_ip_network("127.0.0.0/8")};
  config.timeout_ms = 5'000;
  return config;
}

std::int32_t post(const std::string& url, const std::string& body, const std::string& signature) {
  SendRequest request;
  request.url = url;
  request.body = body;
  request.signature = signature;
  request.event_id = "evt_1";
  const SendResult result = send_one(loopback(), request);
  EXPECT_TRUE(result.error.empty()) << result.error;
  return result.http_status;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

TEST(ReceiverExample, ValidIsAcceptedOnceAndInvalidIsRefused) {
  PythonReceiver receiver;
  const std::string body = R"({"id":"evt_1","type":"payment.paid","data":{"object":{}}})";
  const std::int64_t now_s = wall_clock_us() / us_per_second;
  EXPECT_EQ(post(receiver.url(), body, signature_header_value(secret, now_s, body)), 200);
  EXPECT_EQ(post(receiver.url(), body, signature_header_value(secret, now_s, body)), 200);
  const std::string tampered = R"({"id":"evt_1","type":"payment.paid","data":{"object":{"x":1}}})";
  EXPECT_EQ(post(receiver.url(), tampered, signature_header_value(secret, now_s, body)), 400);
  EXPECT_EQ(post(receiver.url(), body, signature_header_value("whsec_other", now_s, body)), 400);
  EXPECT_EQ(post(receiver.url(), body, signature_header_value(secret, now_s - 301, body)), 400);
  EXPECT_EQ(post(receiver.url(), body, "t=" + std::to_string(now_s)), 400);
  const std::string printed = receiver.stop();
  EXPECT_EQ(occurrences(printed, "processed evt_1"), 1U) << printed;
  EXPECT_EQ(occurrences(printed, "duplicate evt_1"), 1U) << printed;
  EXPECT_EQ(occurrences(printed, "refused signature mismatch"), 2U) << printed;
  EXPECT_EQ(occurrences(printed, "refused timestamp outside the tolerance"), 1U) << printed;
}

}  // namespace
}  // namespace paycore::webhooks
