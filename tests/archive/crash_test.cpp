// SIGKILL a process that writes archive jobs, then reopen: the store holds exactly the jobs its
// position counts, each whole (a job and its position are one batch), and every job the writer
// saw acknowledged.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "archive/store.hpp"
#include "tests/archive/archive_test_util.hpp"

namespace paycore {
namespace {

using testing::ArchiveDir;
using testing::make_payment;

constexpr std::uint32_t payments_per_job = 200;
constexpr std::int64_t t0_us = 1'700'000'000'000'000;

std::string order_of(std::uint64_t job, std::uint32_t i) {
  return "j" + std::to_string(job) + "_" + std::to_string(i);
}

std::vector<ArchivedPayment> job_payments(std::uint64_t job) {
  std::vector<ArchivedPayment> payments;
  for (std::uint32_t i = 0; i < payments_per_job; ++i) {
    payments.push_back(make_payment("m" + std::to_string(i % 7), order_of(job, i),
                                    t0_us + static_cast<std::int64_t>(job * 1000 + i)));
  }
  return payments;
}

// The child: writes jobs 1, 2, ... and reports each one acknowledged; never returns.
[[noreturn]] void run_writer(const std::string& dir, int report_fd) {
  StatusOr<std::unique_ptr<ArchiveStore>> store = ArchiveStore::open(testing::small_options(dir));
  if (!store.is_ok()) ::_exit(2);
  for (std::uint64_t job = 1;; ++job) {
    const ArchivePosition position{static_cast<std::uint32_t>(job * payments_per_job), job, t0_us,
                                   job};
    if (!(*store)->write(job_payments(job), position).is_ok()) ::_exit(3);
    if (::write(report_fd, &job, sizeof job) != sizeof job) ::_exit(4);
  }
}

// Starts the writer, kills it after `acked_min` acknowledged jobs and `delay_us`; returns the
// highest job acknowledged.
std::uint64_t write_and_kill(const std::string& dir, std::uint64_t acked_min, int delay_us) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  EXPECT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    run_writer(dir, fds[1]);
  }
  ::close(fds[1]);
  std::uint64_t acked = 0;
  std::uint64_t job = 0;
  while (acked < acked_min && ::read(fds[0], &job, sizeof job) == sizeof job) acked = job;
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  ::kill(child, SIGKILL);
  while (::read(fds[0], &job, sizeof job) == sizeof job) acked = job;
  ::close(fds[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the writer failed on its own: exit " << WEXITSTATUS(status);
  return acked;
}

bool job_is_there(const ArchiveStore& store, std::uint64_t job, std::uint32_t i) {
  const auto found = store.get_payment("m" + std::to_string(i % 7), order_of(job, i));
  EXPECT_TRUE(found.is_ok()) << found.status().to_string();
  return found.is_ok() && found->has_value();
}

TEST(ArchiveStoreCrash, KilledWriterLeavesWholeJobsThatThePositionCounts) {
  std::mt19937 random(12);
  for (int round = 0; round < 3; ++round) {
    ArchiveDir dir;
    const std::uint64_t acked =
        write_and_kill(dir.store(), 1 + random() % 6, static_cast<int>(random() % 5000));
    const auto store = testing::open_store(dir.store(), /*must_exist=*/true);
    ASSERT_NE(store, nullptr);
    const std::uint64_t jobs = store->position().jobs;
    EXPECT_GE(jobs, acked) << "round " << round;  // nothing acknowledged is lost
    EXPECT_EQ(store->position().rows_end, jobs * payments_per_job);
    for (std::uint64_t job = 1; job <= jobs + 1; ++job) {
      const bool expected = job <= jobs;
      for (std::uint32_t i = 0; i < payments_per_job; i += 37) {
        EXPECT_EQ(job_is_there(*store, job, i), expected) << "round " << round << " job " << job;
      }
      EXPECT_EQ(job_is_there(*store, job, payments_per_job - 1), expected);
    }
  }
}

}  // namespace
}  // namespace paycore
