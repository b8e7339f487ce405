// `paycore recon`: the reconciliation job (docs/design.md "Reconciliation", docs/recon.md) and its
// two helpers:
//   paycore recon --snapshot FILE [--archive DIR] --out DIR --statement FILE [per-statement options]...
//                 [--cutoff TIME] [--since TIME] [--tolerance-seconds N]
//   paycore recon apply REPAIRS.jsonl --server http://HOST:PORT --keys FILE [--channel-keys DIR]
//   paycore recon gen --payments N --out DIR [--seed N] [--start TIME] [--merchants N]
//                     [--archive-percent P]
// Exit status 0 / 1 / 2 (docs/recon.md): every argument mistake is 2. CLI11 only routes the words:
// each of the three takes every word after its name unparsed (prefix_command, no options of
// CLI11's, its help flag removed) and parses them with recon::split_args, because CLI11's own
// parse errors exit with codes of their own (109, 114, ...).
#include <charconv>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "recon/cli.hpp"
#include "recon/gen_state.hpp"
#include "recon/repair_apply.hpp"
#include "recon/snapshot_loader.hpp"
#include "recon/text.hpp"

namespace paycore::app {
namespace {

constexpr int exit_usage = 2;

constexpr std::string_view apply_usage =
    "usage: paycore recon apply REPAIRS.jsonl --server http://HOST:PORT --keys FILE\n"
    "                           [--channel-keys DIR] [--timeout-ms N] [--dry-run]\n"
    "Makes the automatically repairable entries of repairs.jsonl through the HTTP API (signed\n"
    "channel notifications); lists and skips the ones that need a person. --channel-keys defaults\n"
    "to the keys file's directory/private; --timeout-ms (per request) to 10000.\n"
    "Exit status: 0 every notification in place, 1 some not, 2 bad arguments, input, keys or server.\n";

constexpr std::string_view gen_usage =
    "usage: paycore recon gen --payments N --out DIR [--seed N] [--start TIME] [--merchants N]\n"
    "                         [--archive-percent P]\n"
    "Builds reconciliation input through the state machine: DIR/snapshot.snap, DIR/statement.csv\n"
    "with discrepancies of every class, DIR/expected.json. --payments 1 to 50,000,000; --seed\n"
    "(default 1); --start RFC 3339 start of the 24 h the statement covers (default\n"
    "2026-11-26T00:00:00Z); --merchants m_001.. (default 4, the dev keys file's m_001..m_004);\n"
    "--archive-percent P (0 to 100, default 0): the payments of the first P% of the day go to a\n"
    "new archive DIR/archive and leave the snapshot as far as the hot tier's rules let them.\n"
    "Exit status: 0 written, 2 bad arguments or a write error.\n";

// Every word after the subcommand's name, in order, CLI11 having parsed none of them.
CLI::App* words_command(CLI::App* parent, const std::string& name, const std::string& description) {
  CLI::App* cmd = parent->add_subcommand(name, description);
  cmd->prefix_command();
  cmd->allow_extras();
  cmd->set_help_flag();
  return cmd;
}

// Usage errors: "paycore recon apply: MESSAGE", exit 2.
void usage_error(std::string_view command, std::string_view message) {
  std::cerr << command << ": " << message << "\n";
  exit_status() = exit_usage;
}

constexpr recon::ArgSpec apply_specs[] = {{"--server"}, {"--keys"}, {"--channel-keys"},
                                          {"--timeout-ms"}, {"--dry-run", false}, {"--help", false}};

// The words of `paycore recon apply` into *options, or an error message.
Status parse_apply_args(std::span<const std::string> words, recon::ApplyOptions* options,
                                            bool* help) {
  std::vector<recon::ArgEvent> events;
  PAYCORE_RETURN_IF_ERROR(recon::split_args(words, apply_specs, &events));
  std::string timeout;
  for (const recon::ArgEvent& event : events) {
    if (event.name == "--help") {
      *help = true;
      return Status::ok();
    }
    if (event.name == "--dry-run") {
      options->dry_run = true;
      continue;
    }
    std::string* field = event.name.empty()              ? &options->repairs_path
                         : event.name == "--server"      ? &options->server_url
                         : event.name == "--keys"        ? &options->keys_path
                         : event.name == "--channel-keys" ? &options->channel_keys_dir
                                                         : &timeout;
    if (!field->empty()) {
      return Status::invalid_argument(event.name.empty() ? "unexpected argument '" + event.value + "' (one REPAIRS.jsonl only)"
                                : event.name + " is given twice");
    }
    *field = event.value;
  }
  if (options->repairs_path.empty()) return Status::invalid_argument("REPAIRS.jsonl is required");
  if (options->server_url.empty()) return Status::invalid_argument("--server http://HOST:PORT is required");
  if (options->keys_path.empty()) return Status::invalid_argument("--keys FILE is required");
  if (!timeout.empty()) {
    std::int64_t timeout_ms = 0;
    PAYCORE_RETURN_IF_ERROR(recon::parse_int_arg(timeout, "--timeout-ms", 1, 3'600'000, &timeout_ms));
    options->timeout_ms = static_cast<int>(timeout_ms);
  }
  return Status::ok();
}

void add_apply(CLI::App* recon_cmd) {
  CLI::App* cmd = words_command(recon_cmd, "apply",
                                "Make the automatically repairable entries of repairs.jsonl through the HTTP API "
                                "(signed channel notifications); list and skip the ones that need a person");
  cmd->callback([cmd] {
    constexpr std::string_view name = "paycore recon apply";
    const std::vector<std::string> words = cmd->remaining();
    recon::ApplyOptions options;
    bool help = false;
    const Status parsed = parse_apply_args(words, &options, &help);
    if (!parsed.is_ok()) {
      usage_error(name, parsed.message() + " (see paycore recon apply --help)");
      return;
    }
    if (help) {
      std::cout << apply_usage;
      exit_status() = 0;
      return;
    }
    exit_status() = recon::apply_repairs(options, std::cout, std::cerr);
  });
}

constexpr recon::ArgSpec gen_specs[] = {{"--payments"}, {"--out"},       {"--seed"},
                                        {"--start"},    {"--merchants"}, {"--archive-percent"},
                                        {"--help", false}};

// The words of `paycore recon gen` into *options and *out_dir, or an error message.
Status parse_gen_args(std::span<const std::string> words, recon::StateGenOptions* options,
                                          std::string* out_dir, bool* help) {
  std::vector<recon::ArgEvent> events;
  PAYCORE_RETURN_IF_ERROR(recon::split_args(words, gen_specs, &events));
  std::string payments, seed, start, merchants, archive_percent;
  for (const recon::ArgEvent& event : events) {
    if (event.name.empty()) return Status::invalid_argument("unexpected argument '" + event.value + "'");
    if (event.name == "--help") {
      *help = true;
      return Status::ok();
    }
    std::string* field = event.name == "--payments" ? &payments
                         : event.name == "--out"    ? out_dir
                         : event.name == "--seed"   ? &seed
                         : event.name == "--start"  ? &start
                         : event.name == "--merchants" ? &merchants
                                                    : &archive_percent;
    if (!field->empty()) return Status::invalid_argument(event.name + " is given twice");
    *field = event.value;
  }
  if (payments.empty()) return Status::invalid_argument("--payments N is required");
  if (out_dir->empty()) return Status::invalid_argument("--out DIR is required");
  std::int64_t value = 0;
  PAYCORE_RETURN_IF_ERROR(recon::parse_int_arg(payments, "--payments", 1, 50'000'000, &value));
  options->payments_count = static_cast<std::uint64_t>(value);
  if (!seed.empty()) {
    // The whole uint64 range: parsed apart from parse_int_arg's int64.
    std::uint64_t seed_value = 0;
    const auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), seed_value);
    if (ec != std::errc{} || end != seed.data() + seed.size()) {
      return Status::invalid_argument("--seed wants a whole number from 0 to 18446744073709551615, not " + recon::quote_for_message(seed));
    }
    options->seed = seed_value;
  }
  if (!merchants.empty()) {
    PAYCORE_RETURN_IF_ERROR(recon::parse_int_arg(merchants, "--merchants", 1, 999, &value));
    options->merchants_count = static_cast<std::uint32_t>(value);
  }
  if (!archive_percent.empty()) {
    PAYCORE_RETURN_IF_ERROR(recon::parse_int_arg(archive_percent, "--archive-percent", 0, 100, &value));
    options->archive_percent = static_cast<std::uint32_t>(value);
  }
  if (!start.empty()) {
    const auto start_us = recon::parse_statement_time_us(start);
    if (!start_us) return Status::invalid_argument("--start " + recon::quote_for_message(start) + " is not an RFC 3339 time");
    options->start_us = *start_us;
  }
  return Status::ok();
}

