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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    // `paycore recon` promises exit status 2 for every argument mistake (docs/recon.md). It
    // parses its own words; this catches the little CLI11 still sees there (a leading "--").
    return status != 0 && app.got_subcommand("recon") ? 2 : status;
  }
  return paycore::app::exit_status();
}
