#include "base/json_text.hpp"

#include "base/hex.hpp"

namespace paycore {

std::string_view json_escape_sequence(char c, char (&scratch)[6]) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  const auto byte = static_cast<unsigned char>(c);
  scratch[0] = '\\';
  scratch[1] = 'u';
  scratch[2] = '0';
  scratch[3] = '0';
  scratch[4] = hex_digits[byte >> 4];
  scratch[5] = hex_digits[byte & 0xf];
  return {scratch, sizeof scratch};
}

void append_json_escaped(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size());
  (void)json_escape_into(text, [&out](std::string_view bytes) {
    out += bytes;
    return true;  // a std::string has no limit of its own
  });
}

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  append_json_escaped(out, text);
  out += '"';
}

std::string json_escape(std::string_view text) {
  std::string out;
  append_json_escaped(out, text);
  return out;
}

}  // namespace paycore