void add_gen(CLI::App* recon_cmd) {
  CLI::App* cmd = words_command(recon_cmd, "gen",
                                "Build reconciliation input through the state machine: DIR/snapshot.snap, "
                                "DIR/statement.csv with discrepancies of every class, DIR/expected.json");
  cmd->callback([cmd] {
    constexpr std::string_view name = "paycore recon gen";
    const std::vector<std::string> words = cmd->remaining();
    recon::StateGenOptions options;
    std::string out_dir;
    bool help = false;
    const Status parsed = parse_gen_args(words, &options, &out_dir, &help);
    if (!parsed.is_ok()) {
      usage_error(name, parsed.message() + " (see paycore recon gen --help)");
      return;
    }
    if (help) {
      std::cout << gen_usage;
      exit_status() = 0;
      return;
    }
    recon::StateGenExpected expected;
    const Status generated = recon::generate_state_files(options, out_dir, &expected);
    if (!generated.is_ok()) {
      usage_error(name, generated.message());
      return;
    }
    std::cout << recon::expected_json(options, expected, out_dir);
    exit_status() = 0;
  });
}

StatusOr<recon::LocalData> load_local(const recon::LocalSources& sources) {
  return recon::load_local_data(sources);
}

}  // namespace

void add_recon_command(CLI::App& app) {
  CLI::App* cmd = words_command(&app, "recon",
                                "Reconcile a snapshot with channel statements: summary.json, mismatches.csv, "
                                "repairs.jsonl, report.html (exit 0 all matched, 1 findings, 2 error; "
                                "paycore recon --help)");
  add_apply(cmd);
  add_gen(cmd);
  cmd->callback([cmd] {
    if (!cmd->get_subcommands().empty()) return;  // apply or gen ran
    const std::vector<std::string> words = cmd->remaining();
    recon::ReconArgs args;
    const Status parsed = recon::parse_recon_args(words, &args);
    if (!parsed.is_ok()) {
      usage_error("paycore recon", parsed.message());
      return;
    }
    if (args.help) {
      std::cout << recon::recon_usage();
      exit_status() = 0;
      return;
    }
    exit_status() = recon::recon_main(args, load_local, std::cout, std::cerr);
  });
}

}  // namespace paycore::app
