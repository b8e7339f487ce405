#pragma once
// Errors are values (docs/style.md): every fallible wal call returns a Status. The hot-path codes
// (kOk, kFull, kReadOnly) carry no message, so returning them never allocates.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace paycore::wal {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kFull,             // the batch buffer (or the segment) has no room: submit(), then append again
  kReadOnly,         // a write or fsync failed earlier: the log refuses writes for good (rule 7)
  kIoError,          // a system call failed; the message names it, the file and the errno
  kNoSpace,          // ENOSPC on fallocate or write
  kCorruption,       // bad bytes on disk followed by good ones; the message names file and offset
  kMissingSegment,   // a gap in LSNs between two segment files
  kNotFound,         // e.g. replay from an LSN whose segment has been removed
  kInvalidArgument,  // caller error: options, payload too large
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status full() { return Status(StatusCode::kFull, {}); }
  static Status read_only() { return Status(StatusCode::kReadOnly, {}); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::string_view code_name(StatusCode code);

inline std::string Status::to_string() const {
  std::string s(code_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

inline std::string_view code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kFull: return "full";
    case StatusCode::kReadOnly: return "read-only";
    case StatusCode::kIoError: return "io error";
    case StatusCode::kNoSpace: return "no space";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kMissingSegment: return "missing segment";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kInvalidArgument: return "invalid argument";
  }
  return "unknown";
}

}  // namespace paycore::wal
