#include "repl/lease.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "base/time.hpp"
#include "repl/stream_format.hpp"

namespace paycore::repl {
namespace {

constexpr const char* kLeaseKey = "primary";
// What a holder writes when it stops: the lease may be taken at once, not after the timeout.
constexpr const char* kReleased = "released";

}  // namespace

std::string lease_bucket_name(const std::string& cluster) { return "PAYCORE_LEASE_" + cluster; }

std::string lease_holder_value(std::uint64_t writer_id, const std::string& url) {
  return "writer=" + writer_id_text(writer_id) + " url=" + url;
}

std::string lease_holder_url(const std::string& value) {
  const std::size_t at = value.find(" url=");
  return at == std::string::npos ? std::string() : value.substr(at + 5);
}

StatusOr<std::unique_ptr<Lease>> Lease::open(const LinkConfig& link, const LeaseConfig& config) {
  std::unique_ptr<Lease> lease(new Lease(config));
  StatusOr<std::unique_ptr<NatsLink>> connected = NatsLink::connect(link);
  if (!connected.is_ok()) return connected.status();
  lease->link_ = std::move(connected.value());
  StatusOr<kvStore*> kv = open_bucket(lease->link_->js(), config.bucket, config.replicas);
  if (!kv.is_ok()) return kv.status().with_context("lease");
  lease->kv_ = *kv;
  return lease;
}

Lease::~Lease() {
  if (kv_ != nullptr) kvStore_Destroy(kv_);
}

Lease::Step Lease::step(std::int64_t now_ms) { return held_ ? renew(now_ms) : watch(now_ms); }

Lease::Step Lease::renew(std::int64_t now_ms) {
  std::uint64_t revision = 0;
  const natsStatus s = kvStore_UpdateString(&revision, kv_, kLeaseKey, config_.holder.c_str(),
                                            revision_);
  if (s == NATS_OK) {
    wrote(revision, now_ms);
    return Step::held;
  }
  const Status status = nats_status(s, jsErrCode{}, "renew the lease");
  // Unreachable for less than the timeout: nobody else can have taken it from that revision.
  // Judged at the time the attempt ended, not began: it may have waited the link's timeout.
  const std::int64_t ended_ms = std::max(now_ms, monotonic_ms());
  if (status.code() == StatusCode::kUnavailable && ended_ms - renewed_ms_ < config_.timeout_ms) {
    return Step::held;
  }
  held_ = false;
  revision_seen_ms_ = 0;
  log_line(LogLevel::error, "lost the primary lease: " + status.to_string());
  return Step::lost;
}

Lease::Step Lease::watch(std::int64_t now_ms) {
  kvEntry* entry = nullptr;
  const natsStatus s = kvStore_Get(&entry, kv_, kLeaseKey);
  std::uint64_t taken = 0;
  if (s == NATS_NOT_FOUND) {
    holder_seen_.clear();
    const bool created =
        kvStore_CreateString(&taken, kv_, kLeaseKey, config_.holder.c_str()) == NATS_OK;
    return created ? take(taken, now_ms) : Step::not_held;  // or another created it first
  }
  if (s != NATS_OK) return Step::not_held;  // NATS does not answer: nothing to decide on
  const std::uint64_t revision = kvEntry_Revision(entry);
  holder_seen_ = kvEntry_ValueString(entry);
  kvEntry_Destroy(entry);
  const bool released = holder_seen_ == kReleased;
  if (!released && revision != revision_) {  // renewed: its holder lives; the wait starts over
    revision_ = revision;
    revision_seen_ms_ = now_ms;
    return Step::not_held;
  }
  if (!released && now_ms - revision_seen_ms_ < config_.timeout_ms) return Step::not_held;
  const bool updated = kvStore_UpdateString(&taken, kv_, kLeaseKey, config_.holder.c_str(),
                                            revision) == NATS_OK;
  return updated ? take(taken, now_ms) : Step::not_held;  // or renewed or taken meanwhile
}

Lease::Step Lease::take(std::uint64_t revision, std::int64_t now_ms) {
  held_ = true;
  wrote(revision, now_ms);
  log_line(LogLevel::info, "took the primary lease", {{"revision", std::to_string(revision)}});
  return Step::held;
}

// This process's value is the key's, at `revision`, as of `now_ms`.
void Lease::wrote(std::uint64_t revision, std::int64_t now_ms) {
  revision_ = revision;
  renewed_ms_ = now_ms;
  holder_seen_ = config_.holder;  // set_holder may have changed it since the last write
}

void Lease::release() {
  if (!held_) return;
  held_ = false;
  std::uint64_t revision = 0;
  // Compare-and-set as every write: a lease another process took meanwhile stays theirs.
  (void)kvStore_UpdateString(&revision, kv_, kLeaseKey, kReleased, revision_);
}

}  // namespace paycore::repl
