// Disk faults against the real binary (docs/design.md rule 7):
//  - fsync or write EIO (the hidden test-only `--wal-fault`): the log is read-only for good:
//    mutations 503, reads still 200 from what is durable, /readyz 503, /healthz 200; after a
//    restart nothing acknowledged is lost and writes are accepted again;
//  - ENOSPC when a new segment cannot be preallocated, injected and on a real full tmpfs:
//    mutations 503 while the disk is full, reads 200, /readyz 503; once space is freed, writes
//    are accepted again without a restart; nothing acknowledged is lost.
#include <gtest/gtest.h>
#include <sys/statvfs.h>

#include <fstream>
#include <set>
#include <thread>

#include "tests/torture/support.hpp"

namespace paycore::torture {
namespace {

constexpr std::int64_t deposit = 1'000'000'000;

struct Book {
  std::vector<std::string> acknowledged;  // order ids answered 201
  std::vector<std::string> refused;       // answered 503: may or may not be on disk
  std::int64_t acknowledged_total = 0;
};

HttpResponse pay(Client& client, const std::string& id) {
  return client.call(client.merchant("m_001"), "POST", "/v1/payments", payment_body(id, "payer0", 7));
}

// After a restart: every acknowledged payment is there; the refused ones may be; the money
// moved is exactly the payments present; a retry of each refused one makes it exactly once.
void check_after_restart(Client& client, const Book& book) {
  const Signer m = client.merchant("m_001");
  for (const std::string& id : book.acknowledged) {
    ASSERT_EQ(client.call(m, "GET", "/v1/payments/" + id).status, 200) << "acknowledged " << id << " lost";
  }
  std::int64_t present_total = book.acknowledged_total;
  for (const std::string& id : book.refused) {
    const int status = client.call(m, "GET", "/v1/payments/" + id).status;
    ASSERT_TRUE(status == 200 || status == 404) << status;
    if (status == 200) present_total += 7;
  }
  const Signer op = client.operator_signer();
  EXPECT_EQ(it::json_int(client.call(op, "GET", "/v1/accounts/payer0").body, "/balance"), deposit - present_total);
  EXPECT_EQ(it::json_int(client.call(op, "GET", "/v1/accounts/m_001").body, "/balance"), present_total);
  for (const std::string& id : book.refused) {
    const HttpResponse r = pay(client, id);
    ASSERT_EQ(r.status, 201) << r.body;
    if (r.header("idempotent-replayed") != "true") present_total += 7;
  }
  EXPECT_EQ(it::json_int(client.call(op, "GET", "/v1/accounts/m_001").body, "/balance"),
            book.acknowledged_total + 7 * static_cast<std::int64_t>(book.refused.size()));
  EXPECT_EQ(present_total, book.acknowledged_total + 7 * static_cast<std::int64_t>(book.refused.size()));
}

// While writes are refused: mutations 503 unavailable, reads of what was acknowledged 200,
// /readyz 503, /healthz 200.
void expect_refusing_writes(Client& client, const Book& book, const std::string& id_prefix) {
  for (int i = 0; i < 3; ++i) {
    const HttpResponse r = pay(client, id_prefix + std::to_string(i));
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(it::json_string(r.body, "/error/code"), "unavailable") << r.body;
  }
  const Signer op = client.operator_signer();
  EXPECT_EQ(client.call(op, "POST", "/v1/accounts", account_body("late", "customer")).status, 503);
  ASSERT_FALSE(book.acknowledged.empty());
  const HttpResponse read = client.call(client.merchant("m_001"), "GET", "/v1/payments/" + book.acknowledged.back());
  EXPECT_EQ(read.status, 200) << read.body;
  const HttpResponse account = client.call(op, "GET", "/v1/accounts/m_001");
  EXPECT_EQ(account.status, 200);
  EXPECT_EQ(it::json_int(account.body, "/balance"), book.acknowledged_total) << "reads show only what is durable";
  EXPECT_EQ(client.get("/readyz").status, 503);
  EXPECT_EQ(client.get("/healthz").status, 200);
}

struct FaultCase {
  const char* fault;
  bool fallback;
};

class StorageFault : public ::testing::TestWithParam<FaultCase> {};

TEST_P(StorageFault, EioMakesTheLogReadOnlyUntilRestart) {
  ScopedFixture fixture;
  std::vector<std::string> args = {"--wal-fault", GetParam().fault};
  if (GetParam().fallback) args.push_back("--wal-fallback");
  ASSERT_TRUE(fixture.start(args)) << fixture.log();
  Client client(fixture.server->port(), fixture.keys);
  ASSERT_TRUE(open_accounts(client, {"m_001"}, {"payer0"}, deposit));
  Book book;
  // One request at a time: one group commit (one write, one fdatasync) each, so the fault
  // fires a few dozen payments in.
  for (int i = 0; i < 500 && book.refused.empty(); ++i) {
    const std::string id = "eio-" + std::to_string(i);
    const HttpResponse r = pay(client, id);
    if (r.status == 201) {
      book.acknowledged.push_back(id);
      book.acknowledged_total += 7;
    } else {
      ASSERT_EQ(r.status, 503) << r.body;
      book.refused.push_back(id);
    }
  }
  ASSERT_FALSE(book.refused.empty()) << "the fault never fired: " << fixture.log();
  ASSERT_GT(book.acknowledged.size(), 5u);
  expect_refusing_writes(client, book, "eio-after-");
  // Still read-only a while later: a failed fsync is never retried.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(pay(client, "eio-later").status, 503);
  EXPECT_EQ(client.get("/readyz").status, 503);
  EXPECT_NE(fixture.log().find("read-only"), std::string::npos) << fixture.log();

  ASSERT_TRUE(fixture.restart(GetParam().fallback ? std::vector<std::string>{"--wal-fallback"}
                                                  : std::vector<std::string>{}))
      << fixture.log();
  Client after(fixture.server->port(), fixture.keys);
  EXPECT_EQ(after.get("/readyz").status, 200);
  book.refused.push_back("eio-later");  // refused too; retried below like the others
  for (int i = 0; i < 3; ++i) book.refused.push_back("eio-after-" + std::to_string(i));
  check_after_restart(after, book);
  std::printf("faults: %s%s: %zu acknowledged before the fault, all present after restart\n", GetParam().fault,
              GetParam().fallback ? " (pwrite fallback)" : " (io_uring)", book.acknowledged.size());
}

INSTANTIATE_TEST_SUITE_P(Faults, StorageFault,
                         ::testing::Values(FaultCase{"fsync:EIO:after=30", false}, FaultCase{"fsync:EIO:after=30", true},
                                           FaultCase{"write:EIO:after=30", false},
                                           FaultCase{"write:EIO:after=30", true}),
                         [](const auto& param_info) {
                           return std::string(param_info.param.fault[0] == 'f' ? "Fsync" : "Write") +
                                  (param_info.param.fallback ? "Fallback" : "Uring");
                         });

// A refused preallocation (injected) is a full disk, not a broken one: the space is there
// again at the next look, so writes resume by themselves without a restart.
TEST(DiskFull, InjectedFallocateEnospcPassesWithoutRestart) {
  ScopedFixture fixture;
  // Without spares: the fault is on fallocate, which a segment made from a spare skips.
  ASSERT_TRUE(fixture.start({"--wal-segment-bytes", "16384", "--wal-spare-segments=false", "--wal-fault",
                             "fallocate:ENOSPC:after=2"}))
      << fixture.log();
  Client client(fixture.server->port(), fixture.keys);
  ASSERT_TRUE(open_accounts(client, {"m_001"}, {"payer0"}, deposit));
  Book book;
  std::size_t acknowledged_after_refusal = 0;
  for (int i = 0; i < 3000 && acknowledged_after_refusal < 50; ++i) {
    const std::string id = "nospc-" + std::to_string(i);
    const HttpResponse r = pay(client, id);
    if (r.status == 201) {
      book.acknowledged.push_back(id);
      book.acknowledged_total += 7;
      if (!book.refused.empty()) ++acknowledged_after_refusal;
    } else {
      ASSERT_EQ(r.status, 503) << r.body;
      book.refused.push_back(id);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ASSERT_FALSE(book.refused.empty()) << "the fault never fired";
  EXPECT_EQ(acknowledged_after_refusal, 50u) << "writes did not resume";
  EXPECT_EQ(client.get("/readyz").status, 200);
  ASSERT_TRUE(fixture.restart()) << fixture.log();
  Client after(fixture.server->port(), fixture.keys);
  check_after_restart(after, book);
  std::printf("faults: injected fallocate ENOSPC: %zu refused (503), %zu acknowledged, writes resumed\n",
              book.refused.size(), book.acknowledged.size());
}

std::uint64_t free_bytes(const std::string& dir) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return 0;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// A real full filesystem: a 4 MiB tmpfs as the data directory, mostly taken by a filler file.
TEST(DiskFull, FullTmpfsRefusesWritesUntilSpaceIsFreed) {
  TmpfsMount tmpfs(4ULL << 20);
  if (!tmpfs.mounted()) {
    GTEST_SKIP() << "mount -t tmpfs refused (" << tmpfs.error() << "): this test needs root or CAP_SYS_ADMIN";
  }
  constexpr std::uint64_t segment_bytes = 65536;
  ScopedFixture fixture;
  fixture.dir = it::make_temp_dir("paycore-it");
  fixture.keys_path = fixture.dir + "/keys.json";
  fixture.data_dir = tmpfs.dir() + "/data";
  const std::vector<std::string> args = {"--wal-segment-bytes", std::to_string(segment_bytes)};
  ASSERT_TRUE(fixture.start(args)) << fixture.log();
  Client client(fixture.server->port(), fixture.keys);
  ASSERT_TRUE(open_accounts(client, {"m_001"}, {"payer0"}, deposit));

  // Leave room for about one more segment.
  const std::string filler = tmpfs.dir() + "/filler";
  {
    const std::uint64_t fill = free_bytes(tmpfs.dir()) - segment_bytes - segment_bytes / 2;
    std::ofstream out(filler, std::ios::binary);
    const std::string block(1 << 16, 'f');
    for (std::uint64_t written = 0; written < fill; written += block.size()) {
      out.write(block.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(block.size(), fill - written)));
    }
    ASSERT_TRUE(out.good()) << "could not write the filler";
  }
  std::printf("faults: tmpfs %s: %llu bytes free after the filler\n", tmpfs.dir().c_str(),
              static_cast<unsigned long long>(free_bytes(tmpfs.dir())));
  Book book;
  for (int i = 0; i < 20000 && book.refused.empty(); ++i) {
    const std::string id = "full-" + std::to_string(i);
    const HttpResponse r = pay(client, id);
    if (r.status == 201) {
      book.acknowledged.push_back(id);
      book.acknowledged_total += 7;
    } else {
      ASSERT_EQ(r.status, 503) << r.body << fixture.log();
      book.refused.push_back(id);
    }
  }
  ASSERT_FALSE(book.refused.empty()) << "the disk never filled: " << fixture.log();
  // Still full a while later (the engine looks again every 100 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  expect_refusing_writes(client, book, "full-after-");
  for (int i = 0; i < 3; ++i) book.refused.push_back("full-after-" + std::to_string(i));

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  int status = 0;
  const std::int64_t freed_at = now_ms();
  for (int i = 0; i < 100 && status != 201; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = pay(client, "full-freed").status;
    if (status != 201) {
      ASSERT_EQ(status, 503);
    }
  }
  ASSERT_EQ(status, 201) << "writes did not resume after space was freed: " << fixture.log();
  std::printf("faults: tmpfs full: %zu acknowledged, then 503; writes resumed %lld ms after the filler was removed\n",
              book.acknowledged.size(), static_cast<long long>(now_ms() - freed_at));
  book.acknowledged.push_back("full-freed");
  book.acknowledged_total += 7;
  EXPECT_EQ(client.get("/readyz").status, 200);
  for (int i = 0; i < 20; ++i) {
    const std::string id = "full-again-" + std::to_string(i);
    ASSERT_EQ(pay(client, id).status, 201);
    book.acknowledged.push_back(id);
    book.acknowledged_total += 7;
  }
  ASSERT_TRUE(fixture.restart(args)) << fixture.log();
  Client after(fixture.server->port(), fixture.keys);
  check_after_restart(after, book);
  fixture.destroy();  // before the tmpfs guard unmounts its data directory
}

}  // namespace
}  // namespace paycore::torture
