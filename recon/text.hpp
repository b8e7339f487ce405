#pragma once
// Small text helpers for the reconciliation job: times, CSV fields, escaping, GBK.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json_text.hpp"
#include "base/status.hpp"
#include "base/time.hpp"

namespace paycore::recon {

// A statement's or the command line's RFC 3339 time ("2026-11-26T08:00:01Z",
// "2026-11-26T16:00:01.5+08:00") -> microseconds since the Unix epoch, under
// rfc3339_statement_rules (base/time.hpp): fractions beyond microseconds are refused rather than
// rounded. nullopt if malformed.
std::optional<std::int64_t> parse_statement_time_us(std::string_view text);
// "2026-11-26 16:00:01" at a fixed UTC offset (the channels' bills use Beijing time, +08:00).
std::optional<std::int64_t> parse_local_datetime_us(std::string_view text, int utc_offset_minutes);

// Spaces, tabs and (for the channels' bills) the '\t' padding around fields.
std::string_view trim(std::string_view text);

// Splits one CSV line (RFC 4180 quoting within the line; no field spans lines). Views point
// into `line` or into `*unescaped`, which is cleared and reserved so that it never reallocates
// while being filled. False on an unterminated quote or text after a closing quote.
[[nodiscard]] bool split_csv_line(std::string_view line, std::vector<std::string_view>* fields,
                                  std::string* unescaped);

// A field value quoted into an error message: at most 40 bytes, bytes outside printable ASCII
// shown as '?', so that a reason is always safe to print and to put into JSON or CSV.
std::string quote_for_message(std::string_view text);

void append_csv_field(std::string* out, std::string_view text);    // quoted when needed
void append_html_escaped(std::string* out, std::string_view text);

// GBK -> UTF-8 with iconv; false on bytes that are not GBK.
[[nodiscard]] bool gbk_to_utf8(std::string_view gbk, std::string* utf8);
// UTF-8 -> GBK (tests and the generator write Alipay bills with it).
[[nodiscard]] bool utf8_to_gbk(std::string_view utf8, std::string* gbk);
// GB18030 (GB 18030-2005: GBK plus four-byte sequences for every other code point, e.g. emoji
// or CJK Extension B) <-> UTF-8; false on bytes that are not GB18030 / UTF-8.
[[nodiscard]] bool gb18030_to_utf8(std::string_view gb18030, std::string* utf8);
[[nodiscard]] bool utf8_to_gb18030(std::string_view utf8, std::string* gb18030);
// GB18030 -> UTF-8 through one iconv descriptor opened once: the Alipay reader converts every
// line that is not ASCII (nearly all of its rows), and opening a descriptor per line costs more
// than converting the line.
class Gb18030Decoder {
 public:
  Gb18030Decoder();
  ~Gb18030Decoder();
  Gb18030Decoder(const Gb18030Decoder&) = delete;
  Gb18030Decoder& operator=(const Gb18030Decoder&) = delete;
  // False on bytes that are not GB18030 (*utf8 then holds nothing useful).
  [[nodiscard]] bool decode(std::string_view gb18030, std::string* utf8);

 private:
  void* descriptor_;  // iconv_t
};
// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
bool is_utf8(std::string_view text);

bool is_ascii(std::string_view text);

// Reads a statement line by line, from a file (in 1 MiB blocks, never all at once) or from
// memory. Lines lose their "\n" / "\r\n"; `line_number` is 1-based.
class LineReader {
 public:
  explicit LineReader(std::string_view memory) : memory_(memory), from_memory_(true) {}
  explicit LineReader(std::FILE* file) : file_(file) {}
  // True with *line set, false at the end of input; kIoError ("read error: ...") when the
  // file cannot be read.
  [[nodiscard]] StatusOr<bool> next(std::string_view* line);
  std::uint64_t line_number() const { return line_number_; }

 private:
  Status refill();

  std::string_view memory_;
  bool from_memory_ = false;
  std::FILE* file_ = nullptr;
  std::string buffer_;
  std::size_t begin_ = 0;
  bool eof_ = false;
  std::uint64_t line_number_ = 0;
};

}  // namespace paycore::recon
