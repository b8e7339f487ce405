#pragma once
// Response writing without a heap allocation per response: a caller-owned OutBuffer (one per
// connection, or one per thread for scratch) that grows by doubling only up to its limit and is
// then reused; an HTTP/1.1 response head writer; and a small JSON writer (escaping, int64,
// RFC 3339 UTC microsecond timestamps, null) that appends straight into an OutBuffer. The
// escaping and the timestamp format are base's (base/json_text.hpp, base/time.hpp).
//
// Every append either succeeds whole or leaves the buffer unchanged and returns false (the
// limit was hit): callers answer 500/close instead of sending a truncated response.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/json_text.hpp"
#include "base/time.hpp"

namespace paycore::net {

class OutBuffer {
 public:
  // Starts with `initial_bytes` of capacity; never holds more than `bytes_max`.
  explicit OutBuffer(std::size_t bytes_max, std::size_t initial_bytes = 4096);
  OutBuffer(const OutBuffer&) = delete;
  OutBuffer& operator=(const OutBuffer&) = delete;
  OutBuffer(OutBuffer&&) noexcept = default;
  OutBuffer& operator=(OutBuffer&&) noexcept = default;

  // Pointer to `bytes` writable bytes after the current end, growing if needed; nullptr if
  // that would exceed bytes_max. Follow with commit(n <= bytes).
  [[nodiscard]] char* reserve(std::size_t bytes);
  void commit(std::size_t bytes);
  [[nodiscard]] bool append(std::string_view text);
  [[nodiscard]] bool append(char c) { return append(std::string_view(&c, 1)); }

  std::string_view view() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t bytes_max() const { return bytes_max_; }

  // Drops `bytes` from the front (after a write to the socket). Cheap: moves an offset.
  void consume(std::size_t bytes);
  // Drops bytes from the back: truncates to `size` (to undo a partly written response).
  void truncate(std::size_t size);
  void clear() { begin_ = end_ = 0; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t bytes_max_ = 0;
  std::size_t begin_ = 0;  // first unsent byte
  std::size_t end_ = 0;    // one past the last byte
};

// "OK", "Created", ... ; "Unknown" for codes we never send.
std::string_view http_reason_phrase(int status);

struct ResponseHead {
  int status = 200;
  std::string_view content_type = "application/json";
  std::string_view trace_id;        // X-Request-Id echo (not the idempotency key); omitted if empty
  bool keep_alive = true;           // Connection: keep-alive | close
  bool idempotent_replayed = false;  // Idempotent-Replayed: true
  // Paycore-Lsn: the log position the answer reflects (docs/api.md "Replication"); sent on
  // every answer.
  std::uint64_t lsn = 0;
  // Further header lines, each "Name: value" without CRLF (e.g. "Allow: GET").
  std::span<const std::string_view> extra_headers{};
  // The answer to HEAD (RFC 9110 9.3.2): the head is the one the body would get (its
  // Content-Length included), the body itself is not sent.
  bool omit_body = false;
};

// Appends a whole HTTP/1.1 response. False (buffer unchanged) if it does not fit or a header
// value contains CR or LF.
[[nodiscard]] bool write_response(OutBuffer& out, const ResponseHead& head, std::string_view body);

// Appends the interim answer "HTTP/1.1 100 Continue" (RFC 9110 15.2.1, 10.1.1). False (buffer
// unchanged) if it does not fit.
[[nodiscard]] bool write_continue(OutBuffer& out);

// A JSON writer over an OutBuffer. Commas are placed automatically. Nesting is bounded by
// json_writer_depth_max. After any failed append `ok()` is false and the writer stops
// writing; the caller checks `ok()` once at the end.
inline constexpr std::size_t json_writer_depth_max = 16;

class JsonWriter {
 public:
  explicit JsonWriter(OutBuffer& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view value);
  JsonWriter& int64(std::int64_t value);
  JsonWriter& boolean(bool value);
  JsonWriter& null();
  JsonWriter& timestamp_us(std::int64_t unix_us);  // RFC 3339 string
  // An already valid JSON value written verbatim (e.g. a stored representation).
  JsonWriter& raw(std::string_view json);

  // Shorthands for "name": value inside an object.
  JsonWriter& field(std::string_view name, std::string_view value) { return key(name).string(value); }
  JsonWriter& field(std::string_view name, std::int64_t value) { return key(name).int64(value); }
  JsonWriter& field_null(std::string_view name) { return key(name).null(); }

  bool ok() const { return ok_; }
  // True when every container opened has been closed.
  bool complete() const { return ok_ && depth_ == 0 && wrote_value_; }

 private:
  void before_value();
  JsonWriter& end_object_or_array(std::string_view closer);
  void put(std::string_view text);
  void put_escaped(std::string_view text);

  OutBuffer& out_;
  bool ok_ = true;
  bool after_key_ = false;
  bool wrote_value_ = false;
  std::size_t depth_ = 0;
  bool first_in_container_[json_writer_depth_max + 1] = {};
};

// Appends the JSON-escaped form of `text` (without quotes) to `out`; false (buffer unchanged) if
// it does not fit.
[[nodiscard]] bool json_escape_append(OutBuffer& out, std::string_view text);

// The API's error body: {"error":{"code":...,"message":...[,"field":...]}}.
[[nodiscard]] bool write_error_body(OutBuffer& out, std::string_view code,
                                    std::string_view message, std::string_view field = {});

}  // namespace paycore::net
