#include "engine.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/assert.hpp"
#include "engine_records.hpp"
#include "base/log.hpp"
#include "snapshot_store.hpp"
#include "wal/log.hpp"

namespace paycore {
namespace {

Result refusal(const Command& c, ResultCode code, Field field = Field::none) {
  Result r;
  r.kind = c.kind;
  r.code = code;
  r.field = field;
  return r;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void write_eventfd(int fd) {
  const std::uint64_t one = 1;
  while (::write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

// Rebuilds a state from disk: the newest whole snapshot plus every durable log record after it,
// through the same apply function (docs/design.md "recovery").
bool rebuild_state(const EngineConfig& config, const std::string& snapshots_dir, wal::Log& log,
                   std::unique_ptr<State>* state, std::uint64_t* snapshot_lsn,
                   std::uint64_t* replayed, std::string* error) {
  SnapshotInfo info;
  std::vector<std::string> skipped;
  load_newest_snapshot(snapshots_dir, config.state, state, &info, &skipped);
  for (const std::string& why : skipped) {
    log_line(LogLevel::warn, "snapshot damaged, using the one before it", {{"reason", why}});
  }
  *snapshot_lsn = info.lsn;
  *replayed = 0;
  if (log.next_lsn() <= info.lsn) {
    *error = "the log ends at LSN " + std::to_string(log.next_lsn() - 1) + ", before the snapshot's LSN " +
             std::to_string(info.lsn) + ": log records are missing";
    return false;
  }
  if (log.next_lsn() == info.lsn + 1) return true;  // nothing after the snapshot
  std::string replay_error;
  State& s = **state;
  const wal::Status status = log.replay(
      info.lsn + 1, [&](std::uint64_t lsn, std::uint16_t type, std::span<const std::byte> payload) {
        if (!replay_error.empty()) return;
        Command c;
        const CommandDecodeError e = type == record_type_command ? decode_command(payload, &c) : CommandDecodeError::unknown_kind;
        if (e != CommandDecodeError::ok) {
          replay_error = "log record at LSN " + std::to_string(lsn) + ": " + std::string(to_string(e));
          return;
        }
        if (c.timestamp_us < s.last_timestamp_us) {
          replay_error = "log record at LSN " + std::to_string(lsn) + ": timestamp goes backwards";
          return;
        }
        if (!apply(s, c).mutated) {
          replay_error = "log record at LSN " + std::to_string(lsn) +
                         " changed nothing on replay: the log and this build disagree";
          return;
        }
        ++*replayed;
      });
  if (!status.is_ok()) {
    *error = status.code() == wal::StatusCode::kNotFound
                 ? "the log has no records after the snapshot at LSN " + std::to_string(info.lsn) +
                       " (segments missing): " + status.to_string()
                 : status.to_string();
    return false;
  }
  if (!replay_error.empty()) {
    *error = replay_error;
    return false;
  }
  return true;
}

}  // namespace

// ---- The core thread's part ------------------------------------------------------------------

struct Engine::Core {
  struct Pending {
    Response response;
    std::uint32_t producer = 0;
  };

  Engine& e;
  std::unique_ptr<wal::Log> log;
  std::vector<Request> taken;
  std::vector<Pending> pending;  // circular: head, count
  std::size_t pending_head = 0;
  std::size_t pending_count = 0;
  std::vector<std::uint32_t> outstanding;  // per producer: taken but not yet handed back
  std::vector<bool> notify;                // per producer: results pushed this turn
  std::uint32_t next_producer = 0;
  std::int64_t last_timestamp_us = 0;
  std::int64_t next_tick_us = 0;
  std::int64_t no_space_until_us = 0;      // ENOSPC seen: mutations refused until space returns
  bool no_space = false;
  std::uint64_t snapshot_lsn = 0;          // newest snapshot on disk
  std::uint64_t records_since_snapshot = 0;
  std::int64_t last_snapshot_us = 0;
  bool snapshot_requested = false;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> snapshot_waiters;  // producer, token
  std::vector<std::pair<std::uint32_t, std::uint64_t>> snapshot_in_flight;
  pid_t child = -1;
  bool unpublished = false;  // the child's image is written, waiting for the log to be durable
  int child_fd = -1;
  std::uint64_t child_lsn = 0;
  std::string child_temp, child_final;
  std::vector<std::byte> snapshot_buffer = std::vector<std::byte>(1 << 20);
  std::byte encoded[command_encoded_bytes_max];
  int epoll_fd = -1;
  std::uint64_t durable_seen = 0;
  // The newest log record whose change the state holds: what a command that changed nothing
  // observed, and so what must be durable before its answer leaves (docs/design.md rule 4).
  std::uint64_t state_lsn = 0;

  explicit Core(Engine& engine) : e(engine) {}
  ~Core() {
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (child_fd >= 0) ::close(child_fd);
  }

  State& state() { return *e.state_; }
  std::int64_t now_us() const { return e.config_.clock_us ? e.config_.clock_us() : wall_clock_us(); }
  std::int64_t next_timestamp(std::int64_t now) {
    last_timestamp_us = std::max(now, last_timestamp_us + 1);
    return last_timestamp_us;
  }

  // ---- Taking and applying commands

  bool take_commands(std::int64_t now) {
    const std::uint32_t producers = e.config_.producers;
    std::uint32_t budget = e.config_.batch_max;
    bool worked = false;
    for (std::uint32_t i = 0; i < producers && budget > 0; ++i) {
      const std::uint32_t p = (next_producer + i) % producers;
      // Never take more than the ring back can hold: results always have a place to go.
      const std::uint32_t room = e.config_.ring_capacity - outstanding[p];
      const std::size_t n = e.in_[p]->pop(std::span(taken.data(), std::min(budget, room)));
      for (std::size_t k = 0; k < n; ++k) {
        if (k + prefetch_slots_distance < n) paycore::prefetch(state(), taken[k + prefetch_slots_distance].command);
        if (k + prefetch_rows_distance < n) prefetch_rows(state(), taken[k + prefetch_rows_distance].command);
        handle(p, taken[k], now);
      }
      budget -= static_cast<std::uint32_t>(n);
      worked |= n > 0;
    }
    next_producer = (next_producer + 1) % producers;
    return worked;
  }

  bool writes_refused(std::int64_t now) {
    if (e.metrics_.read_only.load(std::memory_order_relaxed)) return true;
    if (!no_space) return false;
    if (now < no_space_until_us) return true;
    // Space may have come back: look again (at most every 100 ms).
    struct statvfs fs {};
    if (::statvfs(e.wal_dir().c_str(), &fs) == 0 &&
        static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize > 2 * e.config_.wal_segment_bytes) {
      no_space = false;
      log_line(LogLevel::info, "disk space is back: accepting writes again");
      e.metrics_.ready.store(true, std::memory_order_relaxed);
      return false;
    }
    no_space_until_us = now + 100'000;
    return true;
  }

  void handle(std::uint32_t p, const Request& request, std::int64_t now) {
    ++outstanding[p];
    if (request.op == RequestOp::snapshot) {
      snapshot_waiters.emplace_back(p, request.token);
      snapshot_requested = true;
      return;
    }
    Command c = request.command;
    c.timestamp_us = next_timestamp(now);
    Result r;
    if (!command_is_read(c.kind) && writes_refused(now)) {
      r = refusal(c, ResultCode::unavailable);
    } else if (const Admission a = admit(state(), e.config_.limits, c); a.code != ResultCode::ok) {
      r = refusal(c, a.code, a.field);
    } else {
      r = apply(state(), c);
      e.metrics_.commands_applied.fetch_add(1, std::memory_order_relaxed);
    }
    std::uint64_t release_lsn = state_lsn;
    if (r.mutated && !append(c, &release_lsn)) {
      r = refusal(c, ResultCode::unavailable);
      release_lsn = log->durable_lsn();
    }
    enqueue(p, request.token, r, release_lsn);
  }

  void enqueue(std::uint32_t p, std::uint64_t token, const Result& r, std::uint64_t lsn) {
    PAYCORE_ASSERT(pending_count < pending.size());
    Pending& slot = pending[(pending_head + pending_count) % pending.size()];
    slot.producer = p;
    slot.response = Response{};
    slot.response.result = r;
    slot.response.token = token;
    slot.response.lsn = lsn;
    ++pending_count;
  }

  // Appends a command that changed the state. On a storage fault the state is rebuilt from
  // what is durable (so that nothing the log lacks stays visible) and false is returned.
  bool append(const Command& c, std::uint64_t* lsn) {
    const std::size_t size = encode_command(c, encoded);
    const std::span<const std::byte> payload(encoded, size);
    wal::Status s = log->append(record_type_command, payload, lsn);
    if (s.code() == wal::StatusCode::kFull) {
      s = log->submit();
      if (s.is_ok()) s = log->append(record_type_command, payload, lsn);
    }
    if (s.is_ok()) {
      state_lsn = *lsn;
      ++records_since_snapshot;
      e.metrics_.commands_logged.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    on_storage_fault(s);
    return false;
  }

  // ---- Storage faults (docs/design.md rule 7)

  void on_storage_fault(const wal::Status& status) {
    const bool full = status.code() == wal::StatusCode::kNoSpace && !log->read_only();
    log_line(LogLevel::error, full ? "disk full: refusing writes until space returns"
                                   : "storage fault: the log is read-only until restart",
             {{"status", status.to_string()}});
    if (full) {
      // Nothing was written for this record; what was appended before it is made durable.
      if (log->batch_pending_bytes() > 0) (void)log->submit();
      log->wait();
      no_space = true;
      no_space_until_us = now_us() + 100'000;
      e.metrics_.ready.store(false, std::memory_order_relaxed);
    } else {
      e.metrics_.read_only.store(true, std::memory_order_relaxed);
      e.metrics_.ready.store(false, std::memory_order_relaxed);
    }
    reload_from_disk();
  }

  // The in-memory state holds changes the log may not have: rebuild it from what is durable,
  // and answer `unavailable` to every request whose answer depended on the rest.
  void reload_from_disk() {
    const std::uint64_t durable = log->read_only() ? log->durable_lsn() : log->wait();
    std::uint64_t base = 0, replayed = 0;
    std::string error;
    std::unique_ptr<State> fresh;
    const bool rebuilt = rebuild_state(e.config_, e.snapshots_dir(), *log, &fresh, &base, &replayed, &error);
    PAYCORE_ASSERT(rebuilt);  // what recovery read at start-up is still on disk
    e.state_ = std::move(fresh);
    state_lsn = durable;
    for (std::size_t i = 0; i < pending_count; ++i) {
      Response& r = pending[(pending_head + i) % pending.size()].response;
      if (r.lsn > durable) {
        Command c;
        c.kind = r.result.kind;
        r.result = refusal(c, ResultCode::unavailable);
        r.lsn = durable;
      }
    }
    log_line(LogLevel::info, "state rebuilt from disk after a storage fault",
             {{"durable_lsn", std::to_string(durable)}, {"replayed", std::to_string(replayed)}});
  }

  // ---- Ticks, durability, release

  bool maybe_tick(std::int64_t now) {
    if (now < next_tick_us) return false;
    next_tick_us = now + e.config_.tick_interval_us;
    if (writes_refused(now)) return false;
    Command c;
    c.kind = CommandKind::tick;
    c.pending_lifetime_us = e.config_.pending_lifetime_us;
    c.expire_max = e.config_.tick_expire_max;
    c.timestamp_us = next_timestamp(now);
    const Result r = apply(state(), c);
    std::uint64_t lsn = 0;
    if (r.mutated) append(c, &lsn);
    return r.expired_count > 0;
  }

  void submit_if_idle() {
    if (log->read_only() || log->batch_in_flight() || log->batch_pending_bytes() == 0) return;
    const wal::Status s = log->submit();
    if (!s.is_ok()) on_storage_fault(s);
  }

  void reap() {
    const std::uint64_t durable = log->poll();
    if (log->read_only() && !e.metrics_.read_only.load(std::memory_order_relaxed)) {
      on_storage_fault(log->failure());
    }
    if (durable != durable_seen) {
      durable_seen = durable;
      e.metrics_.durable_lsn.store(durable, std::memory_order_relaxed);
      publish_wal_stats();
    }
  }

  bool release() {
    const std::uint64_t durable = log->durable_lsn();
    bool any = false;
    while (pending_count > 0) {
      Pending& front = pending[pending_head];
      if (front.response.lsn > durable) break;
      const bool pushed = e.out_[front.producer]->try_push(front.response);
      PAYCORE_ASSERT(pushed);  // outstanding[] never exceeds the ring's capacity
      --outstanding[front.producer];
      notify[front.producer] = true;
      pending_head = (pending_head + 1) % pending.size();
      --pending_count;
      any = true;
    }
    signal_producers();
    return any;
  }

  void signal_producers() {
    for (std::uint32_t p = 0; p < notify.size(); ++p) {
      if (!notify[p]) continue;
      notify[p] = false;
      write_eventfd(e.result_fds_[p]);
    }
  }

  // ---- Snapshots: a forked child writes the image while the core goes on

  bool snapshot_due(std::int64_t now) const {
    if (snapshot_requested) return true;
    if (records_since_snapshot == 0) return false;
    const EngineConfig& k = e.config_;
    return (k.snapshot_every_records != 0 && records_since_snapshot >= k.snapshot_every_records) ||
           (k.snapshot_every_us != 0 && now - last_snapshot_us >= k.snapshot_every_us);
  }

  // The child writes the image of the state at state_lsn at once, even if the last records are
  // still being written: the core does not wait for an fsync, so its pause is the fork alone.
  // The file gets its final name only once the log is durable past its LSN (publish below), so
  // a snapshot on disk never holds a change the log might lose.
  void maybe_snapshot(std::int64_t now) {
    if (child >= 0 || unpublished || !snapshot_due(now)) return;
    if (log->read_only()) {
      answer_snapshot_waiters(snapshot_waiters, false, 0);
      snapshot_requested = false;
      return;
    }
    const std::uint64_t lsn = state_lsn;
    snapshot_in_flight = std::move(snapshot_waiters);
    snapshot_waiters.clear();
    snapshot_requested = false;
    records_since_snapshot = 0;
    last_snapshot_us = now;
    if (lsn == snapshot_lsn && lsn != 0) {  // nothing new since the last one
      answer_snapshot_waiters(snapshot_in_flight, true, lsn);
      return;
    }
    child_lsn = lsn;
    child_final = snapshot_path(e.snapshots_dir(), lsn);
    child_temp = child_final + ".tmp";
    const std::int64_t started_us = now_us();
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int rc = write_snapshot_temp(child_temp.c_str(), state(), lsn, wall_clock_us(), snapshot_buffer);
      ::_exit(rc == 0 ? 0 : 1);
    }
    const auto pause_us = static_cast<std::uint64_t>(now_us() - started_us);
    if (pause_us > e.metrics_.snapshot_pause_us_max.load(std::memory_order_relaxed)) {
      e.metrics_.snapshot_pause_us_max.store(pause_us, std::memory_order_relaxed);
    }
    if (pid < 0) {
      log_line(LogLevel::error, "snapshot: fork failed", {{"error", std::strerror(errno)}});
      answer_snapshot_waiters(snapshot_in_flight, false, 0);
      return;
    }
    child = pid;
    child_fd = pidfd_open(pid);
    if (child_fd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = child_fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, child_fd, &ev);
    }
  }

  void reap_snapshot_child(bool block) {
    if (child < 0) return;
    int status = 0;
    const pid_t done = ::waitpid(child, &status, block ? 0 : WNOHANG);
    if (done != child) return;
    child = -1;
    if (child_fd >= 0) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, child_fd, nullptr);
      ::close(child_fd);
      child_fd = -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      unpublished = true;
      publish_if_durable();
      return;
    }
    log_line(LogLevel::error, "snapshot: the writer failed", {{"path", child_temp}});
    answer_snapshot_waiters(snapshot_in_flight, false, child_lsn);
  }

