#pragma once
// The archive scheduler (docs/design.md "Hot and cold"): on the core thread, it copies the
// payments at the front of the table that have gone cold into an ArchiveJob, hands the job to
// the ArchiveSink (which writes it to the archive store once it is durable in the log), and
// turns each finished job into the `archive_payments` command that the core applies and logs.
// One job is in flight at a time: the archive is written in row order, and the command of a
// job evicts only from the first live row.
//
// A payment is copied when it is at the front of the table, may leave memory
// (State::payment_is_evictable), and is either older than the hot window or the table holds
// more live payments than its high-water mark (memory comes first: a full table answers 507).

#include <cstdint>
#include <memory>

#include "archive_port.hpp"
#include "command.hpp"
#include "engine.hpp"
#include "state.hpp"

namespace paycore {

class ArchiveScheduler {
 public:
  /// `state` is the core's (it may be replaced after a storage fault, hence the owner);
  /// `config.archive_sink` may be null: then nothing is ever archived.
  ArchiveScheduler(const EngineConfig& config, EngineMetrics& metrics,
                   const std::unique_ptr<State>& state);

  /// The `archive_payments` command of the next finished job, if any (kind, rows end and
  /// as-of filled; the caller stamps, applies and logs it). A failed job yields no command: it
  /// is logged, counted, and the scheduler waits a second before the next attempt.
  bool take_done(std::int64_t now_us, Command* out);
  /// Copies the next cold payments into a job and submits it, unless one is in flight, the
  /// front of the table is not cold, or the last attempt was too recent. `state_lsn` is the
  /// newest log record the state holds; the job may be written only once it is durable.
  void maybe_submit(std::int64_t now_us, std::uint64_t state_lsn);

 private:
  bool is_cold(std::uint32_t row, std::int64_t now_us) const;

  const EngineConfig& config_;
  EngineMetrics& metrics_;
  const std::unique_ptr<State>& state_;
  std::uint64_t next_sequence_ = 1;
  bool in_flight_ = false;
  std::int64_t next_attempt_us_ = 0;
};

}  // namespace paycore
