#include "recon/text.hpp"

#include <iconv.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::recon {
namespace {

constexpr std::int64_t us_per_second = 1'000'000;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

Civil civil_from_days(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

bool leap(std::int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned days_in_month(std::int64_t year, unsigned month) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && leap(year) ? 29 : days[month - 1];
}

// Exactly `width` digits at text[at...].
bool digits(std::string_view text, std::size_t at, std::size_t width, unsigned* out) {
  if (text.size() < at + width) return false;
  unsigned value = 0;
  for (std::size_t i = at; i < at + width; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  *out = value;
  return true;
}

// "YYYY-MM-DD?HH:MM:SS" with `separator` between date and time; seconds since the epoch as if
// the wall time were UTC.
std::optional<std::int64_t> parse_wall_seconds(std::string_view text, char separator) {
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 19 || !digits(text, 0, 4, &year) || text[4] != '-' ||
      !digits(text, 5, 2, &month) || text[7] != '-' || !digits(text, 8, 2, &day) ||
      text[10] != separator || !digits(text, 11, 2, &hour) || text[13] != ':' ||
      !digits(text, 14, 2, &minute) || text[16] != ':' || !digits(text, 17, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60) {  // 60: a leap second, as RFC 3339 allows
    return std::nullopt;
  }
  return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_us(std::string_view text) {
  if (text.size() >= 11 && (text[10] == 't' || text[10] == ' ')) return std::nullopt;
  const auto seconds = parse_wall_seconds(text, 'T');
  if (!seconds) return std::nullopt;
  std::size_t at = 19;
  std::int64_t fraction_us = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::size_t count = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (++count > 6) return std::nullopt;
      fraction_us = fraction_us * 10 + (text[at] - '0');
      ++at;
    }
    if (count == 0) return std::nullopt;
    for (std::size_t i = count; i < 6; ++i) fraction_us *= 10;
  }
  std::int64_t offset_seconds = 0;
  const std::string_view zone = text.substr(at);
  if (zone == "Z" || zone == "z") {
    offset_seconds = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    unsigned hours = 0, minutes = 0;
    if (!digits(zone, 1, 2, &hours) || !digits(zone, 4, 2, &minutes) || hours > 23 ||
        minutes > 59) {
      return std::nullopt;
    }
    offset_seconds = (zone[0] == '-' ? -1 : 1) * static_cast<std::int64_t>(hours * 3600 + minutes * 60);
  } else {
    return std::nullopt;
  }
  return (*seconds - offset_seconds) * us_per_second + fraction_us;
}

std::optional<std::int64_t> parse_local_datetime_us(std::string_view text, int utc_offset_minutes) {
  if (text.size() != 19) return std::nullopt;
  const auto seconds = parse_wall_seconds(text, ' ');
  if (!seconds) return std::nullopt;
  return (*seconds - std::int64_t{utc_offset_minutes} * 60) * us_per_second;
}

std::string format_rfc3339_us(std::int64_t time_us) {
  std::int64_t seconds = time_us / us_per_second;
  std::int64_t micros = time_us % us_per_second;
  if (micros < 0) {
    micros += us_per_second;
    seconds -= 1;
  }
  std::int64_t days = seconds / 86400;
  std::int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    days -= 1;
  }
  const Civil civil = civil_from_days(days);
  char text[40];
  const int written = std::snprintf(
      text, sizeof text, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
      static_cast<long long>(civil.year), civil.month, civil.day,
      static_cast<long long>(second_of_day / 3600), static_cast<long long>(second_of_day / 60 % 60),
      static_cast<long long>(second_of_day % 60), static_cast<long long>(micros));
  PAYCORE_ASSERT(written > 0 && static_cast<std::size_t>(written) < sizeof text);
  return std::string(text, static_cast<std::size_t>(written));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool split_csv_line(std::string_view line, std::vector<std::string_view>* fields,
                    std::string* unescaped) {
  fields->clear();
  unescaped->clear();
  unescaped->reserve(line.size());
  std::size_t at = 0;
  while (true) {
    if (at < line.size() && line[at] == '"') {
      const std::size_t start = unescaped->size();
      ++at;
      bool closed = false;
      while (at < line.size()) {
        if (line[at] == '"') {
          if (at + 1 < line.size() && line[at + 1] == '"') {
            unescaped->push_back('"');
            at += 2;
            continue;
          }
          closed = true;
          ++at;
          break;
        }
        unescaped->push_back(line[at++]);
      }
      if (!closed) return false;
      PAYCORE_ASSERT(unescaped->size() <= line.size());  // so views into it stay valid
      fields->push_back(std::string_view(*unescaped).substr(start));
      if (at == line.size()) return true;
      if (line[at] != ',') return false;
      ++at;
      continue;
    }
    const std::size_t comma = line.find(',', at);
    if (comma == std::string_view::npos) {
      fields->push_back(line.substr(at));
      return true;
    }
    fields->push_back(line.substr(at, comma - at));
    at = comma + 1;
  }
}

std::string quote_for_message(std::string_view text) {
  constexpr std::size_t shown_max = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < shown_max; ++i) {
    const char c = text[i];
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > shown_max) out += "...";
  out += "'";
  return out;
}

void append_json_string(std::string* out, std::string_view text) {
  out->push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          *out += escaped;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void append_csv_field(std::string* out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    *out += text;
    return;
  }
  out->push_back('"');
  for (const char c : text) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void append_html_escaped(std::string* out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '<': *out += "&lt;"; break;
      case '>': *out += "&gt;"; break;
      case '&': *out += "&amp;"; break;
      case '"': *out += "&quot;"; break;
      default: out->push_back(c);
    }
  }
}

