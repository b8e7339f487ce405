#include "bench/loadgen/loadgen.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "net/response.hpp"
#include "base/assert.hpp"
#include "base/hex.hpp"
#include "base/status.hpp"
#include "core/money.hpp"

namespace paycore::loadgen {
namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;
// Set-up is bounded by its request count; this only guards against a server that hangs.
constexpr std::int64_t setup_duration_ns = 600 * ns_per_s;
constexpr double step_rate_held_fraction = 0.9;

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  *ok = static_cast<bool>(in);
  return text.str();
}

std::string make_run_id(std::uint64_t seed) {
  std::uint64_t mixed = seed ^ static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  Rng rng(mixed);
  std::string id;
  for (int i = 0; i < 8; ++i) id += hex_digits[rng.below(16)];
  return id;
}

struct Prepared {
  Target target;
  WorkloadConfig workload;
  std::unique_ptr<ZipfSampler> payers;
};

// The options' ranges; each refusal names the flag it is about.
Status check_options(const Options& options) {
  const auto refuse = [](const char* message) { return Status::invalid_argument(message); };
  if (options.threads == 0 || options.threads > 64) return refuse("--threads must be 1..64");
  if (options.connections < options.threads || options.connections > 10'000) {
    return refuse("--connections must be at least --threads and at most 10000");
  }
  if (options.payers == 0 || options.payers > zipf_ranks_max) return refuse("--payers must be 1..1000000");
  if (!(options.skew >= 0.0 && options.skew <= 10.0)) return refuse("--skew must be 0..10");
  if (options.batch_size == 0 || options.batch_size > batch_size_max) return refuse("--batch-size must be 1..1000");
  if (options.amount_max < 1 || options.amount_max > 1'000'000'000) return refuse("--amount-max must be 1..1e9");
  if (options.requests == 0) return refuse("--requests must be positive");
  if (!(options.duration_s > 0.0 && options.duration_s <= 86'400.0)) return refuse("--duration must be 0..86400 s");
  if (!(options.rate >= 0.0 && options.rate <= 10'000'000.0)) return refuse("--rate must be 0..1e7");
  if (!(options.timeout_s > 0.0 && options.timeout_s <= 3600.0)) return refuse("--timeout must be 0..3600 s");
  if (options.sweep && !(options.rate_start > 0.0 && options.rate_factor > 1.0 && options.p99_ms > 0.0)) {
    return refuse("--sweep needs --rate-start > 0, --rate-factor > 1 and --p99-ms > 0");
  }
  return Status::ok();
}

// The channel of ext/notify requests: --channel, else the keys file's first channel.
Status choose_channel(const Options& options, WorkloadConfig& w) {
  if (!options.channel.empty()) {
    if (w.keys->find_channel(options.channel) == nullptr) {
      return Status::invalid_argument("channel '" + options.channel + "' is not in " + options.keys_path);
    }
    w.channel = options.channel;
    return Status::ok();
  }
  if (w.keys->channels().empty()) {
    return Status::invalid_argument("the mix has ext/notify but " + options.keys_path + " names no channel");
  }
  w.channel = std::string(w.keys->channels().front().name.view());
  return Status::ok();
}

// The channel's private key, to sign notifications as the channel would.
Status load_channel_key(const Options& options, WorkloadConfig& w) {
  // `paycore keys` and `paycore serve` put private keys in <keys dir>/private/; keys_init
  // callers may put them next to the keys file. Look in both unless told where.
  std::vector<std::string> dirs;
  if (!options.channel_key_dir.empty()) {
    dirs.push_back(options.channel_key_dir);
  } else {
    const std::size_t slash = options.keys_path.rfind('/');
    const std::string keys_dir = slash == std::string::npos ? "." : options.keys_path.substr(0, slash);
    dirs = {keys_dir, keys_dir + "/private"};
  }
  std::string tried;
  for (const std::string& dir : dirs) {
    const std::string path = dir + "/" + w.channel + ".private.pem";
    bool read_ok = false;
    const std::string pem = read_file(path, &read_ok);
    w.channel_private_key = read_ok ? auth::pem_private_key(pem) : nullptr;
    if (w.channel_private_key != nullptr) return Status::ok();
    tried += (tried.empty() ? "" : " or ") + path;
  }
  return Status::not_found("notify needs the channel's private key: cannot read " + tried +
                           " (paycore keys writes it; or --channel-key-dir)");
}

// The workload's fixed part: keys, mix, amounts, ids.
Status configure_workload(const Options& options, const Target& target, const Mix& mix,
                          std::shared_ptr<const auth::Keys> keys, WorkloadConfig& w) {
  w.keys = std::move(keys);
  w.mix = mix;
  w.payers_count = options.payers;
  w.batch_size = options.batch_size;
  w.amount_max = options.amount_max;
  // Enough for every payment of any bounded run, and the total stays far inside int64.
  const std::int64_t deposit_cap = std::min<std::int64_t>(
      amount_max_default, static_cast<std::int64_t>(4'000'000'000'000'000'000 / options.payers));
  w.deposit_amount = options.deposit > 0 ? options.deposit : std::min<std::int64_t>(1'000'000'000'000, deposit_cap);
  if (w.deposit_amount > deposit_cap) return Status::invalid_argument("--deposit too large for that many payers");
  w.currency = options.currency;
  w.host_header = target.host_header();
  w.seed = options.seed != 0 ? options.seed : std::random_device{}();
  w.run_id = make_run_id(w.seed);
  bool has_merchant = false;
  for (const auto& principal : w.keys->principals()) {
    has_merchant = has_merchant || principal.kind == auth::PrincipalKind::merchant;
  }
  if (!has_merchant) return Status::invalid_argument(options.keys_path + ": no merchant to send payments as");
  return Status::ok();
}

Status prepare(const Options& options, Prepared* out) {
  PAYCORE_RETURN_IF_ERROR(check_options(options));
  std::string error;
  if (!parse_url(options.url, &out->target, &error)) return Status::invalid_argument(error);
  const MixParseResult mix = parse_mix(options.mix);
  if (!mix.ok()) return Status::invalid_argument(mix.error);
  StatusOr<std::shared_ptr<const auth::Keys>> keys = auth::keys_load(options.keys_path);
  if (!keys.is_ok()) return keys.status();
  WorkloadConfig& w = out->workload;
  PAYCORE_RETURN_IF_ERROR(configure_workload(options, out->target, mix.mix, std::move(*keys), w));
  if (w.mix.weight(Op::ext) > 0 || w.mix.weight(Op::notify) > 0) {
    PAYCORE_RETURN_IF_ERROR(choose_channel(options, w));
  }
  if (w.mix.weight(Op::notify) > 0) PAYCORE_RETURN_IF_ERROR(load_channel_key(options, w));
  out->payers = std::make_unique<ZipfSampler>(options.payers, options.skew);
  return Status::ok();
}

// Runs `threads` engines at once, each with its share of connections, requests and rate.
RunStats run_threads(const Options& options, const Prepared& prepared, std::uint64_t requests_max,
                     std::int64_t duration_ns, double rate, std::vector<Workload>& workloads) {
  const unsigned threads = static_cast<unsigned>(workloads.size());
  std::vector<EngineConfig> configs(threads);
  std::vector<RunStats> stats(threads);
  for (unsigned t = 0; t < threads; ++t) {
    EngineConfig& c = configs[t];
    c.target = prepared.target;
    c.connections = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    c.requests_max = requests_max == UINT64_MAX
                         ? UINT64_MAX
                         : requests_max / threads + (t < requests_max % threads ? 1 : 0);
    c.duration_ns = duration_ns;
    c.rate_per_s = rate / threads;
    c.tls_ca_file = options.tls_ca;
    c.timeout_ns = static_cast<std::int64_t>(options.timeout_s * 1e9);
  }
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] { stats[t] = run_engine(configs[t], workloads[t]); });
  }
  stats[0] = run_engine(configs[0], workloads[0]);
  for (auto& thread : pool) thread.join();
  RunStats total;
  for (const RunStats& s : stats) total.merge(s);
  return total;
}

