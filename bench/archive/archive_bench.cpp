// archive_bench: the store measurement of issue 12 ("measure both on the workload below and say
// why you chose one"). Not a Google Benchmark: the workload has phases that must run in order
// against files on disk (load while reading, then cold and warm reads), and each phase is its
// own bounded run so that a 10M-payment measurement is several short processes.
//
//   archive_bench load --store rocksdb|lmdb --dir D --first N0 --count N --batch B
//   archive_bench read --store rocksdb|lmdb --dir D --payments N [--cold]
//
// The payments are generated from their index alone (generate()), so a read run knows every
// key the load runs wrote without storing a list of them. Results are printed one per line as
// `name value unit`; docs/archive-store.md has the figures and the commands.
#include <CLI/CLI.hpp>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/assert.hpp"
#include "bench/archive/record.hpp"
#include "bench/archive/stores.hpp"

namespace paycore::archive {

[[noreturn]] void fail_stop(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "archive_bench: %.*s failed: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::exit(2);
}

namespace {

using Clock = std::chrono::steady_clock;

// core/model.hpp's PaymentStatus values, repeated here so the bench does not include core/.
constexpr std::uint8_t kPaid = 2;
constexpr std::uint8_t kCompleted = 4;
constexpr std::uint8_t kCancelled = 5;
constexpr std::uint8_t kFailed = 6;
constexpr std::uint8_t kRefunded = 7;

constexpr std::int64_t kEpochUs = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z

/// splitmix64's finalizer: a bijection on 64 bits, so distinct inputs give distinct outputs.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// The workload's shape: how many merchants share the payments, and how the listing index is
/// valued (a 2-byte ListEntry, or the whole record so a page needs no point reads).
struct Shape {
  std::uint64_t merchants_count = 1000;
  bool list_holds_record = false;
};

/// Payment `index` of the workload, with its refunds (0, 1 or 2).
struct Generated {
  PaymentRecord payment;
  RefundRecord refunds[2];
  std::uint32_t refunds_count;
};

std::string order_id_of(std::uint64_t index) {
  char text[24];
  std::snprintf(text, sizeof text, "ord_%016llx",
                static_cast<unsigned long long>(mix(index ^ 0x5bd1e995ULL)));
  return text;
}

std::uint64_t merchant_of(std::uint64_t index, const Shape& shape) {
  return 1 + mix(index) % shape.merchants_count;
}

// Status mix of an archive (cold = can no longer change, or older than the window):
// 80% completed, 7% cancelled, 6% failed, 4% refunded, 3% paid and past the window.
std::uint8_t status_of(std::uint64_t hash) {
  const std::uint64_t bucket = (hash >> 8) % 100;
  if (bucket < 80) return kCompleted;
  if (bucket < 87) return kCancelled;
  if (bucket < 93) return kFailed;
  if (bucket < 97) return kRefunded;
  return kPaid;
}

Generated generate(std::uint64_t index, const Shape& shape) {
  const std::uint64_t hash = mix(index);
  Generated out{};
  PaymentRecord& p = out.payment;
  p.format_version = kFormatVersion;
  p.status = status_of(hash);
  p.channel = static_cast<std::uint8_t>(1 + (hash >> 16) % 4);
  std::memcpy(p.currency, "CNY", 4);
  p.merchant_id = merchant_of(index, shape);
  p.amount_minor = static_cast<std::int64_t>(100 + (hash >> 24) % 100'000);
  // About 1,000 payments a second, each up to 5 s out of order (they go cold out of order).
  p.created_at_us = kEpochUs + static_cast<std::int64_t>(index) * 1000 -
                    static_cast<std::int64_t>((hash >> 32) % 5'000'000);
  p.updated_at_us = p.created_at_us + 60'000'000;
  const std::string order_id = order_id_of(index);
  p.order_id_bytes = static_cast<std::uint8_t>(order_id.size());
  std::memcpy(p.order_id, order_id.data(), order_id.size());
  std::snprintf(p.channel_txn_id, sizeof p.channel_txn_id, "ch_%020llu",
                static_cast<unsigned long long>(hash >> 1));
  const bool partial = p.status == kCompleted && (hash >> 40) % 20 == 0;
  out.refunds_count = p.status == kRefunded ? 1 + static_cast<std::uint32_t>((hash >> 44) % 2)
                      : partial              ? 1
                                             : 0;
  for (std::uint32_t seq = 0; seq < out.refunds_count; ++seq) {
    RefundRecord& r = out.refunds[seq];
    r.format_version = kFormatVersion;
    r.status = 2;  // succeeded
    r.refund_seq = seq;
    r.amount_minor = p.status == kRefunded ? p.amount_minor / out.refunds_count : p.amount_minor / 4;
    r.created_at_us = p.created_at_us + 3'600'000'000LL * (seq + 1);
    std::snprintf(r.request_id, sizeof r.request_id, "rfd_%s_%u", order_id.c_str() + 4, seq);
    r.checksum = record_checksum(r);
    p.refunded_minor += r.amount_minor;
  }
  p.refunds_count = out.refunds_count;
  p.checksum = record_checksum(p);
  return out;
}

std::string_view bytes_of(const auto& record) {
  return {reinterpret_cast<const char*>(&record), sizeof record};
}

/// Appends the puts of one payment; returns the logical bytes (keys + values) they carry.
std::uint64_t append_puts(const Generated& g, const Shape& shape, std::vector<Put>& puts) {
  const PaymentRecord& p = g.payment;
  const std::string_view order_id(p.order_id, p.order_id_bytes);
  std::uint64_t bytes = 0;
  puts.push_back({payment_key(p.merchant_id, order_id), std::string(bytes_of(p))});
  const ListEntry entry{p.status, p.channel};
  puts.push_back({list_key(p.merchant_id, p.created_at_us, order_id),
                  shape.list_holds_record ? std::string(bytes_of(p))
                                          : std::string(bytes_of(entry))});
  for (std::uint32_t seq = 0; seq < g.refunds_count; ++seq) {
    puts.push_back({refund_key(p.merchant_id, order_id, seq), std::string(bytes_of(g.refunds[seq]))});
  }
  for (std::size_t i = puts.size() - 2 - g.refunds_count; i < puts.size(); ++i) {
    bytes += puts[i].key.size() + puts[i].value.size();
  }
  return bytes;
}

/// Checks that `value` is payment `index`'s record, byte for byte.
void check_payment(std::string_view value, const Generated& expected) {
  PAYCORE_ASSERT_EQ(value.size(), sizeof(PaymentRecord));
  PaymentRecord got{};
  std::memcpy(&got, value.data(), sizeof got);
  PAYCORE_ASSERT_EQ(got.checksum, record_checksum(got));
  PAYCORE_ASSERT_EQ(std::memcmp(&got, &expected.payment, sizeof got), 0);
}

/// Latency samples in nanoseconds; percentiles by sorting (runs are bounded, so is the vector).
struct Samples {
  std::vector<std::uint64_t> ns;
  void add(Clock::duration d) {
    ns.push_back(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
  }
  void print(const char* name) {
    if (ns.empty()) {
      std::printf("%s count 0\n", name);
      return;
    }
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) {
      return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ns.size())))]) /
             1000.0;
    };
    std::printf("%s count %zu p50_us %.1f p90_us %.1f p99_us %.1f p999_us %.1f max_us %.1f\n",
                name, ns.size(), at(0.50), at(0.90), at(0.99), at(0.999),
                static_cast<double>(ns.back()) / 1000.0);
  }
};

