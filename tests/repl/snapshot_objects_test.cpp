// The snapshot bucket on a real nats-server (repl/snapshot_objects.hpp): an object published
// from a file comes back byte for byte; a newer one replaces it and the old chunks go; a
// download whose meta does not match what the chunks hold is refused and leaves no file.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "../engine/engine_harness.hpp"
#include "core/snapshot.hpp"
#include "repl/nats_link.hpp"
#include "repl/snapshot_objects.hpp"
#include "tests/support/nats_cluster.hpp"

namespace paycore::repl {
namespace {
using paycore::testing::NatsCluster;

class SnapshotBucket : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(NatsCluster::available()) << "nats-server is missing: run scripts/setup";
    dir_ = paycore::testing::make_temp_dir();
    ASSERT_TRUE(nats_.start(dir_ + "/nats", 1)) << nats_.error();
    LinkConfig config;
    config.urls = nats_.urls();
    StatusOr<std::unique_ptr<NatsLink>> link = NatsLink::connect(config);
    ASSERT_TRUE(link.is_ok()) << link.status().to_string();
    link_ = std::move(*link);
    ASSERT_TRUE(ensure_snapshot_bucket(js(), bucket_, 1).is_ok());
  }
  void TearDown() override {
    link_.reset();
    paycore::testing::remove_tree(dir_);
  }
  jsCtx* js() const { return link_->js(); }

  // A file of `bytes` pseudo-random bytes (seeded), as a snapshot's stand-in.
  std::string write_file(const std::string& name, std::size_t bytes, unsigned seed) {
    std::mt19937 random(seed);
    std::string content(bytes, '\0');
    for (char& c : content) c = static_cast<char>(random());
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::uint64_t stored_messages() {
    jsStreamInfo* info = nullptr;
    EXPECT_EQ(js_GetStreamInfo(&info, js(), ("OBJ_" + bucket_).c_str(), nullptr, nullptr),
              NATS_OK);
    const std::uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
  }

  std::string dir_;
  NatsCluster nats_;
  std::unique_ptr<NatsLink> link_;
  const std::string bucket_ = snapshot_bucket_name("test");
};

TEST_F(SnapshotBucket, APublishedFileComesBackByteForByteAndANewerOneReplacesIt) {
  StatusOr<std::optional<PublishedSnapshot>> none = read_published_snapshot(js(), bucket_);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  const std::string first = write_file("first", 3 * kSnapshotChunkBytes + 17, 1);
  StatusOr<PublishedSnapshot> one = publish_snapshot_file(js(), bucket_, first, 40, 4040);
  ASSERT_TRUE(one.is_ok()) << one.status().to_string();
  EXPECT_EQ(one->chunks, 4u);
  const std::string second = write_file("second", 2 * kSnapshotChunkBytes, 2);
  StatusOr<PublishedSnapshot> two = publish_snapshot_file(js(), bucket_, second, 90, 9090);
  ASSERT_TRUE(two.is_ok()) << two.status().to_string();
  // The meta is rolled up and the first object's chunks purged: 2 chunks and 1 meta remain.
  EXPECT_EQ(stored_messages(), 3u);
  StatusOr<std::optional<PublishedSnapshot>> meta = read_published_snapshot(js(), bucket_);
  ASSERT_TRUE(meta.is_ok() && meta->has_value());
  EXPECT_EQ((*meta)->lsn, 90u);
  EXPECT_EQ((*meta)->log_checksum, 9090u);
  EXPECT_EQ((*meta)->size_bytes, 2 * kSnapshotChunkBytes);
  const std::string copy = dir_ + "/copy";
  ASSERT_TRUE(download_snapshot(js(), bucket_, **meta, copy).is_ok());
  StatusOr<std::string> original = read_file(second);
  StatusOr<std::string> downloaded = read_file(copy);
  ASSERT_TRUE(original.is_ok() && downloaded.is_ok());
  EXPECT_TRUE(*original == *downloaded);
}

TEST_F(SnapshotBucket, ADownloadThatDoesNotMatchItsMetaIsRefusedAndRemoved) {
  const std::string file = write_file("file", kSnapshotChunkBytes + 5, 3);
  StatusOr<PublishedSnapshot> published = publish_snapshot_file(js(), bucket_, file, 7, 77);
  ASSERT_TRUE(published.is_ok());
  const std::string copy = dir_ + "/copy";
  PublishedSnapshot wrong_digest = *published;
  wrong_digest.digest = "SHA-256=AAAA";
  const Status digest = download_snapshot(js(), bucket_, wrong_digest, copy);
  EXPECT_EQ(digest.code(), StatusCode::kCorruption) << digest.to_string();
  EXPECT_NE(digest.message().find("digest"), std::string::npos) << digest.to_string();
  EXPECT_FALSE(std::ifstream(copy).good()) << "a refused download left its file";
  PublishedSnapshot more_chunks = *published;
  more_chunks.chunks += 1;
  EXPECT_EQ(download_snapshot(js(), bucket_, more_chunks, copy).code(), StatusCode::kCorruption);
  PublishedSnapshot wrong_size = *published;
  wrong_size.size_bytes -= 1;
  EXPECT_EQ(download_snapshot(js(), bucket_, wrong_size, copy).code(), StatusCode::kCorruption);
  EXPECT_TRUE(download_snapshot(js(), bucket_, *published, copy).is_ok());
}

}  // namespace
}  // namespace paycore::repl
