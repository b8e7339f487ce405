#pragma once
// A real HTTP/1.1 receiver on 127.0.0.1 for the webhook tests: a listening socket, a thread per
// connection (keep-alive), and a scripted reply per request: 200, 500, a 302 redirect, or no
// reply at all (the connection is held open until stop()).

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace paycore::webhooks::test {

enum class Reply { kOk, kServerError, kRedirect, kHang };

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
  std::int64_t received_at_ns = 0;  // monotonic
};

class TestReceiver {
 public:
  /// Listens on 127.0.0.1:`port` (0: any free port). `reply(i)` decides the i-th request's
  /// answer (0-based, counted across connections); a redirect points at `redirect_to`.
  explicit TestReceiver(std::function<Reply(std::size_t)> reply, std::uint16_t port = 0,
                        std::string redirect_to = "http://127.0.0.1:1/");
  ~TestReceiver();
  TestReceiver(const TestReceiver&) = delete;
  TestReceiver& operator=(const TestReceiver&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const;
  std::vector<ReceivedRequest> requests() const;
  std::size_t count() const;
  /// True once `count` requests have arrived, false after `timeout_ms`.
  bool wait_for_count(std::size_t count, int timeout_ms) const;
  /// Closes the listener and every connection (hanging ones too); joins the threads.
  void stop();

 private:
  void accept_loop();
  void serve(int fd);
  bool stopping() const;

  std::function<Reply(std::size_t)> reply_;
  std::string redirect_to_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stopping_ = false;
  std::vector<ReceivedRequest> requests_;
  std::vector<int> connection_fds_;
  std::vector<std::thread> connection_threads_;
  std::thread accept_thread_;
};

/// A port on 127.0.0.1 that nothing listens on (bound, then closed) at the time of the call.
std::uint16_t unused_port();

}  // namespace paycore::webhooks::test
