// `paycore keys init [--keys FILE]`: a development keys file (random HMAC secrets for the
// operator and merchants m_001..m_004, an RSA-2048 key pair per channel alipay, wechat, card);
// the channels' private keys go next to it in private/. Never overwrites an existing file.
#include <cstdio>
#include <filesystem>
#include <string>

#include "app/commands.hpp"
#include "auth/keys.hpp"

namespace paycore::app {
void add_keys_command(CLI::App& app) {
  auto* keys = app.add_subcommand("keys", "Manage the keys file");
  keys->require_subcommand(1);
  static std::string keys_path = "./paycore-data/keys.json";
  auto* init = keys->add_subcommand("init", "Write a development keys file with fresh secrets");
  init->add_option("--keys", keys_path, "the keys file to create")->capture_default_str();
  init->callback([] {
    const std::filesystem::path path(keys_path);
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const StatusOr<auth::KeysInit> made = auth::keys_init(keys_path, (dir / "private").string());
    if (!made.is_ok()) {
      std::fprintf(stderr, "paycore keys init: %s\n", made.status().message().c_str());
      exit_status() = 1;
      return;
    }
    std::printf("keys file: %s\n", made->keys_path.c_str());
    for (const std::string& p : made->private_key_paths) std::printf("channel private key: %s\n", p.c_str());
    exit_status() = 0;
  });
}
}  // namespace paycore::app
