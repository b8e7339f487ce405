#include "net/response.hpp"

#include <charconv>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::net {
namespace {

constexpr std::int64_t us_per_second = 1'000'000;
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

void put_digits(char* out, std::int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// Reads exactly `width` digits.
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

constexpr bool is_leap(std::int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

constexpr std::int64_t days_in_month(std::int64_t year, std::int64_t month) {
  constexpr std::int64_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

constexpr char hex_digits[] = "0123456789abcdef";

}  // namespace

// ---- OutBuffer ----

OutBuffer::OutBuffer(std::size_t bytes_max, std::size_t initial_bytes)
    : data_(new char[initial_bytes < bytes_max ? initial_bytes : bytes_max]),
      capacity_(initial_bytes < bytes_max ? initial_bytes : bytes_max),
      bytes_max_(bytes_max) {
  PAYCORE_ASSERT(bytes_max > 0);
}

char* OutBuffer::reserve(std::size_t bytes) {
  if (capacity_ - end_ >= bytes) return data_.get() + end_;
  const std::size_t used = end_ - begin_;
  if (bytes > bytes_max_ - used) return nullptr;
  // Reclaim consumed space first; grow (doubling, capped) only if still short.
  if (begin_ != 0) {
    std::memmove(data_.get(), data_.get() + begin_, used);
    begin_ = 0;
    end_ = used;
    if (capacity_ - end_ >= bytes) return data_.get() + end_;
  }
  std::size_t capacity = capacity_ == 0 ? 64 : capacity_;
  while (capacity - used < bytes) capacity = capacity > bytes_max_ / 2 ? bytes_max_ : capacity * 2;
  std::unique_ptr<char[]> grown(new char[capacity]);
  std::memcpy(grown.get(), data_.get(), used);
  data_ = std::move(grown);
  capacity_ = capacity;
  PAYCORE_ASSERT(capacity_ <= bytes_max_);
  return data_.get() + end_;
}

void OutBuffer::commit(std::size_t bytes) {
  PAYCORE_ASSERT(bytes <= capacity_ - end_);
  end_ += bytes;
}

bool OutBuffer::append(std::string_view text) {
  char* at = reserve(text.size());
  if (at == nullptr) return false;
  if (!text.empty()) std::memcpy(at, text.data(), text.size());
  end_ += text.size();
  return true;
}

void OutBuffer::consume(std::size_t bytes) {
  PAYCORE_ASSERT(bytes <= end_ - begin_);
  begin_ += bytes;
  if (begin_ == end_) begin_ = end_ = 0;
}

void OutBuffer::truncate(std::size_t size) {
  PAYCORE_ASSERT(size <= end_ - begin_);
  end_ = begin_ + size;
}

// ---- response head ----

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

bool write_response(OutBuffer& out, const ResponseHead& head, std::string_view body) {
  PAYCORE_ASSERT(head.status >= 100 && head.status <= 999);
  const auto has_line_break = [](std::string_view text) {
    return text.find_first_of("\r\n") != std::string_view::npos;
  };
  if (has_line_break(head.content_type) || has_line_break(head.request_id)) return false;
  for (std::string_view header : head.extra_headers) {
    if (has_line_break(header)) return false;
  }
  const std::size_t size_before = out.size();
  char status[3];
  put_digits(status, head.status, 3);
  char length[24];
  const auto [length_end, length_error] = std::to_chars(length, length + sizeof(length), body.size());
  PAYCORE_ASSERT(length_error == std::errc{});

  bool ok = out.append("HTTP/1.1 ") && out.append(std::string_view(status, 3)) &&
            out.append(' ') && out.append(http_reason_phrase(head.status)) &&
            out.append("\r\nContent-Type: ") && out.append(head.content_type) &&
            out.append("\r\nContent-Length: ") &&
            out.append(std::string_view(length, static_cast<std::size_t>(length_end - length))) &&
            out.append(head.keep_alive ? "\r\nConnection: keep-alive" : "\r\nConnection: close");
  if (ok && !head.request_id.empty()) {
    ok = out.append("\r\nX-Request-Id: ") && out.append(head.request_id);
  }
  if (ok && head.idempotent_replayed) ok = out.append("\r\nIdempotent-Replayed: true");
  for (std::string_view header : head.extra_headers) {
    if (ok) ok = out.append("\r\n") && out.append(header);
  }
  ok = ok && out.append("\r\n\r\n") && (head.omit_body || out.append(body));
  if (!ok) out.truncate(size_before);
  return ok;
}

bool write_continue(OutBuffer& out) { return out.append("HTTP/1.1 100 Continue\r\n\r\n"); }

// ---- timestamps ----

bool format_rfc3339_us(std::int64_t unix_us, char (&out)[rfc3339_us_bytes]) {
  if (unix_us < unix_us_min || unix_us >= unix_us_end) return false;
  // Floor division, so instants before 1970 format correctly too.
  std::int64_t days = unix_us / us_per_day;
  std::int64_t us_of_day = unix_us % us_per_day;
  if (us_of_day < 0) {
    us_of_day += us_per_day;
    days -= 1;
  }
  const Civil civil = civil_from_days(days);
  const std::int64_t second_of_day = us_of_day / us_per_second;
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
  put_digits(out + 20, us_of_day % us_per_second, 6);
  out[26] = 'Z';
  return true;
}

bool parse_rfc3339_us(std::string_view text, std::int64_t* unix_us) {
  std::int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, 0, 4, &year) || text.size() < 20 || text[4] != '-' ||
      !read_digits(text, 5, 2, &month) || text[7] != '-' || !read_digits(text, 8, 2, &day) ||
      (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, &hour) ||
      text[13] != ':' || !read_digits(text, 14, 2, &minute) || text[16] != ':' ||
      !read_digits(text, 17, 2, &second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return false;  // leap seconds (":60") are not accepted
  }
  std::size_t at = 19;
  std::int64_t fraction_us = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (++digits > 9) return false;
      if (digits <= 6) fraction_us = fraction_us * 10 + (text[at] - '0');
      ++at;
    }
    if (digits == 0) return false;
    for (int i = digits; i < 6; ++i) fraction_us *= 10;
  }
  std::int64_t offset_s = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    std::int64_t offset_hour = 0, offset_minute = 0;
    if (!read_digits(text, at + 1, 2, &offset_hour) || at + 3 >= text.size() ||
        text[at + 3] != ':' || !read_digits(text, at + 4, 2, &offset_minute) ||
        offset_hour > 23 || offset_minute > 59) {
      return false;
    }
    offset_s = (offset_hour * 3600 + offset_minute * 60) * (text[at] == '-' ? -1 : 1);
    at += 6;
  } else {
    return false;
  }
  if (at != text.size()) return false;
  const std::int64_t seconds =
      days_from_civil(year, month, day) * seconds_per_day + hour * 3600 + minute * 60 + second -
      offset_s;
  *unix_us = seconds * us_per_second + fraction_us;
  return true;
}

