#pragma once
// The types of the records paycore writes into the log (wal/ stores typed byte records and
// knows nothing of them). Never renumber.

#include <cstdint>

namespace paycore {

// Payload: a command in the encoding of command.hpp (command_encoding_version inside). Written
// by builds before events (issue 15); still read, with no outcome to check.
inline constexpr std::uint16_t record_type_command = 1;

// Payload: a command and its outcome (what apply decided and the representation of what it
// changed), in the layout of command_record.hpp. Every command record since events.
inline constexpr std::uint16_t record_type_command_outcome = 2;

}  // namespace paycore
