#include "net/http_parser.hpp"

#include <algorithm>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::net {
namespace {

constexpr std::string_view crlf = "\r\n";

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 9110 5.6.2 tchar.
constexpr bool is_tchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// field-vchar, SP, HTAB and obs-text; everything else (CTLs, DEL) is refused.
constexpr bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

constexpr bool is_target_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && c != '#';
}

HttpParseResult error(HttpError error, std::string_view reason) {
  return HttpParseResult{HttpParseStatus::error, error, 0, 0, reason};
}

HttpParseResult need_more() { return HttpParseResult{}; }

HttpMethod method_kind(std::string_view method) {
  if (method == "GET") return HttpMethod::get;
  if (method == "POST") return HttpMethod::post;
  if (method == "HEAD") return HttpMethod::head;
  if (method == "PUT") return HttpMethod::put;
  if (method == "PATCH") return HttpMethod::patch;
  if (method == "DELETE") return HttpMethod::delete_;
  if (method == "OPTIONS") return HttpMethod::options;
  return HttpMethod::other;
}

// RFC 9112 3.2.2 absolute-form, "http[s]://authority[/path][?query]" (scheme case-insensitive):
// sets *authority and *origin (the path and query, "/" when the URI has none). False for any
// other scheme, an empty authority, userinfo ('@', RFC 9110 4.2.4) or a query without a path
// (its origin-form "/?query" is not a substring of the buffer; nobody sends it).
bool split_absolute_form(std::string_view target, std::string_view* authority, std::string_view* origin) {
  std::size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = target.substr(0, scheme_end);
  if (!ascii_iequals(scheme, "http") && !ascii_iequals(scheme, "https")) return false;
  const std::string_view rest = target.substr(scheme_end + 3);
  const std::size_t path_begin = rest.find_first_of("/?");
  *authority = rest.substr(0, path_begin);
  if (authority->empty() || authority->find('@') != std::string_view::npos) return false;
  if (path_begin == std::string_view::npos) {
    *origin = "/";
    return true;
  }
  if (rest[path_begin] == '?') return false;
  *origin = rest.substr(path_begin);
  PAYCORE_ASSERT(origin->front() == '/');
  return true;
}

// Parses "METHOD SP TARGET SP HTTP/1.x" (the line without its CRLF).
bool parse_request_line(std::string_view line, HttpRequest* out) {
  std::size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return false;
  out->method = line.substr(0, i);
  out->method_kind = method_kind(out->method);
  const std::size_t target_begin = ++i;
  while (i < line.size() && is_target_char(line[i])) ++i;
  if (i == target_begin || i == line.size() || line[i] != ' ') return false;
  out->target = line.substr(target_begin, i - target_begin);
  if (out->target.front() != '/' && !split_absolute_form(out->target, &out->authority, &out->target)) {
    return false;
  }
  const std::string_view version = line.substr(i + 1);
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1.") return false;
  // A higher minor version is served as HTTP/1.1, the highest we speak (RFC 9110 2.5).
  if (version[7] < '0' || version[7] > '9') return false;
  out->version_minor = version[7] == '0' ? 0 : 1;
  const std::size_t question = out->target.find('?');
  out->path = out->target.substr(0, question);
  out->query = question == std::string_view::npos ? std::string_view{}
                                                  : out->target.substr(question + 1);
  return true;
}

// Parses "name: value" (without CRLF). Returns a static reason on failure, empty on success.
std::string_view parse_header_line(std::string_view line, HttpHeader* out) {
  if (line.front() == ' ' || line.front() == '\t') return "obs-fold (line folding) refused";
  std::size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == line.size() || line[i] != ':') return "invalid header name";
  if (i == 0) return "empty header name";
  out->name = line.substr(0, i);
  ++i;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  std::size_t end = line.size();
  for (std::size_t j = i; j < end; ++j) {
    if (!is_field_value_char(line[j])) return "control character in header value";
  }
  while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  out->value = line.substr(i, end - i);
  return {};
}

