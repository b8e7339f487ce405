#pragma once
// The `paycore` binary's subcommands (docs/design.md "The shape"). Each file of app/ adds
// its own to the CLI11 application.

#include <CLI/CLI.hpp>

namespace paycore::app {

void add_serve_command(CLI::App& app);    // serve_command.cpp
void add_keys_command(CLI::App& app);     // keys_command.cpp
void add_wal_command(CLI::App& app);      // tools_command.cpp
void add_snapshot_command(CLI::App& app); // tools_command.cpp
void add_recon_command(CLI::App& app);    // recon_command.cpp
void add_loadgen_command(CLI::App& app);  // loadgen_command.cpp

// Set by a subcommand's callback: the process's exit status.
int& exit_status();

}  // namespace paycore::app
