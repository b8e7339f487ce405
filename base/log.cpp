#include "base/log.hpp"

#include "base/json_text.hpp"
#include "base/time.hpp"

#include <cstdio>
#include <mutex>

namespace paycore {

void log_line(LogLevel level, std::string_view message,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  static std::mutex mutex;  // lines from several threads never interleave
  const char* name = level == LogLevel::info ? "info" : level == LogLevel::warn ? "warn" : "error";
  std::string line = "{\"ts\":\"" + format_rfc3339_us(wall_clock_us()) + "\",\"level\":\"" + name +
                     "\",\"msg\":\"" + json_escape(message) + "\"";
  for (const auto& [key, value] : fields) {
    line += ",\"" + json_escape(key) + "\":\"" + json_escape(value) + "\"";
  }
  line += "}\n";
  const std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace paycore
