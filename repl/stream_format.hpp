#pragma once
// The shared log's format on NATS JetStream (issue 14; docs/replication.md). Everything that
// knows a stream name, a header or how a message's bytes are laid out is here.
//
// One stream per cluster, `PAYCORE_LOG_<cluster>`, on the subject `paycore.<cluster>.log`.
// Each message holds consecutive log records of one batch of the primary's local log, as their
// frames (wal/format.hpp: header with checksum and hash chain, payload, padding), exactly the
// bytes the primary's segment file holds; a batch larger than the message limit is split at
// record boundaries. Headers:
//
//   Nats-Msg-Id                  "<writer>-<first LSN>": JetStream drops a resend within its
//                                duplicate window (two writers' ids never collide)
//   Nats-Expected-Last-Sequence  the stream sequence the writer believes is last ("0" on an
//                                empty stream): JetStream refuses the message otherwise. This
//                                is the fencing: only a writer that has seen the whole stream
//                                appends.
//   Paycore-First-Lsn            LSN of the first record (decimal)
//   Paycore-Last-Lsn             LSN of the last record (decimal)
//   Paycore-Writer               the writer's id (16 hex digits, random per process start)
//
// A reader checks each record's checksum, that LSNs are consecutive across messages, and that
// each record's prev_checksum is the checksum of the record before it (the chain continues
// from the reader's own log): a message from a diverged history fails the chain.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "wal/frames.hpp"

namespace paycore::repl {

inline constexpr const char* kHeaderMsgId = "Nats-Msg-Id";
inline constexpr const char* kHeaderExpectedLastSequence = "Nats-Expected-Last-Sequence";
inline constexpr const char* kHeaderFirstLsn = "Paycore-First-Lsn";
inline constexpr const char* kHeaderLastLsn = "Paycore-Last-Lsn";
inline constexpr const char* kHeaderWriter = "Paycore-Writer";

// NATS's default max_payload is 1 MiB; the messages stay below it with room for the headers.
inline constexpr std::uint32_t kMessageBytesMaxDefault = 1000u * 1024u;

/// The log stream's name for a cluster name (letters, digits, '-' and '_', 1..64 bytes).
std::string log_stream_name(std::string_view cluster);
/// The subject the log stream takes.
std::string log_subject(std::string_view cluster);
/// Ok, or kInvalidArgument naming what is wrong with `cluster`.
Status check_cluster_name(std::string_view cluster);

/// A fresh random writer id (getrandom(2)); a process takes one at each start.
std::uint64_t random_writer_id();
/// A writer id as the Paycore-Writer header carries it.
std::string writer_id_text(std::uint64_t writer_id);
/// The Nats-Msg-Id of the writer's message starting at first_lsn.
std::string message_id(std::uint64_t writer_id, std::uint64_t first_lsn);

/// One message's share of a batch: records [first_lsn, last_lsn] at bytes [offset, offset+bytes).
struct MessageSlice {
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  std::size_t offset = 0;
  std::size_t bytes = 0;
};

/// Splits the record frames of a batch (LSNs from first_lsn on) into slices of at most
/// `bytes_max` bytes at record boundaries. kInvalidArgument if one record alone is larger, or
/// if the frames do not parse (a length running past the end).
Status split_frames(std::span<const std::byte> frames, std::uint64_t first_lsn,
                    std::size_t bytes_max, std::vector<MessageSlice>* out);

// Reading a message's frames: wal/frames.hpp (FrameView, parse_frame, for_each_frame).
using wal::for_each_frame;
using wal::FrameView;
using wal::parse_frame;

}  // namespace paycore::repl