// 1*DIGIT without overflow; anything else (sign, spaces, commas, empty) fails.
bool parse_content_length(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(value, std::uint64_t{10}, &value)) return false;
    if (__builtin_add_overflow(value, static_cast<std::uint64_t>(c - '0'), &value)) return false;
  }
  *out = value;
  return true;
}

// Applies the Connection header's comma-separated options to keep_alive.
void apply_connection_options(std::string_view value, bool* keep_alive, bool* close_seen) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view option = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    while (!option.empty() && (option.front() == ' ' || option.front() == '\t')) {
      option.remove_prefix(1);
    }
    while (!option.empty() && (option.back() == ' ' || option.back() == '\t')) {
      option.remove_suffix(1);
    }
    if (ascii_iequals(option, "close")) *close_seen = true;
    if (ascii_iequals(option, "keep-alive")) *keep_alive = true;
  }
}

}  // namespace

int http_error_status(HttpError error) {
  switch (error) {
    case HttpError::none: return 0;
    case HttpError::bad_request: return 400;
    case HttpError::length_required: return 411;
    case HttpError::body_too_large: return 413;
    case HttpError::headers_too_large: return 431;
  }
  return 400;
}

std::string_view http_error_code(HttpError error) {
  switch (error) {
    case HttpError::none: return "";
    case HttpError::bad_request: return "bad_request";
    case HttpError::length_required: return "length_required";
    case HttpError::body_too_large: return "body_too_large";
    case HttpError::headers_too_large: return "headers_too_large";
  }
  return "bad_request";
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (std::size_t i = 0; i < headers_count; ++i) {
    if (ascii_iequals(headers[i].name, name)) return headers[i].value;
  }
  return std::nullopt;
}

std::size_t HttpRequest::header_occurrences(std::string_view name) const {
  std::size_t count = 0;
  for (std::size_t i = 0; i < headers_count; ++i) {
    if (ascii_iequals(headers[i].name, name)) ++count;
  }
  return count;
}

HttpParseResult HttpRequestParser::parse(std::string_view buffer, HttpRequest* out) {
  PAYCORE_ASSERT(out != nullptr);
  PAYCORE_ASSERT_LE(limits_.headers_count_max, http_headers_count_max);
  const char* data = buffer.data();
  // The views in *out stay valid only while the buffer has not moved.
  if (header_end_ != 0 && data == buffer_data_) return finish_body(buffer, header_end_, out);
  header_end_ = 0;
  if (data != buffer_data_) scanned_bytes_ = 0;
  buffer_data_ = data;

  std::size_t start = 0;
  if (auto refused = skip_empty_lines(buffer, &start)) return *refused;
  std::size_t header_end = 0;  // one past the final LF; 0 while not found
  if (auto refused = find_header_end(buffer, start, &header_end)) return *refused;
  if (auto refused = check_header_limits(buffer, start, header_end)) return *refused;
  if (header_end == 0) return need_more();

  *out = HttpRequest{};
  // Lines: request line, header lines, then the empty line at header_end - 2.
  const std::string_view section(data + start, header_end - start - 2);  // ends with a CRLF
  if (auto refused = parse_header_section(section, out)) return *refused;
  header_end_ = header_end;
  return finish_body(buffer, header_end, out);
}

// Empty lines before the request line are tolerated, a few of them. Moves *start past them.
std::optional<HttpParseResult> HttpRequestParser::skip_empty_lines(std::string_view buffer,
                                                                   std::size_t* start) const {
  const char* data = buffer.data();
  const std::size_t size = buffer.size();
  std::size_t empty_lines = 0;
  while (*start < size && (data[*start] == '\r' || data[*start] == '\n')) {
    if (data[*start] == '\n') return error(HttpError::bad_request, "bare LF");
    if (*start + 1 == size) return need_more();
    if (data[*start + 1] != '\n') return error(HttpError::bad_request, "bare CR");
    if (++empty_lines > limits_.leading_empty_lines_max) {
      return error(HttpError::bad_request, "too many empty lines before the request line");
    }
    *start += 2;
  }
  if (*start == size) return need_more();
  return std::nullopt;
}

