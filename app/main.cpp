// paycore: one binary, many subcommands. `paycore --help` lists them.
#include <CLI/CLI.hpp>

#include "app/commands.hpp"

namespace paycore::app {
int& exit_status() {
  static int status = 0;
  return status;
}
}  // namespace paycore::app

int main(int argc, char** argv) {
  CLI::App app{"paycore: an in-memory payment transaction processor with a write-ahead log"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  paycore::app::add_serve_command(app);
  paycore::app::add_keys_command(app);
  paycore::app::add_wal_command(app);
  paycore::app::add_snapshot_command(app);
  paycore::app::add_recon_command(app);
  paycore::app::add_loadgen_command(app);
  CLI11_PARSE(app, argc, argv);
  return paycore::app::exit_status();
}
