// `paycore serve [--listen HOST:PORT] [--data-dir DIR] [--keys FILE] [--config FILE]`
// (docs/api.md "Start a server"). Every other setting comes, in increasing precedence, from its default,
// the TOML config file (top-level keys named as in the table below), the environment
// (PAYCORE_<NAME>, upper case) and the command line (--name-with-dashes).
//
// Start-up: settings -> keys (created for development if missing) -> Engine::open (recovery)
// -> engine start -> bind -> I/O threads -> one line "listening on HOST:PORT".
// Signals: SIGTERM/SIGINT stop accepting, answer what is in flight, stop the engine (flush and
// final snapshot) and exit 0; SIGHUP reloads the keys file and registers new channels.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "app/commands.hpp"
#include "archive/archiver.hpp"
#include "archive/store.hpp"
#include "auth/keys.hpp"
#include "auth/signing.hpp"
#include "net/render_events.hpp"
#include "net/server.hpp"
#include "core/engine.hpp"
#include "base/log.hpp"
#include "base/thread_priority.hpp"
#include "base/time.hpp"
#include "repl/bootstrap.hpp"
#include "repl/cluster_member.hpp"
#include "repl/snapshot_objects.hpp"
#include "wal/fault.hpp"
#include "app/events_runtime.hpp"
#include "webhooks/endpoint_url.hpp"

namespace paycore::app {
namespace {

enum class SettingType { text, integer, flag };

struct Setting {
  const char* name;  // TOML key; PAYCORE_<NAME>; --name-with-dashes
  SettingType type;
  std::string value;  // default, then overridden
  const char* help;
};

// Events and webhooks (docs/events.md, docs/webhooks.md).
std::vector<Setting> events_settings() {
  return {
      {"events", SettingType::flag, "false", "derive events from the log into DATA_DIR/events (GET /v1/events) and deliver webhooks from DATA_DIR/webhooks (docs/events.md; off by default until its cost is cut: docs/benchmarks.md)"},
      {"events_retention_days", SettingType::integer, "30", "events are kept at least this many days (1..3650)"},
      {"events_cpu_priority", SettingType::text, "low", "CPU priority of the event deriver's and the webhook dispatcher's threads: normal, low (nice 19) or idle (SCHED_IDLE: mostly CPU time nothing else wants); under a full load payments come first and events wait in the log and the delivery store (docs/events.md \"Cost\")"},
      {"webhook_timeout_ms", SettingType::integer, "10000", "a webhook attempt without a 2xx answer within this has failed (1000..60000)"},
      {"webhook_in_flight_per_endpoint", SettingType::integer, "4", "webhook requests at once to one endpoint (1..64; 256 at once in all): a dead endpoint holds at most this many"},
      {"webhook_retry_horizon_s", SettingType::integer, "259200", "failed webhook deliveries are retried, with backoff, this long after their event (3 days; 0..31536000)"},
      {"webhook_http_hosts", SettingType::text, "", "comma-separated hosts whose webhook endpoints may be plain http:// (e.g. 127.0.0.1 for tests); all others must be https://"},
      {"webhook_allowed_networks", SettingType::text, "", "comma-separated networks (CIDR) the webhook dispatcher may connect to; empty: any address but loopback, private and link-local ones"},
      {"webhook_ca_file", SettingType::text, "", "CA bundle (PEM) to verify webhook endpoints' certificates with (empty: the system's)"},
  };
}

std::vector<Setting> default_settings() {
  std::vector<Setting> all = {
      {"listen", SettingType::text, "127.0.0.1:8080", "HOST:PORT to listen on (port 0: any free port)"},
      {"data_dir", SettingType::text, "./paycore-data", "data directory (log, snapshots)"},
      {"keys", SettingType::text, "", "keys file (default DATA_DIR/keys.json, created if missing)"},
      {"io_threads", SettingType::integer, "1", "I/O threads serving HTTP (0: one thread that also runs the core, run to completion)"},
      {"connections_max", SettingType::integer, "10000", "open connections; more are answered 503 and closed"},
      {"header_bytes_max", SettingType::integer, "16384", "request line + headers; more is 431"},
      {"body_bytes_max", SettingType::integer, "1048576", "request body; more is 413"},
      {"header_timeout_ms", SettingType::integer, "10000", "a started request must arrive within this"},
      {"idle_timeout_ms", SettingType::integer, "60000", "idle connections are closed after this"},
      {"shutdown_grace_ms", SettingType::integer, "5000", "time to answer in-flight requests at stop"},
      {"pipeline_depth", SettingType::integer, "32", "requests in flight per connection (1-256)"},
      {"auth_window_s", SettingType::integer, "300", "accepted clock skew of X-Timestamp, seconds"},
      {"nonce_entries_max", SettingType::integer, "4194304", "nonces remembered at most"},
      {"nonce_journal", SettingType::flag, "true", "journal accepted nonces in DATA_DIR/nonces (fdatasync before the answer) so that replays stay refused across restarts and crashes"},
      {"rate_limit_write_per_s", SettingType::integer, "0", "payment writes a second per principal (0: no limit)"},
      {"rate_limit_write_burst", SettingType::integer, "0", "payment writes in a burst per principal (0: = per second)"},
      {"rate_limit_read_per_s", SettingType::integer, "0", "reads (GET) a second per principal (0: no limit)"},
      {"rate_limit_read_burst", SettingType::integer, "0", "reads in a burst per principal (0: = per second)"},
      {"rate_limit_admin_per_s", SettingType::integer, "0", "operator-only requests a second (0: no limit)"},
      {"rate_limit_admin_burst", SettingType::integer, "0", "operator-only requests in a burst (0: = per second)"},
      {"rate_limit_principals_max", SettingType::integer, "100000", "principals whose buckets are tracked at most"},
      {"batch_items_max", SettingType::integer, "1000", "payments per POST /v1/payments/batch"},
      {"pending_lifetime_s", SettingType::integer, "900", "PENDING payments older than this are cancelled"},
      {"archive", SettingType::flag, "true", "keep cold payments in DATA_DIR/archive (RocksDB) and take them out of memory (docs/design.md \"Hot and cold\")"},
      {"hot_window_ms", SettingType::integer, "604800000", "payments older than this are archived and leave memory (7 days)"},
      {"payments_hot_high_water", SettingType::integer, "0", "more payments in memory than this are archived whatever their age (0: 3/4 of payments_max)"},
      {"idempotency_retention_ms", SettingType::integer, "604800000", "idempotency records are kept this long (7 days; below 24 h only for tests)"},
      {"archive_job_payments_max", SettingType::integer, "2048", "payments per archive write"},
      {"archive_block_cache_bytes", SettingType::integer, "268435456", "RocksDB block cache of the archive"},
      {"archive_read_threads", SettingType::integer, "2", "threads reading the archive for requests on payments that left memory"},
      {"archive_low_priority", SettingType::flag, "false", "write the archive at the lowest CPU priority (nice 19), so that payments come first under a full load (no measurable effect on this machine yet: docs/benchmarks.md)"},
      {"snapshot_every_records", SettingType::integer, "10000000", "snapshot after this many log records (0: never)"},
      {"snapshot_every_s", SettingType::integer, "3600", "snapshot after this many seconds (0: never)"},
      {"snapshots_keep", SettingType::integer, "3", "snapshots kept"},
      {"ring_capacity", SettingType::integer, "8192", "requests queued per I/O thread (power of two)"},
      {"batch_max", SettingType::integer, "8192", "commands per turn of the core"},
      {"wal_segment_bytes", SettingType::integer, "268435456", "log segment size"},
      {"accounts_max", SettingType::integer, "10000000", "accounts at most"},
      {"payments_max", SettingType::integer, "100000000", "payments at most"},
      {"mandates_max", SettingType::integer, "10000000", "mandates at most"},
      {"amount_max", SettingType::integer, "1000000000000000", "largest amount in minor units"},
      {"wal_fallback", SettingType::flag, "false", "flush the log with fdatasync on a thread, not io_uring"},
      {"wal_spare_segments", SettingType::flag, "true", "write the next log segment full of zeros ahead of need (cheaper flushes than fallocated space)"},
      {"wal_syncs_in_flight_max", SettingType::integer, "1", "log flushes (fdatasync) in flight at once on io_uring, 1..8 (1: one at a time; more measured slower over HTTP, docs/benchmarks.md)"},
      {"tls_cert", SettingType::text, "", "TLS certificate chain file (PEM, leaf first); with tls_key, the listener speaks TLS 1.2+ only"},
      {"tls_key", SettingType::text, "", "TLS private key file (PEM)"},
      {"access_log", SettingType::flag, "false", "log every request (otherwise 5xx and malformed only)"},
      {"nats_url", SettingType::text, "", "replicate the log to NATS JetStream at these comma-separated nats:// URLs (docs/replication.md); empty: a single node"},
      {"cluster_name", SettingType::text, "paycore", "the cluster's name: its log stream is PAYCORE_LOG_<name>"},
      {"log_stream_replicas", SettingType::integer, "3", "copies JetStream keeps of the log stream (1..5; 3 with three NATS servers)"},
      {"log_stream_bytes_max", SettingType::integer, "-1", "the log stream keeps at most this many bytes (-1: as many as the NATS servers' JetStream storage limit allows; a limit above what they have is refused)"},
      {"log_stream_age_max_s", SettingType::integer, "604800", "the log stream keeps messages this long (7 days)"},
      {"replication_ack_timeout_ms", SettingType::integer, "2000", "a batch the log stream has not acknowledged after this is looked up, and writes are refused (503) until it is"},
      {"advertise_url", SettingType::text, "", "this process's base URL as the other cluster members name it (default http://LISTEN)"},
      {"lease_timeout_ms", SettingType::integer, "3000", "a primary lease not renewed for this long is taken by a standby"},
      {"set_aside_unacknowledged", SettingType::flag, "true", "a cluster member whose log holds records the cluster never acknowledged (killed as primary with batches in flight) moves its log to DATA_DIR/set-aside/ and starts from the published snapshot, instead of refusing to start"},
      {"snapshot_publish_interval_ms", SettingType::integer, "1000", "the primary publishes its newest snapshot to JetStream (for members that start empty) when it looks, this often"},
      {"min_lsn_wait_ms", SettingType::integer, "1000", "a read with Paycore-Min-Lsn waits at most this long for the process to apply that LSN, then is refused (503 unavailable)"},
      {"lease_heartbeat_ms", SettingType::integer, "250", "the primary renews its lease, and standbys look at it, this often"},
  };
  for (Setting& s : events_settings()) all.push_back(std::move(s));
  return all;
}

std::string dashed(const char* name) {
  std::string text = std::string("--") + name;
  std::replace(text.begin(), text.end(), '_', '-');
  return text;
}

std::string env_name(const char* name) {
  std::string text = std::string("PAYCORE_") + name;
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  return text;
}

bool parse_flag(const std::string& text, bool* out) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    *out = true;
    return true;
  }
  if (text == "false" || text == "0" || text == "no" || text == "off") {
    *out = false;
    return true;
  }
  return false;
}

