#include "repl/bootstrap.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <span>
#include <optional>
#include <vector>

#include "base/log.hpp"
#include "base/time.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_store.hpp"
#include "repl/snapshot_objects.hpp"
#include "repl/stream_follower.hpp"
#include "wal/frames.hpp"
#include "wal/reader.hpp"

namespace paycore::repl {
namespace {

// Whether the log directory holds a segment (a missing directory holds none).
StatusOr<bool> log_has_segments(const std::string& wal_dir) {
  std::vector<wal::detail::SegmentFile> segments;
  const Status s = wal::detail::list_segments(wal_dir, &segments, nullptr);
  if (!s.is_ok()) {
    if (make_directories(wal_dir).is_ok()) return false;  // it did not exist
    return s;
  }
  return !segments.empty();
}

// Downloads `published` as <snapshots_dir>/<lsn>.snap, checked before it takes that name.
Status install(jsCtx* js, const BootstrapConfig& config, const PublishedSnapshot& published) {
  PAYCORE_RETURN_IF_ERROR(make_directories(config.snapshots_dir));
  const std::string final_path = snapshot_path(config.snapshots_dir, published.lsn);
  const std::string temp_path = final_path + ".tmp";
  PAYCORE_RETURN_IF_ERROR(download_snapshot(js, config.snapshot_bucket, published, temp_path));
  StatusOr<std::string> bytes = read_file(temp_path);
  SnapshotInfo info;
  Status s = bytes.is_ok() ? check_snapshot(std::as_bytes(std::span(*bytes)), &info) : bytes.status();
  if (s.is_ok() && info.lsn != published.lsn) {
    s = Status::corruption(temp_path + ": the snapshot's LSN is " + std::to_string(info.lsn) +
                           ", the meta says " + std::to_string(published.lsn));
  }
  if (!s.is_ok()) {
    ::unlink(temp_path.c_str());
    return s.with_context("the published snapshot");
  }
  return publish_snapshot(config.snapshots_dir, temp_path, final_path);
}

}  // namespace

StatusOr<BootstrapOutcome> prepare_empty_member(const BootstrapConfig& config) {
  BootstrapOutcome outcome;
  StatusOr<bool> has_segments = log_has_segments(config.wal_dir);
  if (!has_segments.is_ok()) return has_segments.status();
  if (*has_segments) return outcome;
  outcome.log_empty = true;
  const std::vector<SnapshotFile> local = list_snapshots(config.snapshots_dir);
  const std::uint64_t local_lsn = local.empty() ? 0 : local.back().lsn;
  StatusOr<std::unique_ptr<NatsLink>> link = NatsLink::connect(config.link);
  if (!link.is_ok()) return link.status();
  jsCtx* js = (*link)->js();
  StatusOr<std::optional<PublishedSnapshot>> published =
      read_published_snapshot(js, config.snapshot_bucket);
  if (!published.is_ok()) return published.status();
  const std::optional<PublishedSnapshot>& p = *published;
  if (p && p->lsn > local_lsn) {
    PAYCORE_RETURN_IF_ERROR(install(js, config, *p));
    outcome = BootstrapOutcome{true, true, p->lsn, p->log_checksum};
    log_line(LogLevel::info, "bootstrap: installed the published snapshot",
             {{"lsn", std::to_string(p->lsn)}, {"bytes", std::to_string(p->size_bytes)}});
    return outcome;
  }
  outcome.snapshot_lsn = local_lsn;
  if (local_lsn == 0) return outcome;  // the log starts at LSN 1
  if (p && p->lsn == local_lsn) {
    outcome.log_checksum = p->log_checksum;
    return outcome;
  }
  StatusOr<std::uint64_t> chain = record_checksum(js, config.log_stream, local_lsn);
  if (!chain.is_ok()) {
    return chain.status().with_context(
        "this member's log is empty and its newest snapshot (LSN " + std::to_string(local_lsn) +
        ") cannot be chained to the log stream");
  }
  outcome.log_checksum = *chain;
  return outcome;
}

StatusOr<bool> log_shares_stream_history(const LinkConfig& link, const std::string& log_stream,
                                         Engine& engine) {
  StatusOr<std::unique_ptr<NatsLink>> connected = NatsLink::connect(link);
  if (!connected.is_ok()) return connected.status();
  jsCtx* js = (*connected)->js();
  StatusOr<StreamPosition> position = read_position(js, log_stream);
  if (!position.is_ok()) return position.status();
  if (position->last_sequence == 0 || engine.log_last_lsn() == 0) return false;
  StatusOr<StoredMessage> first = read_message(js, log_stream, position->first_sequence);
  if (!first.is_ok()) return first.status();
  StatusOr<StoredMessage> last = read_message(js, log_stream, position->last_sequence);
  if (!last.is_ok()) return last.status();
  // The first LSN both hold: compared there, a shared history shows whatever its tails are.
  const std::uint64_t lsn = std::max(engine.log_first_lsn(), first->first_lsn);
  if (lsn > std::min(engine.log_last_lsn(), last->last_lsn)) return false;
  std::optional<std::uint64_t> local;
  const Status walked =
      engine.replay_log_frames(lsn, lsn, [&](std::uint64_t, std::span<const std::byte> frame) {
        (void)wal::for_each_frame_in(frame, lsn,
                                     [&](const wal::FrameView& f) { local = f.checksum; });
      });
  if (!walked.is_ok()) return walked;
  if (!local) return false;
  StatusOr<std::uint64_t> shared = record_checksum(js, log_stream, lsn);
  if (!shared.is_ok()) return shared.status();
  return *shared == *local;
}

Status set_aside_log(const std::string& data_dir, std::string* where) {
  *where = data_dir + "/set-aside/" + std::to_string(wall_clock_us() / 1000);
  PAYCORE_RETURN_IF_ERROR(make_directories(*where));
  for (const std::string& name : {std::string("wal"), std::string("snapshots")}) {
    const std::string from = data_dir + "/" + name;
    const std::string to = *where + "/" + name;
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return errno_status("rename " + from + " to " + to, errno);
    }
  }
  PAYCORE_RETURN_IF_ERROR(fsync_directory(*where));
  PAYCORE_RETURN_IF_ERROR(fsync_directory(data_dir + "/set-aside"));
  return fsync_directory(data_dir);
}

}  // namespace paycore::repl
