#pragma once
// Who is primary: a lease in a JetStream key-value bucket (issue 14; docs/replication.md
// "Leadership"). The bucket PAYCORE_LEASE_<cluster> holds one key, `primary`, whose value
// names the holder ("writer=<16 hex> url=<base URL>"). Every write is a compare-and-set on
// the key's revision (kvStore_Create / kvStore_Update), so two processes never both believe
// they took it from the same revision.
//
// The holder renews it every heartbeat. Another process takes it only after it has watched
// the same revision for timeout_ms of its own clock: no clocks are compared between machines.
// The lease decides who tries to write; it is not what keeps writes safe: the log stream's
// expected-sequence check fences an old primary whatever the lease says.

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "repl/nats_link.hpp"

namespace paycore::repl {

struct LeaseConfig {
  std::string bucket;       // lease_bucket_name(cluster)
  std::string holder;       // this process's value: lease_holder_value(writer, url)
  int replicas = 1;         // copies of the bucket (3 with three NATS servers)
  std::int64_t timeout_ms = 3000;  // a revision unchanged this long may be taken
};

/// "PAYCORE_LEASE_<cluster>".
std::string lease_bucket_name(const std::string& cluster);
/// The value a holder writes: "writer=<16 hex> url=<url>".
std::string lease_holder_value(std::uint64_t writer_id, const std::string& url);
/// The url= part of a holder value ("" if none).
std::string lease_holder_url(const std::string& value);

class Lease {
 public:
  enum class Step : std::uint8_t {
    held,      // this process holds it (taken or renewed now)
    not_held,  // another process holds it, or it may not be taken yet
    lost,      // this process held it and another took it
  };

  /// Binds to (or creates) the bucket. Errors: kUnavailable, the link's errors.
  static StatusOr<std::unique_ptr<Lease>> open(const LinkConfig& link, const LeaseConfig& config);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// One heartbeat at `now_ms` (a monotonic clock): renews a held lease, or watches another's
  /// and takes it once its revision has not changed for timeout_ms. A holder that could not
  /// renew for timeout_ms counts it as lost: a standby may have taken it by then.
  Step step(std::int64_t now_ms);
  /// Gives the lease up (a graceful stop): marks it released, if this process still holds it,
  /// so that a standby takes it at once.
  void release();

  /// The value written from the next write on (a URL learnt after the listener bound).
  void set_holder(const std::string& value) { config_.holder = value; }

  bool held() const { return held_; }
  /// When (the `now_ms` of the step) this process last wrote the lease successfully: taken or
  /// renewed. Meaningful while held().
  std::int64_t renewed_ms() const { return renewed_ms_; }
  /// The holder's value as last read ("" if none).
  const std::string& holder() const { return holder_seen_; }

 private:
  Lease(const LeaseConfig& config) : config_(config) {}
  Step renew(std::int64_t now_ms);
  Step watch(std::int64_t now_ms);
  Step take(std::uint64_t revision, std::int64_t now_ms);
  void wrote(std::uint64_t revision, std::int64_t now_ms);

  LeaseConfig config_;
  std::unique_ptr<NatsLink> link_;
  kvStore* kv_ = nullptr;
  bool held_ = false;
  std::uint64_t revision_ = 0;        // ours when held; the watched one otherwise
  std::int64_t revision_seen_ms_ = 0;  // when the watched revision was first seen
  std::string holder_seen_;
  std::int64_t renewed_ms_ = 0;  // the holder's last successful write of it
};

}  // namespace paycore::repl
