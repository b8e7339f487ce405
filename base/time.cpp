#include "base/time.hpp"

#include <cstdio>
#include <ctime>

namespace paycore {
namespace {

constexpr std::int64_t seconds_per_day = 86'400;
constexpr std::int64_t us_per_day = us_per_second * seconds_per_day;

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, no tables).
constexpr std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  std::int64_t year, month, day;
};

constexpr Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return Civil{yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(civil_from_days(0).year == 1970);
static_assert(days_from_civil(2000, 3, 1) == 11017);

constexpr std::int64_t unix_us_min = days_from_civil(0, 1, 1) * us_per_day;
constexpr std::int64_t unix_us_end = days_from_civil(10000, 1, 1) * us_per_day;

constexpr bool is_leap(std::int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

constexpr std::int64_t days_in_month(std::int64_t year, std::int64_t month) {
  constexpr std::int64_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

void put_digits(char* out, std::int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// Reads exactly `width` digits at text[at...].
bool read_digits(std::string_view text, std::size_t at, int width, std::int64_t* out) {
  if (at + static_cast<std::size_t>(width) > text.size()) return false;
  std::int64_t value = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[at + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

// Days since the epoch and microseconds into that day (floor division, so instants before
// 1970 split correctly too).
struct DayAndTime {
  std::int64_t days;
  std::int64_t us_of_day;
};

DayAndTime split_day(std::int64_t unix_us) {
  DayAndTime split{unix_us / us_per_day, unix_us % us_per_day};
  if (split.us_of_day < 0) {
    split.us_of_day += us_per_day;
    split.days -= 1;
  }
  return split;
}

// ".f{1,n}" at text[*at...] (if there is a '.'): microseconds, digits past the sixth dropped.
bool read_fraction_us(std::string_view text, int digits_max, std::size_t* at,
                      std::int64_t* fraction_us) {
  *fraction_us = 0;
  if (*at >= text.size() || text[*at] != '.') return true;
  ++*at;
  int digits = 0;
  while (*at < text.size() && text[*at] >= '0' && text[*at] <= '9') {
    if (++digits > digits_max) return false;
    if (digits <= 6) *fraction_us = *fraction_us * 10 + (text[*at] - '0');
    ++*at;
  }
  if (digits == 0) return false;
  for (int i = digits; i < 6; ++i) *fraction_us *= 10;
  return true;
}

// "Z", "z", "+HH:MM" or "-HH:MM", and nothing after it: the zone's offset east of UTC.
bool read_zone_s(std::string_view zone, std::int64_t* offset_s) {
  if (zone == "Z" || zone == "z") {
    *offset_s = 0;
    return true;
  }
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return false;
  std::int64_t hours = 0, minutes = 0;
  if (!read_digits(zone, 1, 2, &hours) || !read_digits(zone, 4, 2, &minutes)) return false;
  if (hours > 23 || minutes > 59) return false;
  *offset_s = (hours * 3600 + minutes * 60) * (zone[0] == '-' ? -1 : 1);
  return true;
}

}  // namespace

std::int64_t wall_clock_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * us_per_second + ts.tv_nsec / 1000;
}

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool format_rfc3339_us(std::int64_t unix_us, char (&out)[rfc3339_us_bytes]) {
  if (unix_us < unix_us_min || unix_us >= unix_us_end) return false;
  const DayAndTime split = split_day(unix_us);
  const Civil civil = civil_from_days(split.days);
  const std::int64_t second_of_day = split.us_of_day / us_per_second;
  put_digits(out, civil.year, 4);
  out[4] = '-';
  put_digits(out + 5, civil.month, 2);
  out[7] = '-';
  put_digits(out + 8, civil.day, 2);
  out[10] = 'T';
  put_digits(out + 11, second_of_day / 3600, 2);
  out[13] = ':';
  put_digits(out + 14, second_of_day / 60 % 60, 2);
  out[16] = ':';
  put_digits(out + 17, second_of_day % 60, 2);
  out[19] = '.';
  put_digits(out + 20, split.us_of_day % us_per_second, 6);
  out[26] = 'Z';
  return true;
}

std::string format_rfc3339_us(std::int64_t unix_us) {
  char fixed[rfc3339_us_bytes];
  if (format_rfc3339_us(unix_us, fixed)) return std::string(fixed, rfc3339_us_bytes);
  const DayAndTime split = split_day(unix_us);
  const Civil civil = civil_from_days(split.days);
  const std::int64_t second_of_day = split.us_of_day / us_per_second;
  char wide[48];
  const int written = std::snprintf(
      wide, sizeof wide, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ",
      static_cast<long long>(civil.year), static_cast<long long>(civil.month),
      static_cast<long long>(civil.day), static_cast<long long>(second_of_day / 3600),
      static_cast<long long>(second_of_day / 60 % 60), static_cast<long long>(second_of_day % 60),
      static_cast<long long>(split.us_of_day % us_per_second));
  return std::string(wide, static_cast<std::size_t>(written));
}

bool parse_wall_time_s(std::string_view text, char separator, bool leap_second_accepted,
                       std::int64_t* seconds) {
  std::int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, 0, 4, &year) || text.size() < 19 || text[4] != '-' ||
      !read_digits(text, 5, 2, &month) || text[7] != '-' || !read_digits(text, 8, 2, &day) ||
      text[10] != separator || !read_digits(text, 11, 2, &hour) || text[13] != ':' ||
      !read_digits(text, 14, 2, &minute) || text[16] != ':' || !read_digits(text, 17, 2, &second)) {
    return false;
  }
  const std::int64_t second_max = leap_second_accepted ? 60 : 59;
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > second_max) {
    return false;
  }
  *seconds =
      days_from_civil(year, month, day) * seconds_per_day + hour * 3600 + minute * 60 + second;
  return true;
}

bool parse_rfc3339_us(std::string_view text, std::int64_t* unix_us, const Rfc3339Rules& rules) {
  std::int64_t wall_s = 0;
  const bool lowercase_t = text.size() > 10 && text[10] == 't';
  const char separator = lowercase_t && rules.lowercase_t_accepted ? 't' : 'T';
  if (!parse_wall_time_s(text, separator, rules.leap_second_accepted, &wall_s)) return false;
  std::size_t at = 19;
  std::int64_t fraction_us = 0;
  if (!read_fraction_us(text, rules.fraction_digits_max, &at, &fraction_us)) return false;
  std::int64_t offset_s = 0;
  if (!read_zone_s(text.substr(at), &offset_s)) return false;
  *unix_us = (wall_s - offset_s) * us_per_second + fraction_us;
  return true;
}

}  // namespace paycore