class Settings {
 public:
  Settings() : all_(default_settings()) {}

  std::vector<Setting>& all() { return all_; }
  Setting& find(std::string_view name) {
    for (Setting& s : all_) {
      if (name == s.name) return s;
    }
    std::fprintf(stderr, "internal: no setting %.*s\n", static_cast<int>(name.size()), name.data());
    std::abort();
  }
  const std::string& text(std::string_view name) { return find(name).value; }
  std::int64_t integer(std::string_view name) {
    const std::string& v = find(name).value;
    std::int64_t out = 0;
    std::from_chars(v.data(), v.data() + v.size(), out);
    return out;
  }
  bool flag(std::string_view name) {
    bool out = false;
    (void)parse_flag(find(name).value, &out);
    return out;
  }

  // Checks and stores `value` for `setting`; the error names `origin`.
  Status set(Setting& setting, const std::string& value, const std::string& origin) {
    if (setting.type == SettingType::integer) {
      std::int64_t parsed = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (ec != std::errc{} || end != value.data() + value.size() || parsed < 0) {
        return Status::invalid_argument(origin + ": " + setting.name + " must be a non-negative integer, not '" + value + "'");
      }
    } else if (setting.type == SettingType::flag) {
      bool parsed = false;
      if (!parse_flag(value, &parsed)) {
        return Status::invalid_argument(origin + ": " + setting.name + " must be true or false, not '" + value + "'");
      }
    }
    setting.value = value;
    return Status::ok();
  }

  Status apply_toml(const std::string& path) {
    toml::table table;
    try {
      table = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      return Status::invalid_argument(path + ": " + std::string(e.description()));
    }
    for (const auto& [key, node] : table) {
      const std::string name(key.str());
      Setting* setting = nullptr;
      for (Setting& s : all_) {
        if (name == s.name) setting = &s;
      }
      if (setting == nullptr) {
        return Status::invalid_argument(path + ": unknown setting '" + name + "'");
      }
      std::string value;
      if (auto s = node.value<std::string>(); s && node.is_string()) {
        value = *s;
      } else if (auto i = node.value<std::int64_t>(); i && node.is_integer()) {
        value = std::to_string(*i);
      } else if (auto b = node.value<bool>(); b && node.is_boolean()) {
        value = *b ? "true" : "false";
      } else {
        return Status::invalid_argument(path + ": " + name + " has an unsupported type");
      }
      PAYCORE_RETURN_IF_ERROR(set(*setting, value, path));
    }
    return Status::ok();
  }

  Status apply_environment() {
    for (Setting& s : all_) {
      const std::string name = env_name(s.name);
      if (const char* value = std::getenv(name.c_str())) {
        PAYCORE_RETURN_IF_ERROR(set(s, value, name));
      }
    }
    return Status::ok();
  }

 private:
  std::vector<Setting> all_;
};

struct Listen {
  std::string host;
  std::uint16_t port = 0;
};

bool parse_listen(const std::string& text, Listen* out) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535 || port.empty()) return false;
  out->host = host.empty() ? "0.0.0.0" : host;
  out->port = static_cast<std::uint16_t>(value);
  return true;
}

