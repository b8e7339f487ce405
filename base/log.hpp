#pragma once
// Structured log lines: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-26T05:19:14.123456Z","level":"info","msg":"listening on 127.0.0.1:8080"}
// Cold path only (start-up, faults, snapshots): formatting allocates.

#include <initializer_list>
#include <string_view>
#include <utility>

namespace paycore {

enum class LogLevel { info, warn, error };

// Writes one line at the wall clock's time. Extra fields are written as JSON strings after "msg".
// Lines from several threads never interleave.
void log_line(LogLevel level, std::string_view message,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {});

}  // namespace paycore
