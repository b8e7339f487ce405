#pragma once
// The job's outputs (docs/recon.md shows each):
//   summary.json   counts and amount sums per class, per channel, malformed rows
//   mismatches.csv one row per finding, both sides' values
//   repairs.jsonl  one new entry per finding that needs action: a replayed channel notification
//                  where that fixes it, {"needs_person": true, ...} otherwise
//   report.html    self-contained, with an inline SVG bar chart of the classes
// and a short table on stdout.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "recon/match.hpp"
#include "recon/statement.hpp"

namespace paycore::recon {

struct StatementSummary {
  std::string path;
  std::vector<std::string> merchant_ids;  // --statement-merchant; empty: every merchant
  StatementStats stats;
};

struct ReconReport {
  MatchResult match;
  std::vector<StatementSummary> statements;
  std::int64_t tolerance_seconds = 0;
  std::optional<std::int64_t> window_start_us;
  int exit_status = 0;  // 0 all matched, 1 findings (or malformed rows), 2 error
};

void write_summary_json(const ReconReport& report, std::ostream& out);
void write_mismatches_csv(const MatchResult& match, std::ostream& out);
void write_repairs_jsonl(const MatchResult& match, std::ostream& out);
void write_report_html(const ReconReport& report, std::ostream& out);
void print_table(const ReconReport& report, std::ostream& out);

// Writes the four files into `out_dir` (created if needed), each through a temporary name and
// a rename, so that a reader never sees half a report. kIoError ("cannot create|write|rename
// PATH...") on failure.
[[nodiscard]] Status write_report_files(const ReconReport& report,
                                        const std::filesystem::path& out_dir);

// The repair's id: a hex digest of what identifies the finding (class, channel, transaction,
// merchant, order, refund), so that running the job twice yields the same ids.
std::string repair_id(const Finding& finding);

// "12.34 CNY" exactly, from minor units.
std::string format_amount(AmountSum amount, Currency currency);

}  // namespace paycore::recon
