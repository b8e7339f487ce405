#include "repl/cluster_member.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "base/log.hpp"
#include "base/time.hpp"
#include "repl/snapshot_shipper.hpp"

namespace paycore::repl {

StatusOr<std::unique_ptr<ClusterMember>> ClusterMember::join(const MemberConfig& config,
                                                             Engine& engine) {
  std::unique_ptr<ClusterMember> m(new ClusterMember(config, engine));
  m->config_.publisher.writes_until_ms = &m->writes_until_ms_;
  StatusOr<std::unique_ptr<Lease>> lease = Lease::open(config.link, config.lease);
  if (!lease.is_ok()) return lease.status();
  m->lease_ = std::move(*lease);
  StatusOr<std::unique_ptr<NatsLink>> link = NatsLink::connect(config.link);
  if (!link.is_ok()) return link.status();
  m->link_ = std::move(*link);
  if (Status s = ensure_stream(m->link_->js(), config.publisher.stream); !s.is_ok()) return s;
  StatusOr<std::unique_ptr<StreamFollower>> follower =
      StreamFollower::start(config.link, config.follower, engine.log_last_lsn(),
                            engine.log_last_checksum());
  if (follower.is_ok()) {
    m->follower_ = std::move(*follower);
    engine.attach_follower(m->follower_.get());
    log_line(LogLevel::info, "standby: following the log stream",
             {{"stream", config.follower.stream},
              {"from_sequence", std::to_string(m->follower_->first_sequence())},
              {"local_lsn", std::to_string(engine.log_last_lsn())}});
  } else if (follower.status().code() == StatusCode::kConflict) {
    if (Status s = m->start_as_primary(); !s.is_ok()) {
      return s.with_context(follower.status().message());
    }
  } else {
    return follower.status();
  }
  m->thread_ = std::thread([raw = m.get()] { raw->run(); });
  ShipperConfig shipper = config.snapshots;
  shipper.link = config.link;
  shipper.link.name += "-snapshots";
  shipper.snapshots_dir = engine.snapshots_dir();
  m->shipper_ = std::make_unique<SnapshotShipper>(
      shipper, [raw = m.get()] { return raw->primary() && !raw->must_stop(); },
      &engine.snapshot_published_lsn_metric());
  return m;
}

// The local log is ahead of the stream: only as the primary can this process go on, sending
// what the stream lacks (StreamPublisher's alignment refuses another history).
Status ClusterMember::start_as_primary() {
  // The lease may still name this process from before its crash: it is taken once its
  // revision has stood for the timeout. Another live holder renews it, and this fails.
  const std::int64_t deadline_ms = monotonic_ms() + 2 * config_.lease.timeout_ms + config_.heartbeat_ms;
  while (lease_->step(monotonic_ms()) != Lease::Step::held) {
    if (monotonic_ms() > deadline_ms) {
      return Status(StatusCode::kConflict, "another process holds the primary lease");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.heartbeat_ms));
  }
  note_lease_written();
  auto replay = [this](std::uint64_t from, std::uint64_t to,
                       FunctionRef<void(std::uint64_t, std::span<const std::byte>)> fn) {
    return engine_.replay_log_frames(from, to, fn);
  };
  if (Status s = start_writer({engine_.log_last_lsn(), engine_.log_last_checksum(), replay});
      !s.is_ok()) {
    lease_->release();
    return s;
  }
  engine_.attach_replica(publisher_.get());
  if (Status s = engine_.register_channels(); !s.is_ok()) return s;
  primary_ = true;
  log_line(LogLevel::info, "primary: the local log's tail was sent to the stream",
           {{"records", std::to_string(publisher_->alignment().tail_records_sent)}});
  return Status::ok();
}

ClusterMember::~ClusterMember() { stop(); }

void ClusterMember::stop() {
  {
    const std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  shipper_.reset();  // an upload under way is finished first
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_ != nullptr) lease_->release();
}

void ClusterMember::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    heartbeat(monotonic_ms());
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(config_.heartbeat_ms), [&] { return stopping_; });
  }
}

void ClusterMember::advertise(const std::string& url) {
  const std::lock_guard lock(url_mu_);
  advertised_ = lease_holder_value(config_.publisher.writer_id, url);
}

