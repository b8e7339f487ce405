#pragma once
// `paycore snapshot inspect|export`: a snapshot file for people and other tools. The export
// columns are documented in docs/snapshot-format.md.

#include <ostream>
#include <string>

#include "command.hpp"
#include "command_record.hpp"

namespace paycore {

// Header, counts and the checksum verdict. Returns 0 when the file is whole, 1 otherwise.
int inspect_snapshot(const std::string& path, std::ostream& out);
// Accounts, system balances, payments, refunds and anomalies as CSV (five sections, each with a header row, a
// first column naming the record type) or JSON Lines (one object per record with a "type").
// Returns 0, or 2 when the file cannot be read (message on stderr).
int export_snapshot(const std::string& path, const std::string& format, std::ostream& out);
// A command as one JSON object (for `paycore wal dump`).
std::string command_to_json(const Command& command);
// A logged command's outcome as one JSON object (for `paycore wal dump`): the result code,
// the notification outcome, the tick's expired count, and the changed resource's id and
// status (a payment's refunded amount, an account's balance).
std::string outcome_to_json(const CommandOutcome& outcome);

}  // namespace paycore
