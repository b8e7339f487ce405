#pragma once
// Time as paycore writes and reads it: microseconds since the Unix epoch (`unix_us`), shown as
// RFC 3339 UTC with microseconds, "2026-11-26T05:19:14.123456Z" (docs/api.md "Conventions":
// every time in the API, the statements of docs/recon.md, the structured log).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace paycore {

inline constexpr std::int64_t us_per_second = 1'000'000;

// The system's real-time clock (CLOCK_REALTIME), microseconds since the Unix epoch.
std::int64_t wall_clock_us();

// CLOCK_MONOTONIC in nanoseconds (an arbitrary origin; never goes backwards): the stamps of a
// request's way through the server (core/pipeline.hpp) and the core's turn timing.
std::int64_t monotonic_ns();
// The same in milliseconds (timeouts of threads that wait in milliseconds).
inline std::int64_t monotonic_ms() { return monotonic_ns() / 1'000'000; }

// Bytes of "YYYY-MM-DDTHH:MM:SS.ffffffZ".
inline constexpr std::size_t rfc3339_us_bytes = 27;

// Formats `unix_us` as "2026-11-26T05:19:14.123456Z" into `out` (no terminating NUL), without
// allocating (the response writer's hot path). False for instants outside years 0000..9999.
[[nodiscard]] bool format_rfc3339_us(std::int64_t unix_us, char (&out)[rfc3339_us_bytes]);

// The same as a string, for any instant: outside years 0000..9999 the year field widens
// ("10000-01-01T...", "-001-12-31T...") rather than failing (tools, reports, the log).
std::string format_rfc3339_us(std::int64_t unix_us);

// What a parser accepts beyond "YYYY-MM-DDTHH:MM:SS[.f+](Z|+HH:MM|-HH:MM)" (RFC 3339 5.6).
// Two readers use it, with different needs:
// - the API (docs/api.md, `paid_at`, `expires_at`): a client's clock may give nanoseconds, so
//   up to 9 fraction digits are read and those past the microsecond dropped; a lowercase 't'
//   separator is accepted (RFC 3339 5.6, NOTE); a leap second (":60") is refused;
// - recon's statements and command-line times (docs/recon.md): fractions past the microsecond
//   are refused rather than rounded (a time we compare to the microsecond must be exact); only
//   an uppercase 'T'; a leap second reads as the next minute's second 0.
struct Rfc3339Rules {
  int fraction_digits_max = 9;  // digits past 6 are truncated; more than this: refused
  bool lowercase_t_accepted = true;
  bool leap_second_accepted = false;
};
inline constexpr Rfc3339Rules rfc3339_api_rules{};
inline constexpr Rfc3339Rules rfc3339_statement_rules{
    .fraction_digits_max = 6, .lowercase_t_accepted = false, .leap_second_accepted = true};

// Parses "YYYY-MM-DDTHH:MM:SS[.f{1,n}](Z|z|+HH:MM|-HH:MM)" under `rules` into *unix_us. False
// (and *unix_us untouched) if malformed, a field is out of range (month 13, February 30,
// 24:00) or the text does not end after the zone.
[[nodiscard]] bool parse_rfc3339_us(std::string_view text, std::int64_t* unix_us,
                                    const Rfc3339Rules& rules = rfc3339_api_rules);

// Parses "YYYY-MM-DD<separator>HH:MM:SS" (exactly 19 bytes read, more may follow) as if the wall
// time were UTC: seconds since the Unix epoch. The base of parse_rfc3339_us and of recon's
// channel bills ("2026-11-26 16:00:01", Beijing time). False on a malformed or out-of-range field.
[[nodiscard]] bool parse_wall_time_s(std::string_view text, char separator,
                                     bool leap_second_accepted, std::int64_t* seconds);

}  // namespace paycore
