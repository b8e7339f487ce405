#pragma once
// The log speaks paycore's one error type (base/status.hpp); these names keep wal code short.

#include "base/status.hpp"

namespace paycore::wal {
using ::paycore::Status;
using ::paycore::StatusCode;
using ::paycore::code_name;
}  // namespace paycore::wal
