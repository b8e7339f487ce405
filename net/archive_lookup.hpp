#pragma once
// Archive lookups for the edge (issue 12; docs/design.md "Hot and cold"). The core never does
// I/O, so what it cannot answer from memory comes back to the I/O thread -- a GET or a command
// on an order the core's filter says may be
// archived (ResultCode::archive_check_needed) -- and the I/O thread finishes it by reading the
// archive here, off its own thread: a small pool of workers takes jobs from one bounded queue,
// reads ArchiveReader::get_payment (0.1-10 ms on disk), and hands each answer back to the I/O
// thread that asked, through that thread's completion queue and eventfd (registered in its
// epoll set, as the engine's result fd is). Workers only read the archive: the connections and
// slots named by a job's token are touched by their I/O thread alone.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/status.hpp"
#include "core/archive_port.hpp"
#include "core/command.hpp"
#include "core/engine.hpp"

namespace paycore::net {

/// What the I/O thread does with a lookup's answer.
enum class ArchiveLookupPurpose : std::uint8_t {
  read,     // GET /v1/payments/{order_id}: found -> 200 with the archived payment
  command,  // archive_check_needed: hand `command` in again with what was found
  // GET /v1/payments (net/io_thread_list.cpp), with `list`:
  list_cursor,   // the cursor (order_id) was not in memory: find its place in the archive
  list_archive,  // walk the archive for the page: fills list->archived, archived_more
  list_refunds,  // the payment's refunds: fills list->archived_refunds (not_found: no payment)
};

/// One lookup: which payment, and what the asking thread needs to finish the request.
struct ArchiveLookupJob {
  std::uint64_t token = 0;  // the request's AnswerToken, packed
  ArchiveLookupPurpose purpose = ArchiveLookupPurpose::read;
  Id merchant_id;
  Id order_id;
  Command command;  // purpose command: the command to hand in again (rebuilt by the edge)
  // list_*: the listing's work, lent to the worker until the answer comes back.
  PaymentListWork* list = nullptr;
};

enum class ArchiveLookupOutcome : std::uint8_t { found, not_found, error };

/// A finished lookup, as handed back to the thread that submitted it.
struct ArchiveLookupDone {
  ArchiveLookupJob job;
  ArchiveLookupOutcome outcome = ArchiveLookupOutcome::error;
  PaymentView payment;  // outcome found: the payment as the archive holds it
  Status error;         // outcome error: the reader's status
};

/// Counters for /metrics, written by workers and submitters (relaxed atomics, any reader).
struct ArchiveLookupMetrics {
  static constexpr std::size_t histogram_buckets = EngineMetrics::histogram_buckets;
  std::atomic<std::uint64_t> found{0};
  std::atomic<std::uint64_t> not_found{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> queue_full{0};  // refused at submit: answered 503 at once
  // Time a read took in the reader, in microseconds; bucket i: < 2^i us.
  std::atomic<std::uint64_t> latency_us_log2[histogram_buckets]{};
};

/// Limits of the service; validated by ArchiveLookup::create.
struct ArchiveLookupConfig {
  std::uint32_t threads = 2;           // workers reading the archive (1..64)
  std::uint32_t queue_jobs_max = 4096;  // jobs waiting for a worker (1..2^20)
};

/// The pool of archive readers shared by every I/O thread (`clients` of them, 0..clients-1).
/// submit() and take() are called by client threads, never by a worker. Lifetime: stop()
/// (or the destructor) joins the workers after their current read; jobs still queued are
/// dropped unanswered (their connections are being closed by then).
class ArchiveLookup {
 public:
  /// A service over `reader` (which must outlive it) for `clients` threads; workers start at
  /// start(). invalid_argument if a limit is out of range, an io error if an eventfd fails.
  static StatusOr<std::unique_ptr<ArchiveLookup>> create(const ArchiveReader& reader,
                                                         const ArchiveLookupConfig& config,
                                                         std::uint32_t clients);
  ~ArchiveLookup();
  ArchiveLookup(const ArchiveLookup&) = delete;
  ArchiveLookup& operator=(const ArchiveLookup&) = delete;

  void start();
  /// Joins the workers (each after its current read); idempotent.
  void stop();

  /// Queues `job` for `client`; false (counted as queue_full) when the queue holds
  /// queue_jobs_max jobs or the service is stopped: the caller answers 503 at once.
  bool submit(std::uint32_t client, const ArchiveLookupJob& job);
  /// Readable (EPOLLIN) when `client` has finished lookups to take.
  int completion_fd(std::uint32_t client) const { return clients_[client]->event_fd; }
  /// Moves every finished lookup of `client` to `out` (cleared first); returns how many.
  std::size_t take(std::uint32_t client, std::vector<ArchiveLookupDone>* out);

  const ArchiveLookupMetrics& metrics() const { return metrics_; }

 private:
  struct Client {
    int event_fd = -1;
    std::mutex mutex;
    std::vector<ArchiveLookupDone> done;
  };
  struct Queued {
    std::uint32_t client = 0;
    ArchiveLookupJob job;
  };

  ArchiveLookup(const ArchiveReader& reader, const ArchiveLookupConfig& config);
  void work();
  ArchiveLookupDone look_up(const ArchiveLookupJob& job);
  ArchiveLookupDone walk_archive(const ArchiveLookupJob& job);
  void deliver(std::uint32_t client, ArchiveLookupDone&& done);

  const ArchiveReader& reader_;
  ArchiveLookupConfig config_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Queued> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  ArchiveLookupMetrics metrics_;
};

}  // namespace paycore::net
