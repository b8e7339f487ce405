#include "tests/net/test_keys.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace paycore::net::testing {

std::string make_temp_dir() {
  char pattern[] = "/tmp/paycore-net-test-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
  return dir;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

DevKeys::~DevKeys() {
  if (!dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
}

const DevKeys& dev_keys() {
  static const DevKeys keys = [] {
    DevKeys made;
    made.dir = make_temp_dir();
    made.keys_path = made.dir + "/keys.json";
    const auto init = auth::keys_init(made.keys_path, made.dir + "/private");
    if (!init.is_ok()) throw std::runtime_error(init.status().message());
    const auto load = auth::keys_load(made.keys_path);
    if (!load.is_ok()) throw std::runtime_error(load.status().message());
    made.keys = *load;
    made.alipay_private_pem = read_text_file(made.dir + "/private/alipay.private.pem");
    return made;
  }();
  return keys;
}

}  // namespace paycore::net::testing
