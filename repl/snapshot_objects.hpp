#pragma once
// Snapshots on NATS JetStream (issue 14; docs/replication.md "Bootstrap"): the primary publishes
// its newest snapshot file, and a member that starts with an empty log (a new one, or one reset
// because the log stream no longer holds what follows its own log) starts from it and follows
// the stream after its LSN.
//
// The layout is JetStream's object store (NATS ADR-20), which Debian's libnats 3.4 has no API
// for, so it is written here by hand: bucket `PAYCORE_SNAP_<cluster>`, stream
// `OBJ_PAYCORE_SNAP_<cluster>` (rollups allowed) with the subjects
//
//   $O.<bucket>.C.<nuid>                  the object's chunks, in order, 128 KiB each
//   $O.<bucket>.M.<base64url(name)>       its meta, rolled up (`Nats-Rollup: sub`): the newest
//                                         replaces the one before, and the old chunks are purged
//
// The one object is named `snapshot`. Its meta message body is ADR-20's ObjectInfo JSON (name,
// bucket, nuid, size, chunks, mtime, digest "SHA-256=<base64url>") so that NATS's own tools can
// read it; paycore reads the same facts from the meta message's headers:
//
//   Paycore-Snapshot-Lsn          the snapshot's LSN (decimal)
//   Paycore-Log-Checksum          checksum of the log record at that LSN (decimal): the hash
//                                 chain a log starting after the snapshot continues from
//   Paycore-Snapshot-Bytes        the file's size
//   Paycore-Chunks                how many chunks
//   Paycore-Nuid                  the chunks' subject token
//   Paycore-First-Chunk-Sequence  the stream sequence of the first chunk (a reader walks the
//                                 stream from there, keeping the messages on the chunk subject)
//   Paycore-Digest                SHA-256=<base64url of the file's SHA-256>

#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace paycore::repl {

inline constexpr std::size_t kSnapshotChunkBytes = 128u * 1024u;

/// `PAYCORE_SNAP_<cluster>` (the cluster name checked by check_cluster_name).
std::string snapshot_bucket_name(std::string_view cluster);

/// What the meta message of the published snapshot says.
struct PublishedSnapshot {
  std::uint64_t lsn = 0;
  std::uint64_t log_checksum = 0;
  std::uint64_t size_bytes = 0;
  std::uint64_t chunks = 0;
  std::uint64_t first_chunk_sequence = 0;
  std::string nuid;
  std::string digest;  // "SHA-256=<base64url>"
};

/// Creates the bucket's stream (file storage, `replicas` copies, rollups allowed), or accepts
/// the one there. NATS errors as nats_status.
Status ensure_snapshot_bucket(jsCtx* js, const std::string& bucket, int replicas);

/// The published snapshot's meta; nullopt when none was published (or the bucket does not
/// exist). kCorruption if the meta's headers are missing or malformed; NATS errors.
StatusOr<std::optional<PublishedSnapshot>> read_published_snapshot(jsCtx* js,
                                                                   const std::string& bucket);

/// Publishes the snapshot file at `path` (LSN `lsn`, the log record at that LSN having checksum
/// `log_checksum`) as the bucket's object, then purges the chunks of the one it replaces.
/// Reads the file in chunks (never whole in memory). Errors: the file's (errno_status), NATS's.
StatusOr<PublishedSnapshot> publish_snapshot_file(jsCtx* js, const std::string& bucket,
                                                  const std::string& path, std::uint64_t lsn,
                                                  std::uint64_t log_checksum);

/// Writes the published snapshot's bytes to `path` (created or truncated) and fsyncs it.
/// kCorruption if a chunk is missing, the size or the SHA-256 digest differs (the file is then
/// removed); the file's errors; NATS's.
Status download_snapshot(jsCtx* js, const std::string& bucket, const PublishedSnapshot& snapshot,
                         const std::string& path);

}  // namespace paycore::repl