  void publish_if_durable() {
    if (!unpublished) return;
    if (log->durable_lsn() < child_lsn) {
      if (!log->read_only()) return;  // not yet
      ::unlink(child_temp.c_str());  // never will be: the log failed before reaching it
      unpublished = false;
      answer_snapshot_waiters(snapshot_in_flight, false, child_lsn);
      return;
    }
    unpublished = false;
    const int rc = publish_snapshot(e.snapshots_dir().c_str(), child_temp.c_str(), child_final.c_str());
    if (rc == 0) on_snapshot_written(child_lsn);
    else log_line(LogLevel::error, "snapshot: publishing failed", {{"path", child_final}, {"error", std::strerror(rc)}});
    answer_snapshot_waiters(snapshot_in_flight, rc == 0, child_lsn);
  }

  void on_snapshot_written(std::uint64_t lsn) {
    snapshot_lsn = lsn;
    e.metrics_.snapshot_lsn.store(lsn, std::memory_order_relaxed);
    e.metrics_.snapshot_at_us.store(wall_clock_us(), std::memory_order_relaxed);
    e.metrics_.snapshots_written.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t oldest = retain_snapshots(e.snapshots_dir(), e.config_.snapshots_keep);
    if (oldest > 0) {
      const wal::Status s = log->remove_segments_below(oldest + 1);
      if (!s.is_ok()) log_line(LogLevel::warn, "could not remove old log segments", {{"status", s.to_string()}});
    }
    log_line(LogLevel::info, "snapshot written",
             {{"path", snapshot_path(e.snapshots_dir(), lsn)}, {"lsn", std::to_string(lsn)}});
  }

