#pragma once
// Synthetic reconciliation input for tests and benchmarks: local data plus one statement in
// our CSV format, with discrepancies of every class injected at known rates, and the counts the
// job must find. Deterministic for a given seed.

#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "recon/local.hpp"
#include "recon/match.hpp"

namespace paycore::recon {

struct GenOptions {
  std::uint64_t payments_count = 1000;
  std::uint64_t seed = 1;
  std::vector<std::string> channels = {"alipay", "wechat", "card"};
  std::uint32_t merchants_count = 100;
  std::int64_t start_us = 1'795'651'200'000'000;  // 2026-11-26T00:00:00Z
  std::int64_t cutoff_us = 1'795'737'600'000'000;  // 2026-11-27T00:00:00Z
  std::int64_t tolerance_seconds = 1800;
  // Parts per million of the payments that get each class; `matched` takes the rest. Each
  // injected record yields exactly one finding of its class (a duplicate row also yields one
  // matched for its first row).
  std::array<std::uint32_t, finding_class_count> class_ppm = {
      0, 2000, 2000, 2000, 2000, 1000, 1000, 2000, 1000, 500};
  std::uint32_t refund_ppm = 50'000;                  // matched payments refunded on both sides
  std::uint32_t refund_missing_channel_ppm = 1'000;   // a local refund the channel lacks
  std::uint32_t refund_missing_local_ppm = 1'000;     // a channel refund we lack
  std::uint32_t balance_ppm = 20'000;                 // balance payments: never on a statement
};

struct GenExpected {
  std::array<std::uint64_t, finding_class_count> counts{};
  std::uint64_t statement_rows_count = 0;
  std::uint64_t repairable_count = 0;  // local_not_paid with a PENDING payment
};

// Appends to *local and writes the statement (header included) to `statement_csv`.
GenExpected generate(const GenOptions& options, LocalData* local, std::ostream& statement_csv);

}  // namespace paycore::recon
