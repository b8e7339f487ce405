#include "bench/loadgen/http_response.hpp"

#include <charconv>

#include "net/http_parser.hpp"

namespace paycore::loadgen {
namespace {
using net::ascii_iequals;

ResponseParseResult error(std::string_view reason) {
  return {ResponseParseStatus::error, 0, reason};
}

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "HTTP/1.1 201 Created"
bool parse_status_line(std::string_view line, HttpResponse* out) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1.") return false;
  if (line[7] != '0' && line[7] != '1') return false;
  if (line[8] != ' ') return false;
  out->version_minor = line[7] - '0';
  int status = 0;
  const char* begin = line.data() + 9;
  const auto [end, ec] = std::from_chars(begin, begin + 3, status);
  if (ec != std::errc{} || end != begin + 3 || status < 100 || status > 599) return false;
  out->status = status;
  return line.size() == 12 || line[12] == ' ';
}
}  // namespace

ResponseParseResult parse_http_response(std::string_view buffer, const ResponseLimits& limits,
                                        HttpResponse* out) {
  const std::size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buffer.size() > limits.header_bytes_max) return error("response header too large");
    return {};
  }
  if (head_end + 4 > limits.header_bytes_max) return error("response header too large");
  *out = HttpResponse{};
  std::string_view head = buffer.substr(0, head_end + 2);  // each line ends in CRLF
  std::size_t line_end = head.find("\r\n");
  if (!parse_status_line(head.substr(0, line_end), out)) return error("malformed status line");
  head.remove_prefix(line_end + 2);
  out->keep_alive = out->version_minor == 1;
  bool have_length = false;
  std::uint64_t content_length = 0;
  while (!head.empty()) {
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return error("malformed header line");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_spaces(line.substr(colon + 1));
    if (ascii_iequals(name, "Content-Length")) {
      std::uint64_t length = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc{} || end != value.data() + value.size() || value.empty() ||
          (have_length && length != content_length)) {
        return error("malformed Content-Length");
      }
      have_length = true;
      content_length = length;
    } else if (ascii_iequals(name, "Transfer-Encoding")) {
      return error("Transfer-Encoding in a response (only Content-Length is supported)");
    } else if (ascii_iequals(name, "Connection")) {
      if (ascii_iequals(value, "close")) out->keep_alive = false;
      if (ascii_iequals(value, "keep-alive")) out->keep_alive = true;
    } else if (ascii_iequals(name, "Content-Type")) {
      out->content_type = value;
    } else if (ascii_iequals(name, "Idempotent-Replayed")) {
      out->idempotent_replayed = ascii_iequals(value, "true");
    }
  }
  const bool bodiless = out->status < 200 || out->status == 204 || out->status == 304;
  if (bodiless) content_length = 0;
  if (!have_length && !bodiless) return error("response without Content-Length");
  if (content_length > limits.body_bytes_max) return error("response body too large");
  const std::size_t body_begin = head_end + 4;
  if (buffer.size() - body_begin < content_length) return {};
  out->body = buffer.substr(body_begin, static_cast<std::size_t>(content_length));
  return {ResponseParseStatus::complete, body_begin + static_cast<std::size_t>(content_length), {}};
}

}  // namespace paycore::loadgen
