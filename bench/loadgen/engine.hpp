#pragma once
// The load engine: per thread, one epoll set over that thread's keep-alive connections, each
// with at most one request in flight (no pipelining: the concurrency is the connection count).
//
// Closed loop (rate 0): a connection sends its next request as soon as the previous answer
// arrives. Open loop (rate R): thread t of T owns the schedule
//     intended(k) = start + k * T / R        k = 0, 1, ...
// and sends request k at intended(k), or as soon after it as a connection is free. Latency is
// measured from intended(k), not from the moment the bytes left: a stalled server makes the
// requests that should have been sent meanwhile wait in the client, and that waiting is part
// of what a user at that rate would see (coordinated omission, Gil Tene; wrk2 corrects it the
// same way). The time from the actual send is kept separately as `service`. A timerfd armed
// at the next intended time (absolute, CLOCK_MONOTONIC) wakes the loop without spinning.
//
// Bounds: no request is started after `duration` or beyond `requests_max`, except that in an
// open loop the backlog of requests whose intended time fell inside the run is still sent
// until the drain deadline (duration + timeout); whatever is left then is `unsent`. A request
// in flight longer than `timeout` is abandoned (its connection closed) and counted.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "bench/loadgen/histogram.hpp"
#include "bench/loadgen/mix.hpp"
#include "bench/loadgen/workload.hpp"

namespace paycore::loadgen {

struct Target {
  std::string host;
  std::uint16_t port = 0;
  sockaddr_storage address{};
  socklen_t address_bytes = 0;
  bool tls = false;  // https://: every connection does a TLS handshake first (not timed)
  std::string host_header() const { return host + ":" + std::to_string(port); }
};

// "http://HOST:PORT" or "https://HOST:PORT" (an optional trailing "/"); HOST is a name or an IPv4/IPv6 address
// ([::1]). Resolved once, here; the run talks only to that address.
[[nodiscard]] bool parse_url(std::string_view url, Target* out, std::string* error);

struct OpStats {
  std::uint64_t completed = 0;
  std::uint64_t ok = 0;
  std::uint64_t refused = 0;
  std::uint64_t errors = 0;
  std::uint64_t violations = 0;
  Histogram latency;  // from the intended send time
};

struct RunStats {
  Histogram latency;  // every answered request, from its intended send time
  Histogram service;  // every answered request, from its actual send time
  std::array<OpStats, ops_count> ops{};
  std::map<std::string, std::uint64_t> statuses;    // "201", "402 insufficient_funds", ...
  std::map<std::string, std::uint64_t> violations;  // reason -> count
  std::map<std::string, std::uint64_t> errors;      // reason -> count
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;     // answered (any status)
  std::uint64_t timeouts = 0;      // abandoned after timeout
  std::uint64_t transport_errors = 0;  // connect/send/recv failures, early close
  std::uint64_t unsent = 0;        // open loop: intended but never sent
  std::uint64_t replayed = 0;      // answers with Idempotent-Replayed: true
  std::uint64_t payments_accepted = 0;  // 201 payments, batch items included
  std::uint64_t scheduled = 0;     // open loop: intended sends within the run
  std::int64_t elapsed_ns = 0;     // first send to last answer (longest thread)

  void merge(const RunStats& other);
  std::uint64_t errors_total() const;      // errors + timeouts + transport + unsent
  std::uint64_t violations_total() const;
};

struct EngineConfig {
  Target target;
  unsigned connections = 16;       // this thread's
  std::uint64_t requests_max = UINT64_MAX;  // this thread's
  std::int64_t duration_ns = 10'000'000'000;
  double rate_per_s = 0.0;         // this thread's; 0 = closed loop
  std::int64_t timeout_ns = 10'000'000'000;
  std::size_t response_body_bytes_max = 16 * 1024 * 1024;
  std::string tls_ca_file;  // https: verify the server against this PEM CA; empty: no verification
};

// Runs one thread's share of a run (in the calling thread) until a bound is reached or the
// workload has nothing more to send.
[[nodiscard]] RunStats run_engine(const EngineConfig& config, Workload& workload);

std::int64_t monotonic_ns();

}  // namespace paycore::loadgen