std::uint64_t proc_field(const char* path, const char* field) {
  std::ifstream in(path);
  std::string line;
  const std::size_t field_bytes = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, field_bytes, field) == 0) {
      return std::stoull(line.substr(field_bytes));
    }
  }
  return 0;
}

void print_memory(const char* when) {
  std::printf("%s rss_kib %llu hwm_kib %llu rss_anon_kib %llu rss_file_kib %llu\n", when,
              static_cast<unsigned long long>(proc_field("/proc/self/status", "VmRSS:")),
              static_cast<unsigned long long>(proc_field("/proc/self/status", "VmHWM:")),
              static_cast<unsigned long long>(proc_field("/proc/self/status", "RssAnon:")),
              static_cast<unsigned long long>(proc_field("/proc/self/status", "RssFile:")));
}

/// Bytes written to the block device that holds `dir` (/proc/diskstats, sectors of 512 bytes).
/// The device is shared: other processes' writes count too, so runs are made under the lock.
std::uint64_t device_write_bytes(const std::string& dir) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) fail_stop("stat", dir);
  std::ifstream in("/proc/diskstats");
  unsigned major_id = 0;
  unsigned minor_id = 0;
  std::string name;
  while (in >> major_id >> minor_id >> name) {
    std::uint64_t fields[7] = {};
    for (std::uint64_t& field : fields) in >> field;  // reads .. sectors written is the 7th
    std::string rest;
    std::getline(in, rest);
    if (major_id == major(st.st_dev) && minor_id == minor(st.st_dev)) return fields[6] * 512;
  }
  fail_stop("/proc/diskstats", "no line for the data directory's device");
}

