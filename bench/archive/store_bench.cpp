// The built archive store (archive/store.hpp) on its two read paths of issue 12: a point read
// of a cold payment (`GET /v1/payments/{order_id}`, and the fetch before a refund of a cold
// payment) and a listing page of 100 (the store's half of `GET /v1/payments`). Phases:
//   1. write N payments (1,000 merchants, random-looking order ids, ~1,000 payments a second of
//      created_at) in jobs of 2,048, each one synced batch as the archiver writes them;
//   2. warm: 100,000 random point reads and 2,000 pages after one pass over the reads;
//   3. cold (with --cold): after `sync; echo 3 > /proc/sys/vm/drop_caches` and a reopen,
//      5,000 point reads and 200 pages.
// Prints write rate and p50/p99/max latencies in microseconds.
//
//   build/release/bench/archive/archive_store_bench --payments 1000000 [--cold] [--dir DIR]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "archive/store.hpp"
#include "base/hex.hpp"

namespace paycore {
namespace {

constexpr std::uint64_t merchants = 1000;
constexpr std::int64_t t0_us = 1'795'651'200'000'000;

std::string merchant_of(std::uint64_t i) { return "m_" + std::to_string(1 + (i * 7919) % merchants); }
std::string order_of(std::uint64_t i) { return "ord_" + std::to_string(i * 0x9E3779B97F4A7C15ull); }

ArchivedPayment payment(std::uint64_t i) {
  ArchivedPayment a;
  PaymentView& p = a.payment;
  p.merchant_id = Id::of(merchant_of(i));
  p.order_id = Id::of(order_of(i));
  p.request_id = Id::of("req_" + std::to_string(i));
  p.channel = Id::of("alipay");
  p.channel_txn_id = Id::of("txn_" + std::to_string(i));
  p.amount = 1000 + static_cast<Amount>(i % 9000);
  p.currency = *currency_from_code("CNY");
  p.created_at_us = t0_us + static_cast<std::int64_t>(i) * 1000;
  p.updated_at_us = p.created_at_us + 60'000'000;
  p.status = PaymentStatus::completed;
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print_latencies(const char* what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))];
  };
  std::printf("  %-28s n=%-7zu p50 %8.1f  p99 %8.1f  max %8.1f us\n", what, us.size(), at(0.5), at(0.99),
              us.back());
}

std::unique_ptr<ArchiveStore> open_store(const std::string& dir) {
  ArchiveOptions options;
  options.dir = dir;
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  if (!store.is_ok()) {
    std::fprintf(stderr, "archive_store_bench: %s\n", store.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*store);
}

void write_all(ArchiveStore& store, std::uint64_t count) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<ArchivedPayment> job;
  ArchivePosition position;
  for (std::uint64_t i = 0; i < count; i += 2048) {
    job.clear();
    for (std::uint64_t k = i; k < std::min(count, i + 2048); ++k) job.push_back(payment(k));
    position.jobs += 1;
    position.lsn += 1;
    position.rows_end = static_cast<std::uint32_t>(i + job.size());
    if (const Status s = store.write(job, position); !s.is_ok()) {
      std::fprintf(stderr, "archive_store_bench: %s\n", s.to_string().c_str());
      std::exit(1);
    }
  }
  const double s = seconds_since(start);
  std::printf("  write: %llu payments in %.1f s = %.0f payments/s (synced jobs of 2,048)\n",
              static_cast<unsigned long long>(count), s, static_cast<double>(count) / s);
}

std::vector<double> point_reads(const ArchiveStore& store, std::uint64_t count, int reads, std::mt19937_64& rng) {
  std::vector<double> us;
  for (int r = 0; r < reads; ++r) {
    const std::uint64_t i = rng() % count;
    const auto start = std::chrono::steady_clock::now();
    const auto found = store.get_payment(merchant_of(i), order_of(i));
    us.push_back(seconds_since(start) * 1e6);
    if (!found.is_ok() || !found->has_value()) {
      std::fprintf(stderr, "archive_store_bench: payment %llu not found\n", static_cast<unsigned long long>(i));
      std::exit(1);
    }
  }
  return us;
}

std::vector<double> pages(const ArchiveStore& store, int count, std::mt19937_64& rng) {
  std::vector<double> us;
  for (int r = 0; r < count; ++r) {
    PaymentListQuery query;
    query.merchant_id = merchant_of(rng() % merchants);
    query.limit = 100;
    const auto start = std::chrono::steady_clock::now();
    const auto page = store.list_payments(query);
    us.push_back(seconds_since(start) * 1e6);
    if (!page.is_ok()) std::exit(1);
  }
  return us;
}

void drop_caches() {
  ::sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  out << "3\n";
  if (!out) std::fprintf(stderr, "archive_store_bench: cannot drop caches (not permitted)\n");
}

}  // namespace
}  // namespace paycore

int main(int argc, char** argv) {
  using namespace paycore;
  CLI::App app{"The archive store's writes, point reads and listing pages (issue 12)"};
  std::uint64_t count = 1'000'000;
  bool cold = false;
  std::string dir = "/tmp/paycore-archive-store-bench";
  app.add_option("--payments", count, "payments written");
  app.add_flag("--cold", cold, "also measure after dropping the page cache and reopening");
  app.add_option("--dir", dir, "store directory (removed first)");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(dir);
  std::mt19937_64 rng(1);
  std::printf("archive_store_bench: %llu payments, %s\n", static_cast<unsigned long long>(count), dir.c_str());
  {
    auto store = open_store(dir);
    write_all(*store, count);
    point_reads(*store, count, 100'000, rng);  // warms the block cache
    print_latencies("warm point read", point_reads(*store, count, 100'000, rng));
    print_latencies("warm page of 100", pages(*store, 2'000, rng));
  }
  if (cold) {
    drop_caches();
    auto store = open_store(dir);
    print_latencies("cold point read", point_reads(*store, count, 5'000, rng));
    print_latencies("cold page of 100", pages(*store, 200, rng));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
