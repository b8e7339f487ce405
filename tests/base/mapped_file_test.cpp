// Read-only file mappings (base/mapped_file.hpp): what recovery and recon read snapshots with.

#include "base/mapped_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace paycore {
namespace {

// A file under a fresh temporary directory, removed with it.
class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/paycore-mapped-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return path;
    EXPECT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
    return path;
  }
  std::string dir_;
};

TEST_F(MappedFileTest, MapsTheWholeFile) {
  std::string text(3 * 4096 + 17, 'a');
  text.back() = 'z';
  MappedFile file;
  ASSERT_TRUE(file.open(write("f", text)).is_ok());
  ASSERT_EQ(file.bytes().size(), text.size());
  EXPECT_EQ(static_cast<char>(file.bytes()[0]), 'a');
  EXPECT_EQ(static_cast<char>(file.bytes().back()), 'z');
  file.drop_below(2 * 4096 + 5);  // dropped pages read back from the file
  EXPECT_EQ(static_cast<char>(file.bytes()[0]), 'a');
}

TEST_F(MappedFileTest, EmptyFileHasNoBytes) {
  MappedFile file;
  ASSERT_TRUE(file.open(write("empty", "")).is_ok());
  EXPECT_TRUE(file.bytes().empty());
}

TEST_F(MappedFileTest, MissingFileIsNotFoundAndNamed) {
  MappedFile file;
  const std::string path = dir_ + "/absent";
  const Status s = file.open(path);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.to_string();
  EXPECT_TRUE(file.bytes().empty());
}

TEST_F(MappedFileTest, DirectoryIsRefused) {
  MappedFile file;
  const Status s = file.open(dir_);  // mmap of a directory fails (ENODEV)
  EXPECT_FALSE(s.is_ok());
  EXPECT_TRUE(file.bytes().empty());
}

}  // namespace
}  // namespace paycore