std::string format_endpoint(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool file_exists(const std::string& path) {
  struct stat status {};
  return ::stat(path.c_str(), &status) == 0;
}

// The development keys file, made once (keys_init's error otherwise); *private_keys gets the
// channel private key paths to print.
Status ensure_keys(const std::string& keys_path, std::vector<std::string>* private_keys) {
  const std::filesystem::path keys(keys_path);
  const std::string private_dir =
      (keys.has_parent_path() ? keys.parent_path() : std::filesystem::path(".")) / "private";
  if (!file_exists(keys_path)) {
    std::error_code ec;
    if (keys.has_parent_path()) std::filesystem::create_directories(keys.parent_path(), ec);
    const StatusOr<auth::KeysInit> made = auth::keys_init(keys_path, private_dir);
    if (!made.is_ok()) return made.status();
    log_line(LogLevel::info, "created a development keys file", {{"keys", keys_path}, {"private_keys", private_dir}});
  }
  for (std::string_view channel : auth::dev_channel_names) {
    const std::string path = private_dir + "/" + std::string(channel) + ".private.pem";
    if (file_exists(path)) private_keys->push_back(path);
  }
  return Status::ok();
}

void print_welcome(const char* scheme, const std::string& endpoint, const std::string& data_dir, const std::string& keys_path,
                   const std::vector<std::string>& private_keys, const auth::Keys& keys) {
  std::printf("paycore serve\n  data dir:  %s\n  keys file: %s\n", data_dir.c_str(), keys_path.c_str());
  for (const std::string& path : private_keys) std::printf("  channel private key (for test notifications): %s\n", path.c_str());
  std::printf("  metrics:   curl %s://%s/metrics\n", scheme, endpoint.c_str());
  const auth::Principal& op = keys.operator_principal();
  const std::string timestamp = std::to_string(std::time(nullptr));
  const std::string nonce = "welcome" + timestamp;
  const std::string path = "/v1/accounts/" + std::string(auth::dev_merchant_ids[0]);
  const auth::HexSignature signature =
      auth::sign_request(op.secret, auth::SignedFields{"GET", path, timestamp, nonce, ""});
  std::printf(
      "  a signed request (valid for %llds, once):\n"
      "    curl -s %s://%s%s -H 'X-Merchant-Id: %.*s' -H 'X-Timestamp: %s' -H 'X-Nonce: %s' "
      "-H 'X-Signature: %.*s'\n"
      "  signing by hand: printf 'GET\\n%s\\n%%s\\n%%s\\n' \"$TS\" \"$NONCE\" | "
      "openssl dgst -sha256 -hmac \"$SECRET\" (see docs/api.md)\n",
      static_cast<long long>(auth::auth_window_s_default), scheme, endpoint.c_str(), path.c_str(),
      static_cast<int>(op.id.view().size()), op.id.view().data(), timestamp.c_str(), nonce.c_str(),
      static_cast<int>(signature.view().size()), signature.view().data(), path.c_str());
  std::fflush(stdout);
}

std::vector<std::string> channel_names(const auth::Keys& keys) {
  std::vector<std::string> names;
  for (const auth::ChannelKey& channel : keys.channels()) names.emplace_back(channel.name.view());
  return names;
}

// SIGHUP: a new keys file; channels it adds are registered through the admin producer.
void reload_keys(const std::string& keys_path, auth::KeysHolder& holder, net::Server& server,
                 Engine& engine, std::uint32_t admin_producer) {
  const StatusOr<std::shared_ptr<const auth::Keys>> loaded = auth::keys_load(keys_path);
  if (!loaded.is_ok()) {
    log_line(LogLevel::warn, "keys reload refused; keeping the current keys",
             {{"error", loaded.status().message()}});
    return;
  }
  const std::vector<std::string> old_names = channel_names(*holder.get());
  const std::set<std::string> known(old_names.begin(), old_names.end());
  holder.set(*loaded);
  server.keys_changed();
  for (const std::string& name : channel_names(**loaded)) {
    if (known.contains(name)) continue;
    Request request;
    request.command.kind = CommandKind::add_channel;
    request.command.channel = Id::of(name);
    if (!engine.submit(admin_producer, request)) {
      log_line(LogLevel::warn, "could not register a new channel (engine busy)", {{"channel", name}});
    } else {
      log_line(LogLevel::info, "registering a new channel", {{"channel", name}});
    }
  }
  log_line(LogLevel::info, "keys reloaded", {{"keys", keys_path}});
}

// SIGHUP: the TLS certificate and key files again, for new connections (net/tls.hpp).
void reload_tls(net::Server& server) {
  if (!server.tls_enabled()) return;
  const Status reloaded = server.reload_tls();
  if (reloaded.is_ok()) {
    log_line(LogLevel::info, "TLS certificate reloaded");
  } else {
    log_line(LogLevel::warn, "TLS reload refused; keeping the current certificate",
             {{"error", reloaded.message()}});
  }
}

// --wal-fault (hidden, tests only; docs/reliability.md): "OP:ERRNO[:after=N]" with OP one of
// write, fsync, fallocate and ERRNO one of EIO, ENOSPC, EROFS, EDQUOT or a number. Arms the
// log's FaultInjector (wal/fault.hpp) to fail that kind of operation once, after N operations
// of that kind counted from process start (recovery's included). Several are comma-separated
// or given as repeated options. Never set by default, in no config file, no environment.
Status arm_wal_faults(const std::vector<std::string>& specs, wal::FaultInjector* faults) {
  for (const std::string& list : specs) {
    std::size_t at = 0;
    while (at <= list.size()) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      const std::string spec = list.substr(at, comma - at);
      at = comma + 1;
      const std::size_t c1 = spec.find(':');
      const std::size_t c2 = c1 == std::string::npos ? std::string::npos : spec.find(':', c1 + 1);
      const std::string op = spec.substr(0, c1);
      const std::string err =
          c1 == std::string::npos ? "" : spec.substr(c1 + 1, c2 == std::string::npos ? c2 : c2 - c1 - 1);
      const std::string rest = c2 == std::string::npos ? "" : spec.substr(c2 + 1);
      wal::FaultOp kind{};
      if (op == "write") {
        kind = wal::FaultOp::kWrite;
      } else if (op == "fsync") {
        kind = wal::FaultOp::kFsync;
      } else if (op == "fallocate") {
        kind = wal::FaultOp::kFallocate;
      } else {
        return Status::invalid_argument("--wal-fault '" + spec + "': operation must be write, fsync or fallocate");
      }
      int errno_value = 0;
      if (err == "EIO") {
        errno_value = EIO;
      } else if (err == "ENOSPC") {
        errno_value = ENOSPC;
      } else if (err == "EROFS") {
        errno_value = EROFS;
      } else if (err == "EDQUOT") {
        errno_value = EDQUOT;
      } else {
        const auto [end, ec] = std::from_chars(err.data(), err.data() + err.size(), errno_value);
        if (ec != std::errc{} || end != err.data() + err.size() || errno_value <= 0) errno_value = 0;
      }
      if (errno_value == 0) {
        return Status::invalid_argument("--wal-fault '" + spec + "': errno must be EIO, ENOSPC, EROFS, EDQUOT or a positive number");
      }
      std::uint32_t skip = 0;
      if (!rest.empty()) {
        const bool prefixed = rest.rfind("after=", 0) == 0;
        const char* first = rest.data() + (prefixed ? 6 : 0);
        const auto [end, ec] = std::from_chars(first, rest.data() + rest.size(), skip);
        if (!prefixed || ec != std::errc{} || end != rest.data() + rest.size()) {
          return Status::invalid_argument("--wal-fault '" + spec + "': the third part must be after=N");
        }
      }
      faults->fail(kind, errno_value, skip);
      log_line(LogLevel::warn, "TEST ONLY: a write-ahead log fault is armed", {{"fault", spec}});
    }
  }
  return Status::ok();
}

