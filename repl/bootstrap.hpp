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

}  // namespace paycore::repl
