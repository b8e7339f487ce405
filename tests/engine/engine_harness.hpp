#pragma once
// Helpers to run an Engine in a temporary data directory and talk to it as one producer.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "commands.hpp"
#include "core/engine.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_store.hpp"

namespace paycore::testing {

inline std::string make_temp_dir() {
  char pattern[] = "/tmp/paycore-engine-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  EXPECT_NE(dir, nullptr);
  return dir ? dir : "";
}

inline void remove_tree(const std::string& path) {
  if (path.empty() || path.find("/tmp/paycore-") != 0) return;
  const std::string command = "rm -rf '" + path + "'";
  EXPECT_EQ(std::system(command.c_str()), 0);
}

inline EngineConfig test_config(const std::string& dir) {
  EngineConfig config;
  config.data_dir = dir;
  config.ring_capacity = 1024;
  config.batch_max = 256;
  config.channels = {"alipay"};
  config.wal_segment_bytes = 1 << 20;
  config.wal_batch_bytes_max = 256 << 10;
  config.snapshot_every_records = 0;
  config.snapshot_every_us = 0;
  return config;
}

// Submits one request and waits for its response (producer 0).
inline Response call(Engine& engine, const Request& request) {
  while (!engine.submit(0, request)) std::this_thread::yield();
  Response response;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (engine.take(0, std::span(&response, 1)) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no response within 20 s";
      return response;
    }
    std::this_thread::yield();
  }
  EXPECT_EQ(response.token, request.token);
  return response;
}

inline Result run(Engine& engine, const Command& command, std::uint64_t token = 1) {
  Request request;
  request.command = command;
  request.token = token;
  return call(engine, request).result;
}

// The state's content without the snapshot header's created_at.
inline std::string state_image(const State& state) { return serialize_snapshot(state, 0, 0); }

inline std::unique_ptr<Engine> open_engine(const EngineConfig& config) {
  StatusOr<std::unique_ptr<Engine>> engine = Engine::open(config);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  if (!engine.is_ok()) return nullptr;
  return std::move(*engine);
}

}  // namespace paycore::testing