// The rate_limit_* settings (net/rate_limit.hpp); each at most a billion.
Status rate_limits_from(Settings& settings, net::RateLimitConfig* out) {
  constexpr std::int64_t limit_max = 1'000'000'000;
  const std::pair<net::RateClass, const char*> classes[] = {
      {net::RateClass::write, "write"}, {net::RateClass::read, "read"}, {net::RateClass::admin, "admin"}};
  for (const auto& [rate_class, name] : classes) {
    const std::string prefix = std::string("rate_limit_") + name;
    const std::int64_t per_s = settings.integer(prefix + "_per_s");
    const std::int64_t burst = settings.integer(prefix + "_burst");
    if (per_s > limit_max || burst > limit_max) {
      return Status::invalid_argument(prefix + "_per_s and " + prefix + "_burst must be at most 1000000000");
    }
    out->classes[static_cast<std::size_t>(rate_class)] =
        net::RateLimit{static_cast<std::uint32_t>(per_s), static_cast<std::uint32_t>(burst)};
  }
  const std::int64_t principals = settings.integer("rate_limit_principals_max");
  if (principals < 1) {
    return Status::invalid_argument("rate_limit_principals_max must be at least 1");
  }
  out->principals_max = static_cast<std::size_t>(principals);
  return Status::ok();
}

// The settings that shape the process, checked before anything starts.
struct ServeShape {
  Listen listen;
  std::string data_dir;
  std::string keys_path;
  bool run_to_completion = false;  // io_threads 0
  std::uint32_t threads = 1;       // I/O threads (1 when running to completion)
  std::int64_t ring_capacity = 0;
};

// The shape from the settings; nullopt (the reason printed) on a bad one: exit status 2.
std::optional<ServeShape> serve_shape(Settings& settings) {
  ServeShape shape;
  if (!parse_listen(settings.text("listen"), &shape.listen)) {
    std::fprintf(stderr, "paycore serve: --listen wants HOST:PORT, not '%s'\n", settings.text("listen").c_str());
    return std::nullopt;
  }
  shape.data_dir = settings.text("data_dir");
  shape.keys_path = settings.text("keys").empty() ? shape.data_dir + "/keys.json" : settings.text("keys");
  const std::int64_t io_threads = settings.integer("io_threads");
  shape.ring_capacity = settings.integer("ring_capacity");
  if (io_threads < 0 || io_threads > 64) {
    std::fprintf(stderr, "paycore serve: io_threads must be 0..64\n");
    return std::nullopt;
  }
  // io_threads 0: run to completion (docs/design.md "The shape"): one thread reads, applies and
  // answers.
  shape.run_to_completion = io_threads == 0;
  shape.threads = static_cast<std::uint32_t>(shape.run_to_completion ? 1 : io_threads);
  if (shape.ring_capacity < 2 || (shape.ring_capacity & (shape.ring_capacity - 1)) != 0) {
    std::fprintf(stderr, "paycore serve: ring_capacity must be a power of two\n");
    return std::nullopt;
  }
  return shape;
}

// The cold tier's settings (docs/design.md "Hot and cold"); false (the reason printed) on a bad
// one: exit status 2.
bool tier_settings_valid(Settings& settings) {
  const auto refuse = [](const char* what) {
    std::fprintf(stderr, "paycore serve: %s\n", what);
    return false;
  };
  if (settings.integer("hot_window_ms") < 1) return refuse("hot_window_ms must be at least 1");
  // A waiting read holds its place in the I/O thread's ring: the wait is kept short.
  if (settings.integer("min_lsn_wait_ms") > 60'000) {
    return refuse("min_lsn_wait_ms must be 0..60000");
  }
  // A standby applying the primary's archive_payments would drop payments its own archive
  // never received (docs/replication.md "Not yet").
  if (!settings.text("nats_url").empty() && settings.flag("archive")) {
    return refuse("a cluster member (nats_url) runs without the archive for now: add --archive=false");
  }
  const std::int64_t retention_ms = settings.integer("idempotency_retention_ms");
  if (retention_ms < 1) return refuse("idempotency_retention_ms must be at least 1");
  const std::int64_t job = settings.integer("archive_job_payments_max");
  if (job < 1 || job > 65536) return refuse("archive_job_payments_max must be 1..65536");
  if (settings.integer("archive_block_cache_bytes") < (1 << 20))
    return refuse("archive_block_cache_bytes must be at least 1 MiB");
  const std::int64_t readers = settings.integer("archive_read_threads");
  if (readers < 1 || readers > 64) return refuse("archive_read_threads must be 1..64");
  if (retention_ms < 24LL * 3600 * 1000) {
    log_line(LogLevel::warn, "idempotency records are kept less than 24 hours (tests only)",
             {{"idempotency_retention_ms", std::to_string(retention_ms)}});
  }
  return true;
}

// The archive of cold payments and its writer thread, owned by serve() around the engine.
struct Tier {
  std::unique_ptr<ArchiveStore> store;
  std::unique_ptr<Archiver> archiver;
  void stop() {
    if (archiver) archiver->stop();
  }
};

// Opens DATA_DIR/archive for a recovered engine and attaches its writer. Refuses to start when
// the archive is behind what memory gave up (missing, restored from an older backup, another
// data directory's): payments would be silently missing. Without the archive setting, refuses
// a data directory whose payments have left memory.
StatusOr<Tier> open_tier(Settings& settings, const std::string& data_dir, Engine& engine) {
  const std::uint32_t archived_rows_end = engine.archived_rows_end();
  Tier tier;
  if (!settings.flag("archive")) {
    if (archived_rows_end == 0) return tier;
    return Status::invalid_argument("payments of " + data_dir +
                                    " are in its archive: the archive setting must stay on");
  }
  ArchiveOptions options;
  options.dir = data_dir + "/archive";
  options.block_cache_bytes = static_cast<std::size_t>(settings.integer("archive_block_cache_bytes"));
  options.must_exist = archived_rows_end > 0;
  options.low_priority = settings.flag("archive_low_priority");
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(options);
  PAYCORE_RETURN_IF_ERROR(store.status());
  tier.store = std::move(*store);
  const ArchivePosition position = tier.store->position();
  if (position.rows_end < archived_rows_end) {
    return Status::corruption("archive " + options.dir + " holds payment rows below " +
                              std::to_string(position.rows_end) + " but the log says rows below " +
                              std::to_string(archived_rows_end) +
                              " left memory: the archive is missing payments");
  }
  tier.archiver = std::make_unique<Archiver>(tier.store.get(), &engine.metrics().durable_lsn,
                                             archiver_durable_poll_interval_default,
                                             options.low_priority);
  engine.attach_archive(tier.archiver.get());
  return tier;
}

