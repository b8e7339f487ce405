#include "recon/recon.hpp"

#include "recon/match.hpp"
#include "recon/statement_pipe.hpp"

#include <algorithm>
#include "base/assert.hpp"

namespace paycore::recon {

namespace {

// What one statement covers (docs/recon.md "Coverage"): its channels (declared, the format's
// own, or named by its rows) for every merchant, or for each of its --statement-merchant ids
// only, rows or none. A statement restricted to merchants that names no channel at all
// covers nothing, which the operator cannot have meant: an error.
Status cover_statement(const StatementSource& source, const StatementStats& stats,
                       Reconciler& reconciler) {
  std::vector<std::string> channels = stats.channels;
  if (!stats.channel.empty() && std::find(channels.begin(), channels.end(), stats.channel) == channels.end()) {
    channels.push_back(stats.channel);
  }
  if (channels.empty() && !source.merchant_ids.empty()) {
    return Status::invalid_argument(
        source.path + ": no row names a channel, so the --statement-merchant " + source.merchant_ids.front() +
        " cannot say what it covers: add --statement-channel NAME for this statement");
  }
  for (const std::string& channel : channels) {
    if (source.merchant_ids.empty()) reconciler.cover_channel(channel);
    for (const std::string& merchant : source.merchant_ids) reconciler.cover_merchant(channel, merchant);
  }
  return Status::ok();
}

}  // namespace

StatusOr<ReconReport> reconcile(const ReconOptions& options, const LocalData& local) {
  if (options.statements.empty()) return Status::invalid_argument("no statement file");
  if (options.tolerance_seconds < 0 || options.tolerance_seconds > 366 * 86400) {
    return Status::invalid_argument("tolerance must be 0 to 366 days in seconds");
  }
  MatchOptions match_options;
  match_options.cutoff_us = options.cutoff_us;
  match_options.window_start_us = options.window_start_us;
  match_options.tolerance_seconds = options.tolerance_seconds;
  Reconciler reconciler(local, std::move(match_options));
  ReconReport report;
  for (const StatementSource& source : options.statements) {
    // Parsed on the second core while this one matches (recon/statement_pipe.hpp).
    StatementPipe pipe(source);
    reconciler.begin_statement(source.path, !source.merchant_ids.empty());
    StatementSummary summary{source.path, source.merchant_ids, {}};
    PAYCORE_RETURN_IF_ERROR(pipe.deliver(reconciler.sink(), &summary.stats));
    PAYCORE_RETURN_IF_ERROR(cover_statement(source, summary.stats, reconciler));
    report.statements.push_back(std::move(summary));
  }
  report.match = reconciler.finish();
  report.tolerance_seconds = options.tolerance_seconds;
  report.window_start_us = options.window_start_us;
  const bool clean = report.match.problems_count() == 0 && report.match.malformed_count == 0;
  report.exit_status = clean ? exit_matched : exit_findings;
  return report;
}

int run_recon(const ReconOptions& options, const LocalData& local, std::ostream& out,
              std::ostream& err) {
  const StatusOr<ReconReport> report = reconcile(options, local);
  if (!report.is_ok()) {
    err << "paycore recon: " << report.status().message() << "\n";
    return exit_error;
  }
  if (!options.out_dir.empty()) {
    const Status written = write_report_files(*report, options.out_dir);
    if (!written.is_ok()) {
      err << "paycore recon: " << written.message() << "\n";
      return exit_error;
    }
  }
  print_table(*report, out);
  const bool decided = report->exit_status == exit_matched || report->exit_status == exit_findings;
  PAYCORE_ASSERT(decided);  // one fact: 0 or 1, never the error status
  return report->exit_status;
}

}  // namespace paycore::recon
