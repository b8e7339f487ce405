#pragma once
// `paycore loadgen`: set-up (payer and merchant accounts, deposits), then one run or a sweep
// of open-loop runs at rising rates, reported as a table and as JSON.
//
// Sweep: step k offers rate_start * rate_factor^k requests/s (open loop, coordinated omission
// corrected) for `duration` (or `requests`, whichever ends first). A step holds when its p99
// latency is within p99_ms, errors and violations stay within error_rate_max of the requests,
// and the answered rate reaches 90% of the offered one. The sweep stops at the first step that
// does not hold; the highest rate that held is the result.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen/engine.hpp"

namespace paycore::loadgen {

struct Options {
  std::string url;
  std::string tls_ca;  // https: the CA file to verify the server with (empty: not verified)
  std::string keys_path;
  std::string mix{mix_default};
  std::uint64_t requests = 100'000;  // per run (per sweep step)
  double duration_s = 10.0;          // per run (per sweep step)
  unsigned threads = 1;
  unsigned connections = 16;         // in total, shared out over the threads
  double rate = 0.0;                 // requests/s; 0 = closed loop
  std::uint64_t payers = 1000;
  double skew = 0.0;                 // Zipf exponent over payers; 0 = uniform
  std::uint32_t batch_size = 10;
  std::int64_t amount_max = 10'000;
  std::int64_t deposit = 0;          // per payer; 0 = enough for any bounded run
  std::string currency = "CNY";
  std::string channel;               // default: the first channel in the keys file
  std::string channel_key_dir;       // default: the keys file's directory
  double timeout_s = 10.0;
  std::uint64_t seed = 0;            // 0 = from the clock
  bool setup = true;
  std::string json_path;
  // Sweep.
  bool sweep = false;
  double rate_start = 500.0;
  double rate_factor = 1.25;
  unsigned steps_max = 30;
  double p99_ms = 10.0;
  double error_rate_max = 0.0;
};

struct StepResult {
  double offered_rate = 0.0;  // 0 for a closed-loop run
  RunStats stats;
  bool held = true;
  std::string reason;  // why it did not hold
};

struct Result {
  std::string error;  // set-up or usage error: nothing was measured
  std::string run_id;
  std::string mix;
  RunStats setup;
  std::vector<StepResult> steps;
  std::optional<double> highest_rate_held;  // sweep only
};

// Does everything but printing.
[[nodiscard]] Result run_loadgen(const Options& options, std::FILE* progress = nullptr);

// The readable table of a result.
void print_result(std::FILE* out, const Options& options, const Result& result);
// The JSON form; false (with `error`) if the file cannot be written.
[[nodiscard]] bool write_result_json(const std::string& path, const Options& options,
                                     const Result& result, std::string* error);

// 0 ok, 1 violations or errors were seen (a single run) / violations (a sweep), 2 not run.
int exit_status_of(const Options& options, const Result& result);

}  // namespace paycore::loadgen
