// Determinism and the snapshot file: the same commands give byte-identical states, a snapshot
// reloads into the same state, and a damaged snapshot is refused with the offset.
#include <gtest/gtest.h>

#include "random_commands.hpp"
#include "core/snapshot.hpp"
#include "core/snapshot_export.hpp"
#include "core/snapshot_format.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include <xxhash.h>

namespace paycore::testing {
namespace {

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const ::paycore::Status assert_ok_status_ = (expr);  \
    ASSERT_TRUE(assert_ok_status_.is_ok()) << assert_ok_status_.to_string(); \
  } while (0)

void run_random(Driver& d, std::uint64_t seed, std::uint64_t count) {
  d.run(add_channel("alipay"));
  d.run(add_channel("wechat"));
  Generator gen(seed);
  for (std::uint64_t i = 0; i < count; ++i) {
    const Command c = gen.next();
    d.run(c, gen.step_us());
  }
}

std::span<const std::byte> as_bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

TEST(Determinism, SameCommandsGiveByteIdenticalStates) {
  const std::uint64_t seed = env_or("PAYCORE_SEED", 7);
  Driver a, b;
  run_random(a, seed, 20'000);
  run_random(b, seed, 20'000);
  const std::string sa = serialize_snapshot(a.state, 1, 0);
  const std::string sb = serialize_snapshot(b.state, 1, 0);
  EXPECT_GT(a.state.payments.size(), 100u);
  EXPECT_EQ(sa, sb);
  Driver c;
  run_random(c, seed + 1, 20'000);
  EXPECT_NE(serialize_snapshot(c.state, 1, 0), sa);
}

TEST(Snapshot, RoundTripIsExact) {
  Driver d;
  run_random(d, 11, 20'000);
  const std::string bytes = serialize_snapshot(d.state, 42, 1234);
  State loaded;
  SnapshotInfo info;
  ASSERT_OK(load_snapshot(as_bytes(bytes), &loaded, &info));
  EXPECT_EQ(info.lsn, 42u);
  EXPECT_EQ(info.payments, d.state.payments.size());
  EXPECT_EQ(info.refunds, d.state.refunds.size());
  EXPECT_EQ(serialize_snapshot(loaded, 42, 1234), bytes);
}

TEST(Snapshot, ReloadedStateAnswersLikeTheOriginal) {
  Driver live;
  run_random(live, 13, 10'000);
  Driver reloaded(live.now_us());
  SnapshotInfo info;
  ASSERT_OK(load_snapshot(as_bytes(serialize_snapshot(live.state, 1, 0)), &reloaded.state, &info));
  Generator gen(99, live.now_us());
  for (int i = 0; i < 10'000; ++i) {
    const Command c = gen.next();
    const std::int64_t step = gen.step_us();
    const Result x = live.run(c, step);
    const Result y = reloaded.run(c, step);
    ASSERT_EQ(x.code, y.code) << i;
    ASSERT_EQ(x.replayed, y.replayed) << i;
  }
  EXPECT_EQ(serialize_snapshot(live.state, 2, 0), serialize_snapshot(reloaded.state, 2, 0));
}

TEST(Snapshot, MandatesAndTheirChainsSurviveAReload) {
  Driver d;
  d.run(open_account("o1", "alice"));
  d.run(deposit("o2", "alice", 1'000));
  ASSERT_EQ(d.run(create_mandate("o3", "md-1", "alice", "m1", 100)).code, ResultCode::ok);
  ASSERT_EQ(d.run(create_mandate("o4", "md-2", "alice", "m1", 200, 0, true)).code, ResultCode::ok);
  ASSERT_EQ(d.run(pay("m1", "r1", "o-1", 150, "alice")).code, ResultCode::ok);
  ASSERT_EQ(d.run(create_mandate("o5", "md-3", "alice", "m2", 300)).code, ResultCode::ok);
  const std::string bytes = serialize_snapshot(d.state, 7, 0);
  Driver reloaded(d.now_us());
  SnapshotInfo info;
  ASSERT_OK(load_snapshot(as_bytes(bytes), &reloaded.state, &info));
  EXPECT_EQ(info.mandates, 3u);
  EXPECT_EQ(reloaded.run(get_mandate("m1", "md-1"), 0).mandate.status, MandateStatus::revoked);
  EXPECT_EQ(reloaded.run(get_mandate("m1", "md-2"), 0).mandate.status, MandateStatus::used);
  EXPECT_EQ(reloaded.run(get_payment("m1", "o-1"), 0).payment.mandate_id.view(), "md-2");
  EXPECT_EQ(reloaded.run(pay("m1", "r2", "o-2", 10, "alice")).code, ResultCode::mandate_inactive);
  EXPECT_EQ(reloaded.run(pay("m2", "r3", "o-3", 10, "alice")).code, ResultCode::ok);
  EXPECT_EQ(reloaded.run(create_mandate("o3", "md-1", "alice", "m1", 100)).code, ResultCode::ok);  // replay
  EXPECT_EQ(serialize_snapshot(reloaded.state, 8, 0).size() > bytes.size(), true);
}

// Snapshots written before mandates (format 1) are still read: the fuzz corpus keeps one made
// by that version of the writer, from 60 random commands.
TEST(Snapshot, FormatVersion1StillLoads) {
  StatusOr<std::string> read = read_file(PAYCORE_CORE_TEST_DATA_DIR "/snapshot-v1-random-60.snap");
  ASSERT_OK(read.status());
  const std::string bytes = *read;
  State state;
  SnapshotInfo info;
  ASSERT_OK(load_snapshot(as_bytes(bytes), &state, &info));
  EXPECT_EQ(info.format_version, 1u);
  EXPECT_GT(state.payments.size(), 0u);
  EXPECT_EQ(state.mandates.size(), 0u);
  // Written again, it is a current-format snapshot of the same state.
  const std::string again = serialize_snapshot(state, info.lsn, info.created_at_us);
  State reloaded;
  ASSERT_OK(load_snapshot(as_bytes(again), &reloaded, &info));
  EXPECT_EQ(info.format_version, snapshot::format_version);
  EXPECT_EQ(serialize_snapshot(reloaded, info.lsn, info.created_at_us), again);
}

// Snapshots written before the cold tier (format 2) are still read: the fuzz corpus keeps one
// made by that version of the writer (tests/fuzz/corpus/snapshot/v2-seed-random-60 without its
// first byte). Everything is in memory: no row has left, no record has expired.
TEST(Snapshot, FormatVersion2StillLoads) {
  StatusOr<std::string> read = read_file(PAYCORE_CORE_TEST_DATA_DIR "/snapshot-v2-random-60.snap");
  ASSERT_OK(read.status());
  const std::string bytes = *read;
  State state;
  SnapshotInfo info;
  ASSERT_OK(load_snapshot(as_bytes(bytes), &state, &info));
  EXPECT_EQ(info.format_version, 2u);
  EXPECT_GT(state.payments.live_count(), 0u);
  EXPECT_EQ(state.payments.begin(), 0u);
  EXPECT_EQ(state.idempotency_horizon_us, INT64_MIN);
  // Records of a format 2 file count their retention from the snapshot's time.
  ASSERT_GT(state.idempotency.live_count(), 0u);
  EXPECT_EQ(state.idempotency[state.idempotency.begin()].created_at_us, info.last_timestamp_us);
  const std::string again = serialize_snapshot(state, info.lsn, info.created_at_us);
  State reloaded;
  ASSERT_OK(load_snapshot(as_bytes(again), &reloaded, &info));
  EXPECT_EQ(info.format_version, snapshot::format_version);
  EXPECT_EQ(serialize_snapshot(reloaded, info.lsn, info.created_at_us), again);
}

class DamagedSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    Driver d;
    run_random(d, 17, 3'000);
    bytes = serialize_snapshot(d.state, 5, 0);
  }
  std::string load_error(const std::string& b) {
    State s;
    SnapshotInfo info;
    const Status loaded = load_snapshot(as_bytes(b), &s, &info);
    EXPECT_FALSE(loaded.is_ok());
    return loaded.message();
  }
  std::string bytes;
};

TEST_F(DamagedSnapshot, TruncatedSnapshotIsRefused) {
  for (std::size_t n : {std::size_t{0}, std::size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    const std::string error = load_error(bytes.substr(0, n));
    EXPECT_NE(error.find("truncated"), std::string::npos) << n << ": " << error;
  }
}

TEST_F(DamagedSnapshot, FlippedContentByteIsAChecksumMismatch) {
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
  EXPECT_NE(load_error(bytes).find("checksum mismatch"), std::string::npos);
}

TEST_F(DamagedSnapshot, FlippedHeaderByteIsAHeaderChecksumMismatch) {
  bytes[20] = static_cast<char>(bytes[20] ^ 0x01);
  EXPECT_NE(load_error(bytes).find("header checksum mismatch at offset 120"), std::string::npos);
}

TEST_F(DamagedSnapshot, BadMagicIsRefused) {
  bytes[0] = 'X';
  EXPECT_NE(load_error(bytes).find("bad magic"), std::string::npos);
}

TEST(Snapshot, InconsistentContentIsRefusedWithItsOffset) {
  // A well-checksummed file whose content breaks a rule (a payment of an unknown merchant
  // row) is still refused: checksums prove integrity, not correctness.
  Driver d;
  d.run(open_account("o1", "alice"));
  d.run(deposit("o2", "alice", 100));
  d.run(create_mandate("o3", "md-alice-m1", "alice", "m1"));
  d.run(pay("m1", "r1", "o-1", 100, "alice"));
  StringSink sink;
  ASSERT_TRUE(write_snapshot(d.state, 1, 0, sink));
  std::string bytes = sink.bytes;
  // Find the payments section and point the payment at account row 9.
  const std::uint32_t tag = snapshot::tag_payments;
  const std::size_t at = bytes.find(std::string(reinterpret_cast<const char*>(&tag), 4));
  ASSERT_NE(at, std::string::npos);
  bytes[at + snapshot::section_header_bytes] = 9;
  // Re-seal so that only the content check can catch it.
  State scratch;
  const std::size_t trailer_at = bytes.size() - snapshot::trailer_bytes;
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), trailer_at);
  std::memcpy(bytes.data() + trailer_at + 8, &h.low64, 8);
  std::memcpy(bytes.data() + trailer_at + 16, &h.high64, 8);
  SnapshotInfo info;
  const Status loaded = load_snapshot(as_bytes(bytes), &scratch, &info);
  ASSERT_FALSE(loaded.is_ok());
  const std::string& error = loaded.message();
  EXPECT_NE(error.find("unknown merchant account at offset"), std::string::npos) << error;
}

}  // namespace
}  // namespace paycore::testing

namespace paycore::testing {
namespace {

// The export shows the system accounts, so that anyone can check the zero sum from outside.
TEST(SnapshotExport, SystemBalancesAreExportedAndEverythingSumsToZero) {
  Driver d;
  d.run(add_channel("alipay"));
  d.run(open_account("o1", "alice"));
  d.run(deposit("o2", "alice", 1'000));
  d.run(create_mandate("o3", "md-alice-m1", "alice", "m1"));
  d.run(pay("m1", "r1", "o-1", 300, "alice"));
  d.run(pay_external("m1", "r2", "o-2", 50, "alipay"));
  d.run(notify("alipay", "t1", "m1", "o-2", 50, NotificationStatus::success));
  char path[] = "/tmp/paycore-export-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string bytes = serialize_snapshot(d.state, 1, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  std::ostringstream csv, jsonl;
  EXPECT_EQ(export_snapshot(path, "csv", csv), 0);
  EXPECT_EQ(export_snapshot(path, "jsonl", jsonl), 0);
  ::unlink(path);
  EXPECT_NE(csv.str().find("system,external,CNY,-1000\n"), std::string::npos) << csv.str();
  EXPECT_NE(csv.str().find("mandate,md-alice-m1,alice,m1,1000000000,CNY,,false,ACTIVE,"), std::string::npos);
  EXPECT_NE(jsonl.str().find(R"("channel_txn_id":null,"mandate_id":"md-alice-m1")"), std::string::npos);
  EXPECT_NE(csv.str().find("system,channel:alipay,CNY,-50\n"), std::string::npos);
  EXPECT_NE(jsonl.str().find(R"({"type":"system","account_id":"external","currency":"CNY","balance":-1000})"),
            std::string::npos);
  // alice 700 + m1 350 - external 1000 - channel 50 = 0
  std::int64_t sum = 0;
  std::istringstream lines(csv.str());
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("system,") || (line.starts_with("account,") && !line.starts_with("account,account_id"))) {
      const auto first = line.find(',', line.find(',', line.find(',') + 1) + 1);  // after currency (system)
      if (line.starts_with("system,")) sum += std::stoll(line.substr(first + 1));
      else sum += std::stoll(line.substr(line.find(',', first + 1) + 1));  // account: after kind, currency
    }
  }
  EXPECT_EQ(sum, 0);
}

}  // namespace
}  // namespace paycore::testing