// The cluster settings (docs/replication.md); kInvalidArgument for a bad cluster name.
StatusOr<repl::MemberConfig> member_config_from(Settings& settings, const ServeShape& shape) {
  const std::string cluster = settings.text("cluster_name");
  if (Status s = repl::check_cluster_name(cluster); !s.is_ok()) return s;
  repl::MemberConfig config;
  config.link.urls = settings.text("nats_url");
  config.link.name = "paycore-" + cluster;
  const std::uint64_t writer = repl::random_writer_id();
  const int replicas = static_cast<int>(settings.integer("log_stream_replicas"));
  config.publisher.stream.name = repl::log_stream_name(cluster);
  config.publisher.stream.subject = repl::log_subject(cluster);
  config.publisher.stream.replicas = replicas;
  config.publisher.stream.bytes_max = settings.integer("log_stream_bytes_max");
  config.publisher.stream.age_max_ms = settings.integer("log_stream_age_max_s") * 1000;
  config.publisher.ack_timeout_ms = settings.integer("replication_ack_timeout_ms");
  config.publisher.writer_id = writer;
  config.follower.stream = config.publisher.stream.name;
  config.follower.subject = config.publisher.stream.subject;
  // Until the listener has bound (serve then advertises its port: ClusterMember::advertise).
  std::string url = settings.text("advertise_url");
  if (url.empty()) url = "http://" + format_endpoint(shape.listen.host, shape.listen.port);
  config.lease.bucket = repl::lease_bucket_name(cluster);
  config.lease.holder = repl::lease_holder_value(writer, url);
  config.lease.replicas = replicas;
  config.lease.timeout_ms = settings.integer("lease_timeout_ms");
  config.heartbeat_ms = settings.integer("lease_heartbeat_ms");
  config.snapshots.log_stream = config.publisher.stream.name;
  config.snapshots.snapshot_bucket = repl::snapshot_bucket_name(cluster);
  config.snapshots.replicas = replicas;
  config.snapshots.interval_ms = std::max<std::int64_t>(settings.integer("snapshot_publish_interval_ms"), 1);
  return config;
}

// With nats_url, before the engine opens: a member whose log is empty starts from the snapshot
// the primary published (repl/bootstrap.hpp), its log continuing the stream's hash chain. False
// (said in the log and on stderr) if that cannot be done: exit status 1.
bool bootstrap_member(Settings& settings, const ServeShape& shape, EngineConfig* engine_config) {
  if (settings.text("nats_url").empty()) return true;
  StatusOr<repl::MemberConfig> member = member_config_from(settings, shape);
  if (!member.is_ok()) return true;  // join_cluster says why
  StatusOr<repl::BootstrapOutcome> outcome = repl::prepare_empty_member(repl::BootstrapConfig{
      member->link, member->publisher.stream.name, member->snapshots.snapshot_bucket,
      Engine::snapshots_dir_of(shape.data_dir), Engine::wal_dir_of(shape.data_dir)});
  if (!outcome.is_ok()) {
    const std::string error = outcome.status().to_string();
    log_line(LogLevel::error, "cannot start from the published snapshot: " + error,
             {{"data_dir", shape.data_dir}});
    std::fprintf(stderr, "paycore serve: cannot start from the published snapshot: %s\n",
                 error.c_str());
    return false;
  }
  engine_config->log_prev_checksum_if_empty = outcome->log_checksum;
  return true;
}

// Prepares a cluster member's empty data directory (bootstrap_member), recovers the engine
// from the data directory and opens its archive; false (said in the log and on stderr) if any
// of that fails: exit status 1.
bool open_storage(Settings& settings, const ServeShape& shape, EngineConfig engine_config,
                  std::unique_ptr<Engine>* engine, Tier* tier) {
  const std::string& data_dir = shape.data_dir;
  if (!bootstrap_member(settings, shape, &engine_config)) return false;
  const auto refuse = [&](const char* what, const Status& status) {
    const std::string error = status.to_string();
    log_line(LogLevel::error, std::string(what) + error, {{"data_dir", data_dir}});
    std::fprintf(stderr, "paycore serve: %s\n", error.c_str());
    return false;
  };
  StatusOr<std::unique_ptr<Engine>> opened = Engine::open(engine_config);
  if (!opened.is_ok()) return refuse("cannot open the data directory: ", opened.status());
  *engine = std::move(*opened);
  StatusOr<Tier> opened_tier = open_tier(settings, data_dir, **engine);
  if (!opened_tier.is_ok()) return refuse("cannot open the archive: ", opened_tier.status());
  *tier = std::move(*opened_tier);
  return true;
}

// Joins the cluster (docs/replication.md): a standby following the log stream until its
// leadership takes the lease and promotes it.
Status join_cluster(Settings& settings, const ServeShape& shape, Engine& engine,
                    std::unique_ptr<repl::ClusterMember>* out) {
  StatusOr<repl::MemberConfig> config = member_config_from(settings, shape);
  if (!config.is_ok()) return config.status();
  StatusOr<std::unique_ptr<repl::ClusterMember>> joined = repl::ClusterMember::join(*config, engine);
  if (!joined.is_ok()) return joined.status();
  *out = std::move(*joined);
  return Status::ok();
}

// A join refused because the local log holds records the cluster never acknowledged (kConflict)
// by a log of the stream's own history: those records' answers never left, so with
// set_aside_unacknowledged the log is moved to DATA_DIR/set-aside/ and true is returned (the
// caller opens an empty member, which starts from the published snapshot).
bool set_aside_unacknowledged(Settings& settings, const ServeShape& shape, const Status& refused,
                              std::unique_ptr<Engine>* engine, Tier* tier) {
  if (refused.code() != StatusCode::kConflict || !settings.flag("set_aside_unacknowledged")) {
    return false;
  }
  StatusOr<repl::MemberConfig> config = member_config_from(settings, shape);
  if (!config.is_ok()) return false;
  StatusOr<bool> same = repl::log_shares_stream_history(config->link, config->follower.stream, **engine);
  if (!same.is_ok() || !*same) {
    log_line(LogLevel::error, "the local log is not the log stream's history: left as it is",
             {{"reason", same.is_ok() ? "no common record" : same.status().to_string()}});
    return false;
  }
  engine->reset();
  tier->stop();
  std::string where;
  if (const Status s = repl::set_aside_log(shape.data_dir, &where); !s.is_ok()) {
    log_line(LogLevel::error, "cannot set the local log aside: " + s.to_string());
    return false;
  }
  log_line(LogLevel::warn,
           "the local log held records the cluster never acknowledged: set aside, starting from "
           "the published snapshot",
           {{"moved_to", where}, {"reason", refused.to_string()}});
  return true;
}

// With nats_url: opens the storage and joins the cluster, setting aside a log that holds
// records the cluster never acknowledged (once). False (said in the log and on stderr) if the
// storage cannot be opened, the stream cannot be reached or holds another history: exit 1.
bool open_as_member(Settings& settings, const ServeShape& shape, const EngineConfig& engine_config,
                    std::unique_ptr<Engine>* engine, Tier* tier,
                    std::unique_ptr<repl::ClusterMember>* member) {
  if (!open_storage(settings, shape, engine_config, engine, tier)) return false;
  if (settings.text("nats_url").empty()) return true;
  Status joined = join_cluster(settings, shape, **engine, member);
  if (!joined.is_ok() && set_aside_unacknowledged(settings, shape, joined, engine, tier)) {
    if (!open_storage(settings, shape, engine_config, engine, tier)) return false;
    joined = join_cluster(settings, shape, **engine, member);
  }
  if (joined.is_ok()) return true;
  log_line(LogLevel::error, "cannot join the cluster: " + joined.to_string(),
           {{"nats_url", settings.text("nats_url")}});
  std::fprintf(stderr, "paycore serve: cannot join the cluster: %s\n", joined.to_string().c_str());
  return false;
}