  void answer_snapshot_waiters(std::vector<std::pair<std::uint32_t, std::uint64_t>>& waiters, bool ok,
                               std::uint64_t lsn) {
    for (const auto& [p, token] : waiters) {
      Response r;
      r.op = RequestOp::snapshot;
      r.token = token;
      r.lsn = lsn;
      r.snapshot_ok = ok;
      r.snapshot_lsn = lsn;
      r.snapshot_accounts = state().accounts.size();
      r.snapshot_payments = state().payments.size();
      r.result.code = ok ? ResultCode::ok : ResultCode::unavailable;
      const bool pushed = e.out_[p]->try_push(r);
      PAYCORE_ASSERT(pushed);
      --outstanding[p];
      notify[p] = true;
    }
    waiters.clear();
    signal_producers();
  }

  // ---- The loop

  bool turn() {
    const std::int64_t now = now_us();
    reap();
    bool worked = take_commands(now);
    worked |= maybe_tick(now);
    maybe_snapshot(now);
    reap_snapshot_child(false);
    publish_if_durable();
    submit_if_idle();
    reap();
    worked |= release();
    publish_counts();
    e.metrics_.turns.fetch_add(1, std::memory_order_relaxed);
    return worked;
  }

  bool has_input() const {
    for (const auto& ring : e.in_) {
      if (!ring->empty()) return true;
    }
    return false;
  }

