#include "net/response.hpp"

#include <charconv>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::net {
namespace {

void put_digits(char* out, std::int64_t value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// ---- OutBuffer ----

OutBuffer::OutBuffer(std::size_t bytes_max, std::size_t initial_bytes)
    : data_(new char[initial_bytes < bytes_max ? initial_bytes : bytes_max]),
      capacity_(initial_bytes < bytes_max ? initial_bytes : bytes_max),
      bytes_max_(bytes_max) {
  PAYCORE_ASSERT_GT(bytes_max, std::size_t{0});
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
  PAYCORE_ASSERT_LE(capacity_, bytes_max_);
  return data_.get() + end_;
}

void OutBuffer::commit(std::size_t bytes) {
  PAYCORE_ASSERT_LE(bytes, capacity_ - end_);
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
  PAYCORE_ASSERT_LE(bytes, end_ - begin_);
  begin_ += bytes;
  if (begin_ == end_) begin_ = end_ = 0;
}

void OutBuffer::truncate(std::size_t size) {
  PAYCORE_ASSERT_LE(size, end_ - begin_);
  end_ = begin_ + size;
}

// ---- response head ----

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
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
  PAYCORE_ASSERT_GE(head.status, 100);
  PAYCORE_ASSERT_LE(head.status, 999);
  const auto has_line_break = [](std::string_view text) {
    return text.find_first_of("\r\n") != std::string_view::npos;
  };
  if (has_line_break(head.content_type) || has_line_break(head.trace_id)) return false;
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
  if (ok && !head.trace_id.empty()) {
    ok = out.append("\r\nX-Request-Id: ") && out.append(head.trace_id);
  }
  if (ok && head.idempotent_replayed) ok = out.append("\r\nIdempotent-Replayed: true");
  char lsn[24];
  const auto [lsn_end, lsn_error] = std::to_chars(lsn, lsn + sizeof(lsn), head.lsn);
  PAYCORE_ASSERT(lsn_error == std::errc{});
  ok = ok && out.append("\r\nPaycore-Lsn: ") &&
       out.append(std::string_view(lsn, static_cast<std::size_t>(lsn_end - lsn)));
  for (std::string_view header : head.extra_headers) {
    if (ok) ok = out.append("\r\n") && out.append(header);
  }
  ok = ok && out.append("\r\n\r\n") && (head.omit_body || out.append(body));
  if (!ok) out.truncate(size_before);
  return ok;
}

bool write_continue(OutBuffer& out) { return out.append("HTTP/1.1 100 Continue\r\n\r\n"); }

// ---- JSON ----

bool json_escape_append(OutBuffer& out, std::string_view text) {
  const std::size_t size_before = out.size();
  const bool ok =
      json_escape_into(text, [&out](std::string_view bytes) { return out.append(bytes); });
  if (!ok) out.truncate(size_before);
  return ok;
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