std::string ClusterMember::primary_url() const {
  const std::lock_guard lock(url_mu_);
  return primary_url_;
}

void ClusterMember::heartbeat(std::int64_t now) {
  // A standby that met a record not continuing its log can never catch up: it stops (and
  // does not hold on to a lease it could not use).
  if (!primary_ && engine_.metrics().follow_failed.load()) {
    engine_.cancel_promotion();
    lease_->release();
    follow_failed_ = true;
    return;
  }
  {
    const std::lock_guard lock(url_mu_);
    if (!advertised_.empty()) lease_->set_holder(std::exchange(advertised_, {}));
  }
  // A process whose log failed can neither write nor finish a promotion: it gives the lease
  // to a standby (and stops).
  if (engine_.metrics().read_only.load()) {
    engine_.cancel_promotion();
    lease_->release();
    lease_lost_ = true;
    return;
  }
  const Lease::Step step = lease_->step(now);
  if (step == Lease::Step::held) note_lease_written();
  {
    const std::lock_guard lock(url_mu_);
    primary_url_ = lease_holder_url(lease_->holder());
  }
  if (step == Lease::Step::lost) {
    engine_.cancel_promotion();
    // Promoted (even if this thread had not seen it yet) or about to be: it must stop.
    if (primary_ || engine_.metrics().promotions.load() > 0) lease_lost_ = true;
    promotion_asked_ = false;
    return;
  }
  // Promoted while the lease was being lost (make_primary ran as it went): must not write on.
  if (!lease_->held() && engine_.metrics().promotions.load() > 0) {
    lease_lost_ = true;
    return;
  }
  if (step != Lease::Step::held || primary_) return;
  if (engine_.metrics().promotions.load() > 0) {
    primary_ = true;
    follower_.reset();  // the core let go of it when it was promoted
    return;
  }
  if (promotion_failed_.exchange(false)) promotion_asked_ = false;
  if (!promotion_asked_) ask_promotion();
}

// How long after a lease write the primary still takes writes: the lease timeout less a margin
// for an append in flight (a standby takes the lease a full timeout after it first saw that
// write, on its own clock).
std::int64_t ClusterMember::write_window_ms() const {
  const std::int64_t timeout = config_.lease.timeout_ms;
  return timeout - std::max(2 * config_.heartbeat_ms, timeout / 4);
}

void ClusterMember::note_lease_written() {
  writes_until_ms_.store(lease_->renewed_ms() + write_window_ms(), std::memory_order_relaxed);
}

// Holding the lease: become the writer once the stream is applied as far as it goes now.
void ClusterMember::ask_promotion() {
  StatusOr<StreamPosition> position = read_position(link_->js(), config_.publisher.stream.name);
  if (!position.is_ok()) return;  // asked again at the next heartbeat
  promotion_asked_ = true;
  log_line(LogLevel::info, "holding the primary lease: catching up before writing",
           {{"through_sequence", std::to_string(position->last_sequence)}});
  engine_.request_promotion(position->last_sequence, [this](const Engine::PrimaryStart& start) {
    return make_primary(start);
  });
}

// On the core thread: the stream's writer from the local log's end. Null if the stream moved
// on meanwhile (the old primary still wrote): the leadership asks again.
ReplicaPort* ClusterMember::make_primary(const Engine::PrimaryStart& start) {
  if (lease_lost_.load()) return nullptr;
  if (Status s = start_writer(caught_up_log(start.last_lsn, start.last_checksum)); !s.is_ok()) {
    log_line(LogLevel::warn, "promotion deferred: " + s.to_string());
    promotion_failed_ = true;
    return nullptr;
  }
  return publisher_.get();
}

// The stream's writer from the end of `local` (publisher_).
Status ClusterMember::start_writer(const LocalLogView& local) {
  StatusOr<std::unique_ptr<StreamPublisher>> p =
      StreamPublisher::start(config_.link, config_.publisher, local);
  if (!p.is_ok()) return p.status();
  publisher_ = std::move(*p);
  return Status::ok();
}

}  // namespace paycore::repl
