#pragma once
// JSON string escaping (RFC 8259 section 7), the one table every writer uses: the response
// writer of net/ (into its bounded OutBuffer), recon's reports, the WAL tools, the log.
// '"' and '\\' are escaped, as are the control characters U+0000..U+001F ("\n", "\r", "\t" by
// name, the others as "\u00xx" with lowercase hex); every other byte, UTF-8 included, is copied.

#include <cstddef>
#include <string>
#include <string_view>

namespace paycore {

// Whether byte `c` must be escaped inside a JSON string.
constexpr bool json_needs_escape(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || c == '"' || c == '\\';
}

// The escape sequence for a byte that json_needs_escape: a literal, or built in `scratch`.
std::string_view json_escape_sequence(char c, char (&scratch)[6]);

// Appends the escaped form of `text` (without quotes) through `append`, a callable
// bool(std::string_view) that adds bytes to some buffer and returns false when it is full.
// Unescaped runs are appended whole, so a bounded buffer pays one append per run, not per byte.
// False as soon as `append` fails (what was appended so far stays: the caller undoes it).
template <typename Append>
bool json_escape_into(std::string_view text, Append&& append) {
  std::size_t run_begin = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!json_needs_escape(text[i])) continue;
    char scratch[6];
    if (!append(text.substr(run_begin, i - run_begin))) return false;
    if (!append(json_escape_sequence(text[i], scratch))) return false;
    run_begin = i + 1;
  }
  return append(text.substr(run_begin));
}

// Appends the escaped form of `text`, without quotes.
void append_json_escaped(std::string& out, std::string_view text);
// Appends `text` as a JSON string: quotes and escaped form.
void append_json_string(std::string& out, std::string_view text);
// The escaped form of `text`, without quotes.
std::string json_escape(std::string_view text);

}  // namespace paycore