namespace {

bool convert(const char* to, const char* from, std::string_view in, std::string* out) {
  out->clear();
  iconv_t cd = iconv_open(to, from);
  PAYCORE_ASSERT(cd != reinterpret_cast<iconv_t>(-1));  // glibc always has GBK and GB18030
  // UTF-8 takes at most 3 bytes for a 2-byte GBK character; GBK never more than UTF-8.
  out->resize(in.size() * 2 + 4);
  char* in_at = const_cast<char*>(in.data());  // iconv's interface is not const-correct
  std::size_t in_left = in.size();
  char* out_at = out->data();
  std::size_t out_left = out->size();
  const std::size_t result = iconv(cd, &in_at, &in_left, &out_at, &out_left);
  iconv_close(cd);
  if (result == static_cast<std::size_t>(-1) || in_left != 0) return false;
  out->resize(out->size() - out_left);
  return true;
}

}  // namespace

bool gbk_to_utf8(std::string_view gbk, std::string* utf8) { return convert("UTF-8", "GBK", gbk, utf8); }
bool utf8_to_gbk(std::string_view utf8, std::string* gbk) { return convert("GBK", "UTF-8", utf8, gbk); }
bool gb18030_to_utf8(std::string_view gb18030, std::string* utf8) {
  return convert("UTF-8", "GB18030", gb18030, utf8);
}
bool utf8_to_gb18030(std::string_view utf8, std::string* gb18030) {
  return convert("GB18030", "UTF-8", utf8, gb18030);
}

Gb18030Decoder::Gb18030Decoder() : descriptor_(iconv_open("UTF-8", "GB18030")) {
  PAYCORE_ASSERT(descriptor_ != reinterpret_cast<iconv_t>(-1));  // glibc always has GB18030
}

Gb18030Decoder::~Gb18030Decoder() { iconv_close(static_cast<iconv_t>(descriptor_)); }

bool Gb18030Decoder::decode(std::string_view gb18030, std::string* utf8) {
  const auto cd = static_cast<iconv_t>(descriptor_);
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // back to the initial state after a failure
  // A GB18030 character of n bytes is at most 1.5n bytes of UTF-8 (1 -> 1, 2 -> 3, 4 -> 4).
  utf8->resize(gb18030.size() * 2 + 4);
  char* in_at = const_cast<char*>(gb18030.data());  // iconv's interface is not const-correct
  std::size_t in_left = gb18030.size();
  char* out_at = utf8->data();
  std::size_t out_left = utf8->size();
  const std::size_t result = iconv(cd, &in_at, &in_left, &out_at, &out_left);
  if (result == static_cast<std::size_t>(-1) || in_left != 0) return false;
  utf8->resize(utf8->size() - out_left);
  return true;
}

bool is_utf8(std::string_view text) {
  const auto* at = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = at + text.size();
  while (at < end) {
    const unsigned char lead = *at;
    if (lead < 0x80) {
      ++at;
      continue;
    }
    // RFC 3629 section 4: the lead byte gives the length and the range of the second byte
    // (which excludes overlong forms, surrogates and code points above U+10FFFF).
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - at) < length || at[1] < low || at[1] > high) return false;
    for (std::size_t i = 2; i < length; ++i) {
      if (at[i] < 0x80 || at[i] > 0xBF) return false;
    }
    at += length;
  }
  return true;
}

bool is_ascii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool LineReader::refill(std::string* error) {
  constexpr std::size_t block_bytes = std::size_t{1} << 20;
  buffer_.erase(0, begin_);
  begin_ = 0;
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + block_bytes);
  const std::size_t got = std::fread(buffer_.data() + old_size, 1, block_bytes, file_);
  buffer_.resize(old_size + got);
  if (got < block_bytes) {
    if (std::ferror(file_)) {
      *error = std::string("read error: ") + std::strerror(errno);
      return false;
    }
    eof_ = true;
  }
  return true;
}

bool LineReader::next(std::string_view* line, std::string* error) {
  std::string_view rest;
  if (from_memory_) {
    if (memory_.empty()) return false;
    const std::size_t newline = memory_.find('\n');
    *line = memory_.substr(0, newline);
    memory_ = newline == std::string_view::npos ? std::string_view{} : memory_.substr(newline + 1);
  } else {
    std::size_t newline = std::string_view(buffer_).find('\n', begin_);
    std::size_t searched = begin_;
    while (newline == std::string_view::npos && !eof_) {
      searched = buffer_.size() - begin_;  // offset from begin_, which refill resets to 0
      if (!refill(error)) return false;
      newline = std::string_view(buffer_).find('\n', searched);
    }
    if (begin_ >= buffer_.size()) return false;
    const std::size_t end = newline == std::string_view::npos ? buffer_.size() : newline;
    *line = std::string_view(buffer_).substr(begin_, end - begin_);
    begin_ = newline == std::string_view::npos ? buffer_.size() : newline + 1;
  }
  if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
  ++line_number_;
  return true;
}

}  // namespace paycore::recon