// Finds the end of the header section: the first LF that ends an empty line. Every LF must
// follow a CR. The search resumes where the previous call stopped, and never looks past the
// header limit: the answer must not depend on how many bytes one read happened to bring.
std::optional<HttpParseResult> HttpRequestParser::find_header_end(std::string_view buffer,
                                                                  std::size_t start,
                                                                  std::size_t* header_end) {
  const char* data = buffer.data();
  const std::size_t scan_end = std::min(buffer.size(), start + limits_.header_bytes_max);
  std::size_t scan = scanned_bytes_ > start ? scanned_bytes_ : start;
  while (scan < scan_end) {
    const void* found = std::memchr(data + scan, '\n', scan_end - scan);
    if (found == nullptr) {
      scan = scan_end;
      break;
    }
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - data);
    if (lf == start || data[lf - 1] != '\r') return error(HttpError::bad_request, "bare LF");
    if (lf - start >= 3 && data[lf - 2] == '\n' && data[lf - 3] == '\r') {
      *header_end = lf + 1;
      break;
    }
    scan = lf + 1;
  }
  scanned_bytes_ = scan;
  return std::nullopt;
}

// The request line must end within its limit, even before the header section does; the header
// section within its own (header_end 0: not found yet).
std::optional<HttpParseResult> HttpRequestParser::check_header_limits(
    std::string_view buffer, std::size_t start, std::size_t header_end) const {
  const char* data = buffer.data();
  const std::size_t size = buffer.size();
  const std::size_t line_window = std::min(size, start + limits_.request_line_bytes_max);
  const void* first_lf = std::memchr(data + start, '\n', line_window - start);
  if (first_lf == nullptr && size - start >= limits_.request_line_bytes_max) {
    return error(HttpError::bad_request, "request line too long");
  }
  const bool too_large = header_end == 0 ? size - start >= limits_.header_bytes_max
                                         : header_end - start > limits_.header_bytes_max;
  if (too_large) return error(HttpError::headers_too_large, "header section too large");
  return std::nullopt;
}

// The request line and header lines of `section` (which ends with the last header's CRLF)
// into *out, then the framing: Content-Length, Transfer-Encoding, Connection, Expect.
std::optional<HttpParseResult> HttpRequestParser::parse_header_section(std::string_view section,
                                                                       HttpRequest* out) const {
  std::size_t line_end = section.find(crlf);
  PAYCORE_ASSERT(line_end != std::string_view::npos);
  if (!parse_request_line(section.substr(0, line_end), out)) {
    return error(HttpError::bad_request, "malformed request line");
  }
  HeaderFacts facts;
  std::size_t line_begin = line_end + 2;
  while (line_begin < section.size()) {
    line_end = section.find(crlf, line_begin);
    PAYCORE_ASSERT(line_end != std::string_view::npos);
    const std::string_view line = section.substr(line_begin, line_end - line_begin);
    line_begin = line_end + 2;
    if (auto refused = parse_header(line, out, &facts)) return refused;
  }
  return apply_framing(facts, out);
}

