#pragma once
// Starting a cluster member whose log is empty (issue 14; docs/replication.md "Bootstrap"): a
// new member, or one whose data directory was cleared because the log stream no longer holds
// what follows its own log. Before the engine opens, the newest snapshot published to the
// snapshot bucket (repl/snapshot_objects.hpp) is downloaded into the snapshots directory when
// it is newer than the member's own, and the hash chain the member's log will start from (the
// checksum of the record at the snapshot's LSN) is found, so that the records the member
// then takes from the stream continue its log (EngineConfig::log_prev_checksum_if_empty).

#include <cstdint>
#include <string>

#include "base/status.hpp"
#include "core/engine.hpp"
#include "repl/nats_link.hpp"

namespace paycore::repl {

struct BootstrapConfig {
  LinkConfig link;
  std::string log_stream;       // log_stream_name(cluster)
  std::string snapshot_bucket;  // snapshot_bucket_name(cluster)
  std::string snapshots_dir;    // Engine::snapshots_dir()
  std::string wal_dir;          // Engine::wal_dir()
};

struct BootstrapOutcome {
  bool log_empty = false;          // false: the log has segments, nothing was done
  bool downloaded = false;         // the published snapshot was installed
  std::uint64_t snapshot_lsn = 0;  // the newest local snapshot now (0: none)
  std::uint64_t log_checksum = 0;  // the chain a log starting at snapshot_lsn + 1 continues
};

/// Prepares the data directory of a member about to open its engine: nothing if the log has a
/// segment; else installs the published snapshot if it is newer than the newest local one
/// (downloaded to a temporary file, its SHA-256, header and trailer checked, renamed, the
/// directory fsynced) and finds the chain checksum (the published meta's, or the stream's
/// record at the local snapshot's LSN). Errors: kNotFound if the newest local snapshot cannot
/// be chained (the stream no longer holds its record and no published snapshot matches);
/// kCorruption for a damaged download; file and NATS errors.
StatusOr<BootstrapOutcome> prepare_empty_member(const BootstrapConfig& config);

/// Whether `engine`'s log (opened, not started) is the stream's history: both hold the record
/// at the first LSN they both hold, with the same checksum. A log whose join failed because it
/// goes past the stream or differs from it at its end (kConflict: ClusterMember::join) and that
/// shares the stream's history holds only records the cluster never acknowledged past that
/// point: their answers never left (an answer waits for the stream), so the log may be set
/// aside and the member started from the published snapshot. False when the two hold no LSN in
/// common or differ at the first they share (another history: never set aside by itself).
/// NATS and log errors.
StatusOr<bool> log_shares_stream_history(const LinkConfig& link, const std::string& log_stream,
                                         Engine& engine);

/// Moves DATA_DIR/wal and DATA_DIR/snapshots to DATA_DIR/set-aside/<unix ms>/ (fsyncing the
/// directories), for a member whose log cannot follow the stream; `*where` names the place.
/// The engine on that directory must be closed first. Errors: the system calls'.
Status set_aside_log(const std::string& data_dir, std::string* where);

}  // namespace paycore::repl
