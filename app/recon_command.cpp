// Placeholder until the recon subcommand is wired: says so plainly and fails.
#include <cstdio>

#include "app/commands.hpp"

namespace paycore::app {
void add_recon_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("recon", "(not built yet)");
  cmd->allow_extras();
  cmd->callback([] {
    std::fprintf(stderr, "paycore recon: not built yet\n");
    exit_status() = 2;
  });
}
}  // namespace paycore::app
