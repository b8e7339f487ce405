// base/thread_priority.hpp: each priority is set on the calling thread alone.
#include "base/thread_priority.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace paycore {
namespace {

struct Seen {
  int policy = -1;
  int nice = -100;
  bool set = false;
};

Seen this_thread() {
  return {::sched_getscheduler(0), ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), false};
}

// Sets `priority` on a new thread and reads back what the kernel holds for it.
Seen set_on_a_thread(ThreadPriority priority) {
  Seen seen;
  std::thread([&] {
    const bool set = set_this_thread_priority(priority);
    seen = this_thread();
    seen.set = set;
  }).join();
  return seen;
}

// The test's own thread is the reference (ctest may run under nice or chrt): a new thread
// starts with its values, and only the one that asked changes.
TEST(ThreadPriority, IdleIsSchedIdleForThatThreadOnly) {
  const Seen before = this_thread();
  const Seen seen = set_on_a_thread(ThreadPriority::idle);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.policy, SCHED_IDLE);
  EXPECT_EQ(this_thread().policy, before.policy);
}

TEST(ThreadPriority, LowIsTheHighestNiceValue) {
  const Seen before = this_thread();
  if (before.nice == thread_low_priority_nice) GTEST_SKIP() << "the test already runs at nice 19";
  const Seen seen = set_on_a_thread(ThreadPriority::low);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.nice, thread_low_priority_nice);
  EXPECT_EQ(this_thread().nice, before.nice);
}

TEST(ThreadPriority, NormalChangesNothing) {
  const Seen before = this_thread();
  const Seen seen = set_on_a_thread(ThreadPriority::normal);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.policy, before.policy);
  EXPECT_EQ(seen.nice, before.nice);
}

TEST(ThreadPriority, ParsesItsThreeNamesOnly) {
  EXPECT_EQ(parse_thread_priority("normal"), ThreadPriority::normal);
  EXPECT_EQ(parse_thread_priority("low"), ThreadPriority::low);
  EXPECT_EQ(parse_thread_priority("idle"), ThreadPriority::idle);
  EXPECT_FALSE(parse_thread_priority("Idle").has_value());
  EXPECT_FALSE(parse_thread_priority("").has_value());
  EXPECT_FALSE(parse_thread_priority("19").has_value());
}

}  // namespace
}  // namespace paycore
