// `paycore loadgen --url http://HOST:PORT --keys FILE [...]`: the load generator (bench/loadgen).
// Prints a table to stdout (progress to stderr) and, with --json, the same figures as JSON.
// Exit status: 0 fine, 1 violations or errors were seen, 2 nothing was measured.
#include <cstdio>

#include "app/commands.hpp"
#include "bench/loadgen/loadgen.hpp"

namespace paycore::app {
void add_loadgen_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "loadgen", "Load generator: signed requests over keep-alive HTTP/1.1, open or closed loop, sweeps");
  auto options = std::make_shared<loadgen::Options>();
  auto no_setup = std::make_shared<bool>(false);
  cmd->add_option("--url", options->url, "server to load: http://HOST:PORT or https://HOST:PORT (nothing else is contacted)")->required();
  cmd->add_option("--tls-ca", options->tls_ca, "https: verify the server's certificate with this CA file (PEM)");
  cmd->add_option("--keys", options->keys_path, "keys file (operator, merchant secrets, channels)")->required();
  cmd->add_option("--requests", options->requests, "at most this many requests per run (per sweep step)")
      ->capture_default_str();
  cmd->add_option("--duration", options->duration_s, "at most this many seconds per run (per sweep step)")
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "client threads, each with its own epoll")->capture_default_str();
  cmd->add_option("--connections", options->connections, "keep-alive connections in total")->capture_default_str();
  cmd->add_option("--rate", options->rate, "open loop at this many requests/s (0: closed loop)")
      ->capture_default_str();
  cmd->add_option("--mix", options->mix, "operations by weight: pay, ext, notify, get, refund, batch, list")
      ->capture_default_str();
  cmd->add_option("--payers", options->payers, "payer accounts opened and used")->capture_default_str();
  cmd->add_option("--skew", options->skew, "Zipf exponent over payers (0: uniform)")->capture_default_str();
  cmd->add_option("--batch-size", options->batch_size, "payments per batch request")->capture_default_str();
  cmd->add_option("--amount-max", options->amount_max, "payment amounts are 1..this (minor units)")
      ->capture_default_str();
  cmd->add_option("--deposit", options->deposit, "deposit per payer at set-up (0: enough for the run)")
      ->capture_default_str();
  cmd->add_option("--currency", options->currency, "currency of every account and payment")->capture_default_str();
  cmd->add_option("--channel", options->channel, "external channel for ext/notify (default: first in keys)");
  cmd->add_option("--channel-key-dir", options->channel_key_dir,
                  "where <channel>.private.pem is (default: the keys file's directory)");
  cmd->add_option("--timeout", options->timeout_s, "seconds before a request is given up")->capture_default_str();
  cmd->add_option("--seed", options->seed, "random seed (0: from the clock)")->capture_default_str();
  cmd->add_flag("--no-setup", *no_setup, "do not open and fund accounts first (they exist already)");
  cmd->add_option("--json", options->json_path, "also write the figures as JSON to this file");
  cmd->add_flag("--sweep", options->sweep, "raise an open-loop rate step by step until p99 or errors break");
  cmd->add_option("--rate-start", options->rate_start, "sweep: first rate, requests/s")->capture_default_str();
  cmd->add_option("--rate-factor", options->rate_factor, "sweep: each step multiplies the rate by this")
      ->capture_default_str();
  cmd->add_option("--steps-max", options->steps_max, "sweep: at most this many steps")->capture_default_str();
  cmd->add_option("--p99-ms", options->p99_ms, "sweep: p99 latency target, ms")->capture_default_str();
  cmd->add_option("--error-rate-max", options->error_rate_max,
                  "sweep: errors + violations allowed per request scheduled")
      ->capture_default_str();
  cmd->callback([options, no_setup] {
    options->setup = !*no_setup;
    const loadgen::Result result = loadgen::run_loadgen(*options, stderr);
    loadgen::print_result(stdout, *options, result);
    std::fflush(stdout);
    if (!options->json_path.empty() && result.error.empty()) {
      std::string error;
      if (!loadgen::write_result_json(options->json_path, *options, result, &error)) {
        std::fprintf(stderr, "paycore loadgen: %s\n", error.c_str());
        exit_status() = 2;
        return;
      }
    }
    exit_status() = loadgen::exit_status_of(*options, result);
  });
}
}  // namespace paycore::app
