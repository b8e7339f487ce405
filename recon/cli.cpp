#include "recon/cli.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "recon/recon.hpp"
#include "recon/text.hpp"

namespace paycore::recon {
namespace {

constexpr std::size_t words_max = 10'000;  // a limit on everything

bool parse_time_arg(const std::string& text, const char* name, std::optional<std::int64_t>* out,
                    std::ostream& err) {
  if (text.empty()) return true;
  const auto time = parse_statement_time_us(text);
  if (!time) {
    err << "paycore recon: " << name << " " << quote_for_message(text)
        << " is not an RFC 3339 time (2026-11-26T00:00:00Z)\n";
    return false;
  }
  *out = *time;
  return true;
}

constexpr std::array<ArgSpec, 11> recon_specs = {{
    {"--snapshot"},
    {"--archive"},
    {"--statement"},
    {"--out"},
    {"--statement-format"},
    {"--statement-channel"},
    {"--statement-merchant"},
    {"--cutoff"},
    {"--since"},
    {"--tolerance-seconds"},
    {"--help", false},
}};

// The three options that may be given per statement or as every statement's default.
enum PerStatement : std::size_t { per_format, per_channel, per_merchant, per_statement_count };
constexpr std::array<std::string_view, per_statement_count> per_statement_names = {
    "--statement-format", "--statement-channel", "--statement-merchant"};

std::optional<std::size_t> per_statement_index(std::string_view name) {
  for (std::size_t i = 0; i < per_statement_names.size(); ++i) {
    if (per_statement_names[i] == name) return i;
  }
  return std::nullopt;
}

// Sets a value that may be given once; an error names the option and where.
Status set_once(std::string* field, const ArgEvent& event, std::string_view where) {
  if (!field->empty()) {
    return Status::invalid_argument(std::string(event.name) + " is given twice" +
                                    std::string(where) + " ('" + *field + "' and '" + event.value +
                                    "')");
  }
  *field = event.value;
  return Status::ok();
}

// One per-statement option into `target` (a statement, or the defaults before the first).
Status set_per_statement(std::size_t which, const ArgEvent& event, StatementArgs* target,
                         std::string_view where) {
  switch (which) {
    case per_format: return set_once(&target->format, event, where);
    case per_channel: return set_once(&target->channel, event, where);
    default: break;
  }
  std::vector<std::string>& merchants = target->merchant_ids;
  if (std::find(merchants.begin(), merchants.end(), event.value) != merchants.end()) {
    return Status::invalid_argument("--statement-merchant " + event.value + " is given twice" +
                                    std::string(where));
  }
  merchants.push_back(event.value);
  return Status::ok();
}

// The snapshot and the archive from --since on (docs/recon.md "Cold payments").
LocalSources local_sources(const ReconArgs& args, const ReconOptions& options, std::ostream& err) {
  LocalSources sources;
  sources.snapshot_path = args.snapshot;
  sources.archive_dir = args.archive;
  sources.archive_from_us = options.window_start_us;
  if (!args.archive.empty() && !options.window_start_us) {
    err << "paycore recon: no --since: reading the whole archive " << args.archive
        << " (slow on a large one)\n";
  }
  return sources;
}

}  // namespace

Status split_args(std::span<const std::string> words, std::span<const ArgSpec> specs,
                  std::vector<ArgEvent>* events) {
  events->clear();
  if (words.size() > words_max)
    return Status::invalid_argument("more than " + std::to_string(words_max) + " arguments");
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "-h") {
      events->push_back({"--help", ""});
      continue;
    }
    if (word == "--")
      return Status::invalid_argument("unexpected argument '--' (no option here needs it)");
    if (!word.starts_with("-") || word == "-") {
      events->push_back({"", word});
      continue;
    }
    const std::size_t equals = word.find('=');
    const std::string name = word.substr(0, equals);
    const auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const ArgSpec& s) { return s.name == name; });
    if (spec == specs.end()) return Status::invalid_argument("unknown option '" + name + "'");
    if (!spec->takes_value) {
      if (equals != std::string::npos) return Status::invalid_argument(name + " takes no value");
      events->push_back({name, ""});
      continue;
    }
    std::string value;
    if (equals != std::string::npos) {
      value = word.substr(equals + 1);
    } else if (i + 1 < words.size() && !words[i + 1].starts_with("--")) {
      value = words[++i];
    }
    if (value.empty()) return Status::invalid_argument(name + " needs a value");
    events->push_back({name, std::move(value)});
  }
  return Status::ok();
}

