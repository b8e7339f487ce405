#pragma once
// Shared by the net tests: a development keys file made once per test process in a temp dir.

#include <stdlib.h>

#include <string>

#include "auth/keys.hpp"

namespace paycore::net::testing {

struct DevKeys {
  std::string dir;
  std::string keys_path;
  std::shared_ptr<const auth::Keys> keys;
  std::string alipay_private_pem;
  DevKeys() = default;
  DevKeys(DevKeys&&) = default;
  ~DevKeys();  // removes the directory
};

// Built on first use: keys_init is slow (three RSA-2048 key pairs).
const DevKeys& dev_keys();

std::string read_text_file(const std::string& path);
std::string make_temp_dir();

}  // namespace paycore::net::testing
