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

// Without spare files unless asked: most cases cut or edit the one file a run wrote.
std::unique_ptr<NonceJournal> open_journal(const std::string& dir, auth::NonceCache& cache, NonceJournalLoad* load,
                                           std::int64_t at_s = now_s(), bool spare_files = false) {
  auto journal = NonceJournal::open(dir, window_s, at_s, cache, load, spare_files);
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

// The journal moves from the file it started (which grows) to a spare written full of zeros as
// soon as one is ready; its records are written in place there, and loading reads them up to
// the zeros, which are a clean end, not a torn tail.
TEST(NonceJournal, RecordsInASpareFileAreLoadedAndItsZerosAreNoTornTail) {
  TempDir dir;
  const std::int64_t t = now_s();
  std::vector<std::string> nonces;
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load, t, /*spare_files=*/true);
    const auto moved = [&] {
      for (const std::string& f : journal_files(dir.path)) {
        if (f.ends_with(".log") && std::filesystem::file_size(f) == nonce_file_bytes) return true;
      }
      return false;
    };
    for (int i = 0; i < 3000 && !moved(); ++i) {
      nonces.push_back("nonce-spare-" + std::to_string(i));
      wait_durable(*journal, journal->append("m_001", nonces.back(), t));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(moved()) << "the journal never moved to a spare file";
    for (int i = 0; i < 5; ++i) {  // these go into the spare file
      nonces.push_back("nonce-in-spare-" + std::to_string(i));
      wait_durable(*journal, journal->append("m_001", nonces.back(), t));
    }
    journal->stop();
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load, t);
  EXPECT_EQ(load.records, nonces.size());
  EXPECT_EQ(load.torn, 0u);
  for (const std::string& nonce : nonces) {
    EXPECT_EQ(cache.insert("m_001", nonce, t, t), auth::NonceCache::Insert::replayed) << nonce;
  }
}

// A record cut short inside a spare file (bytes after it still zero) is a torn tail there.
TEST(NonceJournalFile, ATornRecordInASpareFileIsATornTail) {
  TempDir dir;
  const std::int64_t t = now_s();
  std::string spare_file;
  {
    auth::NonceCache cache;
    NonceJournalLoad load;
    auto journal = open_journal(dir.path, cache, &load, t, /*spare_files=*/true);
    for (int i = 0; i < 3000 && spare_file.empty(); ++i) {
      wait_durable(*journal, journal->append("m_001", "nonce-torn-case-" + std::to_string(i), t));
      for (const std::string& f : journal_files(dir.path)) {
        if (f.ends_with(".log") && std::filesystem::file_size(f) == nonce_file_bytes) spare_file = f;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_FALSE(spare_file.empty());
    wait_durable(*journal, journal->append("m_001", "nonce-last-one", t));
    journal->stop();
  }
  // Zero the last 3 bytes of the last record: its checksum fails, zeros follow.
  std::string bytes;
  {
    std::ifstream in(spare_file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t end = bytes.find_last_not_of('\0') + 1;
  {
    std::fstream file(spare_file, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(end - 3));
    file.write("\0\0\0", 3);
  }
  auth::NonceCache cache;
  NonceJournalLoad load;
  auto journal = open_journal(dir.path, cache, &load, t);
  EXPECT_EQ(load.torn, 1u);
  EXPECT_EQ(cache.insert("m_001", "nonce-last-one", t, t), auth::NonceCache::Insert::fresh);
  EXPECT_EQ(cache.insert("m_001", "nonce-torn-case-0", t, t), auth::NonceCache::Insert::replayed);
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