// Durable nonces (the nonce_journal setting): a single write's nonce is made durable in its log
// record (net/io_thread_requests.cpp), so the engine keeps the log of the time a nonce lives
// (its timestamp may be a window ahead of the clock, and it lives a window after it) and
// recovery hands those nonces to the cache the server will use. Nothing without the journal.
void keep_logged_nonces(const net::ServerConfig& server_config, auth::NonceCache& nonces,
                        net::NonceJournalLoad* load, EngineConfig* engine_config) {
  if (server_config.nonce_journal_dir.empty()) return;
  engine_config->nonce_retention_us = 2 * server_config.auth_window_s * 1'000'000;
  const std::int64_t now_s = wall_clock_us() / 1'000'000;
  engine_config->on_recovered_nonce = [&nonces, load, now_s](const Command& c) {
    net::load_nonce(nonces, c.principal.view(), c.nonce.view(), c.nonce_timestamp_s, now_s, load);
  };
}

// The one log line of keep_logged_nonces' counts, once the engine has recovered.
void say_logged_nonces(const net::ServerConfig& server_config, const net::NonceJournalLoad& load) {
  if (server_config.nonce_journal_dir.empty()) return;
  log_line(LogLevel::info, "nonces recovered from the log",
           {{"records", std::to_string(load.records)},
            {"live", std::to_string(load.live)},
            {"cache_full", std::to_string(load.cache_full)}});
}

// Arms the hidden --wal-fault specs (tests only) into `faults`, which must outlive the engine;
// false (said on stderr) if one does not parse: exit status 2.
bool attach_wal_faults(const std::vector<std::string>& specs, wal::FaultInjector* faults,
                       EngineConfig* engine_config) {
  if (specs.empty()) return true;
  if (const Status armed = arm_wal_faults(specs, faults); !armed.is_ok()) {
    std::fprintf(stderr, "paycore serve: %s\n", armed.message().c_str());
    return false;
  }
  engine_config->wal_faults = faults;
  return true;
}

// Signals are taken synchronously by the main thread; every thread made after this inherits
// the mask. Returns the set to wait on.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

EngineConfig engine_config_from(Settings& settings, const ServeShape& shape, const auth::Keys& keys) {
  EngineConfig engine_config;
  engine_config.data_dir = shape.data_dir;
  engine_config.producers = shape.threads + 1;  // + the admin producer
  engine_config.ring_capacity = static_cast<std::uint32_t>(shape.ring_capacity);
  engine_config.batch_max = static_cast<std::uint32_t>(settings.integer("batch_max"));
  engine_config.channels = channel_names(keys);
  engine_config.limits.amount_max = settings.integer("amount_max");
  engine_config.limits.accounts_max = static_cast<std::uint32_t>(settings.integer("accounts_max"));
  engine_config.limits.payments_max = static_cast<std::uint32_t>(settings.integer("payments_max"));
  engine_config.limits.mandates_max = static_cast<std::uint32_t>(settings.integer("mandates_max"));
  engine_config.pending_lifetime_us = settings.integer("pending_lifetime_s") * 1'000'000;
  engine_config.min_lsn_wait_us = settings.integer("min_lsn_wait_ms") * 1000;
  engine_config.snapshot_every_records = static_cast<std::uint64_t>(settings.integer("snapshot_every_records"));
  engine_config.snapshot_every_us = settings.integer("snapshot_every_s") * 1'000'000;
  engine_config.snapshots_keep = static_cast<std::uint32_t>(settings.integer("snapshots_keep"));
  engine_config.wal_segment_bytes = static_cast<std::uint64_t>(settings.integer("wal_segment_bytes"));
  engine_config.wal_force_fallback = settings.flag("wal_fallback");
  engine_config.wal_spare_segments = settings.flag("wal_spare_segments");
  // Saturated, not truncated: an absurd value must meet the log's own range check.
  engine_config.wal_syncs_in_flight_max = static_cast<std::uint32_t>(
      std::min<std::int64_t>(settings.integer("wal_syncs_in_flight_max"), UINT32_MAX));
  engine_config.hot_window_us = settings.integer("hot_window_ms") * 1000;
  engine_config.idempotency_retention_us = settings.integer("idempotency_retention_ms") * 1000;
  const std::int64_t high_water = settings.integer("payments_hot_high_water");
  engine_config.payments_hot_high_water = static_cast<std::uint32_t>(
      high_water > 0 ? high_water : settings.integer("payments_max") / 4 * 3);
  engine_config.archive_job_payments_max =
      static_cast<std::uint32_t>(settings.integer("archive_job_payments_max"));
  // In a cluster only the primary writes records, through the shared log.
  engine_config.register_channels_at_open = settings.text("nats_url").empty();
  return engine_config;
}

// Everything of the server's configuration but the rate limits (rate_limits_from, which can fail).
net::ServerConfig server_config_from(Settings& settings, const ServeShape& shape) {
  net::ServerConfig server_config;
  server_config.host = shape.listen.host;
  server_config.port = shape.listen.port;
  server_config.io_threads = shape.threads;
  server_config.drive_engine = shape.run_to_completion;
  server_config.http.header_bytes_max = static_cast<std::size_t>(settings.integer("header_bytes_max"));
  server_config.http.request_line_bytes_max =
      std::min(server_config.http.request_line_bytes_max, server_config.http.header_bytes_max);
  server_config.http.body_bytes_max = static_cast<std::uint64_t>(settings.integer("body_bytes_max"));
  server_config.connections_max = static_cast<std::uint32_t>(settings.integer("connections_max"));
  server_config.header_timeout_ms = settings.integer("header_timeout_ms");
  server_config.idle_timeout_ms = settings.integer("idle_timeout_ms");
  server_config.shutdown_grace_ms = settings.integer("shutdown_grace_ms");
  server_config.pipeline_depth = static_cast<std::uint32_t>(settings.integer("pipeline_depth"));
  server_config.auth_window_s = settings.integer("auth_window_s");
  server_config.nonce_entries_max = static_cast<std::size_t>(settings.integer("nonce_entries_max"));
  server_config.batch_items_max = static_cast<std::uint32_t>(settings.integer("batch_items_max"));
  server_config.amount_max = settings.integer("amount_max");
  server_config.access_log = settings.flag("access_log");
  server_config.events_min_lsn_wait_ms = settings.integer("min_lsn_wait_ms");
  if (settings.flag("nonce_journal")) server_config.nonce_journal_dir = shape.data_dir + "/nonces";
  server_config.tls.cert_chain_path = settings.text("tls_cert");
  server_config.tls.key_path = settings.text("tls_key");
  return server_config;
}

