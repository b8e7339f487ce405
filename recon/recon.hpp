#pragma once
// The reconciliation job over in-memory local data: read every statement once into the
// matcher, sweep, write the report. `paycore recon` (CLI wiring) goes through recon_main in
// recon/cli.hpp, which also loads the snapshot.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "recon/local.hpp"
#include "recon/report.hpp"
#include "recon/statement.hpp"

namespace paycore::recon {

inline constexpr int exit_matched = 0;
inline constexpr int exit_findings = 1;
inline constexpr int exit_error = 2;

struct ReconOptions {
  std::vector<StatementSource> statements;
  std::filesystem::path out_dir;  // empty: no files, only the table
  std::optional<std::int64_t> cutoff_us;        // default: just after the latest statement row
  std::optional<std::int64_t> window_start_us;  // default: every older local record is due
  std::int64_t tolerance_seconds = 1800;
};

// Reads the statements and matches them. An error when the options are unusable or a
// statement cannot be read at all (read_statement's, or one covering nothing). Malformed rows
// are findings, not errors.
[[nodiscard]] StatusOr<ReconReport> reconcile(const ReconOptions& options, const LocalData& local);

// reconcile + write_report_files + print_table. Returns the exit status: 0 everything matched
// (within_cutoff allowed), 1 findings or malformed rows, 2 error (message on `err`).
int run_recon(const ReconOptions& options, const LocalData& local, std::ostream& out,
              std::ostream& err);

}  // namespace paycore::recon
