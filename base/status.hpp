#pragma once
// The one error type of paycore (docs/style.md rule 9): every fallible call outside the business
// outcomes returns a Status or a StatusOr<T>. Business outcomes are results, not errors:
// `ResultCode` (core/result.hpp) and `AuthStatus` (auth/signing.hpp) stay what they are.
//
// Shapes follow Abseil's absl::Status / absl::StatusOr: a code plus a message; `StatusOr<T>` is
// a T or a non-ok Status, never both. The hot-path codes (kOk, kFull, kReadOnly) carry no
// message, so returning them never allocates.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/assert.hpp"

namespace paycore {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kFull,             // a bounded buffer has no room: drain it, then try again
  kReadOnly,         // a write or fsync failed earlier: the log refuses writes for good
  kIoError,          // a system call failed; the message names it, the file and the errno
  kNoSpace,          // ENOSPC (or EDQUOT) on fallocate or write
  kCorruption,       // bad bytes followed by good ones; the message names file and offset
  kMissingSegment,   // a gap in LSNs between two log segment files
  kNotFound,         // a file, a key or an LSN that is not there
  kInvalidArgument,  // caller error: options, malformed input, payload too large
  kConflict,         // the shared log holds another history: another writer appended to it
  kUnavailable,      // a remote service (the shared log) did not answer in time
};

/// A code and, for the cold codes, a message that names what failed (file, offset, errno).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status full() { return Status(StatusCode::kFull, {}); }
  static Status read_only() { return Status(StatusCode::kReadOnly, {}); }
  static Status invalid_argument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }
  static Status not_found(std::string message) {
    return Status(StatusCode::kNotFound, std::move(message));
  }
  static Status corruption(std::string message) {
    return Status(StatusCode::kCorruption, std::move(message));
  }
  static Status io_error(std::string message) {
    return Status(StatusCode::kIoError, std::move(message));
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "code name: message", e.g. "io error: fdatasync 0000000001.wal: Input/output error (errno 5)".
  std::string to_string() const;
  /// Prefixes the message with `context` ("loading keys.json: ..."); the code stays.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::string_view code_name(StatusCode code);

/// The one errno-to-Status mapping: ENOSPC/EDQUOT → kNoSpace, ENOENT → kNotFound, EINVAL →
/// kInvalidArgument, anything else → kIoError. The message is "`what`: strerror (errno N)";
/// `what` names the call and the file ("fdatasync /data/wal/0000000001.wal").
Status errno_status(std::string_view what, int error_number);

/// A T, or a non-ok Status that says why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Status>, "StatusOr<Status> means nothing");

 public:
  StatusOr(T value) : storage_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit
  StatusOr(Status status) : storage_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    [[maybe_unused]] const bool is_error = !std::get<0>(storage_).is_ok();
    PAYCORE_ASSERT(is_error);  // an ok StatusOr must hold a value
  }

  bool is_ok() const { return storage_.index() == 1; }
  /// The error; Status::ok() when there is a value.
  Status status() const { return is_ok() ? Status::ok() : std::get<0>(storage_); }

  T& value() & {
    PAYCORE_ASSERT(is_ok());
    return std::get<1>(storage_);
  }
  const T& value() const& {
    PAYCORE_ASSERT(is_ok());
    return std::get<1>(storage_);
  }
  T&& value() && {
    PAYCORE_ASSERT(is_ok());
    return std::get<1>(std::move(storage_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<Status, T> storage_;
};

inline std::string Status::to_string() const {
  std::string s(code_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

inline Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  std::string message(context);
  if (!message_.empty()) {
    message += ": ";
    message += message_;
  }
  return Status(code_, std::move(message));
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
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kUnavailable: return "unavailable";
  }
  return "unknown";
}

inline Status errno_status(std::string_view what, int error_number) {
  StatusCode code = StatusCode::kIoError;
  if (error_number == ENOSPC || error_number == EDQUOT) code = StatusCode::kNoSpace;
  if (error_number == ENOENT) code = StatusCode::kNotFound;
  if (error_number == EINVAL) code = StatusCode::kInvalidArgument;
  std::string message(what);
  message += ": ";
  message += std::strerror(error_number);
  message += " (errno ";
  message += std::to_string(error_number);
  message += ")";
  return Status(code, std::move(message));
}

}  // namespace paycore

/// Returns the Status of `expr` from the enclosing function when it is not ok.
#define PAYCORE_RETURN_IF_ERROR(expr)                         \
  do {                                                        \
    ::paycore::Status paycore_status_ = (expr);               \
    if (!paycore_status_.is_ok()) [[unlikely]]                \
      return paycore_status_;                                 \
  } while (0)
