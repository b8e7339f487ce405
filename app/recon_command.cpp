// `paycore recon`: the reconciliation job (DESIGN.md "Reconciliation", docs/recon.md) and its
// two helpers:
//   paycore recon --snapshot FILE --statement FILE [--statement FILE...] --out DIR
//                 [--statement-format csv|alipay|wechat|auto] [--statement-merchant ID]
//                 [--statement-channel NAME] [--cutoff TIME] [--since TIME] [--tolerance-seconds N]
//   paycore recon apply REPAIRS.jsonl --server http://HOST:PORT --keys FILE [--channel-keys DIR]
//   paycore recon gen --payments N --out DIR [--seed N] [--start TIME] [--merchants N]
// Exit status 0 / 1 / 2 (DESIGN.md): bad arguments are 2 as well, so options are checked here
// rather than by CLI11 (whose own parse errors have exit codes of their own).
#include <algorithm>
#include <charconv>
#include <iostream>
#include <memory>
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

// Unknown options and stray words are collected (allow_extras) and refused here with exit 2.
bool no_extras(const CLI::App* cmd, const char* name) {
  const std::vector<std::string> extras = cmd->remaining();
  if (extras.empty()) return true;
  std::cerr << name << ": unexpected argument '" << extras.front() << "' (see " << name << " --help)\n";
  return false;
}

template <typename T>
bool parse_number(const std::string& text, const char* option, T min, T max, T* out) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    std::cerr << "paycore recon: " << option << " wants a whole number from " << min << " to " << max << ", not '"
              << text << "'\n";
    return false;
  }
  *out = value;
  return true;
}

std::optional<recon::LocalData> load_snapshot(const std::string& path, std::string* error) {
  return recon::load_local_data(path, error);
}

void add_apply(CLI::App* recon_cmd) {
  auto* cmd = recon_cmd->add_subcommand(
      "apply", "Make the automatically repairable entries of repairs.jsonl through the HTTP API (signed channel "
               "notifications); list and skip the ones that need a person");
  auto options = std::make_shared<recon::ApplyOptions>();
  auto timeout = std::make_shared<std::string>("10000");
  cmd->add_option("REPAIRS", options->repairs_path, "repairs.jsonl written by paycore recon");
  cmd->add_option("--server", options->server_url, "the paycore server: http://HOST:PORT")
      ->expected(0, 1);
  cmd->add_option("--keys", options->keys_path, "keys file (merchant secrets are used to read payments back)")
      ->expected(0, 1);
  cmd->add_option("--channel-keys", options->channel_keys_dir,
                  "where <channel>.private.pem are (default: the keys file's directory/private)")
      ->expected(0, 1);
  cmd->add_option("--timeout-ms", *timeout, "per request")->capture_default_str()
      ->expected(0, 1);
  cmd->add_flag("--dry-run", options->dry_run, "check the file and the keys, list what would be sent");
  cmd->allow_extras();
  cmd->callback([cmd, options, timeout] {
    if (!no_extras(cmd, "paycore recon apply")) {
      exit_status() = exit_usage;
      return;
    }
    if (options->repairs_path.empty() || options->server_url.empty() || options->keys_path.empty()) {
      std::cerr << "paycore recon apply: usage: paycore recon apply REPAIRS.jsonl --server http://HOST:PORT --keys FILE\n";
      exit_status() = exit_usage;
      return;
    }
    if (!parse_number(*timeout, "--timeout-ms", 1, 3'600'000, &options->timeout_ms)) {
      exit_status() = exit_usage;
      return;
    }
    exit_status() = recon::apply_repairs(*options, std::cout, std::cerr);
  });
}

