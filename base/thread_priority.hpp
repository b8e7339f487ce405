#pragma once
// The CPU priority of the calling thread alone (Linux): background work that may fall behind
// under a full load (event derivation, webhook delivery, archiving) gives way to the threads
// that answer payments.

#include <sys/resource.h>
#include <unistd.h>

namespace paycore {

/// The highest nice value (the lowest priority) Linux has.
inline constexpr int thread_nice_max = 19;

/// Sets the calling thread's nice value to `nice` (0..thread_nice_max; 0 leaves it as it is).
/// Linux: setpriority(PRIO_PROCESS, <thread id>) sets one thread's value (setpriority(2),
/// "BUGS": threads do not share a nice value). Raising one's own value needs no privilege;
/// should it fail anyway, the thread only competes harder. Returns whether it was set.
inline bool lower_this_thread_priority(int nice) {
  if (nice <= 0 || nice > thread_nice_max) return false;
  return ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) == 0;
}

}  // namespace paycore
