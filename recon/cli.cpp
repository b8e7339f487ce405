#include "recon/cli.hpp"

#include "recon/recon.hpp"
#include "recon/text.hpp"

namespace paycore::recon {
namespace {

bool parse_time_arg(const std::string& text, const char* name, std::optional<std::int64_t>* out,
                    std::ostream& err) {
  if (text.empty()) return true;
  const auto time = parse_rfc3339_us(text);
  if (!time) {
    err << "paycore recon: " << name << " " << quote_for_message(text)
        << " is not an RFC 3339 time (2026-11-26T00:00:00Z)\n";
    return false;
  }
  *out = *time;
  return true;
}

}  // namespace

int recon_main(const ReconArgs& args, const LocalLoader& load, std::ostream& out, std::ostream& err) {
  ReconOptions options;
  const auto format = statement_format_from_name(args.statement_format);
  if (!format) {
    err << "paycore recon: --statement-format must be csv, alipay, wechat or auto\n";
    return exit_error;
  }
  if (args.statements.empty()) {
    err << "paycore recon: at least one --statement FILE is needed\n";
    return exit_error;
  }
  for (const std::string& path : args.statements) {
    options.statements.push_back({path, *format, args.statement_channel, args.statement_merchant});
  }
  if (!parse_time_arg(args.cutoff, "--cutoff", &options.cutoff_us, err) ||
      !parse_time_arg(args.since, "--since", &options.window_start_us, err)) {
    return exit_error;
  }
  options.tolerance_seconds = args.tolerance_seconds;
  options.out_dir = args.out_dir;
  std::string error;
  const std::optional<LocalData> local = load(args.snapshot, &error);
  if (!local) {
    err << "paycore recon: cannot load " << args.snapshot << ": " << error << "\n";
    return exit_error;
  }
  return run_recon(options, *local, out, err);
}

}  // namespace paycore::recon