/// Bytes allocated on disk under `dir` (st_blocks, so sparse files count what they use).
std::uint64_t disk_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st{};
    if (::stat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

std::unique_ptr<Store> open_store(const StoreOptions& options) {
  if (options.kind == "rocksdb") return open_rocksdb(options);
  if (options.kind == "lmdb") return open_lmdb(options);
  fail_stop("--store", "must be rocksdb or lmdb");
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// load: one writer archiving in batches, one reader doing paced random point reads.

struct LoadOptions {
  std::uint64_t first_index = 0;
  std::uint64_t payments_count = 1'000'000;
  std::uint64_t batch_payments = 5000;
  std::uint64_t reader_reads_per_s = 5000;
  double time_limit_s = 420;
  double settle_limit_s = 120;
};

// The reader thread: paced random point reads of what is already durable, each checked
// byte for byte, until `stop`.
void read_paced(Store& store, const Shape& shape, const LoadOptions& load,
                const std::atomic<std::uint64_t>& durable_end, const std::atomic<bool>& stop,
                Samples& samples) {
  auto reader = store.make_reader();
  std::mt19937_64 rng(42);
  std::string value;
  const auto period = std::chrono::nanoseconds(1'000'000'000 / load.reader_reads_per_s);
  auto next = Clock::now();
  while (!stop.load(std::memory_order_relaxed)) {
    const std::uint64_t end = durable_end.load(std::memory_order_acquire);
    if (end == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    const Generated expected = generate(rng() % end, shape);
    const auto start = Clock::now();
    reader->begin_view();
    const bool found = reader->get(
        payment_key(expected.payment.merchant_id,
                    std::string_view(expected.payment.order_id, expected.payment.order_id_bytes)),
        value);
    reader->end_view();
    samples.add(Clock::now() - start);
    PAYCORE_ASSERT(found);
    check_payment(value, expected);
    next += period;
    std::this_thread::sleep_until(next);
  }
}

// What the disk wrote against what was archived (see the comment at the call).
void print_write_amplification(std::uint64_t logical_bytes, std::uint64_t process_bytes,
                               std::uint64_t device_bytes) {
  const auto amplification = [&](std::uint64_t bytes) {
    return static_cast<double>(bytes) / static_cast<double>(logical_bytes);
  };
  std::printf("logical_bytes %llu process_write_bytes %llu (x%.2f) device_write_bytes %llu "
              "device_write_amplification %.2f\n",
              static_cast<unsigned long long>(logical_bytes),
              static_cast<unsigned long long>(process_bytes), amplification(process_bytes),
              static_cast<unsigned long long>(device_bytes), amplification(device_bytes));
}

int run_load(const StoreOptions& store_options, const Shape& shape, const LoadOptions& load) {
  const std::uint64_t write_bytes_before = proc_field("/proc/self/io", "write_bytes:");
  auto store = open_store(store_options);
  const std::uint64_t device_bytes_before = device_write_bytes(store_options.dir);
  std::printf("durability %s\n", store->durability().c_str());
  std::atomic<std::uint64_t> durable_end{load.first_index};
  std::atomic<bool> stop{false};
  Samples read_samples;
  std::thread reader_thread(
      [&] { read_paced(*store, shape, load, durable_end, stop, read_samples); });

  Samples commit_samples;
  std::vector<Put> puts;
  puts.reserve(load.batch_payments * 4);
  std::uint64_t logical_bytes = 0;
  std::uint64_t written = 0;
  const auto start = Clock::now();
  while (written < load.payments_count && seconds_since(start) < load.time_limit_s) {
    puts.clear();
    const std::uint64_t batch = std::min(load.batch_payments, load.payments_count - written);
    const std::uint64_t base = load.first_index + written;
    for (std::uint64_t i = 0; i < batch; ++i) {
      logical_bytes += append_puts(generate(base + i, shape), shape, puts);
    }
    const auto commit_start = Clock::now();
    store->write_batch(puts);
    commit_samples.add(Clock::now() - commit_start);
    written += batch;
    durable_end.store(base + batch, std::memory_order_release);
  }
  const double elapsed_s = seconds_since(start);
  stop.store(true);
  reader_thread.join();
  const std::uint64_t write_bytes = proc_field("/proc/self/io", "write_bytes:") - write_bytes_before;
  ::sync();
  const std::uint64_t device_bytes = device_write_bytes(store_options.dir) - device_bytes_before;

  std::printf("archived %llu payments (indexes %llu..%llu) in %.1f s%s\n",
              static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(load.first_index),
              static_cast<unsigned long long>(load.first_index + written),
              elapsed_s, written < load.payments_count ? " (STOPPED AT THE TIME LIMIT)" : "");
  std::printf("write_throughput %.0f payments/s\n", static_cast<double>(written) / elapsed_s);
  commit_samples.print("batch_commit");
  read_samples.print("concurrent_point_read");
  // /proc/self/io's write_bytes counts what the process handed to the page cache (LMDB's pwrite
  // of a page already dirty counts again); the device's sectors are what reached the disk.
  print_write_amplification(logical_bytes, write_bytes, device_bytes);
  print_memory("after_load");
  std::printf("%s", store->describe().c_str());
  const double waited_s = store->wait_for_background(load.settle_limit_s);
  ::sync();
  const std::uint64_t settled_bytes = device_write_bytes(store_options.dir) - device_bytes_before;
  std::printf("settled_after_s %.1f device_write_bytes %llu device_write_amplification %.2f\n",
              waited_s, static_cast<unsigned long long>(settled_bytes),
              static_cast<double>(settled_bytes) / static_cast<double>(logical_bytes));
  store.reset();
  std::printf("disk_bytes %llu\n", static_cast<unsigned long long>(disk_bytes(store_options.dir)));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// read: point reads, listing pages, refunds, each cold (caches dropped, store reopened) and warm.

/// A listing request (docs/api.md GET /v1/payments), for one merchant, newest first.
struct ListQuery {
  std::uint64_t merchant_id = 0;
  std::size_t limit = 100;
  std::string starting_after;  // an order id, or empty
  std::string ending_before;   // an order id, or empty
  std::uint8_t status = 0;     // 0: any
  std::uint8_t channel = 0;    // 0: any
  std::int64_t created_gte_us = 0;
  std::int64_t created_lt_us = 0;       // 0: no bound
  std::size_t scan_entries_max = 10000;  // a limit on everything: a page stops here
};

struct ListResult {
  std::size_t returned = 0;
  std::size_t scanned = 0;
  bool scan_limit_reached = false;
};

ListResult list_page(Reader& reader, const ListQuery& q) {
  ListResult result;
  std::string value;
  std::vector<std::string> order_ids;
  std::vector<std::string> values;
  const std::string merchant_prefix = list_merchant_prefix(q.merchant_id);
  auto visit = [&](std::string_view key, std::string_view entry) {
    if (key.substr(0, merchant_prefix.size()) != merchant_prefix) return false;
    const std::int64_t created = list_key_created_at_us(key);
    if (q.created_gte_us != 0 && created < q.created_gte_us) return false;
    if (q.created_lt_us != 0 && created >= q.created_lt_us) return true;  // ending_before side
    if (++result.scanned > q.scan_entries_max) {
      result.scan_limit_reached = true;
      return false;
    }
    const std::uint8_t status = static_cast<std::uint8_t>(entry[offsetof(ListEntry, status)]);
    const std::uint8_t channel = static_cast<std::uint8_t>(entry[offsetof(ListEntry, channel)]);
    const bool whole = entry.size() == sizeof(PaymentRecord);
    const std::uint8_t s = whole ? static_cast<std::uint8_t>(entry[offsetof(PaymentRecord, status)]) : status;
    const std::uint8_t c = whole ? static_cast<std::uint8_t>(entry[offsetof(PaymentRecord, channel)]) : channel;
    if ((q.status != 0 && s != q.status) || (q.channel != 0 && c != q.channel)) return true;
    order_ids.emplace_back(key.substr(kListKeyOrderIdOffset));
    if (whole) values.emplace_back(entry);
    return order_ids.size() < q.limit;
  };
  reader.begin_view();
  const std::string& cursor = q.starting_after.empty() ? q.ending_before : q.starting_after;
  std::string from;
  if (!cursor.empty()) {
    // A cursor is an order id: its record gives the created_at_us that places it in 'L'.
    const bool found = reader.get(payment_key(q.merchant_id, cursor), value);
    PAYCORE_ASSERT(found);
    PaymentRecord record{};
    std::memcpy(&record, value.data(), sizeof record);
    from = list_key(q.merchant_id, record.created_at_us, cursor);
  } else if (q.created_lt_us != 0) {
    from = list_key_prefix(q.merchant_id, q.created_lt_us - 1);
  } else {
    from = merchant_prefix;
  }
  if (!q.ending_before.empty()) {
    reader.scan_backward(from, visit);
    std::reverse(order_ids.begin(), order_ids.end());
  } else {
    reader.scan_forward(from, [&](std::string_view key, std::string_view entry) {
      return key == from ? true : visit(key, entry);
    });
  }
  if (values.empty()) {
    for (const std::string& order_id : order_ids) {
      const bool found = reader.get(payment_key(q.merchant_id, order_id), value);
      PAYCORE_ASSERT(found);
      values.push_back(value);
    }
  }
  reader.end_view();
  for (const std::string& v : values) {
    PaymentRecord record{};
    std::memcpy(&record, v.data(), sizeof record);
    PAYCORE_ASSERT_EQ(record.checksum, record_checksum(record));
    PAYCORE_ASSERT_EQ(record.merchant_id, q.merchant_id);
  }
  result.returned = values.size();
  return result;
}

struct ReadOptions {
  std::uint64_t payments_count = 1'000'000;
  std::uint64_t point_reads = 100'000;
  std::uint64_t cold_point_reads = 5'000;
  std::uint64_t pages = 2'000;
  std::uint64_t cold_pages = 200;
  bool cold = false;
};

enum class Op { point, list_top, list_top_status, list_after, list_after_status, list_before, refunds };

const char* op_name(Op op) {
  switch (op) {
    case Op::point: return "point_read";
    case Op::list_top: return "list_100_newest";
    case Op::list_top_status: return "list_100_newest_status_refunded";
    case Op::list_after: return "list_100_starting_after";
    case Op::list_after_status: return "list_100_starting_after_status_refunded";
    case Op::list_before: return "list_100_ending_before";
    case Op::refunds: return "refunds_of_payment";
  }
  return "?";
}

/// One operation of kind `op` on a random payment or merchant; returns entries scanned.
std::size_t run_op(Op op, Reader& reader, const Shape& shape, std::uint64_t payments_count,
                   std::mt19937_64& rng, std::string& value) {
  std::uint64_t index = rng() % payments_count;
  if (op == Op::refunds) {
    while (generate(index, shape).refunds_count == 0) index = rng() % payments_count;
  }
  const Generated g = generate(index, shape);
  const std::string_view order_id(g.payment.order_id, g.payment.order_id_bytes);
  if (op == Op::point) {
    reader.begin_view();
    const bool found = reader.get(payment_key(g.payment.merchant_id, order_id), value);
    reader.end_view();
    PAYCORE_ASSERT(found);
    check_payment(value, g);
    return 1;
  }
  if (op == Op::refunds) {
    const std::string prefix = refund_key_prefix(g.payment.merchant_id, order_id);
    std::uint32_t seen = 0;
    reader.begin_view();
    reader.scan_forward(prefix, [&](std::string_view key, std::string_view v) {
      if (key.substr(0, prefix.size()) != prefix) return false;
      PAYCORE_ASSERT_EQ(v.size(), sizeof(RefundRecord));
      ++seen;
      return true;
    });
    reader.end_view();
    PAYCORE_ASSERT_EQ(seen, g.refunds_count);
    return seen;
  }
  ListQuery q;
  q.merchant_id = g.payment.merchant_id;
  if (op == Op::list_after || op == Op::list_after_status) q.starting_after = order_id;
  if (op == Op::list_before) q.ending_before = order_id;
  if (op == Op::list_top_status || op == Op::list_after_status) q.status = kRefunded;
  return list_page(reader, q).scanned;
}

void drop_caches() {
  ::sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  out << "3\n";
  out.flush();
  if (!out) fail_stop("echo 3 > /proc/sys/vm/drop_caches", "not permitted");
}

void measure(const char* phase, Op op, Reader& reader, const Shape& shape,
             std::uint64_t payments_count, std::uint64_t count, std::mt19937_64& rng) {
  Samples samples;
  std::string value;
  std::uint64_t scanned = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto start = Clock::now();
    scanned += run_op(op, reader, shape, payments_count, rng, value);
    samples.add(Clock::now() - start);
  }
  const std::string name = std::string(phase) + "_" + op_name(op);
  samples.print(name.c_str());
  std::printf("%s mean_entries_scanned %.1f\n", name.c_str(),
              static_cast<double>(scanned) / static_cast<double>(count));
}

int run_read(const StoreOptions& store_options, const Shape& shape, const ReadOptions& read) {
  std::mt19937_64 rng(7);
  const Op ops[] = {Op::point, Op::list_top, Op::list_top_status, Op::list_after,
                    Op::list_after_status, Op::list_before, Op::refunds};
  if (read.cold) {
    for (Op op : ops) {
      drop_caches();
      const auto open_start = Clock::now();
      auto store = open_store(store_options);
      auto reader = store->make_reader();
      std::printf("cold_open_ms %.1f\n", seconds_since(open_start) * 1000);
      const std::uint64_t count = op == Op::point || op == Op::refunds ? read.cold_point_reads
                                                                      : read.cold_pages;
      measure("cold", op, *reader, shape, read.payments_count, count, rng);
    }
  }
  auto store = open_store(store_options);
  auto reader = store->make_reader();
  std::printf("settings %s\n", store->durability().c_str());
  // Warm: every file read once through the page cache, then the measured operations.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(store_options.dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<char> buffer(1 << 20);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()))) {
    }
  }
  std::string value;
  for (std::uint64_t i = 0; i < read.point_reads; ++i) {
    run_op(Op::point, *reader, shape, read.payments_count, rng, value);  // fill the block cache
  }
  for (Op op : ops) {
    const std::uint64_t count = op == Op::point || op == Op::refunds ? read.point_reads : read.pages;
    measure("warm", op, *reader, shape, read.payments_count, count, rng);
  }
  print_memory("after_reads");
  std::printf("%s", store->describe().c_str());
  return 0;
}

}  // namespace
}  // namespace paycore::archive