  void sleep_until_work() {
    e.core_sleeping_.store(true, std::memory_order_seq_cst);
    if (has_input() || e.stop_requested_.load()) {
      e.core_sleeping_.store(false, std::memory_order_relaxed);
      return;
    }
    const std::int64_t until_tick_ms = std::max<std::int64_t>(0, (next_tick_us - now_us()) / 1000) + 1;
    epoll_event events[4];
    ::epoll_wait(epoll_fd, events, 4, static_cast<int>(std::min<std::int64_t>(until_tick_ms, 1000)));
    e.core_sleeping_.store(false, std::memory_order_relaxed);
    drain_eventfd_nonblocking(e.wake_fd_);
  }

  static void drain_eventfd_nonblocking(int fd) {
    std::uint64_t value = 0;
    (void)::read(fd, &value, sizeof(value));  // the fd is non-blocking
  }

  void run() {
    std::uint32_t idle = 0;
    while (!e.stop_requested_.load(std::memory_order_acquire)) {
      if (turn()) {
        idle = 0;
      } else if (++idle >= e.config_.idle_spins) {
        sleep_until_work();
        idle = 0;
      }
    }
    shutdown();
  }

  // Takes what the producers already handed in, makes it durable, answers everything, and
  // writes a final snapshot.
  void shutdown() {
    while (has_input() || pending_count > 0 || log->batch_in_flight() || log->batch_pending_bytes() > 0) {
      turn();
      if (log->batch_in_flight()) log->wait();
      if (log->read_only()) {
        release();
        break;
      }
    }
    reap_snapshot_child(true);
    publish_if_durable();
    if (e.config_.snapshot_at_shutdown && !log->read_only() && log->durable_lsn() != snapshot_lsn) {
      const std::uint64_t lsn = log->durable_lsn();
      const std::string final_path = snapshot_path(e.snapshots_dir(), lsn);
      const std::string temp_path = final_path + ".tmp";
      const int rc = write_snapshot_atomically(e.snapshots_dir().c_str(), temp_path.c_str(), final_path.c_str(),
                                               state(), lsn, wall_clock_us(), snapshot_buffer);
      if (rc == 0) on_snapshot_written(lsn);
      else log_line(LogLevel::error, "final snapshot failed", {{"error", std::strerror(rc)}});
    }
    answer_snapshot_waiters(snapshot_waiters, false, 0);
  }