// The welcome text on stdout and the "listening" log line.
void announce(const ServeShape& shape, const net::Server& server, const Engine& engine,
              const std::vector<std::string>& private_keys, const auth::Keys& keys) {
  const char* scheme = server.tls_enabled() ? "https" : "http";
  const std::string endpoint = format_endpoint(shape.listen.host, server.port());
  print_welcome(scheme, endpoint, shape.data_dir, shape.keys_path, private_keys, keys);
  log_line(LogLevel::info, "listening on " + endpoint,
           {{"scheme", scheme}, {"data_dir", shape.data_dir}, {"keys", shape.keys_path}, {"wal_dir", engine.wal_dir()},
            {"snapshots_dir", engine.snapshots_dir()}});
}

// Drains the admin producer's answers and handles signals until SIGTERM or SIGINT (returns 0)
// or until another process writes the shared log (returns 3: this one answers nothing more,
// and a supervisor restarts it); SIGHUP reloads the keys and the TLS certificate.
int serve_until_stopped(const sigset_t& signals, const std::string& keys_path, auth::KeysHolder& keys,
                         net::Server& server, Engine& engine, std::uint32_t admin_producer,
                         const repl::ClusterMember* member) {
  std::vector<Response> admin_responses(64);
  while (true) {
    const timespec wait{0, 200'000'000};
    const int signal_number = sigtimedwait(&signals, nullptr, &wait);
    while (engine.take(admin_producer, admin_responses) > 0) {
    }
    if (signal_number == SIGHUP) {
      reload_keys(keys_path, keys, server, engine, admin_producer);
      reload_tls(server);
    } else if (signal_number == SIGTERM || signal_number == SIGINT) {
      log_line(LogLevel::info, signal_number == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping");
      return 0;
    }
    if (engine.metrics().replica_fenced.load(std::memory_order_relaxed) ||
        (member != nullptr && member->must_stop())) {
      log_line(LogLevel::error, "another process is primary: stopping (exit status 3)");
      return 3;
    }
  }
}

// What the server needs of the opened storage and the cluster, and the rate limits; false
// (said on stderr) for bad rate limits.
bool complete_server_config(Settings& settings, const Tier& tier, repl::ClusterMember* member,
                            net::ServerConfig* server_config) {
  server_config->archive = tier.store.get();  // null without the archive setting
  if (member != nullptr) {
    server_config->primary_url = [member] { return member->primary_url(); };
  }
  server_config->archive_read_threads =
      static_cast<std::uint32_t>(settings.integer("archive_read_threads"));
  if (const Status limits = rate_limits_from(settings, &server_config->rate_limits);
      !limits.is_ok()) {
    std::fprintf(stderr, "paycore serve: %s\n", limits.message().c_str());
    return false;
  }
  return true;
}

// The keys file, created for development if missing (its private keys in *private_keys).
StatusOr<std::shared_ptr<const auth::Keys>> load_keys(const std::string& keys_path,
                                                      std::vector<std::string>* private_keys) {
  if (const Status made = ensure_keys(keys_path, private_keys); !made.is_ok()) return made;
  return auth::keys_load(keys_path);
}

// Splits "a, b,c" at commas, dropping blanks around and empty pieces.
std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= text.size()) {
    std::size_t to = text.find(',', from);
    if (to == std::string::npos) to = text.size();
    std::string piece = text.substr(from, to - from);
    piece.erase(0, piece.find_first_not_of(' '));
    piece.erase(piece.find_last_not_of(' ') + 1);
    if (!piece.empty()) out.push_back(piece);
    from = to + 1;
  }
  return out;
}

