#pragma once
// The CPU priority of the calling thread alone (Linux): background work that may fall behind
// under a full load (event derivation, webhook delivery, archiving) gives way to the threads
// that answer payments.

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <optional>
#include <string_view>

namespace paycore {

/// The nice value of ThreadPriority::low: the highest Linux has (RocksDB's CpuPriority::kLow).
inline constexpr int thread_low_priority_nice = 19;

enum class ThreadPriority {
  normal,  // as created
  low,     // nice thread_low_priority_nice: a small share of a CPU others want
  idle,    // SCHED_IDLE (sched(7)): the smallest share the scheduler has (a weight of 3
           // against 1024 for a normal thread at nice 0), so it runs mostly on CPU time
           // nothing else wants; never starved outright. A lock it holds (the kernel's too) can
           // keep a normal thread waiting that long: in paycore, p99 118 ms against 9 ms for
           // payments at a moderate load with the event threads idle (docs/events.md)
};

/// "normal", "low", "idle"; nullopt for anything else.
inline std::optional<ThreadPriority> parse_thread_priority(std::string_view text) {
  if (text == "normal") return ThreadPriority::normal;
  if (text == "low") return ThreadPriority::low;
  if (text == "idle") return ThreadPriority::idle;
  return std::nullopt;
}

/// Sets the calling thread's priority. Linux: setpriority(PRIO_PROCESS, <thread id>) and
/// sched_setscheduler(0) act on one thread (setpriority(2) "BUGS", sched_setscheduler(2)).
/// Lowering one's own priority needs no privilege; should it fail anyway, the thread only
/// competes harder. Returns whether it was set (normal: nothing to do, true).
inline bool set_this_thread_priority(ThreadPriority priority) {
  switch (priority) {
    case ThreadPriority::normal:
      return true;
    case ThreadPriority::low:
      return ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), thread_low_priority_nice) == 0;
    case ThreadPriority::idle: {
      const sched_param param{};
      return ::sched_setscheduler(0, SCHED_IDLE, &param) == 0;
    }
  }
  return false;
}

}  // namespace paycore
