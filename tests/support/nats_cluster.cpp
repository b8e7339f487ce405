#include "tests/support/nats_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "base/assert.hpp"

namespace paycore::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int poll_interval_ms = 50;
constexpr int http_timeout_ms = 2'000;
constexpr std::size_t http_response_bytes_max = 256 * 1024;  // /jsz of an idle server: ~1 KiB
constexpr int stop_timeout_ms = 10'000;
constexpr int start_attempts_max = 3;
constexpr std::size_t log_tail_bytes = 2'000;
constexpr int ports_per_node = 3;  // clients, cluster routes, HTTP monitoring
static_assert(http_timeout_ms < NatsCluster::ready_timeout_ms_default);
static_assert(poll_interval_ms < http_timeout_ms);

// ---- Finding and probing the server ----

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// $PAYCORE_NATS_SERVER, else `nats-server` on $PATH, else in /usr/local/sbin or /usr/sbin.
std::string find_server() {
  const char* forced = std::getenv("PAYCORE_NATS_SERVER");
  if (forced != nullptr && *forced != '\0') return is_executable(forced) ? forced : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(std::string(path == nullptr ? "" : path) + ":/usr/local/sbin:/usr/sbin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/nats-server";
    if (is_executable(candidate)) return candidate;
  }
  return {};
}

