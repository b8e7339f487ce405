// The nonce journal (net/nonce_journal.hpp): what is appended and made durable is refused
// again after a reopen (a restart), whatever the way the previous process ended.
#include "net/nonce_journal.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/net/test_keys.hpp"

namespace paycore::net {
namespace {

constexpr std::int64_t window_s = 300;

std::int64_t now_s() { return static_cast<std::int64_t>(::time(nullptr)); }

struct TempDir {
  std::string path = testing::make_temp_dir();
  ~TempDir() { std::filesystem::remove_all(path); }
};

void wait_durable(const NonceJournal& journal, std::uint64_t seq) {
  for (int i = 0; i < 2000 && journal.durable_seq() < seq; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(journal.durable_seq(), seq);
}

std::unique_ptr<NonceJournal> open_journal(const std::string& dir, auth::NonceCache& cache, NonceJournalLoad* load,
                                           std::int64_t at_s = now_s()) {
  auto journal = NonceJournal::open(dir, window_s, at_s, cache, load);
  EXPECT_TRUE(journal.is_ok()) << journal.status().to_string();
  if (!journal.is_ok()) return nullptr;
  return std::move(journal).value();
}

std::vector<std::string> journal_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path().string());
  return files;
}

TEST(NonceJournal, DurableNonceIsReplayedAfterReopen) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load);
    ASSERT_EQ(cache.insert("m_001", "nonce-0001", t, t), auth::NonceCache::Insert::fresh);
    const std::uint64_t seq = journal->append("m_001", "nonce-0001", t);
    EXPECT_GE(seq, 1u);
    wait_durable(*journal, seq);  // what an answer waits for (a SIGKILL: tests/integration)
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load);
  EXPECT_EQ(load.records, 1u);
  EXPECT_EQ(load.live, 1u);
  EXPECT_EQ(cache.insert("m_001", "nonce-0001", t, t + 1), auth::NonceCache::Insert::replayed);
  EXPECT_EQ(cache.insert("m_002", "nonce-0001", t, t + 1), auth::NonceCache::Insert::fresh);
  EXPECT_EQ(cache.insert("m_001", "nonce-0002", t, t + 1), auth::NonceCache::Insert::fresh);
}

TEST(NonceJournal, StopFlushesWhatIsQueued) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load);
    for (int i = 0; i < 100; ++i) (void)journal->append("m_001", "nonce-" + std::to_string(1000 + i), t);
    journal->stop();
    EXPECT_EQ(journal->durable_seq(), 100u);
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load);
  EXPECT_EQ(load.live, 100u);
  EXPECT_EQ(cache.insert("m_001", "nonce-1099", t, t), auth::NonceCache::Insert::replayed);
}

TEST(NonceJournal, ExpiredEntriesAreNotLoadedAndTheirFilesGo) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load, t - 2 * window_s);
    (void)journal->append("m_001", "nonce-old1", t - 2 * window_s);
    journal->stop();
  }
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load);
    EXPECT_EQ(load.records, 1u);
    EXPECT_EQ(load.live, 0u);
    EXPECT_EQ(cache.size(), 0u);
    journal->stop();
  }
  // Only the file this open started remains.
  EXPECT_EQ(journal_files(dir.path).size(), 1u);
}

TEST(NonceJournalFile, TornTailIsIgnored) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load);
    (void)journal->append("m_001", "nonce-first", t);
    (void)journal->append("m_001", "nonce-second", t);
    journal->stop();
  }
  const std::vector<std::string> files = journal_files(dir.path);
  ASSERT_EQ(files.size(), 1u);
  std::filesystem::resize_file(files[0], std::filesystem::file_size(files[0]) - 3);
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load);
  EXPECT_EQ(load.records, 1u);
  EXPECT_EQ(load.torn, 1u);
  EXPECT_EQ(cache.insert("m_001", "nonce-first", t, t), auth::NonceCache::Insert::replayed);
  EXPECT_EQ(cache.insert("m_001", "nonce-second", t, t), auth::NonceCache::Insert::fresh);
}

// A restart within the same second after a crash left a torn tail: the new records must not go
// after the torn one (where loading stops), so every start writes a file of its own.
TEST(NonceJournalFile, RecordsAfterATornTailInTheSameSecondAreKept) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load, t);
    (void)journal->append("m_001", "nonce-first", t);
    journal->stop();
  }
  const std::string first_file = journal_files(dir.path)[0];
  std::filesystem::resize_file(first_file, std::filesystem::file_size(first_file) - 3);
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load, t);  // the same second
    EXPECT_EQ(load.torn, 1u);
    (void)journal->append("m_001", "nonce-after", t);
    journal->stop();
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load, t);
  EXPECT_EQ(cache.insert("m_001", "nonce-after", t, t), auth::NonceCache::Insert::replayed);
}

TEST(NonceJournalFile, CorruptRecordStopsTheFileThere) {
  TempDir dir;
  const std::int64_t t = now_s();
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load);
    (void)journal->append("m_001", "nonce-first", t);
    (void)journal->append("m_001", "nonce-second", t);
    journal->stop();
  }
  const std::string path = journal_files(dir.path)[0];
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-2, std::ios::end);  // inside the second record's nonce
    file.put('#');
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load);
  EXPECT_EQ(load.records, 1u);
  EXPECT_EQ(load.torn, 1u);
}

TEST(NonceJournal, UnusableDirectoryIsAnError) {
  auth::NonceCache cache;
  NonceJournalLoad load;
  const auto journal = NonceJournal::open("/proc/version/nonces", window_s, now_s(), cache, &load);
  EXPECT_FALSE(journal.is_ok());
  const std::string error = journal.status().message();
  EXPECT_NE(error.find("/proc/version/nonces"), std::string::npos) << error;
}

}  // namespace
}  // namespace paycore::net