std::string setup_problem(const RunStats& stats) {
  if (stats.violations_total() == 0 && stats.errors_total() == 0) return {};
  std::string text = "set-up failed:";
  for (const auto& [reason, count] : stats.errors) text += " " + reason + " x" + std::to_string(count) + ";";
  for (const auto& [reason, count] : stats.violations) text += " " + reason + " x" + std::to_string(count) + ";";
  for (const auto& [status, count] : stats.statuses) text += " [" + status + " x" + std::to_string(count) + "]";
  return text;
}

double answered_rate(const RunStats& stats) {
  return stats.elapsed_ns > 0 ? static_cast<double>(stats.completed) * 1e9 / static_cast<double>(stats.elapsed_ns) : 0.0;
}

void judge_step(const Options& options, StepResult* step) {
  const RunStats& s = step->stats;
  const double p99_ms = static_cast<double>(s.latency.percentile(99.0)) / 1e6;
  const std::uint64_t bad = s.errors_total() + s.violations_total();
  const double bad_allowed = options.error_rate_max * static_cast<double>(std::max<std::uint64_t>(1, s.scheduled));
  char text[160];
  if (s.completed == 0) {
    step->held = false;
    step->reason = "no answers";
  } else if (p99_ms > options.p99_ms) {
    std::snprintf(text, sizeof text, "p99 %.3f ms > target %.3f ms", p99_ms, options.p99_ms);
    step->held = false;
    step->reason = text;
  } else if (static_cast<double>(bad) > bad_allowed) {
    std::snprintf(text, sizeof text, "%llu errors/violations (allowed %.0f)",
                  static_cast<unsigned long long>(bad), bad_allowed);
    step->held = false;
    step->reason = text;
  } else if (answered_rate(s) < step_rate_held_fraction * step->offered_rate) {
    std::snprintf(text, sizeof text, "answered %.0f/s < 90%% of offered %.0f/s", answered_rate(s),
                  step->offered_rate);
    step->held = false;
    step->reason = text;
  }
}

}  // namespace