// ---- JSON ----

bool json_escape_append(OutBuffer& out, std::string_view text) {
  const std::size_t size_before = out.size();
  std::size_t run_begin = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    bool ok = out.append(text.substr(run_begin, i - run_begin));
    switch (c) {
      case '"': ok = ok && out.append("\\\""); break;
      case '\\': ok = ok && out.append("\\\\"); break;
      case '\n': ok = ok && out.append("\\n"); break;
      case '\r': ok = ok && out.append("\\r"); break;
      case '\t': ok = ok && out.append("\\t"); break;
      default: {
        const char escaped[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 0xf]};
        ok = ok && out.append(std::string_view(escaped, 6));
      }
    }
    if (!ok) {
      out.truncate(size_before);
      return false;
    }
    run_begin = i + 1;
  }
  if (!out.append(text.substr(run_begin))) {
    out.truncate(size_before);
    return false;
  }
  return true;
}

void JsonWriter::put(std::string_view text) {
  if (ok_ && !out_.append(text)) ok_ = false;
}

void JsonWriter::put_escaped(std::string_view text) {
  put("\"");
  if (ok_ && !json_escape_append(out_, text)) ok_ = false;
  put("\"");
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0) {
    if (!first_in_container_[depth_]) put(",");
    first_in_container_[depth_] = false;
  }
  wrote_value_ = true;
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  put("{");
  if (depth_ == json_writer_depth_max) {
    ok_ = false;
    return *this;
  }
  first_in_container_[++depth_] = true;
  return *this;
}

JsonWriter& JsonWriter::end_object() { return end_object_or_array("}"); }

JsonWriter& JsonWriter::begin_array() {
  before_value();
  put("[");
  if (depth_ == json_writer_depth_max) {
    ok_ = false;
    return *this;
  }
  first_in_container_[++depth_] = true;
  return *this;
}

JsonWriter& JsonWriter::end_array() { return end_object_or_array("]"); }

JsonWriter& JsonWriter::end_object_or_array(std::string_view closer) {
  PAYCORE_ASSERT(!after_key_);
  if (depth_ == 0) {
    ok_ = false;
    return *this;
  }
  --depth_;
  put(closer);
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  PAYCORE_ASSERT(!after_key_);
  before_value();
  put_escaped(name);
  put(":");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view value) {
  before_value();
  put_escaped(value);
  return *this;
}

JsonWriter& JsonWriter::int64(std::int64_t value) {
  before_value();
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
  PAYCORE_ASSERT(error == std::errc{});
  put(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  before_value();
  put(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  put("null");
  return *this;
}

JsonWriter& JsonWriter::timestamp_us(std::int64_t unix_us) {
  before_value();
  char text[rfc3339_us_bytes];
  if (!format_rfc3339_us(unix_us, text)) {
    ok_ = false;
    return *this;
  }
  put("\"");
  put(std::string_view(text, rfc3339_us_bytes));
  put("\"");
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  before_value();
  put(json);
  return *this;
}

bool write_error_body(OutBuffer& out, std::string_view code, std::string_view message,
                      std::string_view field) {
  const std::size_t size_before = out.size();
  JsonWriter json(out);
  json.begin_object().key("error").begin_object();
  json.field("code", code).field("message", message);
  if (!field.empty()) json.field("field", field);
  json.end_object().end_object();
  if (!json.complete()) {
    out.truncate(size_before);
    return false;
  }
  return true;
}

}  // namespace paycore::net