void add_gen(CLI::App* recon_cmd) {
  auto* cmd = recon_cmd->add_subcommand(
      "gen", "Build reconciliation input through the state machine: DIR/snapshot.snap, DIR/statement.csv with "
             "discrepancies of every class, DIR/expected.json");
  struct Texts {
    std::string payments, seed = "1", start, merchants = "4", out;
  };
  auto texts = std::make_shared<Texts>();
  cmd->add_option("--payments", texts->payments, "payments to make (1 to 50,000,000)")
      ->expected(0, 1);
  cmd->add_option("--out", texts->out, "output directory (created)")
      ->expected(0, 1);
  cmd->add_option("--seed", texts->seed, "random seed")->capture_default_str()
      ->expected(0, 1);
  cmd->add_option("--start", texts->start, "RFC 3339 start of the 24 h the statement covers (default 2026-11-26T00:00:00Z)")
      ->expected(0, 1);
  cmd->add_option("--merchants", texts->merchants, "merchants m_001.. (the dev keys file has m_001..m_004)")
      ->capture_default_str()
      ->expected(0, 1);
  cmd->allow_extras();
  cmd->callback([cmd, texts] {
    exit_status() = exit_usage;
    if (!no_extras(cmd, "paycore recon gen")) return;
    if (texts->payments.empty() || texts->out.empty()) {
      std::cerr << "paycore recon gen: usage: paycore recon gen --payments N --out DIR\n";
      return;
    }
    recon::StateGenOptions options;
    if (!parse_number<std::uint64_t>(texts->payments, "--payments", 1, 50'000'000, &options.payments_count) ||
        !parse_number<std::uint64_t>(texts->seed, "--seed", 0, UINT64_MAX, &options.seed) ||
        !parse_number<std::uint32_t>(texts->merchants, "--merchants", 1, 999, &options.merchants_count)) {
      return;
    }
    if (!texts->start.empty()) {
      const auto start = recon::parse_rfc3339_us(texts->start);
      if (!start) {
        std::cerr << "paycore recon gen: --start '" << texts->start << "' is not an RFC 3339 time\n";
        return;
      }
      options.start_us = *start;
    }
    recon::StateGenExpected expected;
    if (auto error = recon::generate_state_files(options, texts->out, &expected)) {
      std::cerr << "paycore recon gen: " << *error << "\n";
      return;
    }
    std::cout << recon::expected_json(options, expected, texts->out);
    exit_status() = 0;
  });
}

}  // namespace

void add_recon_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "recon", "Reconcile a snapshot with channel statements: summary.json, mismatches.csv, repairs.jsonl, "
               "report.html (exit 0 all matched, 1 findings, 2 error)");
  auto args = std::make_shared<recon::ReconArgs>();
  auto tolerance = std::make_shared<std::string>("1800");
  cmd->add_option("--snapshot", args->snapshot, "snapshot file (DATA_DIR/snapshots/<lsn>.snap)")->expected(0, 1);
  cmd->add_option("--statement", args->statements, "channel statement file (repeat for several)")
      ->expected(0, 1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--out", args->out_dir, "report directory (created)")->expected(0, 1);
  cmd->add_option("--statement-format", args->statement_format, "csv, alipay, wechat or auto")->capture_default_str();
  cmd->add_option("--statement-merchant", args->statement_merchant, "our merchant id for Alipay / WeChat bills");
  cmd->add_option("--statement-channel", args->statement_channel, "channel name, if not the format's own");
  cmd->add_option("--cutoff", args->cutoff, "RFC 3339 cut-off (default: just after the latest row)");
  cmd->add_option("--since", args->since, "RFC 3339: local records before it are not expected");
  cmd->add_option("--tolerance-seconds", *tolerance, "one-sided records this close to the cut-off are within_cutoff")
      ->capture_default_str();
  add_apply(cmd);
  add_gen(cmd);
  cmd->allow_extras();
  cmd->callback([cmd, args, tolerance] {
    if (!cmd->get_subcommands().empty()) return;  // apply or gen ran
    exit_status() = exit_usage;
    if (!no_extras(cmd, "paycore recon")) return;
    const bool statement_missing =
        args->statements.empty() || std::any_of(args->statements.begin(), args->statements.end(),
                                                [](const std::string& s) { return s.empty(); });
    if (args->snapshot.empty() || statement_missing || args->out_dir.empty()) {
      std::cerr << "paycore recon: usage: paycore recon --snapshot FILE --statement FILE [--statement FILE...] "
                   "--out DIR (see paycore recon --help)\n";
      return;
    }
    if (!parse_number<std::int64_t>(*tolerance, "--tolerance-seconds", 0, 366LL * 86400, &args->tolerance_seconds)) {
      return;
    }
    exit_status() = recon::recon_main(*args, load_snapshot, std::cout, std::cerr);
  });
}

}  // namespace paycore::app