Status parse_int_arg(std::string_view text, std::string_view option, std::int64_t min,
                     std::int64_t max, std::int64_t* out) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
      value > max) {
    return Status::invalid_argument(std::string(option) + " wants a whole number from " +
                                    std::to_string(min) + " to " + std::to_string(max) + ", not " +
                                    quote_for_message(text));
  }
  *out = value;
  return Status::ok();
}

Status parse_recon_args(std::span<const std::string> words, ReconArgs* args) {
  *args = ReconArgs{};
  if (words.empty()) {
    return Status::invalid_argument(
        "usage: paycore recon --snapshot FILE --statement FILE [--statement FILE...] --out DIR "
        "(see paycore recon --help)");
  }
  std::vector<ArgEvent> events;
  PAYCORE_RETURN_IF_ERROR(split_args(words, recon_specs, &events));
  StatementArgs defaults;
  std::array<bool, per_statement_count> as_default{}, as_own{};
  std::string tolerance;
  for (const ArgEvent& event : events) {
    if (event.name.empty())
      return Status::invalid_argument("unexpected argument '" + event.value + "'");
    if (event.name == "--help") {
      args->help = true;
      return Status::ok();
    }
    if (event.name == "--statement") {
      args->statements.push_back({event.value, "", "", {}});
    } else if (const auto which = per_statement_index(event.name)) {
      const bool own = !args->statements.empty();
      (own ? as_own : as_default)[*which] = true;
      if (as_own[*which] && as_default[*which]) {
        return Status::invalid_argument("ambiguous: " + event.name +
                                        " is given both before the first --statement (the default "
                                        "of every statement) and after a "
                                        "--statement (for that one only); give it once before all "
                                        "of them, or after each --statement "
                                        "it belongs to");
      }
      const std::string where = own ? " for --statement " + args->statements.back().path
                                    : " before the first --statement";
      PAYCORE_RETURN_IF_ERROR(
          set_per_statement(*which, event, own ? &args->statements.back() : &defaults, where));
    } else {
      std::string* field = event.name == "--snapshot" ? &args->snapshot
                           : event.name == "--archive" ? &args->archive
                           : event.name == "--out"    ? &args->out_dir
                           : event.name == "--cutoff" ? &args->cutoff
                           : event.name == "--since"  ? &args->since
                                                      : &tolerance;
      PAYCORE_RETURN_IF_ERROR(set_once(field, event, ""));
    }
  }
  for (StatementArgs& statement : args->statements) {
    if (statement.format.empty()) statement.format = defaults.format;
    if (statement.channel.empty()) statement.channel = defaults.channel;
    if (statement.merchant_ids.empty()) statement.merchant_ids = defaults.merchant_ids;
  }
  if (args->snapshot.empty())
    return Status::invalid_argument("--snapshot FILE is required (see paycore recon --help)");
  if (args->statements.empty())
    return Status::invalid_argument(
        "at least one --statement FILE is required (see paycore recon --help)");
  if (args->out_dir.empty())
    return Status::invalid_argument("--out DIR is required (see paycore recon --help)");
  if (!tolerance.empty()) {
    return parse_int_arg(tolerance, "--tolerance-seconds", 0, 366LL * 86400,
                         &args->tolerance_seconds);
  }
  return Status::ok();
}

