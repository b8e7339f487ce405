// Kill -9 a writer mid-stream, then recover: every LSN it saw durable must still be there.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "wal/log.hpp"
#include "wal_test_util.hpp"

namespace paycore::wal {
namespace {

using namespace testing;

[[noreturn]] void run_writer(const Options& o, int report_fd) {
  std::unique_ptr<Log> log;
  RecoveryReport report;
  if (!Log::open(o, &log, &report).is_ok()) ::_exit(2);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      const std::uint64_t want = log->next_lsn();
      std::uint64_t lsn = 0;
      Status s = log->append(type_for(want), payload_for(want), &lsn);
      if (s.code() == StatusCode::kFull) break;
      if (!s.is_ok()) ::_exit(3);
    }
    if (!log->submit().is_ok()) ::_exit(4);
    const std::uint64_t durable = log->poll();
    if (::write(report_fd, &durable, sizeof durable) != sizeof durable) ::_exit(5);
  }
}

void crash_and_recover(bool force_fallback) {
  TempDir tmp;
  Options o;
  o.dir = tmp.log_dir();
  o.segment_bytes = 1 << 20;
  o.batch_bytes_max = 64 << 10;
  o.force_fallback = force_fallback;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    run_writer(o, fds[1]);
  }
  ::close(fds[1]);
  std::uint64_t durable_seen = 0;
  std::uint64_t value = 0;
  // Let it run through a few segments, then kill it without warning.
  while (durable_seen < 40000 && ::read(fds[0], &value, sizeof value) == sizeof value) {
    durable_seen = std::max(durable_seen, value);
  }
  ::kill(child, SIGKILL);
  while (::read(fds[0], &value, sizeof value) == sizeof value) durable_seen = std::max(durable_seen, value);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with status " << WEXITSTATUS(status);
  ASSERT_GE(durable_seen, 40000u);

  RecoveryReport report;
  auto log = open_log(o, &report);
  ASSERT_TRUE(log);
  EXPECT_GE(report.last_lsn, durable_seen);
  expect_records(replay_all(*log, 1), 1, report.last_lsn);
  write_records(*log, 10);  // and the log goes on from there
  EXPECT_EQ(log->durable_lsn(), report.last_lsn + 10);
}

TEST(WalCrash, KillDuringWritesKeepsEveryDurableRecordIoUring) { crash_and_recover(false); }
TEST(WalCrash, KillDuringWritesKeepsEveryDurableRecordFallback) { crash_and_recover(true); }

}  // namespace
}  // namespace paycore::wal