Result run_loadgen(const Options& options, std::FILE* progress) {
  Result result;
  Prepared prepared;
  if (const Status prepared_ok = prepare(options, &prepared); !prepared_ok.is_ok()) {
    result.error = prepared_ok.message();
    return result;
  }
  result.run_id = prepared.workload.run_id;
  result.mix = prepared.workload.mix.to_string();
  std::vector<Workload> workloads;
  workloads.reserve(options.threads);
  for (unsigned t = 0; t < options.threads; ++t) {
    workloads.emplace_back(prepared.workload, *prepared.payers, t, options.threads);
  }
  if (options.setup) {
    if (progress != nullptr) {
      std::fprintf(progress,
                   "set-up: opening %llu payer accounts, depositing %lld each and granting each a "
                   "mandate for every merchant\n",
                   static_cast<unsigned long long>(options.payers),
                   static_cast<long long>(prepared.workload.deposit_amount));
    }
    for (const auto phase : {Workload::Phase::open_accounts, Workload::Phase::deposits,
                             Workload::Phase::mandates}) {
      for (Workload& w : workloads) w.set_phase(phase);
      result.setup.merge(run_threads(options, prepared, UINT64_MAX, setup_duration_ns, 0.0, workloads));
      result.error = setup_problem(result.setup);
      if (!result.error.empty()) return result;
    }
  }
  for (Workload& w : workloads) w.set_phase(Workload::Phase::load);
  const auto duration_ns = static_cast<std::int64_t>(options.duration_s * 1e9);
  if (!options.sweep) {
    StepResult step;
    step.offered_rate = options.rate;
    step.stats = run_threads(options, prepared, options.requests, duration_ns, options.rate, workloads);
    result.steps.push_back(std::move(step));
    return result;
  }
  double rate = options.rate_start;
  for (unsigned k = 0; k < options.steps_max; ++k, rate *= options.rate_factor) {
    StepResult step;
    step.offered_rate = std::round(rate);
    step.stats = run_threads(options, prepared, options.requests, duration_ns, step.offered_rate, workloads);
    judge_step(options, &step);
    if (progress != nullptr) {
      std::fprintf(progress, "sweep: %8.0f/s offered, %8.0f/s answered, p99 %9.3f ms: %s\n",
                   step.offered_rate, answered_rate(step.stats),
                   static_cast<double>(step.stats.latency.percentile(99.0)) / 1e6,
                   step.held ? "held" : step.reason.c_str());
      std::fflush(progress);
    }
    const bool held = step.held;
    if (held) result.highest_rate_held = step.offered_rate;
    result.steps.push_back(std::move(step));
    if (!held) break;
  }
  return result;
}

