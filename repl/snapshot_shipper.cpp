#include "repl/snapshot_shipper.hpp"

#include <chrono>
#include <optional>
#include <vector>

#include "base/log.hpp"
#include "core/snapshot_store.hpp"
#include "repl/snapshot_objects.hpp"
#include "repl/stream_follower.hpp"

namespace paycore::repl {

SnapshotShipper::SnapshotShipper(const ShipperConfig& config, std::function<bool()> is_primary,
                                 std::atomic<std::uint64_t>* published_lsn)
    : config_(config), is_primary_(std::move(is_primary)), published_lsn_(published_lsn) {
  thread_ = std::thread([this] { run(); });
}

SnapshotShipper::~SnapshotShipper() {
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SnapshotShipper::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    if (is_primary_() && connect()) ship_newest();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(config_.interval_ms), [&] { return stopping_; });
  }
}

// Connects once (libnats reconnects by itself afterwards) and reads what the bucket holds.
bool SnapshotShipper::connect() {
  if (link_ != nullptr) return true;
  const auto refuse = [](const Status& s) {
    log_line(LogLevel::warn, "snapshot bucket: not reachable, will try again",
             {{"reason", s.to_string()}});
    return false;
  };
  StatusOr<std::unique_ptr<NatsLink>> link = NatsLink::connect(config_.link);
  if (!link.is_ok()) return refuse(link.status());
  jsCtx* js = (*link)->js();
  if (Status s = ensure_snapshot_bucket(js, config_.snapshot_bucket, config_.replicas);
      !s.is_ok()) {
    return refuse(s);
  }
  StatusOr<std::optional<PublishedSnapshot>> published =
      read_published_snapshot(js, config_.snapshot_bucket);
  if (!published.is_ok()) return refuse(published.status());
  if (*published) shipped_lsn_ = (*published)->lsn;
  link_ = std::move(*link);
  return true;
}

void SnapshotShipper::ship_newest() {
  const std::vector<SnapshotFile> local = list_snapshots(config_.snapshots_dir);
  if (local.empty()) return;
  const SnapshotFile& newest = local.back();
  if (newest.lsn <= shipped_lsn_ || newest.lsn == skipped_lsn_) return;
  StatusOr<std::uint64_t> chain = record_checksum(link_->js(), config_.log_stream, newest.lsn);
  if (!chain.is_ok()) {
    if (chain.status().code() == StatusCode::kNotFound) skipped_lsn_ = newest.lsn;
    log_line(LogLevel::warn, "snapshot not published: its record is not in the log stream",
             {{"lsn", std::to_string(newest.lsn)}, {"reason", chain.status().to_string()}});
    return;
  }
  StatusOr<PublishedSnapshot> published = publish_snapshot_file(
      link_->js(), config_.snapshot_bucket, newest.path, newest.lsn, *chain);
  if (!published.is_ok()) {
    log_line(LogLevel::warn, "snapshot not published, will try again",
             {{"lsn", std::to_string(newest.lsn)}, {"reason", published.status().to_string()}});
    return;
  }
  shipped_lsn_ = newest.lsn;
  published_lsn_->store(newest.lsn, std::memory_order_relaxed);
  log_line(LogLevel::info, "snapshot published to the snapshot bucket",
           {{"lsn", std::to_string(newest.lsn)},
            {"bytes", std::to_string(published->size_bytes)},
            {"chunks", std::to_string(published->chunks)}});
}

}  // namespace paycore::repl
