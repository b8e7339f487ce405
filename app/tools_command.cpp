// `paycore wal verify|dump DIR` and `paycore snapshot inspect|export FILE`: offline tools that
// read a data directory without starting the server.
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>

#include "app/commands.hpp"
#include "core/command.hpp"
#include "core/command_record.hpp"
#include "core/engine_records.hpp"
#include "base/log.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_export.hpp"
#include "wal/tools.hpp"

namespace paycore::app {
namespace {

// A log record's payload as JSON: the decoded command, with its outcome when the record holds
// one (or an error naming why it is not a command record).
std::string format_record(std::uint16_t type, std::span<const std::byte> payload) {
  if (type != record_type_command && type != record_type_command_outcome) return {};
  Command c;
  CommandOutcome outcome;
  bool has_outcome = false;
  const CommandDecodeError e = decode_command_record(type, payload, &c, &outcome, &has_outcome);
  if (e != CommandDecodeError::ok) return "{\"decode_error\":\"" + std::string(to_string(e)) + "\"}";
  std::string json = command_to_json(c);
  if (has_outcome) json.insert(json.size() - 1, ",\"outcome\":" + outcome_to_json(outcome));
  return json;
}

}  // namespace

void add_wal_command(CLI::App& app) {
  auto* wal = app.add_subcommand("wal", "Read a write-ahead log directory");
  wal->require_subcommand(1);
  static std::string dir;
  auto* verify = wal->add_subcommand("verify", "Check every record; exit 0, or non-zero with the first problem");
  verify->add_option("DIR", dir, "the log directory (DATA_DIR/wal)")->required();
  verify->callback([] { exit_status() = wal::wal_verify(dir, std::cout); });
  auto* dump = wal->add_subcommand("dump", "Print one JSON object per record");
  dump->add_option("DIR", dir, "the log directory (DATA_DIR/wal)")->required();
  dump->callback([] { exit_status() = wal::wal_dump(dir, std::cout, format_record); });
}

void add_snapshot_command(CLI::App& app) {
  auto* snap = app.add_subcommand("snapshot", "Read a snapshot file");
  snap->require_subcommand(1);
  static std::string file;
  static std::string format = "jsonl";
  auto* inspect = snap->add_subcommand("inspect", "Header, counts and checksum verdict");
  inspect->add_option("FILE", file, "a snapshot file (DATA_DIR/snapshots/<lsn>.snap)")->required();
  inspect->callback([] { exit_status() = inspect_snapshot(file, std::cout); });
  auto* exp = snap->add_subcommand("export", "Accounts, system balances, payments, refunds and anomalies as CSV or JSON Lines");
  exp->add_option("FILE", file, "a snapshot file")->required();
  exp->add_option("--format", format, "csv or jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
  exp->callback([] { exit_status() = export_snapshot(file, format, std::cout); });
}

}  // namespace paycore::app
