#include "recon/text.hpp"

#include <iconv.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::recon {
std::optional<std::int64_t> parse_statement_time_us(std::string_view text) {
  std::int64_t unix_us = 0;
  if (!parse_rfc3339_us(text, &unix_us, rfc3339_statement_rules)) return std::nullopt;
  return unix_us;
}

std::optional<std::int64_t> parse_local_datetime_us(std::string_view text, int utc_offset_minutes) {
  std::int64_t wall_s = 0;
  if (text.size() != 19) return std::nullopt;
  if (!parse_wall_time_s(text, ' ', /*leap_second_accepted=*/true, &wall_s)) return std::nullopt;
  return (wall_s - std::int64_t{utc_offset_minutes} * 60) * us_per_second;
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

Status LineReader::refill() {
  constexpr std::size_t block_bytes = std::size_t{1} << 20;
  buffer_.erase(0, begin_);
  begin_ = 0;
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + block_bytes);
  const std::size_t got = std::fread(buffer_.data() + old_size, 1, block_bytes, file_);
  buffer_.resize(old_size + got);
  if (got < block_bytes) {
    if (std::ferror(file_)) return Status::io_error(std::string("read error: ") + std::strerror(errno));
    eof_ = true;
  }
  return Status::ok();
}

StatusOr<bool> LineReader::next(std::string_view* line) {
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
      PAYCORE_RETURN_IF_ERROR(refill());
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
