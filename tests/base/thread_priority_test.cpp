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

// Sets `priority` on a new thread and reads back what the kernel holds for it.
Seen set_on_a_thread(ThreadPriority priority) {
  Seen seen;
  std::thread([&] {
    seen.set = set_this_thread_priority(priority);
    seen.policy = ::sched_getscheduler(0);
    seen.nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  }).join();
  return seen;
}

TEST(ThreadPriority, IdleIsSchedIdleForThatThreadOnly) {
  const Seen seen = set_on_a_thread(ThreadPriority::idle);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.policy, SCHED_IDLE);
  EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);  // the test's own thread is untouched
}

TEST(ThreadPriority, LowIsTheHighestNiceValue) {
  const Seen seen = set_on_a_thread(ThreadPriority::low);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.policy, SCHED_OTHER);
  EXPECT_EQ(seen.nice, thread_low_priority_nice);
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), 0);
}

TEST(ThreadPriority, NormalChangesNothing) {
  const Seen seen = set_on_a_thread(ThreadPriority::normal);
  EXPECT_TRUE(seen.set);
  EXPECT_EQ(seen.policy, SCHED_OTHER);
  EXPECT_EQ(seen.nice, 0);
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
