#pragma once
// Helpers shared by the torture, fault, soak and hostile-client suites: environment knobs,
// a tmpfs mount guard, /proc sampling of the server, latency summaries and the setup of
// accounts. Everything talks to the real `paycore serve` through tests/integration/client.hpp.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/client.hpp"

namespace paycore::torture {

using it::Client;
using it::Connection;
using it::Fixture;
using it::HttpResponse;
using it::Signer;

inline std::int64_t env_int(const char* name, std::int64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoll(value, nullptr, 10);
}

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A tmpfs of `bytes` mounted on a fresh directory; unmounted and removed by the destructor on
// every path (a failed assertion included). mounted() is false where mount(2) is refused
// (not root, no CAP_SYS_ADMIN): the caller skips.
class TmpfsMount {
 public:
  explicit TmpfsMount(std::uint64_t bytes) : dir_(it::make_temp_dir("paycore-tmpfs")) {
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0) {
      std::fprintf(stderr, "torture: umount %s: %s\n", dir_.c_str(), std::strerror(errno));
    }
    ::rmdir(dir_.c_str());
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// A Fixture that is destroyed (server stopped, temp dir removed) when the scope ends.
struct ScopedFixture : Fixture {
  ScopedFixture() = default;
  ~ScopedFixture() { destroy(); }
  ScopedFixture(const ScopedFixture&) = delete;
  ScopedFixture& operator=(const ScopedFixture&) = delete;
  std::string log() const { return server ? server->log() : std::string("(no server)"); }
};

// Resident set size (kB) and open descriptors of a process, from /proc.
struct ProcSample {
  std::int64_t rss_kb = -1;
  std::int64_t fds = -1;
};

inline ProcSample sample_process(pid_t pid) {
  ProcSample out;
  const std::string status = it::read_file("/proc/" + std::to_string(pid) + "/status");
  const std::size_t at = status.find("VmRSS:");
  if (at != std::string::npos) out.rss_kb = std::strtoll(status.c_str() + at + 6, nullptr, 10);
  std::error_code ec;
  std::int64_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) out.fds = fds;
  return out;
}

struct Latency {
  double p50_us = 0, p99_us = 0, max_us = 0;
  std::size_t count = 0;
};

inline Latency summarize(std::vector<double> samples_us) {
  Latency out;
  out.count = samples_us.size();
  if (samples_us.empty()) return out;
  std::sort(samples_us.begin(), samples_us.end());
  auto at = [&](double q) {
    const std::size_t i = std::min(samples_us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(samples_us.size())));
    return samples_us[i];
  };
  out.p50_us = at(0.50);
  out.p99_us = at(0.99);
  out.max_us = samples_us.back();
  return out;
}

inline std::string account_body(const std::string& id, const std::string& kind) {
  return R"({"request_id":"open-)" + id + R"(","account_id":")" + id + R"(","currency":"CNY","kind":")" + kind +
         R"("})";
}

inline std::string deposit_body(const std::string& request_id, std::int64_t amount) {
  return R"({"request_id":")" + request_id + R"(","amount":)" + std::to_string(amount) + R"(,"currency":"CNY"})";
}

inline std::string payment_body(const std::string& id, const std::string& payer, std::int64_t amount) {
  return R"({"request_id":")" + id + R"(","order_id":")" + id + R"(","amount":)" + std::to_string(amount) +
         R"(,"currency":"CNY","channel":"balance","payer_account_id":")" + payer + R"("})";
}

inline std::string refund_body(const std::string& request_id, std::int64_t amount) {
  return R"({"request_id":")" + request_id + R"(","amount":)" + std::to_string(amount) + "}";
}

// The four development merchants (auth/keys.hpp) get their accounts; `payers` customers get
// `deposit` each and a mandate for each of `merchants` (docs/api.md "Mandates": a balance payment
// needs one). False (with a gtest failure) if any step is refused.
inline bool open_accounts(Client& client, const std::vector<std::string>& merchants,
                          const std::vector<std::string>& payers, std::int64_t deposit) {
  const Signer op = client.operator_signer();
  for (const std::string& m : merchants) {
    const HttpResponse r = client.call(op, "POST", "/v1/accounts", account_body(m, "merchant"));
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return false;
  }
  for (const std::string& p : payers) {
    HttpResponse r = client.call(op, "POST", "/v1/accounts", account_body(p, "customer"));
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return false;
    r = client.call(op, "POST", "/v1/accounts/" + p + "/deposits", deposit_body("dep-" + p, deposit));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return false;
    for (const std::string& m : merchants) {
      r = it::grant_mandate(client, p, m);
      EXPECT_EQ(r.status, 201) << r.body;
      if (r.status != 201) return false;
    }
  }
  return true;
}

inline const std::vector<std::string>& dev_merchants() {
  static const std::vector<std::string> ids = {"m_001", "m_002", "m_003", "m_004"};
  return ids;
}

}  // namespace paycore::torture
