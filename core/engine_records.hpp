#pragma once
// The types of the records paycore writes into the log (wal/ stores typed byte records and
// knows nothing of them). Never renumber.

#include <cstdint>

namespace paycore {

// Payload: a command in the encoding of command.hpp (command_encoding_version inside).
inline constexpr std::uint16_t record_type_command = 1;

}  // namespace paycore