int exit_status_of(const Options& options, const Result& result) {
  if (!result.error.empty()) return 2;
  for (const StepResult& step : result.steps) {
    if (step.stats.violations_total() > 0) return 1;
    if (!options.sweep && step.stats.errors_total() > 0) return 1;
  }
  return 0;
}

// ---- reporting ----

namespace {
double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

void print_latency_row(std::FILE* out, std::string_view name, std::uint64_t count, const Histogram& h) {
  std::fprintf(out, "  %-8.*s %9llu", static_cast<int>(name.size()), name.data(),
               static_cast<unsigned long long>(count));
  for (double p : report_percentiles) std::fprintf(out, " %9.3f", ms(h.percentile(p)));
  std::fprintf(out, " %9.3f\n", ms(h.max()));
}

void print_stats(std::FILE* out, const RunStats& s) {
  const double seconds = static_cast<double>(s.elapsed_ns) / 1e9;
  std::fprintf(out, "requests: %llu sent, %llu answered in %.2f s = %.1f/s; payments accepted %.1f/s\n",
               static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.completed),
               seconds, answered_rate(s),
               seconds > 0 ? static_cast<double>(s.payments_accepted) / seconds : 0.0);
  std::fprintf(out, "latency in ms, from the intended send time (coordinated omission corrected):\n");
  std::fprintf(out, "  %-8s %9s %9s %9s %9s %9s %9s %9s\n", "op", "count", "p50", "p90", "p99",
               "p99.9", "p99.99", "max");
  print_latency_row(out, "all", s.latency.count(), s.latency);
  for (std::size_t i = 0; i < ops_count; ++i) {
    if (s.ops[i].completed == 0) continue;
    print_latency_row(out, op_name(static_cast<Op>(i)), s.ops[i].latency.count(), s.ops[i].latency);
  }
  print_latency_row(out, "service", s.service.count(), s.service);
  std::fprintf(out, "  (service: from the actual send; equal to the above in a closed loop)\n");
  std::fprintf(out, "outcomes:  ");
  for (std::size_t i = 0; i < ops_count; ++i) {
    const OpStats& op = s.ops[i];
    if (op.completed == 0) continue;
    const std::string_view name = op_name(static_cast<Op>(i));
    std::fprintf(out, " %.*s ok %llu refused %llu error %llu violation %llu;", static_cast<int>(name.size()),
                 name.data(), static_cast<unsigned long long>(op.ok), static_cast<unsigned long long>(op.refused),
                 static_cast<unsigned long long>(op.errors), static_cast<unsigned long long>(op.violations));
  }
  std::fprintf(out, "\nstatuses: ");
  for (const auto& [status, count] : s.statuses) {
    std::fprintf(out, " [%s] %llu", status.c_str(), static_cast<unsigned long long>(count));
  }
  std::fprintf(out, "\nerrors %llu (timeouts %llu, transport %llu, unsent %llu), violations %llu, replayed %llu\n",
               static_cast<unsigned long long>(s.errors_total()), static_cast<unsigned long long>(s.timeouts),
               static_cast<unsigned long long>(s.transport_errors), static_cast<unsigned long long>(s.unsent),
               static_cast<unsigned long long>(s.violations_total()), static_cast<unsigned long long>(s.replayed));
  for (const auto& [reason, count] : s.errors) {
    std::fprintf(out, "  error: %s x%llu\n", reason.c_str(), static_cast<unsigned long long>(count));
  }
  for (const auto& [reason, count] : s.violations) {
    std::fprintf(out, "  VIOLATION: %s x%llu\n", reason.c_str(), static_cast<unsigned long long>(count));
  }
}
}  // namespace