  void publish_counts() {
    e.metrics_.accounts.store(state().accounts.size(), std::memory_order_relaxed);
    e.metrics_.payments.store(state().payments.size(), std::memory_order_relaxed);
    e.metrics_.awaiting_release.store(pending_count, std::memory_order_relaxed);
    std::uint64_t depth = 0;
    for (const auto& ring : e.in_) depth += ring->size();
    e.metrics_.queue_depth.store(depth, std::memory_order_relaxed);
  }

  void publish_wal_stats() {
    const wal::Stats s = log->stats();
    e.metrics_.wal_batches.store(s.batches_count, std::memory_order_relaxed);
    e.metrics_.wal_fsyncs.store(s.fsyncs_count, std::memory_order_relaxed);
    e.metrics_.wal_bytes.store(s.write_bytes, std::memory_order_relaxed);
    for (std::size_t i = 0; i < EngineMetrics::histogram_buckets && i < wal::kHistogramBuckets; ++i) {
      e.metrics_.fsync_latency_us_log2[i].store(s.sync_latency_us_log2[i], std::memory_order_relaxed);
      e.metrics_.batch_records_log2[i].store(s.batch_records_log2[i], std::memory_order_relaxed);
    }
  }
};

// ---- Engine ------------------------------------------------------------------------------------

Engine::Engine(const EngineConfig& config) : config_(config) {}

std::string Engine::snapshots_dir() const { return config_.data_dir + "/snapshots"; }
std::string Engine::wal_dir() const { return config_.data_dir + "/wal"; }

bool Engine::open(const EngineConfig& config, std::unique_ptr<Engine>* out, std::string* error) {
  PAYCORE_ASSERT(config.producers >= 1 && config.batch_max >= 1);
  if (config.ring_capacity < 2 || (config.ring_capacity & (config.ring_capacity - 1)) != 0) {
    *error = "ring capacity must be a power of two";
    return false;
  }
  std::unique_ptr<Engine> engine(new Engine(config));
  if (!make_directories(engine->wal_dir(), error) || !make_directories(engine->snapshots_dir(), error)) {
    return false;
  }
  auto core = std::make_unique<Core>(*engine);
  wal::Options options;
  options.dir = engine->wal_dir();
  options.segment_bytes = config.wal_segment_bytes;
  options.batch_bytes_max = config.wal_batch_bytes_max;
  options.force_fallback = config.wal_force_fallback;
  options.faults = config.wal_faults;
  // After a snapshot at LSN s whose log segments were all removed, the log continues at s + 1.
  const std::vector<SnapshotFile> snapshots = list_snapshots(engine->snapshots_dir());
  options.first_lsn_if_empty = snapshots.empty() ? 1 : snapshots.back().lsn + 1;
  wal::RecoveryReport report;
  const std::int64_t started_us = wall_clock_us();
  if (const wal::Status s = wal::Log::open(options, &core->log, &report); !s.is_ok()) {
    *error = "cannot open the log in " + options.dir + ": " + s.to_string();
    return false;
  }
  if (report.torn_tail_truncated) {
    log_line(LogLevel::warn, "torn write at the end of the log truncated",
             {{"file", report.torn_file}, {"offset", std::to_string(report.torn_offset)},
              {"reason", report.torn_reason}});
  }
  std::uint64_t base = 0, replayed = 0;
  if (!rebuild_state(config, engine->snapshots_dir(), *core->log, &engine->state_, &base, &replayed, error)) {
    return false;
  }
  core->snapshot_lsn = base;
  core->state_lsn = core->log->next_lsn() - 1;
  core->last_timestamp_us = engine->state_->last_timestamp_us;
  core->last_snapshot_us = wall_clock_us();
  log_line(LogLevel::info, "recovered",
           {{"snapshot_lsn", std::to_string(base)}, {"replayed_records", std::to_string(replayed)},
            {"accounts", std::to_string(engine->state_->accounts.size())},
            {"payments", std::to_string(engine->state_->payments.size())},
            {"ms", std::to_string((wall_clock_us() - started_us) / 1000)},
            {"write_path", core->log->using_io_uring() ? "io_uring" : "pwrite+fdatasync thread"}});

  for (std::uint32_t p = 0; p < config.producers; ++p) {
    engine->in_.push_back(std::make_unique<SpscRing<Request>>(config.ring_capacity));
    engine->out_.push_back(std::make_unique<SpscRing<Response>>(config.ring_capacity));
    engine->result_fds_.push_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  }
  engine->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  core->taken.resize(config.batch_max);
  core->pending.resize(std::size_t{config.producers} * config.ring_capacity);
  core->outstanding.assign(config.producers, 0);
  core->notify.assign(config.producers, false);
  core->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {engine->wake_fd_, core->log->completion_fd()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    PAYCORE_ASSERT(::epoll_ctl(core->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0);
  }
  engine->metrics_.snapshot_lsn.store(base, std::memory_order_relaxed);
  engine->metrics_.durable_lsn.store(core->log->durable_lsn(), std::memory_order_relaxed);
  engine->core_ = std::move(core);
  if (!engine->register_channels(error)) return false;
  engine->metrics_.ready.store(true, std::memory_order_relaxed);
  *out = std::move(engine);
  return true;
}

// Channels named in the configuration become part of the state (and the log) before serving.
bool Engine::register_channels(std::string* error) {
  Core& core = *core_;
  for (const std::string& name : config_.channels) {
    Command c;
    c.kind = CommandKind::add_channel;
    if (!Id::from(name, &c.channel) || name == channel_name_balance) {
      *error = "invalid channel name \"" + name + "\"";
      return false;
    }
    if (state_->find_channel(name) != row_none) continue;
    c.timestamp_us = core.next_timestamp(core.now_us());
    const Result r = apply(*state_, c);
    std::uint64_t lsn = 0;
    if (r.code != ResultCode::ok || (r.mutated && !core.append(c, &lsn))) {
      *error = "cannot register channel \"" + name + "\": " + std::string(to_string(r.code));
      return false;
    }
  }
  if (core.log->batch_pending_bytes() > 0) {
    if (const wal::Status s = core.log->submit(); !s.is_ok()) {
      *error = "cannot write the log: " + s.to_string();
      return false;
    }
  }
  core.log->wait();
  if (core.log->read_only()) {
    *error = "cannot write the log: " + core.log->failure().to_string();
    return false;
  }
  return true;
}

Engine::~Engine() {
  stop();
  for (int fd : result_fds_) ::close(fd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Engine::start() {
  PAYCORE_ASSERT(!thread_.joinable() && !driven_);
  thread_ = std::thread([this] { core_->run(); });
}

void Engine::stop() {
  if (stopped_) return;
  if (driven_) {
    stopped_ = true;
    core_->shutdown();
    return;
  }
  if (!thread_.joinable()) return;
  stopped_ = true;
  stop_requested_.store(true, std::memory_order_release);
  write_eventfd(wake_fd_);
  thread_.join();
}

bool Engine::turn() {
  PAYCORE_ASSERT(!thread_.joinable() && !stopped_);
  driven_ = true;
  return core_->turn();
}

int Engine::poll_fd() const { return core_->epoll_fd; }

int Engine::timeout_ms() const {
  const std::int64_t until_tick_us = core_->next_tick_us - core_->now_us();
  return static_cast<int>(std::clamp<std::int64_t>(until_tick_us / 1000 + 1, 0, 1000));
}

bool Engine::submit(std::uint32_t producer, const Request& request) {
  PAYCORE_DEBUG_ASSERT(producer < in_.size());
  if (!in_[producer]->try_push(request)) {
    metrics_.busy_refusals.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Wake the core only if it sleeps: no system call per request on a busy engine.
  if (core_sleeping_.load(std::memory_order_seq_cst)) write_eventfd(wake_fd_);
  return true;
}

std::size_t Engine::take(std::uint32_t producer, std::span<Response> out) {
  PAYCORE_DEBUG_ASSERT(producer < out_.size());
  return out_[producer]->pop(out);
}

int Engine::result_fd(std::uint32_t producer) const { return result_fds_[producer]; }

}  // namespace paycore
