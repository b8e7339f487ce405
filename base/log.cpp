#include "base/log.hpp"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace paycore {

std::int64_t wall_clock_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::string format_time_us(std::int64_t unix_us) {
  std::int64_t seconds = unix_us / 1'000'000;
  std::int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buffer;
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char u[8];
          std::snprintf(u, sizeof(u), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += u;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void log_line(LogLevel level, std::string_view message,
              std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  static std::mutex mutex;  // lines from several threads never interleave
  const char* name = level == LogLevel::info ? "info" : level == LogLevel::warn ? "warn" : "error";
  std::string line = "{\"ts\":\"" + format_time_us(wall_clock_us()) + "\",\"level\":\"" + name +
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