void print_result(std::FILE* out, const Options& options, const Result& result) {
  if (!result.error.empty()) {
    std::fprintf(out, "paycore loadgen: %s\n", result.error.c_str());
    return;
  }
  std::fprintf(out, "paycore loadgen %s  run %s  mix %s  threads %u  connections %u  payers %llu (skew %.2f)\n",
               options.url.c_str(), result.run_id.c_str(), result.mix.c_str(), options.threads,
               options.connections, static_cast<unsigned long long>(options.payers), options.skew);
  if (options.sweep) {
    std::fprintf(out, "sweep: p99 target %.3f ms\n", options.p99_ms);
    std::fprintf(out, "  %10s %10s %10s %9s %9s %9s %9s %7s  %s\n", "offered/s", "answered/s", "payments/s",
                 "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "verdict");
    for (const StepResult& step : result.steps) {
      const RunStats& s = step.stats;
      const double seconds = static_cast<double>(s.elapsed_ns) / 1e9;
      std::fprintf(out, "  %10.0f %10.1f %10.1f %9.3f %9.3f %9.3f %9.3f %7llu  %s\n", step.offered_rate,
                   answered_rate(s), seconds > 0 ? static_cast<double>(s.payments_accepted) / seconds : 0.0,
                   ms(s.latency.percentile(50)), ms(s.latency.percentile(99)), ms(s.latency.percentile(99.9)),
                   ms(s.latency.max()), static_cast<unsigned long long>(s.errors_total() + s.violations_total()),
                   step.held ? "held" : step.reason.c_str());
    }
    if (result.highest_rate_held) {
      std::fprintf(out, "highest rate that held: %.0f requests/s\n", *result.highest_rate_held);
    } else {
      std::fprintf(out, "no rate held (start lower: --rate-start)\n");
    }
    if (!result.steps.empty()) {
      std::fprintf(out, "\nlast step in detail:\n");
      print_stats(out, result.steps.back().stats);
    }
    return;
  }
  const StepResult& step = result.steps.front();
  if (step.offered_rate > 0) {
    std::fprintf(out, "open loop at %.0f requests/s (%llu scheduled)\n", step.offered_rate,
                 static_cast<unsigned long long>(step.stats.scheduled));
  } else {
    std::fprintf(out, "closed loop\n");
  }
  print_stats(out, step.stats);
}

namespace {
void json_double(net::JsonWriter& json, std::string_view key, double value) {
  char text[64];
  const int n = std::snprintf(text, sizeof text, "%.6g", std::isfinite(value) ? value : 0.0);
  json.key(key).raw(std::string_view(text, static_cast<std::size_t>(n)));
}

void json_u64(net::JsonWriter& json, std::string_view key, std::uint64_t value) {
  json.field(key, static_cast<std::int64_t>(std::min<std::uint64_t>(value, INT64_MAX)));
}

void json_histogram(net::JsonWriter& json, std::string_view key, const Histogram& h) {
  json.key(key).begin_object();
  json_u64(json, "count", h.count());
  json_double(json, "p50", ms(h.percentile(50)));
  json_double(json, "p90", ms(h.percentile(90)));
  json_double(json, "p99", ms(h.percentile(99)));
  json_double(json, "p99_9", ms(h.percentile(99.9)));
  json_double(json, "p99_99", ms(h.percentile(99.99)));
  json_double(json, "max", ms(h.max()));
  json_double(json, "mean", h.mean() / 1e6);
  json.end_object();
}

void json_counts(net::JsonWriter& json, std::string_view key, const std::map<std::string, std::uint64_t>& counts) {
  json.key(key).begin_object();
  for (const auto& [name, count] : counts) json_u64(json, name, count);
  json.end_object();
}

void json_stats(net::JsonWriter& json, const RunStats& s) {
  const double seconds = static_cast<double>(s.elapsed_ns) / 1e9;
  json_u64(json, "sent", s.sent);
  json_u64(json, "answered", s.completed);
  json_u64(json, "scheduled", s.scheduled);
  json_u64(json, "unsent", s.unsent);
  json_u64(json, "timeouts", s.timeouts);
  json_u64(json, "transport_errors", s.transport_errors);
  json_u64(json, "errors", s.errors_total());
  json_u64(json, "violations", s.violations_total());
  json_u64(json, "replayed", s.replayed);
  json_u64(json, "payments_accepted", s.payments_accepted);
  json_double(json, "elapsed_s", seconds);
  json_double(json, "answered_per_s", answered_rate(s));
  json_double(json, "payments_per_s", seconds > 0 ? static_cast<double>(s.payments_accepted) / seconds : 0.0);
  json_histogram(json, "latency_ms", s.latency);
  json_histogram(json, "service_ms", s.service);
  json.key("ops").begin_object();
  for (std::size_t i = 0; i < ops_count; ++i) {
    const OpStats& op = s.ops[i];
    if (op.completed == 0) continue;
    json.key(op_name(static_cast<Op>(i))).begin_object();
    json_u64(json, "answered", op.completed);
    json_u64(json, "ok", op.ok);
    json_u64(json, "refused", op.refused);
    json_u64(json, "errors", op.errors);
    json_u64(json, "violations", op.violations);
    json_histogram(json, "latency_ms", op.latency);
    json.end_object();
  }
  json.end_object();
  json_counts(json, "statuses", s.statuses);
  json_counts(json, "errors_by_reason", s.errors);
  json_counts(json, "violations_by_reason", s.violations);
}
}  // namespace

bool write_result_json(const std::string& path, const Options& options, const Result& result,
                       std::string* error) {
  net::OutBuffer buffer(64 * 1024 * 1024);
  net::JsonWriter json(buffer);
  json.begin_object();
  json.field("url", options.url);
  json.field("run_id", result.run_id);
  json.field("mode", options.sweep ? "sweep" : (options.rate > 0 ? "open" : "closed"));
  json.field("mix", result.mix);
  json_u64(json, "threads", options.threads);
  json_u64(json, "connections", options.connections);
  json_u64(json, "payers", options.payers);
  json_double(json, "skew", options.skew);
  json_u64(json, "batch_size", options.batch_size);
  json_u64(json, "requests_max", options.requests);
  json_double(json, "duration_s", options.duration_s);
  json_double(json, "p99_target_ms", options.p99_ms);
  if (!result.error.empty()) json.field("error", result.error);
  json.key("setup").begin_object();
  json_stats(json, result.setup);
  json.end_object();
  json.key("steps").begin_array();
  for (const StepResult& step : result.steps) {
    json.begin_object();
    json_double(json, "offered_rate", step.offered_rate);
    json.key("held").boolean(step.held);
    json.field("reason", step.reason);
    json_stats(json, step.stats);
    json.end_object();
  }
  json.end_array();
  if (result.highest_rate_held) {
    json_double(json, "highest_rate_held", *result.highest_rate_held);
  } else {
    json.field_null("highest_rate_held");
  }
  json.end_object();
  if (!json.complete()) {
    *error = "JSON report too large";
    return false;
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << buffer.view() << '\n';
  file.close();
  if (!file) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace paycore::loadgen