// The events and webhooks settings (docs/events.md); kInvalidArgument naming a bad one.
StatusOr<EventsRuntimeConfig> events_config_from(Settings& settings, const ServeShape& shape) {
  const std::int64_t days = settings.integer("events_retention_days");
  const std::int64_t timeout_ms = settings.integer("webhook_timeout_ms");
  const std::int64_t horizon_s = settings.integer("webhook_retry_horizon_s");
  if (days < 1 || days > 3650) return Status::invalid_argument("events_retention_days must be 1..3650");
  if (timeout_ms < 1000 || timeout_ms > 60'000) return Status::invalid_argument("webhook_timeout_ms must be 1000..60000");
  const std::int64_t in_flight = settings.integer("webhook_in_flight_per_endpoint");
  if (in_flight < 1 || in_flight > 64) return Status::invalid_argument("webhook_in_flight_per_endpoint must be 1..64");
  if (horizon_s < 0 || horizon_s > 31'536'000) return Status::invalid_argument("webhook_retry_horizon_s must be 0..31536000");
  const std::optional<ThreadPriority> priority = parse_thread_priority(settings.text("events_cpu_priority"));
  if (!priority.has_value()) return Status::invalid_argument("events_cpu_priority must be normal, low or idle");
  EventsRuntimeConfig config;
  config.data_dir = shape.data_dir;
  config.retention_us = days * 86'400'000'000;
  config.priority = *priority;
  config.webhooks = true;
  config.cluster = !settings.text("nats_url").empty();
  config.cdc.link.urls = settings.text("nats_url");
  config.cdc.link.name = "paycore-" + settings.text("cluster_name") + "-cdc";
  config.cdc.cluster = settings.text("cluster_name");
  config.cdc.replicas = static_cast<int>(settings.integer("log_stream_replicas"));
  config.webhook_sync.link = config.cdc.link;
  config.webhook_sync.link.name = "paycore-" + settings.text("cluster_name") + "-webhooks";
  config.webhook_sync.cluster = config.cdc.cluster;
  config.webhook_sync.replicas = config.cdc.replicas;
  // A member away for less than the retry horizon (and a day) finds every change it missed.
  config.webhook_sync.changes_age_max_ms = (horizon_s + 86'400) * 1000;
  config.dispatcher.sender.timeout_ms = timeout_ms;
  config.dispatcher.in_flight_per_endpoint_max = static_cast<std::size_t>(in_flight);
  config.dispatcher.sender.ca_file = settings.text("webhook_ca_file");
  config.dispatcher.backoff.horizon_ms = horizon_s * 1000;
  config.dispatcher.sender.policy.http_hosts_allowed = comma_list(settings.text("webhook_http_hosts"));
  for (const std::string& network : comma_list(settings.text("webhook_allowed_networks"))) {
    StatusOr<webhooks::IpNetwork> parsed = webhooks::parse_ip_network(network);
    if (!parsed.is_ok()) return Status::invalid_argument("webhook_allowed_networks: " + parsed.status().message());
    config.dispatcher.sender.policy.addresses_allowed.push_back(*parsed);
  }
  config.render = [](const events::Event& e) { return net::render_event_json(e); };
  return config;
}

// Opens the events runtime when the events setting is on (null when off); false (said) on a
// bad setting or a store that does not open. It must outlive the engine (the engine reads its
// floor), and be stopped before it (StopEvents).
bool open_events(Settings& settings, const ServeShape& shape, EngineConfig* engine_config,
                 std::unique_ptr<EventsRuntime>* out) {
  if (!settings.flag("events")) return true;
  StatusOr<EventsRuntimeConfig> config = events_config_from(settings, shape);
  if (!config.is_ok()) {
    std::fprintf(stderr, "paycore serve: %s\n", config.status().message().c_str());
    return false;
  }
  StatusOr<std::unique_ptr<EventsRuntime>> opened = EventsRuntime::open(std::move(*config));
  if (!opened.is_ok()) {
    log_line(LogLevel::error, "events: " + opened.status().to_string());
    return false;
  }
  *out = std::move(*opened);
  engine_config->log_readers_floor_lsn = (*out)->floor_lsn();
  return true;
}

// Stops the events runtime (its deriver reads the engine) before the engine goes.
struct StopEvents {
  EventsRuntime* runtime;
  explicit StopEvents(EventsRuntime* r) : runtime(r) {}
  StopEvents(const StopEvents&) = delete;
  StopEvents& operator=(const StopEvents&) = delete;
  ~StopEvents() {
    if (runtime != nullptr) runtime->stop();
  }
};

// Stops a cluster member's leadership thread when it leaves scope (serve's every return).
struct StopLeadership {
  repl::ClusterMember* member;
  explicit StopLeadership(repl::ClusterMember* m) : member(m) {}
  StopLeadership(const StopLeadership&) = delete;
  StopLeadership& operator=(const StopLeadership&) = delete;
  ~StopLeadership() {
    if (member != nullptr) member->stop();
  }
};

// Starts the engine's thread (unless it runs to completion) and the event deriver on it (and,
// in a cluster, the CDC publisher, publishing while this member is primary). False (said, and
// the engine stopped) if the events cannot start.
bool start_engine(Engine& engine, EventsRuntime* events, const repl::ClusterMember* member,
                  bool run_to_completion, net::ServerConfig* server_config) {
  if (!run_to_completion) engine.start();
  if (events == nullptr) return true;
  std::function<bool()> is_primary;
  if (member != nullptr) is_primary = [member] { return member->primary(); };
  if (const Status s = events->start(engine, std::move(is_primary)); !s.is_ok()) {
    log_line(LogLevel::error, "events: " + s.to_string());
    engine.stop();
    return false;
  }
  server_config->events = &events->service();
  return true;
}

// A cluster member without advertise_url names itself by the address it listens on.
void advertise(Settings& settings, const ServeShape& shape, const net::Server& server,
               repl::ClusterMember* member) {
  if (member == nullptr || !settings.text("advertise_url").empty()) return;
  member->advertise(std::string(server.tls_enabled() ? "https" : "http") + "://" +
                    format_endpoint(shape.listen.host, server.port()));
}

int serve(Settings& settings, const std::vector<std::string>& wal_fault_specs) {
  const std::optional<ServeShape> shape = serve_shape(settings);
  if (!shape || !tier_settings_valid(settings)) return 2;
  const std::string& data_dir = shape->data_dir;
  const std::string& keys_path = shape->keys_path;
  const bool run_to_completion = shape->run_to_completion;
  const sigset_t signals = block_signals();

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  std::vector<std::string> private_keys;
  const StatusOr<std::shared_ptr<const auth::Keys>> loaded = load_keys(keys_path, &private_keys);
  if (!loaded.is_ok()) {
    log_line(LogLevel::error, "keys: " + loaded.status().message());
    return 1;
  }
  auth::KeysHolder keys(*loaded);

  EngineConfig engine_config = engine_config_from(settings, *shape, **loaded);
  // Outlives the engine (declared before it); only ever armed by the hidden --wal-fault.
  wal::FaultInjector wal_faults;
  if (!attach_wal_faults(wal_fault_specs, &wal_faults, &engine_config)) return 2;

  net::ServerConfig server_config = server_config_from(settings, *shape);
  // Made before the engine, so that recovery can put back the nonces logged with commands.
  auth::NonceCache nonces(auth::NonceCacheConfig{server_config.nonce_entries_max, 64,
                                                 server_config.auth_window_s});
  server_config.nonces = &nonces;
  net::NonceJournalLoad logged_nonces;
  keep_logged_nonces(server_config, nonces, &logged_nonces, &engine_config);

  std::unique_ptr<EventsRuntime> events;  // outlives the engine that reads its floor
  if (!open_events(settings, *shape, &engine_config, &events)) return 2;
  std::unique_ptr<repl::ClusterMember> member;  // outlives the engine that uses its ports
  std::unique_ptr<Engine> engine;
  Tier tier;
  if (!open_as_member(settings, *shape, engine_config, &engine, &tier, &member)) return 1;
  // Declared after the engine, so destroyed before it on every return: the leadership thread
  // and the event deriver stop using the engine first.
  const StopLeadership stop_leadership{member.get()};
  const StopEvents stop_events{events.get()};
  say_logged_nonces(server_config, logged_nonces);
  if (!start_engine(*engine, events.get(), member.get(), run_to_completion, &server_config)) return 2;

  if (!complete_server_config(settings, tier, member.get(), &server_config)) {
    engine->stop();
    return 2;
  }

  StatusOr<std::unique_ptr<net::Server>> created = net::Server::create(server_config, *engine, keys);
  if (!created.is_ok()) {
    log_line(LogLevel::error, created.status().message());
    engine->stop();
    return 1;
  }
  std::unique_ptr<net::Server> server = std::move(created).value();
  advertise(settings, *shape, *server, member.get());
  server->start();
  announce(*shape, *server, *engine, private_keys, **loaded);
  const std::uint32_t admin_producer = shape->threads;  // the producer after the I/O threads'
  const int status =
      serve_until_stopped(signals, keys_path, keys, *server, *engine, admin_producer, member.get());
  server->stop();
  if (events != nullptr) events->stop();
  engine->stop();
  if (member != nullptr) member->stop();  // gives the lease up: a standby takes over at once
  tier.stop();
  log_line(LogLevel::info, "stopped");
  return status;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Run the payment server (the HTTP/1.1 API of docs/api.md)");
  static Settings settings;
  static std::string config_path;
  static std::map<std::string, std::string> given;
  static std::map<std::string, bool> given_flags;
  static std::vector<std::string> wal_fault_specs;
  cmd->add_option("--config", config_path, "TOML file with any of the settings below");
  // Test-only fault injection (docs/reliability.md); hidden from --help (empty group).
  cmd->add_option("--wal-fault", wal_fault_specs, "TEST ONLY: OP:ERRNO[:after=N]")->group("");
  for (Setting& s : settings.all()) {
    const std::string name = s.name;
    const std::string help = std::string(s.help) + " [env " + env_name(s.name) + ", default " +
                             (s.value.empty() ? "see above" : s.value) + "]";
    if (s.type == SettingType::flag) {
      cmd->add_flag_function(dashed(s.name), [name](std::int64_t count) { given_flags[name] = count > 0; }, help);
    } else {
      cmd->add_option_function<std::string>(dashed(s.name), [name](const std::string& v) { given[name] = v; }, help);
    }
  }
  cmd->callback([] {
    Status configured = config_path.empty() ? Status::ok() : settings.apply_toml(config_path);
    if (configured.is_ok()) configured = settings.apply_environment();
    for (const auto& [name, value] : given) {
      if (configured.is_ok()) configured = settings.set(settings.find(name), value, dashed(name.c_str()));
    }
    for (const auto& [name, value] : given_flags) {
      if (configured.is_ok()) {
        configured = settings.set(settings.find(name), value ? "true" : "false", dashed(name.c_str()));
      }
    }
    if (!configured.is_ok()) {
      std::fprintf(stderr, "paycore serve: %s\n", configured.message().c_str());
      exit_status() = 2;
      return;
    }
    exit_status() = serve(settings, wal_fault_specs);
  });
}

}  // namespace paycore::app
