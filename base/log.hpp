#pragma once
// Structured log lines: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-26T05:19:14.123456Z","level":"info","msg":"listening on 127.0.0.1:8080"}
// Cold path only (start-up, faults, snapshots): formatting allocates.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "base/json_text.hpp"
#include "base/time.hpp"

namespace paycore {

enum class LogLevel { info, warn, error };

// Writes one line at the wall clock's time. Extra fields are written as JSON strings after "msg".
// Lines from several threads never interleave.
void log_line(LogLevel level, std::string_view message,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {});

// format_rfc3339_us (base/time.hpp) under the name core/snapshot_export.cpp still calls it by.
inline std::string format_time_us(std::int64_t unix_us) { return format_rfc3339_us(unix_us); }

}  // namespace paycore