// One header line into out->headers, noting what framing needs in *facts.
std::optional<HttpParseResult> HttpRequestParser::parse_header(std::string_view line,
                                                               HttpRequest* out,
                                                               HeaderFacts* facts) const {
  if (line.find('\r') != std::string_view::npos) return error(HttpError::bad_request, "bare CR");
  if (out->headers_count == limits_.headers_count_max) {
    return error(HttpError::headers_too_large, "too many header fields");
  }
  HttpHeader& header = out->headers[out->headers_count];
  const std::string_view reason = parse_header_line(line, &header);
  if (!reason.empty()) return error(HttpError::bad_request, reason);
  ++out->headers_count;
  if (ascii_iequals(header.name, "content-length")) {
    if (++facts->content_length_count > 1) {
      return error(HttpError::bad_request, "more than one Content-Length");
    }
    if (!parse_content_length(header.value, &out->content_length)) {
      return error(HttpError::bad_request, "malformed Content-Length");
    }
    out->has_content_length = true;
  } else if (ascii_iequals(header.name, "expect")) {
    facts->expect_continue =
        facts->expect_continue || ascii_iequals(header.value, "100-continue");
  } else if (ascii_iequals(header.name, "transfer-encoding")) {
    facts->transfer_encoding = true;
  } else if (ascii_iequals(header.name, "connection")) {
    apply_connection_options(header.value, &facts->keep_alive_option, &facts->close_option);
  } else if (ascii_iequals(header.name, "host") && out->header_occurrences("host") > 1) {
    return error(HttpError::bad_request, "more than one Host");
  }
  return std::nullopt;
}

std::optional<HttpParseResult> HttpRequestParser::apply_framing(const HeaderFacts& facts,
                                                                HttpRequest* out) const {
  if (facts.transfer_encoding && facts.content_length_count != 0) {
    return error(HttpError::bad_request, "Content-Length with Transfer-Encoding");
  }
  if (facts.transfer_encoding) {
    return error(HttpError::length_required, "Transfer-Encoding without Content-Length");
  }
  if (out->content_length > limits_.body_bytes_max) {
    return error(HttpError::body_too_large, "body too large");
  }
  out->keep_alive = !facts.close_option && (out->version_minor == 1 || facts.keep_alive_option);
  // HTTP/1.0 clients do not understand 1xx answers (RFC 9110 10.1.1).
  out->expect_continue = facts.expect_continue && out->version_minor == 1;
  return std::nullopt;
}

HttpParseResult HttpRequestParser::finish_body(std::string_view buffer, std::size_t header_end,
                                               HttpRequest* out) {
  PAYCORE_ASSERT_LE(header_end, buffer.size());
  PAYCORE_ASSERT_LE(out->content_length, limits_.body_bytes_max);
  const std::size_t body_bytes = static_cast<std::size_t>(out->content_length);
  if (buffer.size() - header_end < body_bytes) {
    HttpParseResult result = need_more();
    result.header_bytes = header_end;
    return result;
  }
  out->body = buffer.substr(header_end, body_bytes);
  return HttpParseResult{HttpParseStatus::complete, HttpError::none, header_end + body_bytes,
                         header_end, {}};
}

namespace {

// Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): reg-name, IPv4 or an IP literal
// in brackets, and a port; no userinfo, no path, no spaces. Empty is allowed (RFC 9112 3.2).
bool host_value_is_valid(std::string_view host) {
  for (const char c : host) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) continue;
    if (std::string_view("-._~%!$&'()*+,;=:[]").find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

HttpParseResult check_http_request(const HttpRequest& request) {
  if (request.version_minor == 1 && request.header_occurrences("host") != 1) {
    return error(HttpError::bad_request, "HTTP/1.1 request without exactly one Host header");
  }
  if (const auto host = request.header("host"); host && !host_value_is_valid(*host)) {
    return error(HttpError::bad_request, "invalid Host header value");
  }
  const bool carries_body = request.method_kind == HttpMethod::post ||
                            request.method_kind == HttpMethod::put ||
                            request.method_kind == HttpMethod::patch;
  if (carries_body && !request.has_content_length) {
    return error(HttpError::length_required, "request without Content-Length");
  }
  return HttpParseResult{HttpParseStatus::complete, HttpError::none, 0, 0, {}};
}

HttpParseResult parse_http_request(std::string_view buffer, const HttpLimits& limits,
                                   HttpRequest* out) {
  HttpRequestParser parser(limits);
  return parser.parse(buffer, out);
}

}  // namespace paycore::net
