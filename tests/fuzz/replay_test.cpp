// Replays every committed fuzz input through its target, compiled with the normal compiler
// (no libFuzzer): tests/fuzz/corpus/<target>/* must run clean, and so must every reproducer
// of a fixed bug in tests/fuzz/regressions/<target>/*.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.hpp"

namespace {

namespace fs = std::filesystem;

struct Target {
  const char* name;
  int (*run)(const std::uint8_t*, std::size_t);
};

#define PAYCORE_FUZZ_ENTRY(name) Target{#name, &paycore::fuzz::run_##name},
const Target targets[] = {PAYCORE_FUZZ_TARGETS(PAYCORE_FUZZ_ENTRY)};
#undef PAYCORE_FUZZ_ENTRY

const fs::path fuzz_dir = PAYCORE_FUZZ_DIR;

std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || name == "README.md") continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs one input; a broken property (an exception from FUZZ_CHECK) fails the test, naming the
// file. Memory errors need the asan preset to be seen.
void replay(const Target& target, const fs::path& file) {
  const std::string bytes = read_bytes(file);
  try {
    target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  } catch (const std::exception& e) {
    ADD_FAILURE() << file.string() << ": " << e.what();
  }
}


class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, CorpusRunsClean) {
  const auto files = inputs_in(fuzz_dir / "corpus" / GetParam().name);
  ASSERT_FALSE(files.empty()) << "no seed corpus for " << GetParam().name;
  for (const auto& file : files) replay(GetParam(), file);
}

TEST_P(FuzzReplay, RegressionsRunClean) {
  for (const auto& file : inputs_in(fuzz_dir / "regressions" / GetParam().name)) {
    replay(GetParam(), file);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(targets),
                         [](const ::testing::TestParamInfo<Target>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
