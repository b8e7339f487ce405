#include "net/archive_lookup.hpp"

#include "base/assert.hpp"
#include "base/histogram.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <chrono>

namespace paycore::net {
namespace {

constexpr std::uint32_t threads_max = 64;
constexpr std::uint32_t queue_jobs_limit = 1u << 20;

void bump(std::atomic<std::uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

StatusOr<std::unique_ptr<ArchiveLookup>> ArchiveLookup::create(const ArchiveReader& reader,
                                                               const ArchiveLookupConfig& config,
                                                               std::uint32_t clients) {
  if (config.threads == 0 || config.threads > threads_max) {
    return Status::invalid_argument("archive_read_threads must be 1..64");
  }
  if (config.queue_jobs_max == 0 || config.queue_jobs_max > queue_jobs_limit) {
    return Status::invalid_argument("archive lookup queue must hold 1..1048576 jobs");
  }
  if (clients == 0) return Status::invalid_argument("archive lookups need at least one client");
  std::unique_ptr<ArchiveLookup> lookup(new ArchiveLookup(reader, config));
  for (std::uint32_t i = 0; i < clients; ++i) {
    auto client = std::make_unique<Client>();
    client->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (client->event_fd < 0) return errno_status("archive lookup: eventfd", errno);
    lookup->clients_.push_back(std::move(client));
  }
  return lookup;
}

ArchiveLookup::ArchiveLookup(const ArchiveReader& reader, const ArchiveLookupConfig& config)
    : reader_(reader), config_(config) {}

ArchiveLookup::~ArchiveLookup() {
  stop();
  for (const auto& client : clients_) {
    if (client->event_fd >= 0) ::close(client->event_fd);
  }
}

void ArchiveLookup::start() {
  for (std::uint32_t i = 0; i < config_.threads; ++i) workers_.emplace_back([this] { work(); });
}

void ArchiveLookup::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  ready_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

bool ArchiveLookup::submit(std::uint32_t client, const ArchiveLookupJob& job) {
  {
    const std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < config_.queue_jobs_max) {
      queue_.push_back(Queued{client, job});
      ready_.notify_one();
      return true;
    }
  }
  bump(metrics_.queue_full);
  return false;
}

std::size_t ArchiveLookup::take(std::uint32_t client, std::vector<ArchiveLookupDone>* out) {
  Client& c = *clients_[client];
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t r = ::read(c.event_fd, &value, sizeof(value));
  out->clear();
  const std::lock_guard lock(c.mutex);
  out->swap(c.done);
  return out->size();
}

void ArchiveLookup::work() {
  while (true) {
    Queued queued;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      queued = std::move(queue_.front());
      queue_.pop_front();
    }
    deliver(queued.client, look_up(queued.job));
  }
}

namespace {

// The archive's best `limit` for the listing (in range, matching, not back in memory): walks
// past scan cuts, each walk bounded by payment_list_scan_max_max entries.
Status list_archived(const ArchiveReader& reader, PaymentListWork* work) {
  PaymentListQuery q = work->query;
  q.skip_order_ids = work->returned_order_ids;
  q.scan_max = payment_list_scan_max_max;
  const bool backward = q.cursor == PaymentListCursor::ending_before;
  work->archived.clear();
  while (true) {
    StatusOr<PaymentPage> page = reader.list_payments(q);
    if (!page.is_ok()) return page.status();
    // A backward walk's later pages are newer: they go in front.
    work->archived.insert(backward ? work->archived.begin() : work->archived.end(),
                          page->data.begin(), page->data.end());
    work->archived_more = page->has_more;
    if (!page->scan_cut) return Status::ok();
    q.limit -= static_cast<std::uint32_t>(page->data.size());
    if (q.limit == 0) return Status::ok();
    if (q.cursor == PaymentListCursor::none) q.cursor = PaymentListCursor::starting_after;
    q.cursor_position = *page->resume;
  }
}

}  // namespace

namespace {

// The archive's refunds of the payment; kNotFound when it does not hold the payment.
Status list_archived_refunds(const ArchiveReader& reader, const ArchiveLookupJob& job) {
  StatusOr<std::vector<RefundView>> refunds =
      reader.list_refunds(job.merchant_id.view(), job.list->refunds_order_id.view());
  if (!refunds.is_ok()) return refunds.status();
  job.list->archived_refunds = std::move(*refunds);
  return Status::ok();
}

}  // namespace

ArchiveLookupDone ArchiveLookup::walk_archive(const ArchiveLookupJob& job) {
  ArchiveLookupDone done;
  done.job = job;
  PAYCORE_ASSERT(job.list != nullptr);
  const Status status = job.purpose == ArchiveLookupPurpose::list_refunds
                            ? list_archived_refunds(reader_, job)
                            : list_archived(reader_, job.list);
  if (status.code() == StatusCode::kNotFound) {
    done.outcome = ArchiveLookupOutcome::not_found;
    bump(metrics_.not_found);
  } else if (status.is_ok()) {
    done.outcome = ArchiveLookupOutcome::found;
    bump(metrics_.found);
  } else {
    done.outcome = ArchiveLookupOutcome::error;
    done.error = status;
    bump(metrics_.errors);
  }
  return done;
}

ArchiveLookupDone ArchiveLookup::look_up(const ArchiveLookupJob& job) {
  if (job.purpose == ArchiveLookupPurpose::list_archive ||
      job.purpose == ArchiveLookupPurpose::list_refunds) {
    return walk_archive(job);
  }
  ArchiveLookupDone done;
  done.job = job;
  const auto start = std::chrono::steady_clock::now();
  StatusOr<std::optional<ArchivedPayment>> read =
      reader_.get_payment(job.merchant_id.view(), job.order_id.view());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const auto latency_us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  bump(metrics_.latency_us_log2[log2_bucket(static_cast<std::uint64_t>(latency_us),
                                            ArchiveLookupMetrics::histogram_buckets)]);
  if (!read.is_ok()) {
    done.outcome = ArchiveLookupOutcome::error;
    done.error = read.status();
    bump(metrics_.errors);
  } else if (!read->has_value()) {
    done.outcome = ArchiveLookupOutcome::not_found;
    bump(metrics_.not_found);
  } else {
    done.outcome = ArchiveLookupOutcome::found;
    done.payment = (*read)->payment;
    bump(metrics_.found);
  }
  return done;
}

void ArchiveLookup::deliver(std::uint32_t client, ArchiveLookupDone&& done) {
  Client& c = *clients_[client];
  {
    const std::lock_guard lock(c.mutex);
    c.done.push_back(std::move(done));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(c.event_fd, &one, sizeof(one));
}

}  // namespace paycore::net