int main(int argc, char** argv) {
  using namespace paycore::archive;
  CLI::App app{"archive_bench: RocksDB against LMDB on the cold-payment workload of issue 12"};
  app.require_subcommand(1);
  StoreOptions store_options;
  Shape shape;
  std::string list_value = "entry";
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--store", store_options.kind, "rocksdb or lmdb")->required();
    sub->add_option("--dir", store_options.dir, "data directory")->required();
    sub->add_option("--merchants", shape.merchants_count, "merchants sharing the payments");
    sub->add_option("--list-value", list_value, "entry (2 bytes) or record (the whole record)");
    sub->add_flag("--lmdb-no-readahead", store_options.lmdb_no_readahead, "open with MDB_NORDAHEAD");
    sub->add_option("--rocksdb-wal", store_options.rocksdb_wal, "1: WAL + sync; 0: flush per batch");
    sub->add_option("--block-cache-mib", store_options.block_cache_bytes, "rocksdb block cache")
        ->transform([](std::string s) { return std::to_string(std::stoull(s) << 20); });
  };
  LoadOptions load;
  CLI::App* load_cmd = app.add_subcommand("load", "archive payments [first, first+count)");
  add_common(load_cmd);
  load_cmd->add_option("--first", load.first_index);
  load_cmd->add_option("--count", load.payments_count);
  load_cmd->add_option("--batch", load.batch_payments)->check(CLI::Range(1, 100000));
  load_cmd->add_option("--reader-rate", load.reader_reads_per_s, "point reads/s")->check(CLI::Range(1, 1000000));
  load_cmd->add_option("--time-limit-s", load.time_limit_s, "stop archiving after this");
  load_cmd->add_option("--settle-limit-s", load.settle_limit_s, "wait for compaction at most");
  ReadOptions read;
  CLI::App* read_cmd = app.add_subcommand("read", "point reads, pages and refunds, cold and warm");
  add_common(read_cmd);
  read_cmd->add_option("--payments", read.payments_count, "payments archived: indexes [0, N)")
      ->check(CLI::Range(1ULL, 1ULL << 40));
  read_cmd->add_option("--points", read.point_reads);
  read_cmd->add_option("--pages", read.pages);
  read_cmd->add_option("--cold-points", read.cold_point_reads);
  read_cmd->add_option("--cold-pages", read.cold_pages);
  read_cmd->add_flag("--cold", read.cold, "drop the page cache and reopen before each cold op");
  CLI11_PARSE(app, argc, argv);
  if (list_value != "entry" && list_value != "record") fail_stop("--list-value", "entry or record");
  shape.list_holds_record = list_value == "record";
  return load_cmd->parsed() ? run_load(store_options, shape, load)
                            : run_read(store_options, shape, read);
}
