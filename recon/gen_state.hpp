#pragma once
// `paycore recon gen`: reconciliation input made THROUGH THE REAL STATE MACHINE. Commands
// (add_channel, open_account, deposit, create_mandate, create_payment, notify, cancel, ship,
// complete, refund) are applied to a State with strictly increasing timestamps, exactly as the
// engine would apply them; the State is written with write_snapshot. A statement CSV (docs/recon.md "Statement formats", csv) is
// written beside it with discrepancies of every class injected at known rates, and the counts
// the job must find (expected.json). Deterministic for a given seed and start.
//
// Timeline (cut-off = start + 24 h, tolerance T):
//   [start, cutoff - T - 2 h)   payments, their notifications (+5 s), cancels (+10 s),
//                               ships (+30 min), completes (+50 min), refunds (+1 h)
//   cutoff - T/2 + p us          the "late" payments: within_cutoff ones (paid, no row) and
//                               the repairable ones (still PENDING: the statement says SUCCESS,
//                               or FAILED), so that the snapshot - taken at the last command -
//                               still has them PENDING and a replayed notification settles them.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "recon/match.hpp"
#include "core/state.hpp"

namespace paycore::recon {

struct StateGenOptions {
  std::uint64_t payments_count = 1000;
  std::uint64_t seed = 1;
  std::vector<std::string> channels = {"alipay", "wechat", "card"};
  // m_001.. and c_0001..: the development keys file (paycore keys init) has m_001..m_004.
  std::uint32_t merchants_count = 4;
  std::uint32_t customers_count = 16;
  std::int64_t start_us = 1'795'651'200'000'000;  // 2026-11-26T00:00:00Z
  std::int64_t tolerance_seconds = 1800;
  // generate_state_files: archive the payments of the first N% of the day into DIR/archive
  // (archive_generated); 0: none, every payment in the snapshot.
  std::uint32_t archive_percent = 0;
  // Parts per million of the external payments that get each class (FindingClass order);
  // matched takes the rest. local_not_paid and status_mismatch are split: half still PENDING
  // (repairable), the rest CANCELLED / FAILED locally (local_not_paid) or PAID (status_mismatch).
  std::array<std::uint32_t, finding_class_count> class_ppm = {
      0, 2000, 4000, 2000, 2000, 1000, 4000, 2000, 1000, 500};
  std::uint32_t refund_ppm = 50'000;                 // matched payments refunded on both sides
  std::uint32_t refund_missing_channel_ppm = 1'000;  // a local refund the channel lacks
  std::uint32_t refund_missing_local_ppm = 1'000;    // a channel refund we lack
  std::uint32_t balance_ppm = 20'000;                // balance payments: never on a statement
  std::uint32_t ship_ppm = 200'000;                  // matched payments shipped (half completed)

  std::int64_t cutoff_us() const { return start_us + 24LL * 3600 * 1'000'000; }
};

struct StateGenExpected {
  std::array<std::uint64_t, finding_class_count> counts{};
  // After the repairs are applied: the repairable findings have become matched.
  std::array<std::uint64_t, finding_class_count> counts_after_repairs{};
  std::uint64_t repairable_count = 0;
  std::uint64_t statement_rows_count = 0;
  std::uint64_t commands_count = 0;  // mutating commands applied: the snapshot's LSN
  std::uint64_t payments_count = 0;  // local payment rows
  std::uint64_t refunds_count = 0;
  std::uint64_t anomalies_count = 0;
  std::int64_t last_timestamp_us = 0;
  std::uint64_t archived_count = 0;  // with archive_percent: payments in DIR/archive
  std::uint64_t evicted_count = 0;   // of which the snapshot no longer holds
};

// Applies the commands to `*state` (freshly constructed) and writes the statement (header
// included) to `statement_csv`.
StateGenExpected generate_state(const StateGenOptions& options, State* state, std::ostream& statement_csv);

// generate_state into `out_dir` (created): snapshot.snap (at LSN commands_count, created at the
// last command's time), statement.csv and expected.json; with archive_percent, archive_generated
// first into out_dir/archive, which must not exist yet (kInvalidArgument naming it). kIoError naming the file on failure.
[[nodiscard]] Status generate_state_files(const StateGenOptions& options,
                                          const std::filesystem::path& out_dir,
                                          StateGenExpected* expected);

// What archive_generated did.
struct GenTierResult {
  std::uint64_t archived_count = 0;  // payments written to the archive (rows [0, N))
  std::uint64_t evicted_count = 0;   // of which memory no longer holds (the rest are in both)
  std::uint64_t commands_count = 0;  // mutating commands applied so far: the snapshot's LSN
  std::int64_t last_timestamp_us = 0;
};

// Makes a generated state tiered, as the engine would (docs/design.md "Hot and cold"): a tick
// drops the idempotency records older than the first `percent` (0..100) of the day, the payments
// created in it are written to a new archive store at `archive_dir` (in jobs of 50,000, as
// the archiver writes them), then `archive_payments` evicts those that may leave: payments
// changed near the horizon stay in memory and are in both. `commands_count` and
// `last_timestamp_us` are generate_state's; the result continues them. Errors: the store's
// (kIoError, kInvalidArgument, ...), naming the directory.
[[nodiscard]] StatusOr<GenTierResult> archive_generated(const StateGenOptions& options,
                                                        std::uint32_t percent,
                                                        const std::string& archive_dir, State* state,
                                                        std::uint64_t commands_count,
                                                        std::int64_t last_timestamp_us);

// expected.json's text.
std::string expected_json(const StateGenOptions& options, const StateGenExpected& expected,
                          const std::filesystem::path& out_dir);

}  // namespace paycore::recon