// Forks and execs `args` (args[0] a path) with stdin on /dev/null and stdout and stderr on
// `output_fd`. The child gets SIGKILL when the forking thread exits, so a crashed test leaves
// no server behind. -1 if fork fails.
pid_t spawn_process(const std::vector<std::string>& args, int output_fd) {
  PAYCORE_ASSERT(!args.empty());
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Async-signal-safe calls only until exec: the test process may have other threads.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl took effect
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a mask blocking SIGTERM would survive exec
    ::signal(SIGTERM, SIG_DFL);
    ::dup2(null_fd, 0);
    ::dup2(output_fd, 1);
    ::dup2(output_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

// Blocks until `pid` exits and returns its wait status (-1 if it is not our child).
int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// True once `pid` has exited (and is reaped) within timeout_ms.
bool wait_exit(pid_t pid, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status = 0;
    const pid_t reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == pid || (reaped < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// `nats-server -t` on a configuration with `sync_interval: always`: 0 when the server knows it.
bool probe_sync_always(const std::string& server_path) {
  char path[] = "/tmp/paycore-nats-probe-XXXXXX.conf";
  const int fd = ::mkstemps(path, 5);
  if (fd < 0) return false;
  ::close(fd);
  {
    std::ofstream conf(path);
    conf << "listen: 127.0.0.1:4222\n"
         << "jetstream { store_dir: \"" << path << ".d\", sync_interval: always }\n";
  }
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t pid = spawn_process({server_path, "-t", "-c", path}, null_fd);
  const int status = pid > 0 ? wait_status(pid) : -1;
  if (null_fd >= 0) ::close(null_fd);
  ::unlink(path);
  return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// ---- Ports and HTTP on the loopback ----

// The first port of the kernel's ephemeral range (the local ports connect() picks from).
int ephemeral_port_low() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  range >> low;
  return low > 0 ? low : 32768;
}

sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A socket bound to 127.0.0.1:port (0: any free port); -1 if that port is taken.
int bind_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_in address = loopback_address(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

// Fills `ports` with distinct free TCP ports of 127.0.0.1, below the ephemeral range where it
// can: a port in that range, free while its server is killed, may become the local port of
// some client's connect() and make restart() fail. Every socket stays bound until all ports
// are chosen, so no port is handed out twice.
bool pick_loopback_ports(std::vector<std::uint16_t>& ports) {
  constexpr int port_low = 10'000;
  constexpr int tries_max = 1'000;
  const int port_high = ephemeral_port_low();  // exclusive
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> below(port_low, std::max(port_low, port_high - 1));
  std::vector<int> fds;
  for (int tries = 0; fds.size() < ports.size() && tries < tries_max; ++tries) {
    const int fd = bind_loopback(static_cast<std::uint16_t>(below(random)));
    if (fd >= 0) fds.push_back(fd);
  }
  while (fds.size() < ports.size()) {  // the range below is full: let the kernel choose
    const int fd = bind_loopback(0);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  const bool all_bound = fds.size() == ports.size();
  for (std::size_t k = 0; k < fds.size(); ++k) {
    if (all_bound) ports[k] = bound_port(fds[k]);
    ::close(fds[k]);
  }
  return all_bound && std::find(ports.begin(), ports.end(), 0) == ports.end();
}

struct HttpAnswer {
  int status = 0;  // 0: no answer (refused, timed out, malformed)
  std::string body;
};

// Connects to 127.0.0.1:port with connect, send and receive bounded by http_timeout_ms
// (SO_SNDTIMEO bounds connect on Linux). -1 on failure.
int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{};
  timeout.tv_sec = http_timeout_ms / 1000;
  timeout.tv_usec = (http_timeout_ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const sockaddr_in address = loopback_address(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// GET `target` over HTTP/1.0 (the server closes after the answer, which ends the body).
HttpAnswer http_get(std::uint16_t port, std::string_view target) {
  const int fd = connect_loopback(port);
  if (fd < 0) return {};
  const std::string request =
      "GET " + std::string(target) + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string response;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char chunk[4096];
    while (response.size() < http_response_bytes_max) {
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) break;  // EOF, error or timeout: what came is what there is
      response.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const std::size_t head_end = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.") || response.size() < 12 || head_end == std::string::npos) {
    return {};
  }
  return {std::atoi(response.c_str() + 9), response.substr(head_end + 4)};
}

// The node index in the meta leader's server name ("n2" → 2) in a /jsz answer; -1 if none.
int jsz_leader_index(const std::string& jsz) {
  constexpr std::string_view key = "\"leader\": \"n";
  const std::size_t at = jsz.find(key);
  if (at == std::string::npos) return -1;
  const std::size_t digits = at + key.size();
  const std::size_t end = jsz.find('"', digits);
  if (end == std::string::npos || end == digits || end - digits > 2) return -1;
  return std::atoi(jsz.c_str() + digits);
}

std::string file_tail(const std::string& path, std::size_t bytes_max) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= bytes_max ? all : all.substr(all.size() - bytes_max);
}

}  // namespace

// ---- NatsCluster ----

NatsCluster::NatsCluster(int ready_timeout_ms) : ready_timeout_ms_(ready_timeout_ms) {
  PAYCORE_ASSERT_GT(ready_timeout_ms, 0);
}

NatsCluster::~NatsCluster() {
  for (int i = 0; i < nodes_count_; ++i) kill(i);
}

bool NatsCluster::available() { return !find_server().empty(); }

bool NatsCluster::sync_always_supported() {
  static const bool supported = [] {
    const std::string server = find_server();
    return !server.empty() && probe_sync_always(server);
  }();
  return supported;
}

bool NatsCluster::start(const std::string& dir, int nodes) {
  PAYCORE_ASSERT(nodes == 1 || nodes == nodes_max);
  PAYCORE_ASSERT_EQ(nodes_count_, 0);                  // once per object
  PAYCORE_ASSERT(dir.find('"') == std::string::npos);  // quoted in the configuration
  error_.clear();
  server_path_ = find_server();
  if (server_path_.empty()) return fail(-1, "nats-server not found (NatsCluster::available)");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(-1, "creating " + dir + ": " + ec.message());
  dir_ = std::filesystem::absolute(dir).string();
  for (int attempt = 1; attempt <= start_attempts_max; ++attempt) {
    if (start_once(nodes)) return true;
    for (int i = 0; i < nodes; ++i) kill(i);
    // Another process took a port between pick_ports and the server's bind: pick again.
    if (error_.find("address already in use") == std::string::npos) break;
  }
  return false;
}

bool NatsCluster::start_once(int nodes) {
  nodes_count_ = nodes;
  if (!pick_ports()) return fail(-1, "no free loopback ports");
  for (int i = 0; i < nodes; ++i) {
    if (!write_config(i)) return fail(i, "cannot write " + config_path(i));
  }
  for (int i = 0; i < nodes; ++i) {
    std::error_code ignored;
    std::filesystem::remove(log_path(i), ignored);  // each start begins the logs afresh
    if (!spawn(i)) return fail(i, "fork failed");
  }
  for (int i = 0; i < nodes; ++i) {
    if (!wait_node_ready(i)) return false;
  }
  return wait_cluster_ready();
}

bool NatsCluster::pick_ports() {
  std::vector<std::uint16_t> ports(static_cast<std::size_t>(nodes_count_ * ports_per_node));
  if (!pick_loopback_ports(ports)) return false;
  for (int i = 0; i < nodes_count_; ++i) {
    const auto first = static_cast<std::size_t>(i * ports_per_node);
    Node& node = nodes_[static_cast<std::size_t>(i)];
    node.client_port = ports[first];
    node.cluster_port = ports[first + 1];
    node.monitor_port = ports[first + 2];
  }
  return true;
}

bool NatsCluster::write_config(int i) const {
  const Node& node = nodes_[static_cast<std::size_t>(i)];
  std::ofstream conf(config_path(i), std::ios::trunc);
  conf << "# Node " << i << " of a paycore test cluster (tests/support/nats_cluster.cpp).\n"
       << "server_name: n" << i << "\n"
       << "listen: 127.0.0.1:" << node.client_port << "\n"
       << "http: 127.0.0.1:" << node.monitor_port << "\n"
       << "max_payload: 8MB\n"
       << "jetstream {\n  store_dir: \"" << dir_ << "/n" << i << "\"\n"
       << (sync_always_supported() ? "  sync_interval: always\n" : "") << "}\n";
  if (nodes_count_ > 1) {
    conf << "cluster {\n  name: paycore\n  listen: 127.0.0.1:" << node.cluster_port
         << "\n  routes: [";
    for (int peer = 0; peer < nodes_count_; ++peer) {
      conf << (peer == 0 ? "" : ", ")
           << "nats-route://127.0.0.1:" << nodes_[static_cast<std::size_t>(peer)].cluster_port;
    }
    conf << "]\n}\n";
  }
  conf.flush();
  return conf.good();
}

bool NatsCluster::spawn(int i) {
  Node& node = nodes_[static_cast<std::size_t>(i)];
  PAYCORE_ASSERT_LE(node.pid, 0);
  const int log_fd = ::open(log_path(i).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return false;
  node.pid = spawn_process({server_path_, "-c", config_path(i)}, log_fd);
  node.paused = false;
  ::close(log_fd);
  return node.pid > 0;
}

bool NatsCluster::wait_node_ready(int i) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ready_timeout_ms_);
  while (true) {
    const HttpAnswer health = http_get(monitor_port(i), "/healthz?js-enabled-only=true");
    if (health.status == 200 && health.body.find("\"ok\"") != std::string::npos) return true;
    if (node_exited(i)) return fail(i, "exited while starting");
    if (Clock::now() >= deadline) {
      return fail(i, "not healthy within " + std::to_string(ready_timeout_ms_) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_interval_ms));
  }
}

// Every running, unpaused node agrees on a running meta leader and says it is current with it
// (/healthz?js-server-only=true checks both in 2.9).
bool NatsCluster::wait_cluster_ready() {
  if (nodes_count_ == 1) return true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(ready_timeout_ms_);
  while (true) {
    bool ready = meta_leader() >= 0;
    for (int i = 0; ready && i < nodes_count_; ++i) {
      const Node& node = nodes_[static_cast<std::size_t>(i)];
      if (node.pid <= 0 || node.paused) continue;
      ready = http_get(node.monitor_port, "/healthz?js-server-only=true").status == 200;
    }
    if (ready) return true;
    for (int i = 0; i < nodes_count_; ++i) {
      if (nodes_[static_cast<std::size_t>(i)].pid > 0 && node_exited(i)) {
        return fail(i, "exited while the cluster formed");
      }
    }
    if (Clock::now() >= deadline) {
      return fail(-1, "no running meta leader within " + std::to_string(ready_timeout_ms_) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_interval_ms));
  }
}

// Reaps node i if its process has exited; true if it is not running (any more).
bool NatsCluster::node_exited(int i) {
  Node& node = nodes_[static_cast<std::size_t>(i)];
  if (node.pid <= 0) return true;
  int status = 0;
  const pid_t reaped = ::waitpid(node.pid, &status, WNOHANG);
  if (reaped == 0 || (reaped < 0 && errno == EINTR)) return false;
  node.pid = -1;
  node.paused = false;
  return true;
}

bool NatsCluster::fail(int i, const std::string& what) {
  if (i < 0) {
    error_ = what;
  } else {
    error_ = "nats-server n" + std::to_string(i) + ": " + what + "; " + log_path(i) +
             " ends with:\n" + file_tail(log_path(i), log_tail_bytes);
  }
  return false;
}

std::string NatsCluster::urls() const {
  std::string list;
  for (int i = 0; i < nodes_count_; ++i) list += (i == 0 ? "" : ",") + url(i);
  return list;
}

std::string NatsCluster::url(int i) const {
  return "nats://127.0.0.1:" + std::to_string(client_port(i));
}

std::uint16_t NatsCluster::client_port(int i) const {
  check_index(i);
  return nodes_[static_cast<std::size_t>(i)].client_port;
}

std::uint16_t NatsCluster::monitor_port(int i) const {
  check_index(i);
  return nodes_[static_cast<std::size_t>(i)].monitor_port;
}

std::string NatsCluster::log_path(int i) const {
  check_index(i);
  return dir_ + "/n" + std::to_string(i) + ".log";
}

std::string NatsCluster::config_path(int i) const {
  check_index(i);
  return dir_ + "/n" + std::to_string(i) + ".conf";
}

bool NatsCluster::running(int i) const {
  check_index(i);
  const pid_t pid = nodes_[static_cast<std::size_t>(i)].pid;
  if (pid <= 0) return false;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so that the const object's pid stays its own.
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  return info.si_pid == 0;
}

void NatsCluster::kill(int i) {
  check_index(i);
  Node& node = nodes_[static_cast<std::size_t>(i)];
  if (node.pid <= 0) return;
  ::kill(node.pid, SIGKILL);  // ends a stopped process too
  (void)wait_status(node.pid);
  node.pid = -1;
  node.paused = false;
}

void NatsCluster::stop(int i) {
  check_index(i);
  Node& node = nodes_[static_cast<std::size_t>(i)];
  if (node.pid <= 0) return;
  ::kill(node.pid, SIGTERM);
  if (node.paused) ::kill(node.pid, SIGCONT);  // a stopped process acts on SIGTERM only then
  if (!wait_exit(node.pid, stop_timeout_ms)) {
    ::kill(node.pid, SIGKILL);
    (void)wait_status(node.pid);
  }
  node.pid = -1;
  node.paused = false;
}

bool NatsCluster::restart(int i) {
  check_index(i);
  PAYCORE_ASSERT(!running(i));
  (void)node_exited(i);  // reap a server that died on its own
  error_.clear();
  if (!spawn(i)) return fail(i, "fork failed");
  if (wait_node_ready(i) && wait_cluster_ready()) return true;
  kill(i);
  return false;
}

void NatsCluster::pause(int i) {
  check_index(i);
  Node& node = nodes_[static_cast<std::size_t>(i)];
  PAYCORE_ASSERT_GT(node.pid, 0);
  if (node.paused) return;
  ::kill(node.pid, SIGSTOP);
  int status = 0;
  // WUNTRACED reports the stop itself, so the server is frozen when pause returns.
  while (::waitpid(node.pid, &status, WUNTRACED) < 0 && errno == EINTR) {
  }
  if (WIFSTOPPED(status)) {
    node.paused = true;
  } else {
    node.pid = -1;  // it exited (and is reaped) before it could be stopped
  }
}

void NatsCluster::resume(int i) {
  check_index(i);
  Node& node = nodes_[static_cast<std::size_t>(i)];
  PAYCORE_ASSERT_GT(node.pid, 0);
  if (!node.paused) return;
  ::kill(node.pid, SIGCONT);
  int status = 0;
  while (::waitpid(node.pid, &status, WCONTINUED) < 0 && errno == EINTR) {
  }
  node.paused = false;
  if (!WIFCONTINUED(status)) node.pid = -1;  // exited meanwhile (SIGKILL from outside)
}

int NatsCluster::meta_leader() const {
  if (nodes_count_ <= 1) return -1;
  int leader = -1;
  int asked_count = 0;
  for (int i = 0; i < nodes_count_; ++i) {
    const Node& node = nodes_[static_cast<std::size_t>(i)];
    if (node.pid <= 0 || node.paused) continue;
    const int named = jsz_leader_index(http_get(node.monitor_port, "/jsz").body);
    if (named < 0 || (asked_count > 0 && named != leader)) return -1;  // none, or no agreement
    leader = named;
    ++asked_count;
  }
  if (leader < 0 || leader >= nodes_count_) return -1;
  const Node& chosen = nodes_[static_cast<std::size_t>(leader)];
  return chosen.pid > 0 && !chosen.paused ? leader : -1;
}

void NatsCluster::check_index(int i) const {
  PAYCORE_ASSERT_GE(i, 0);
  PAYCORE_ASSERT_LT(i, nodes_count_);
}

}  // namespace paycore::testing
