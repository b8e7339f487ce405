// Soak: the real binary under a steady, paced load for PAYCORE_SOAK_SECONDS (default 600);
// its resident set (/proc/PID/status VmRSS) and open descriptors (/proc/PID/fd) are sampled
// every PAYCORE_SOAK_SAMPLE_MS (default 5000) and printed. After the warm-up (the first fifth,
// at least two auth windows, so the nonce cache has reached its steady size) they must stay
// within a bound: RSS at most the warm-up's plus 16 MiB plus 2 KiB for each new payment made
// since (payments and idempotency records are state the server must keep), descriptors at
// most the warm-up's plus 8. Every request must get its expected answer.
// The load: per thread, one keep-alive connection; reads of own payments and account (85%),
// idempotent replays (10%), new payments (2%), and on fresh connections a badly signed
// request or a bare connect-and-close (3%). Snapshots (a forked child) every 30 s and a
// small log segment size make snapshot and rotation paths part of the soak.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "tests/torture/support.hpp"

namespace paycore::torture {
namespace {

constexpr int threads_count = 4;
constexpr int auth_window_s = 30;

struct LoadCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> new_payments{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::mutex mutex;
  std::string first_failure;
  void fail(const std::string& what) {
    if (failures.fetch_add(1) == 0) {
      std::lock_guard lock(mutex);
      first_failure = what;
    }
  }
};

void load_thread(std::uint16_t port, const Signer who, int t, double rate_per_s, std::atomic<bool>& stop,
                 LoadCounters& counters) {
  std::mt19937_64 random(static_cast<std::uint64_t>(t) + 7);
  auto connection = std::make_unique<Connection>(port);
  std::vector<std::string> orders;
  auto call = [&](const std::string& method, const std::string& target, const std::string& body) {
    HttpResponse r;
    for (int attempt = 0; attempt < 2 && r.status == 0; ++attempt) {
      if (!connection->ok() || attempt > 0) {
        connection = std::make_unique<Connection>(port);
        counters.reconnects.fetch_add(1, std::memory_order_relaxed);
      }
      if (connection->send_all(Client::signed_request(who, method, target, body))) r = connection->read_response();
    }
    counters.requests.fetch_add(1, std::memory_order_relaxed);
    return r;
  };
  auto new_payment = [&] {
    const std::string id = "soak-" + std::to_string(t) + "-" + std::to_string(orders.size());
    const HttpResponse r = call("POST", "/v1/payments", payment_body(id, "payer" + std::to_string(t), 3));
    if (r.status != 201) counters.fail("new payment: " + std::to_string(r.status) + " " + r.body);
    orders.push_back(id);
    counters.new_payments.fetch_add(1, std::memory_order_relaxed);
  };
  for (int i = 0; i < 10; ++i) new_payment();
  const auto period = std::chrono::duration<double>(1.0 / rate_per_s);
  auto next = std::chrono::steady_clock::now();
  while (!stop.load(std::memory_order_relaxed)) {
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    std::this_thread::sleep_until(next);
    const std::uint64_t dice = random() % 100;
    const std::string& order = orders[random() % orders.size()];
    if (dice < 70) {
      const HttpResponse r = call("GET", "/v1/payments/" + order, "");
      if (r.status != 200) counters.fail("read payment: " + std::to_string(r.status) + " " + r.body);
    } else if (dice < 85) {
      const HttpResponse r = call("GET", "/v1/accounts/" + who.id, "");
      if (r.status != 200) counters.fail("read account: " + std::to_string(r.status) + " " + r.body);
    } else if (dice < 95) {
      const HttpResponse r = call("POST", "/v1/payments", payment_body(order, "payer" + std::to_string(t), 3));
      if (r.status != 201 || r.header("idempotent-replayed") != "true") {
        counters.fail("replay: " + std::to_string(r.status) + " " + r.body);
      }
    } else if (dice < 97) {
      new_payment();
    } else {
      Connection fresh(port);
      counters.requests.fetch_add(1, std::memory_order_relaxed);
      if (dice == 97) continue;  // connect and close without a word
      const Signer bad{who.id, "wrong-secret"};
      if (!fresh.send_all(Client::signed_request(bad, "GET", "/v1/payments/" + order, ""))) {
        counters.fail("bad-signature connection refused");
        continue;
      }
      const HttpResponse r = fresh.read_response();
      if (r.status != 401) counters.fail("bad signature: " + std::to_string(r.status) + " " + r.body);
    }
  }
}

TEST(Soak, RssAndDescriptorsStayBoundedUnderSteadyLoad) {
  const std::int64_t seconds = env_int("PAYCORE_SOAK_SECONDS", 600);
  const std::int64_t sample_ms = env_int("PAYCORE_SOAK_SAMPLE_MS", 5000);
  const double rate = static_cast<double>(env_int("PAYCORE_SOAK_RATE", 1000));
  const std::int64_t warmup_s = std::max<std::int64_t>(seconds / 5, std::min<std::int64_t>(2 * auth_window_s, seconds / 2));
  ScopedFixture fixture;
  // The nonce table is calloc'd and its pages are touched at random, so RSS climbs until the
  // whole configured table is resident (the default 4,194,304 entries: 128 MiB, reached after
  // ~150k requests). A smaller table gets there within the warm-up.
  ASSERT_TRUE(fixture.start({"--auth-window-s", std::to_string(auth_window_s), "--snapshot-every-s", "30",
                             "--nonce-entries-max", "262144",
                             "--wal-segment-bytes", std::to_string(4 << 20)}))
      << fixture.log();
  const pid_t pid = fixture.server->pid();
  std::vector<std::string> payers;
  for (int t = 0; t < threads_count; ++t) payers.push_back("payer" + std::to_string(t));
  {
    Client setup(fixture.server->port(), fixture.keys);
    ASSERT_TRUE(open_accounts(setup, dev_merchants(), payers, 1'000'000'000'000));
  }
  std::printf("soak: %lld s at %.0f requests/s from %d connections, samples every %lld ms, warm-up %lld s\n",
              static_cast<long long>(seconds), rate, threads_count, static_cast<long long>(sample_ms),
              static_cast<long long>(warmup_s));
  LoadCounters counters;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    const std::string& m = dev_merchants()[static_cast<std::size_t>(t)];
    threads.emplace_back(load_thread, fixture.server->port(), Signer{m, fixture.keys->find_principal(m)->secret}, t,
                         rate / threads_count, std::ref(stop), std::ref(counters));
  }
  const std::int64_t started = now_ms();
  ProcSample warm{};
  std::uint64_t warm_payments = 0;
  std::int64_t rss_max_after = 0, fds_max_after = 0, rss_bound_at_max = 0;
  bool warmed = false;
  std::printf("soak: %8s %10s %6s %10s %12s\n", "t_s", "rss_kb", "fds", "requests", "new_payments");
  while (now_ms() - started < seconds * 1000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sample_ms));
    const ProcSample s = sample_process(pid);
    ASSERT_GT(s.rss_kb, 0) << "the server is gone: " << fixture.log();
    const double t_s = static_cast<double>(now_ms() - started) / 1000.0;
    const std::uint64_t payments = counters.new_payments.load();
    std::printf("soak: %8.1f %10lld %6lld %10llu %12llu\n", t_s, static_cast<long long>(s.rss_kb),
                static_cast<long long>(s.fds), static_cast<unsigned long long>(counters.requests.load()),
                static_cast<unsigned long long>(payments));
    std::fflush(stdout);
    if (!warmed && t_s >= static_cast<double>(warmup_s)) {
      warmed = true;
      warm = s;
      warm_payments = payments;
    } else if (warmed) {
      const std::int64_t bound = warm.rss_kb + 16 * 1024 + 2 * static_cast<std::int64_t>(payments - warm_payments);
      EXPECT_LE(s.rss_kb, bound) << "RSS grew past the bound at " << t_s << " s";
      EXPECT_LE(s.fds, warm.fds + 8) << "descriptors grew at " << t_s << " s";
      if (s.rss_kb > rss_max_after) {
        rss_max_after = s.rss_kb;
        rss_bound_at_max = bound;
      }
      fds_max_after = std::max(fds_max_after, s.fds);
    }
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed_s = static_cast<double>(now_ms() - started) / 1000.0;
  std::printf("soak: done: %llu requests in %.0f s (%.0f/s), %llu new payments, %llu failures, %llu reconnects; "
              "after warm-up RSS %lld -> max %lld kB (bound %lld), fds %lld -> max %lld\n",
              static_cast<unsigned long long>(counters.requests.load()), elapsed_s,
              static_cast<double>(counters.requests.load()) / elapsed_s,
              static_cast<unsigned long long>(counters.new_payments.load()),
              static_cast<unsigned long long>(counters.failures.load()),
              static_cast<unsigned long long>(counters.reconnects.load()), static_cast<long long>(warm.rss_kb),
              static_cast<long long>(rss_max_after), static_cast<long long>(rss_bound_at_max),
              static_cast<long long>(warm.fds), static_cast<long long>(fds_max_after));
  EXPECT_TRUE(warmed) << "the run was shorter than its warm-up";
  EXPECT_EQ(counters.failures.load(), 0u) << counters.first_failure;
  EXPECT_EQ(::kill(pid, 0), 0);
}

}  // namespace
}  // namespace paycore::torture