std::string_view recon_usage() {
  return R"(paycore recon: reconcile a snapshot with channel statements (docs/recon.md)

  paycore recon --snapshot FILE [--archive DIR] --out DIR
                --statement FILE [--statement-format csv|alipay|wechat|auto]
                                 [--statement-channel NAME] [--statement-merchant ID]...
                [--statement FILE [...]]...
                [--cutoff TIME] [--since TIME] [--tolerance-seconds N]
  paycore recon apply REPAIRS.jsonl --server http://HOST:PORT --keys FILE
                [--channel-keys DIR] [--timeout-ms N] [--dry-run]
  paycore recon gen --payments N --out DIR [--seed N] [--start TIME] [--merchants N]
                    [--archive-percent P]

--archive DIR is the data directory's archive (DATA_DIR/archive), read beside a running
server: the cold payments, which a snapshot no longer holds. A snapshot whose payments have
left memory is refused without it. With --since, the archive is read from an hour before it;
without, the whole archive is read (slow on a large one).

The --statement-* options after a --statement FILE belong to that file; given before the
first --statement they apply to every statement (not both). An Alipay or WeChat bill is one
merchant account's: it needs its --statement-merchant, and only that merchant's payments of
the channel are expected on it. A csv without --statement-merchant covers every merchant of
the channels it names; with it, only those merchants (rows or none).

Exit status: 0 everything matched, 1 findings or malformed rows, 2 error (any argument
mistake included).
)";
}

int recon_main(const ReconArgs& args, const LocalLoader& load, std::ostream& out,
               std::ostream& err) {
  ReconOptions options;
  if (args.statements.empty()) {
    err << "paycore recon: at least one --statement FILE is needed\n";
    return exit_error;
  }
  for (const StatementArgs& statement : args.statements) {
    const auto format =
        statement_format_from_name(statement.format.empty() ? "auto" : statement.format);
    if (!format) {
      err << "paycore recon: --statement-format " << quote_for_message(statement.format) << " (for "
          << statement.path << ") must be csv, alipay, wechat or auto\n";
      return exit_error;
    }
    // Checked here as well as by the reader, so that the mistake is told before a snapshot
    // that may take seconds to load.
    if (*format != StatementFormat::csv && *format != StatementFormat::auto_detect &&
        statement.merchant_ids.size() > 1) {
      err << "paycore recon: a " << statement_format_name(*format) << " bill (" << statement.path
          << ") is one merchant account's: give it one --statement-merchant, not "
          << statement.merchant_ids.size() << "\n";
      return exit_error;
    }
    options.statements.push_back(
        {statement.path, *format, statement.channel, statement.merchant_ids});
  }
  if (!parse_time_arg(args.cutoff, "--cutoff", &options.cutoff_us, err) ||
      !parse_time_arg(args.since, "--since", &options.window_start_us, err)) {
    return exit_error;
  }
  // An empty window would match nothing and report everything as fine.
  if (!args.cutoff.empty() && !args.since.empty() && options.window_start_us >= options.cutoff_us) {
    err << "paycore recon: --since " << args.since << " is not before --cutoff " << args.cutoff
        << "\n";
    return exit_error;
  }
  // Before the snapshot, which may take seconds to load: a statement that cannot be opened, or
  // one given twice (its rows would all be duplicate_channel_row).
  std::vector<std::filesystem::path> seen_paths;
  for (const StatementArgs& statement : args.statements) {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(
        std::fopen(statement.path.c_str(), "rb"), &std::fclose);
    if (!file) {
      err << "paycore recon: cannot open statement " << statement.path << ": "
          << std::strerror(errno) << "\n";
      return exit_error;
    }
    std::error_code ignored;
    const std::filesystem::path canonical =
        std::filesystem::weakly_canonical(statement.path, ignored);
    if (std::find(seen_paths.begin(), seen_paths.end(), canonical) != seen_paths.end()) {
      err << "paycore recon: statement " << statement.path << " is given twice\n";
      return exit_error;
    }
    seen_paths.push_back(canonical);
  }
  options.tolerance_seconds = args.tolerance_seconds;
  options.out_dir = args.out_dir;
  const StatusOr<LocalData> local = load(local_sources(args, options, err));
  if (!local.is_ok()) {
    err << "paycore recon: cannot load " << args.snapshot << ": " << local.status().message()
        << "\n";
    return exit_error;
  }
  return run_recon(options, *local, out, err);
}

}  // namespace paycore::recon
