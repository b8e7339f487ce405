#include "engine.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "base/assert.hpp"
#include "base/json_text.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "archive_scheduler.hpp"
#include "command_record.hpp"
#include "engine_records.hpp"
#include "recovery.hpp"
#include "release_queue.hpp"
#include "snapshot_scheduler.hpp"
#include "snapshot_store.hpp"
#include "stall_watch.hpp"
#include "storage_guard.hpp"
#include "wal/frames.hpp"
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

void drain_eventfd_nonblocking(int fd) {
  std::uint64_t value = 0;
  (void)::read(fd, &value, sizeof(value));  // the fd is non-blocking
}

// The core sleeps here: woken by producers (wake_fd), by the log completing a batch, by a
// snapshot child's exit (its pidfd, added by the scheduler), by a finished archive job (the
// sink's ready_fd, added by attach_archive) and by the shared log's acknowledgements (the
// replica's ready_fd, added by attach_replica).
int make_core_epoll(int wake_fd, int log_completion_fd) {
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  PAYCORE_ASSERT_GE(epoll_fd, 0);
  for (int fd : {wake_fd, log_completion_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    const int added = ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    PAYCORE_ASSERT_EQ(added, 0);
  }
  return epoll_fd;
}

// The paired check of docs/style.md rule 4: the record the log will hold decodes to the very
// command that was applied, so that replay applies what the core applied.
[[maybe_unused]] bool decodes_to(std::span<const std::byte> payload, const Command& command,
                                 const CommandOutcome& outcome) {
  Command decoded;
  CommandOutcome decoded_outcome;
  bool has_outcome = false;
  return decode_command_record(record_type_command_outcome, payload, &decoded, &decoded_outcome,
                               &has_outcome) == CommandDecodeError::ok &&
         has_outcome && decoded == command && decoded_outcome == outcome;
}

}  // namespace

std::int64_t EngineConfig::now_us() const {
  return clock_us != nullptr ? clock_us() : wall_clock_us();
}

// ---- The core thread's part ------------------------------------------------------------------

// One turn: take commands from the rings, stamp and apply each, append what changed to the log,
// submit the batch, and release the answers the durable LSN covers. The release queue, the
// snapshot scheduler and the storage guard each own their part of the core's state.
struct Engine::Core {
  Engine& e;
  std::unique_ptr<wal::Log> log;
  const int epoll_fd;
  ReleaseQueue releases;
  SnapshotScheduler snapshots;
  StorageGuard storage;
  ArchiveScheduler archiver;
  StallWatch stalls;
  std::vector<Request> taken;
  std::uint32_t next_producer = 0;
  std::int64_t last_timestamp_us;
  std::int64_t next_tick_us = 0;
  std::byte encoded[command_record_bytes_max];
  std::uint64_t durable_seen = 0;
  std::int64_t durable_seen_ns = 0;  // when the core saw the log reach durable_seen
  // The newest log record whose change the state holds: what a command that changed nothing
  // observed, and so what must be durable before its answer leaves (docs/design.md rule 4).
  std::uint64_t state_lsn;
  ReplicaStatus replica;  // as the core last read it (all zero without replication)
  FollowSource* follow = nullptr;  // a standby: records come from the shared log
  ReplicatedBatch replicated;      // the batch being applied (its buffer reused)
  // A request whose Paycore-Min-Lsn the state had not reached when it was taken (its answer's
  // place in the result ring stays promised while it waits: the rings bound how many wait).
  struct WaitingForLsn {
    std::uint32_t p = 0;
    std::int64_t taken_ns = 0;
    std::int64_t deadline_ns = 0;  // monotonic: refused min_lsn_not_applied from then on
    Request request;
  };
  std::vector<WaitingForLsn> waiting_for_lsn;

  Core(Engine& engine, std::unique_ptr<wal::Log> opened_log, std::uint64_t snapshot_lsn)
      : e(engine),
        log(std::move(opened_log)),
        epoll_fd(make_core_epoll(engine.wake_fd_, log->completion_fd())),
        releases(engine.out_, engine.result_fds_, engine.config_.ring_capacity),
        snapshots(engine.config_, engine.snapshots_dir(), engine.metrics_, releases, engine.state_,
                  *log, epoll_fd, snapshot_lsn),
        storage(engine.config_, engine.wal_dir(), engine.snapshots_dir(), engine.metrics_, releases,
                engine.state_, *log),
        archiver(engine.config_, engine.metrics_, engine.state_),
        stalls(engine.metrics_.stalls),
        taken(engine.config_.batch_max),
        last_timestamp_us(engine.state_->last_timestamp_us),
        state_lsn(log->next_lsn() - 1) {}
  ~Core() { ::close(epoll_fd); }
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  State& state() { return *e.state_; }
  std::int64_t now_us() const { return e.config_.now_us(); }
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
      const std::size_t n =
          e.in_[p]->pop(std::span(taken.data(), std::min(budget, releases.room(p))));
      if (n == 0) continue;
      apply_taken(p, n, now, monotonic_ns());
      releases.stamp_applied(monotonic_ns());
      budget -= static_cast<std::uint32_t>(n);
      worked = true;
    }
    next_producer = (next_producer + 1) % producers;
    return worked;
  }

  // Applies taken[0, n) of producer p, loading the memory of later commands ahead of time.
  void apply_taken(std::uint32_t p, std::size_t n, std::int64_t now, std::int64_t taken_ns) {
    for (std::size_t k = 0; k < n; ++k) {
      if (k + prefetch_slots_distance < n) {
        paycore::prefetch(state(), taken[k + prefetch_slots_distance].command);
      }
      if (k + prefetch_rows_distance < n) {
        prefetch_rows(state(), taken[k + prefetch_rows_distance].command);
      }
      handle(p, taken[k], now, taken_ns);
    }
  }

  void handle(std::uint32_t p, const Request& request, std::int64_t now, std::int64_t taken_ns) {
    releases.note_taken(p);
    if (request.op == RequestOp::snapshot) {
      snapshots.request(p, request.token);
      return;
    }
    handle_command(p, request, now, taken_ns);
  }

  // A taken command (its answer's place promised): refused, held until its min_lsn is applied,
  // or applied.
  void handle_command(std::uint32_t p, const Request& request, std::int64_t now,
                      std::int64_t taken_ns) {
    if (refused_by_replica(p, request, taken_ns)) return;
    if (request.min_lsn > state_lsn) {
      waiting_for_lsn.push_back(
          WaitingForLsn{p, taken_ns, taken_ns + e.config_.min_lsn_wait_us * 1000, request});
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
    if (r.mutated && !append(c, r, &release_lsn)) {
      r = refusal(c, ResultCode::unavailable);  // changed nothing: mutated is false
      release_lsn = log->durable_lsn();
    }
    PipelineStamps stamps;
    stamps.submitted_ns = request.submitted_ns;
    stamps.taken_ns = taken_ns;
    // Still mutated: its record, nonce and all, is in the log at release_lsn.
    releases.enqueue(p, request.token, r, release_lsn, stamps, r.mutated && c.carries_nonce());
  }

  // Fenced, nothing more is answered from a state that may hold changes the shared log
  // refused (`not_primary`, reads too); stalled, writes are refused (`unavailable`). Such a
  // refusal observed nothing and leaves at once, ahead of the answers that wait for the
  // stream (which may be a long wait).
  bool refused_by_replica(std::uint32_t p, const Request& request, std::int64_t taken_ns) {
    const Command& c = request.command;
    ResultCode code = ResultCode::ok;
    if (replica.fenced || (follow != nullptr && !command_is_read(c.kind))) {
      code = ResultCode::not_primary;
    } else if (replica.stalled && !command_is_read(c.kind)) {
      code = ResultCode::unavailable;
    } else {
      return false;
    }
    answer_refusal_now(p, request, code, taken_ns);
    return true;
  }

  // A refusal that observed nothing leaves at once, at the position the process has reached.
  void answer_refusal_now(std::uint32_t p, const Request& request, ResultCode code,
                          std::int64_t taken_ns) {
    Response response;
    response.result = refusal(request.command, code);
    response.token = request.token;
    response.lsn = follow != nullptr                 ? state_lsn
                   : e.config_.replica != nullptr ? replica.acknowledged_lsn
                                                  : log->durable_lsn();
    response.stamps.submitted_ns = request.submitted_ns;
    response.stamps.taken_ns = taken_ns;
    response.stamps.applied_ns = response.stamps.write_submitted_ns = taken_ns;
    response.stamps.durable_ns = response.stamps.released_ns = monotonic_ns();
    releases.answer_now(p, response);
  }

  // Requests held for their min_lsn, in the order taken: each is handled once the state has
  // reached it, or refused once its wait is over. Returns whether any left.
  bool handle_waiting_for_lsn(std::int64_t now) {
    const std::int64_t now_ns = monotonic_ns();
    const std::size_t count = waiting_for_lsn.size();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const WaitingForLsn w = waiting_for_lsn[i];
      if (w.request.min_lsn <= state_lsn) {
        handle_command(w.p, w.request, now, w.taken_ns);  // reached: never held again
      } else if (now_ns >= w.deadline_ns) {
        answer_refusal_now(w.p, w.request, ResultCode::min_lsn_not_applied, w.taken_ns);
      } else {
        waiting_for_lsn[kept++] = w;
      }
    }
    PAYCORE_ASSERT_EQ(waiting_for_lsn.size(), count);
    waiting_for_lsn.resize(kept);
    return kept != count;
  }

  // At shutdown nothing more will be applied: the requests still waiting are refused.
  void refuse_waiting_for_lsn() {
    for (const WaitingForLsn& w : waiting_for_lsn) {
      answer_refusal_now(w.p, w.request, ResultCode::min_lsn_not_applied, w.taken_ns);
    }
    waiting_for_lsn.clear();
  }

  // How long the core may sleep before the first waiting request's wait is over (ms, >= 1).
  std::int64_t until_first_lsn_deadline_ms() const {
    if (waiting_for_lsn.empty()) return 1000;
    return std::max<std::int64_t>(0, (waiting_for_lsn.front().deadline_ns - monotonic_ns()) /
                                         1'000'000) + 1;
  }

  // Appends a command that changed the state, with its outcome `r` (core/command_record.hpp).
  // On a storage fault the state is rebuilt from what is durable (so that nothing the log lacks
  // stays visible) and false is returned.
  bool append(const Command& c, const Result& r, std::uint64_t* lsn) {
    const std::size_t size = encode_command_record(c, r, encoded);
    const std::span<const std::byte> payload(encoded, size);
#if defined(PAYCORE_INVARIANTS)
    const bool round_trips = decodes_to(payload, c, outcome_of(r));
    PAYCORE_ASSERT(round_trips);
#endif
    return append_payload(payload, lsn);
  }

  // append() of a command record already encoded (a standby's record from the shared log: its
  // type as the primary wrote it).
  bool append_payload(std::span<const std::byte> payload, std::uint64_t* lsn,
                      std::uint16_t record_type = record_type_command_outcome) {
    Status s = log->append(record_type, payload, lsn);
    if (s.code() == StatusCode::kFull) {
      // submit() first waits for the batch in flight: the turn's time goes to the log.
      stalls.lap(StallCause::long_batch);
      s = submit_batch();
      stalls.lap(StallCause::log_submit);
      if (s.is_ok()) s = log->append(record_type, payload, lsn);
    }
    if (!s.is_ok()) {
      on_storage_fault(s);
      return false;
    }
    state_lsn = *lsn;
    snapshots.note_logged_record();
    e.metrics_.commands_logged.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void on_storage_fault(const Status& status) { state_lsn = storage.on_fault(status, now_us()); }

  // A storage fault or full disk, a fenced primary, or a shared log that does not acknowledge.
  bool writes_refused(std::int64_t now) {
    return storage.writes_refused(now) || replica.fenced || replica.stalled || follow != nullptr;
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
    c.idempotency_retention_us = e.config_.idempotency_retention_us;
    c.timestamp_us = next_timestamp(now);
    const Result r = apply(state(), c);
    std::uint64_t lsn = 0;
    if (r.mutated) append(c, r, &lsn);
    // A tick does at most expire_max of each kind of work, so that no tick pauses the core for
    // long; when that left work due, the next one comes within a millisecond rather than a
    // whole interval (at 50k payments/s, 4,096 idempotency drops per 100 ms tick were the
    // bound on how fast payments could leave memory).
    if (r.work_left) {
      next_tick_us = std::min(next_tick_us, now + tick_backlog_interval_us);
    }
    return r.expired_count > 0;
  }

  // Hot and cold: a finished archive job becomes the logged command that evicts what it
  // holds; then the next job is copied (docs/design.md "Hot and cold").
  bool maybe_archive(std::int64_t now) {
    if (writes_refused(now)) return false;
    Command c;
    bool worked = false;
    if (archiver.take_done(now, &c)) {
      c.timestamp_us = next_timestamp(now);
      // Refused only if the state was rebuilt from disk since the job was copied (a storage
      // fault): then the rows it names may not exist any more, and the next job starts over.
      const Result r = apply(state(), c);
      std::uint64_t lsn = 0;
      if (r.mutated) append(c, r, &lsn);
      e.metrics_.payments_archived.fetch_add(r.archived_count, std::memory_order_relaxed);
      worked = true;
    }
    archiver.maybe_submit(now, state_lsn);
    return worked;
  }

  // Hands the batch being filled to the disk; the answers that wait for it are stamped. They
  // are all applied by now (a full batch is submitted in the middle of a chunk), and submit()
  // may first wait for the batch in flight: applied is stamped before that wait.
  Status submit_batch() {
    releases.stamp_applied(monotonic_ns());
    const Status s = log->submit();
    if (s.is_ok()) releases.stamp_write_submitted(monotonic_ns(), log->durable_lsn());
    return s;
  }

  // A batch goes to the disk as soon as a flush slot is free: with several flushes in flight,
  // an answer waits for the one flush that covers it, not first for the one already running.
  void submit_if_slot_free() {
    if (log->read_only() || !log->sync_slot_free() || log->batch_pending_bytes() == 0) return;
    const Status s = submit_batch();
    if (!s.is_ok()) on_storage_fault(s);
  }

  void reap() {
    const std::uint64_t durable = log->poll();
    if (log->read_only() && !e.metrics_.read_only.load(std::memory_order_relaxed)) {
      on_storage_fault(log->failure());
    }
    if (durable != durable_seen) {
      durable_seen = durable;
      durable_seen_ns = monotonic_ns();
      e.metrics_.durable_lsn.store(durable, std::memory_order_relaxed);
      publish_wal_stats();
    }
  }

  // Reads what the shared log has acknowledged. The first time it says another process
  // writes it, every answer beyond what it acknowledged becomes `not_primary`: those changes
  // may never be part of the shared log, and no success may leave for them.
  void read_replica() {
    if (e.config_.replica == nullptr) return;
    drain_eventfd_nonblocking(e.config_.replica->ready_fd());  // level-triggered in the epoll
    const bool was_fenced = replica.fenced;
    replica = e.config_.replica->status();
    e.metrics_.replicated_lsn.store(replica.acknowledged_lsn, std::memory_order_relaxed);
    e.metrics_.replica_stalled.store(replica.stalled, std::memory_order_relaxed);
    if (replica.fenced && !was_fenced) {
      e.metrics_.replica_fenced.store(true, std::memory_order_relaxed);
      releases.refuse_beyond(replica.acknowledged_lsn, ResultCode::not_primary);
      log_line(LogLevel::error, "fenced: another process appends to the shared log",
               {{"acknowledged_lsn", std::to_string(replica.acknowledged_lsn)},
                {"local_lsn", std::to_string(state_lsn)}});
    }
  }

  // What an answer may depend on: durable locally and, with replication, acknowledged.
  std::uint64_t releasable_lsn() const {
    const std::uint64_t durable = log->durable_lsn();
    if (e.config_.replica == nullptr) return durable;
    return std::min(durable, replica.acknowledged_lsn);
  }

  bool release() { return releases.release(releasable_lsn(), durable_seen_ns); }

  // ---- A standby: applying the shared log

  // Applies the batches the source has ready (a bounded number per turn, so that reads and
  // releases keep their turn). A record that does not continue the local log stops it.
  bool follow_stream() {
    if (follow == nullptr) return false;
    // Drained even once following failed: level-triggered, an undrained fd spins the core.
    drain_eventfd_nonblocking(follow->ready_fd());
    if (e.metrics_.follow_failed.load(std::memory_order_relaxed)) return false;
    bool worked = false;
    for (int i = 0; i < 64 && follow->take(&replicated); ++i) {
      if (const Status s = apply_replicated(replicated); !s.is_ok()) {
        e.metrics_.follow_failed.store(true, std::memory_order_relaxed);
        log_line(LogLevel::error, "standby stopped following the shared log: " + s.to_string(),
                 {{"sequence", std::to_string(replicated.sequence)},
                  {"local_lsn", std::to_string(log->next_lsn() - 1)}});
        return true;
      }
      e.metrics_.followed_sequence.store(replicated.sequence, std::memory_order_relaxed);
      worked = true;
    }
    if (follow->failed()) e.metrics_.follow_failed.store(true, std::memory_order_relaxed);
    return worked;
  }

  // The records of one stream message after the local log's end, checked and applied.
  Status apply_replicated(const ReplicatedBatch& b) {
    const std::uint64_t local_last = log->next_lsn() - 1;
    const Status s = wal::for_each_frame_in(b.frames, b.first_lsn, [&](const wal::FrameView& f) {
      return f.lsn <= local_last ? Status::ok() : apply_replicated_record(f);
    });
    return s.with_context("stream message " + std::to_string(b.sequence));
  }

  Status apply_replicated_record(const wal::FrameView& f) {
    const std::string at = "record LSN " + std::to_string(f.lsn);
    if (f.lsn != log->next_lsn()) {
      return Status::corruption(at + " where " + std::to_string(log->next_lsn()) + " was due");
    }
    if (f.prev_checksum != log->last_checksum()) {
      return Status(StatusCode::kConflict, at + " does not follow the local log (another history)");
    }
    Command c;
    CommandOutcome logged;
    bool has_outcome = false;
    if (decode_command_record(f.type, f.payload, &c, &logged, &has_outcome) !=
        CommandDecodeError::ok) {
      return Status::corruption(at + " is not a command this build reads");
    }
    const Result r = apply(state(), c);
    // The primary logged it because it changed its state: the same state must change here,
    // and the same way (its outcome, when the record carries one).
    if (!r.mutated) return Status(StatusCode::kConflict, at + " changed nothing here");
    if (has_outcome) {
      if (const std::string differs = describe_outcome_mismatch(logged, outcome_of(r));
          !differs.empty()) {
        return Status(StatusCode::kConflict, at + ": " + differs);
      }
    }
    last_timestamp_us = std::max(last_timestamp_us, c.timestamp_us);
    std::uint64_t lsn = 0;
    if (!append_payload(f.payload, &lsn, f.type)) {
      return Status::io_error(at + ": the local log failed");
    }
    PAYCORE_ASSERT_EQ(lsn, f.lsn);
    e.metrics_.commands_applied.fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }

  // A requested promotion, once the stream is applied through its sequence: the new writer
  // is made here, on the core thread, from the local log's end.
  void maybe_promote() {
    if (follow == nullptr || !e.promotion_requested_.load(std::memory_order_acquire)) return;
    std::function<ReplicaPort*(const PrimaryStart&)> make;
    {
      const std::lock_guard lock(e.promotion_mu_);
      const std::uint64_t followed = e.metrics_.followed_sequence.load(std::memory_order_relaxed);
      // Looked at again under the lock: cancel_promotion may have come in between.
      if (!e.promotion_requested_.load(std::memory_order_relaxed) ||
          followed < e.promotion_through_) {
        return;
      }
      make = std::move(e.promotion_);
      e.promotion_requested_.store(false, std::memory_order_relaxed);
    }
    // The records applied so far go to the local disk now, while no replica is attached:
    // they are in the stream already and must not be published again.
    if (log->batch_pending_bytes() > 0) {
      if (const Status s = submit_batch(); !s.is_ok()) {
        on_storage_fault(s);
        return;
      }
    }
    const PrimaryStart start{log->next_lsn() - 1, log->last_checksum(),
                             e.metrics_.followed_sequence.load(std::memory_order_relaxed)};
    ReplicaPort* port = make(start);
    if (port == nullptr) return;  // still a standby; leadership may ask again
    epoll_ctl_fd(EPOLL_CTL_DEL, follow->ready_fd());
    follow = nullptr;
    e.metrics_.following.store(false, std::memory_order_relaxed);
    e.config_.replica = port;
    epoll_ctl_fd(EPOLL_CTL_ADD, port->ready_fd());
    read_replica();
    e.metrics_.promotions.fetch_add(1, std::memory_order_relaxed);
    log_line(LogLevel::info, "promoted to primary",
             {{"lsn", std::to_string(start.last_lsn)},
              {"stream_sequence", std::to_string(start.followed_sequence)}});
    if (const Status s = e.register_channels(); !s.is_ok()) on_storage_fault(s);
  }

  // A replication port's eventfd in the core's epoll, level-triggered: read_replica and
  // follow_stream drain it every turn. (Edge-triggered and never read, an idle core was seen
  // to spin under CPU contention: 250-340k turns in 500 ms, so it stays level-triggered.)
  void epoll_ctl_fd(int op, int fd) const {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    const int done = ::epoll_ctl(epoll_fd, op, fd, &ev);
    PAYCORE_ASSERT_EQ(done, 0);
  }

  // ---- The loop

  // Each phase is timed for the stall detector (core/stall_watch.hpp). Only a turn with
  // commands to take reads the thread's CPU time (a system call): the many turns a busy core
  // spins through while the disk works do not.
  bool turn() {
    stalls.begin(log->segments_created_count(), state().index_growths_count(), has_input());
    const std::int64_t now = now_us();
    reap();
    read_replica();
    stalls.lap(StallCause::log_submit);
    bool worked = follow_stream();
    maybe_promote();
    worked |= handle_waiting_for_lsn(now);
    worked |= take_commands(now);
    stalls.lap(StallCause::long_batch);
    worked |= maybe_tick(now);
    stalls.lap(StallCause::tick);
    worked |= maybe_archive(now);
    stalls.lap(StallCause::archive);
    // A fenced primary's state may hold changes the stream refused: never in a snapshot.
    if (!replica.fenced) snapshots.maybe_start(now, state_lsn);
    snapshots.reap_child(false);
    snapshots.publish_if_durable();
    stalls.lap(StallCause::snapshot);
    submit_if_slot_free();
    reap();
    read_replica();
    stalls.lap(StallCause::log_submit);
    worked |= release();
    publish_counts();
    e.metrics_.turns.fetch_add(1, std::memory_order_relaxed);
    stalls.lap(StallCause::release);
    stalls.end(log->segments_created_count(), state().index_growths_count());
    return worked;
  }

  bool has_input() const {
    for (const auto& ring : e.in_) {
      if (!ring->empty()) return true;
    }
    return false;
  }

  // One wake-up per sleep (Engine::submit): the wake written since the last sleep is drained
  // first, then wake_pending_ is cleared, so that while the core is blocked a pending flag
  // always means a count in the eventfd. The clearing exchange reads the flag of any producer
  // that found a wake pending and wrote none, which makes that producer's request visible to
  // the input check that follows.
  void sleep_until_work() {
    drain_eventfd_nonblocking(e.wake_fd_);
    // Left readable, the log's fd ended every sleep at once: an idle server turned ~500-800k
    // times a second.
    log->settle_completion_fd();
    e.wake_pending_.exchange(false, std::memory_order_seq_cst);
    e.core_sleeping_.store(true, std::memory_order_seq_cst);
    if (has_input() || e.stop_requested_.load()) {
      e.core_sleeping_.store(false, std::memory_order_relaxed);
      return;
    }
    const std::int64_t until_tick_ms =
        std::max<std::int64_t>(0, (next_tick_us - now_us()) / 1000) + 1;
    epoll_event events[4];
    ::epoll_wait(epoll_fd, events, 4,
                 static_cast<int>(std::min<std::int64_t>(
                     {until_tick_ms, until_first_lsn_deadline_ms(), 1000})));
    e.core_sleeping_.store(false, std::memory_order_relaxed);
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

  // A primary stopping cleanly waits until the stream holds its whole log (records nobody
  // waits for too, such as ticks): else it would come back with a tail the next primary may
  // have written over, and could not rejoin. Bounded: past the ack timeout it is `stalled`.
  bool replica_behind() const {
    return e.config_.replica != nullptr && !replica.fenced && !replica.stalled &&
           replica.acknowledged_lsn < log->durable_lsn();
  }

  // Takes what the producers already handed in, makes it durable, answers everything, and
  // writes a final snapshot.
  void shutdown() {
    refuse_waiting_for_lsn();
    release();
    while (has_input() || releases.waiting_count() > 0 || log->batch_in_flight() ||
           log->batch_pending_bytes() > 0 || replica_behind()) {
      turn();
      refuse_waiting_for_lsn();
      if (log->batch_in_flight()) log->wait();
      if (log->read_only()) {
        release();
        break;
      }
      if (replica.fenced || replica.stalled) {
        // The shared log will not acknowledge what waits: it leaves as a refusal.
        releases.refuse_beyond(replica.acknowledged_lsn, replica.fenced ? ResultCode::not_primary
                                                                       : ResultCode::unavailable);
        release();
        break;
      }
    }
    // A primary's state may hold changes the shared log never acknowledged (fenced, or cut off
    // from it): such a state is never a snapshot.
    const bool unacknowledged = e.config_.replica != nullptr && replica.acknowledged_lsn < state_lsn;
    if (!replica.fenced && !unacknowledged) snapshots.write_final();
  }

  void publish_counts() {
    e.metrics_.accounts.store(state().accounts.size(), std::memory_order_relaxed);
    e.metrics_.payments.store(state().payments.live_count(), std::memory_order_relaxed);
    e.metrics_.awaiting_release.store(releases.waiting_count(), std::memory_order_relaxed);
    std::uint64_t depth = 0;
    for (const auto& ring : e.in_) depth += ring->size();
    e.metrics_.queue_depth.store(depth, std::memory_order_relaxed);
  }

  void publish_wal_stats() {
    const wal::Stats s = log->stats();
    e.metrics_.wal_batches.store(s.batches_count, std::memory_order_relaxed);
    e.metrics_.wal_fsyncs.store(s.fsyncs_count, std::memory_order_relaxed);
    e.metrics_.wal_bytes.store(s.write_bytes, std::memory_order_relaxed);
    e.metrics_.wal_segments.store(s.segments_created_count, std::memory_order_relaxed);
    e.metrics_.wal_segments_from_spares.store(s.segments_from_spares_count,
                                              std::memory_order_relaxed);
    for (std::size_t i = 0; i < EngineMetrics::histogram_buckets && i < wal::kHistogramBuckets;
         ++i) {
      e.metrics_.fsync_latency_us_log2[i].store(s.sync_latency_us_log2[i],
                                                std::memory_order_relaxed);
      e.metrics_.batch_records_log2[i].store(s.batch_records_log2[i], std::memory_order_relaxed);
    }
  }
};

// ---- Engine ------------------------------------------------------------------------------------

Engine::Engine(const EngineConfig& config) : config_(config) {}


namespace {

Status check_config(const EngineConfig& config) {
  PAYCORE_ASSERT_GE(config.producers, 1U);
  PAYCORE_ASSERT_GE(config.batch_max, 1U);
  const bool power_of_two =
      config.ring_capacity >= 2 && (config.ring_capacity & (config.ring_capacity - 1)) == 0;
  if (!power_of_two) return Status::invalid_argument("ring capacity must be a power of two");
  // 0 would delete the snapshot just written. 1 trims the log below the only snapshot, so a
  // damaged one has nothing to fall back to (docs/operations.md).
  if (config.snapshots_keep < 1 || config.snapshots_keep > snapshots_keep_max) {
    return Status::invalid_argument("snapshots_keep must be 1.." + std::to_string(snapshots_keep_max));
  }
  return Status::ok();
}

// `engine` receives each written batch for its replica, if one is attached by then.
StatusOr<std::unique_ptr<wal::Log>> open_log(const EngineConfig& config, const std::string& wal_dir,
                                             const std::string& snapshots_dir, Engine* engine) {
  wal::Options options;
  options.dir = wal_dir;
  options.segment_bytes = config.wal_segment_bytes;
  options.batch_bytes_max = config.wal_batch_bytes_max;
  options.force_fallback = config.wal_force_fallback;
  options.syncs_in_flight_max = config.wal_syncs_in_flight_max;
  options.spare_segments = config.wal_spare_segments;
  options.faults = config.wal_faults;
  options.on_batch_written = [engine](std::uint64_t first, std::uint64_t last,
                                      std::span<const std::byte> records) {
    if (ReplicaPort* replica = engine->config().replica; replica != nullptr) {
      replica->publish(first, last, records);
    }
  };
  // After a snapshot at LSN s whose log segments were all removed, the log continues at s + 1.
  const std::vector<SnapshotFile> snapshots = list_snapshots(snapshots_dir);
  options.first_lsn_if_empty = snapshots.empty() ? 1 : snapshots.back().lsn + 1;
  options.prev_checksum_if_empty = config.log_prev_checksum_if_empty;
  wal::RecoveryReport report;
  std::unique_ptr<wal::Log> log;
  if (const Status s = wal::Log::open(options, &log, &report); !s.is_ok()) {
    return s.with_context("cannot open the log in " + options.dir);
  }
  // The log says nothing by itself: its recovery's one report of a torn tail is this line.
  if (report.torn_tail_truncated) {
    log_line(LogLevel::warn, "torn write at the end of the log truncated",
             {{"file", report.torn_file},
              {"offset", std::to_string(report.torn_offset)},
              {"bytes", std::to_string(report.torn_bytes)},
              {"reason", report.torn_reason},
              {"last_lsn", std::to_string(log->next_lsn() - 1)}});
  }
  return log;
}

void log_recovered(const RecoveredState& recovered, const wal::Log& log, std::int64_t started_us) {
  const State& state = *recovered.state;
  log_line(LogLevel::info, "recovered",
           {{"snapshot_lsn", std::to_string(recovered.snapshot_lsn)},
            {"replayed_records", std::to_string(recovered.replayed_count)},
            {"accounts", std::to_string(state.accounts.size())},
            {"payments", std::to_string(state.payments.live_count())},
            {"payments_archived", std::to_string(state.payments.begin())},
            {"ms", std::to_string((wall_clock_us() - started_us) / 1000)},
            {"snapshot_load_ms", std::to_string(recovered.snapshot_load_us / 1000)},
            {"replay_ms", std::to_string(recovered.replay_us / 1000)},
            {"nonce_scan_records", std::to_string(recovered.nonce_scan_count)},
            {"nonce_scan_ms", std::to_string(recovered.nonce_scan_us / 1000)},
            {"write_path", log.using_io_uring() ? "io_uring" : "pwrite+fdatasync thread"}});
}

}  // namespace

StatusOr<std::unique_ptr<Engine>> Engine::open(const EngineConfig& config) {
  PAYCORE_RETURN_IF_ERROR(check_config(config));
  std::unique_ptr<Engine> engine(new Engine(config));
  PAYCORE_RETURN_IF_ERROR(make_directories(engine->wal_dir()));
  PAYCORE_RETURN_IF_ERROR(make_directories(engine->snapshots_dir()));
  const std::int64_t started_us = wall_clock_us();
  StatusOr<std::unique_ptr<wal::Log>> log =
      open_log(config, engine->wal_dir(), engine->snapshots_dir(), engine.get());
  if (!log.is_ok()) return log.status();
  RecoveryNonces nonces;
  if (config.nonce_retention_us > 0 && config.on_recovered_nonce) {
    nonces.since_us = wall_clock_us() - config.nonce_retention_us;
    nonces.sink = config.on_recovered_nonce;
  }
  StatusOr<RecoveredState> recovered =
      rebuild_state(config.state, engine->snapshots_dir(), **log, nonces);
  if (!recovered.is_ok()) return recovered.status();
  log_recovered(*recovered, **log, started_us);
  engine->state_ = std::move(recovered->state);
  engine->make_rings();
  engine->core_ = std::make_unique<Core>(*engine, std::move(*log), recovered->snapshot_lsn);
  engine->metrics_.snapshot_lsn.store(recovered->snapshot_lsn, std::memory_order_relaxed);
  engine->metrics_.recovery_nonce_scan_records.store(recovered->nonce_scan_count,
                                                     std::memory_order_relaxed);
  engine->metrics_.durable_lsn.store(engine->core_->log->durable_lsn(), std::memory_order_relaxed);
  if (config.register_channels_at_open) PAYCORE_RETURN_IF_ERROR(engine->register_channels());
  engine->metrics_.ready.store(true, std::memory_order_relaxed);
  return engine;
}

void Engine::make_rings() {
  for (std::uint32_t p = 0; p < config_.producers; ++p) {
    in_.push_back(std::make_unique<SpscRing<Request>>(config_.ring_capacity));
    out_.push_back(std::make_unique<SpscRing<Response>>(config_.ring_capacity));
    result_fds_.push_back(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

// Channels named in the configuration become part of the state (and the log) before serving.
Status Engine::register_channels() {
  Core& core = *core_;
  for (const std::string& name : config_.channels) {
    Command c;
    c.kind = CommandKind::add_channel;
    if (!Id::from(name, &c.channel) || name == channel_name_balance) {
      return Status::invalid_argument("invalid channel name \"" + name + "\"");
    }
    if (state_->find_channel(name) != row_none) continue;
    c.timestamp_us = core.next_timestamp(core.now_us());
    const Result r = apply(*state_, c);
    std::uint64_t lsn = 0;
    const std::string refused = "cannot register channel \"" + name + "\": ";
    if (r.code != ResultCode::ok) {
      return Status::invalid_argument(refused + std::string(to_string(r.code)));
    }
    if (r.mutated && !core.append(c, r, &lsn)) {
      return Status::io_error(refused + std::string(to_string(r.code)));
    }
  }
  if (core.log->batch_pending_bytes() > 0) {
    if (const Status s = core.log->submit(); !s.is_ok()) {
      return s.with_context("cannot write the log");
    }
  }
  core.log->wait();
  if (core.log->read_only()) return core.log->failure().with_context("cannot write the log");
  return Status::ok();
}

Engine::~Engine() {
  stop();
  for (int fd : result_fds_) ::close(fd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Engine::attach_archive(ArchiveSink* sink) {
  PAYCORE_ASSERT(!thread_.joinable());
  PAYCORE_ASSERT(!driven_);
  config_.archive_sink = sink;
  // A finished job wakes a sleeping core: without it an idle core took one job per tick.
  if (const int fd = sink->ready_fd(); fd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    const int added = ::epoll_ctl(core_->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    PAYCORE_ASSERT_EQ(added, 0);
  }
}

void Engine::attach_replica(ReplicaPort* replica) {
  PAYCORE_ASSERT(!thread_.joinable());
  PAYCORE_ASSERT(!driven_);
  PAYCORE_ASSERT(core_->follow == nullptr);
  config_.replica = replica;
  core_->epoll_ctl_fd(EPOLL_CTL_ADD, replica->ready_fd());
  core_->read_replica();
}

void Engine::attach_follower(FollowSource* source) {
  PAYCORE_ASSERT(!thread_.joinable());
  PAYCORE_ASSERT(!driven_);
  PAYCORE_ASSERT(config_.replica == nullptr);
  core_->follow = source;
  metrics_.following.store(true, std::memory_order_relaxed);
  core_->epoll_ctl_fd(EPOLL_CTL_ADD, source->ready_fd());
}

void Engine::cancel_promotion() {
  const std::lock_guard lock(promotion_mu_);
  promotion_requested_.store(false, std::memory_order_release);
  promotion_ = nullptr;
}

void Engine::request_promotion(std::uint64_t through_sequence,
                               std::function<ReplicaPort*(const PrimaryStart&)> make_primary) {
  {
    const std::lock_guard lock(promotion_mu_);
    promotion_through_ = through_sequence;
    promotion_ = std::move(make_primary);
    promotion_requested_.store(true, std::memory_order_release);
  }
  write_eventfd(wake_fd_);  // a sleeping core looks at once (an extra wake-up costs a turn)
}

std::uint64_t Engine::log_last_lsn() const { return core_->log->next_lsn() - 1; }
std::uint64_t Engine::log_last_checksum() const { return core_->log->last_checksum(); }
std::uint64_t Engine::log_first_lsn() const { return core_->log->first_lsn(); }

Status Engine::replay_log_frames(std::uint64_t from_lsn, std::uint64_t to_lsn,
                                 FunctionRef<void(std::uint64_t, std::span<const std::byte>)> fn) {
  PAYCORE_ASSERT(!thread_.joinable());
  return core_->log->replay_frames(from_lsn, fn, to_lsn);
}

void Engine::start() {
  PAYCORE_ASSERT(!thread_.joinable());
  PAYCORE_ASSERT(!driven_);
  thread_ = std::thread([this] { core_->run(); });
  (void)::pthread_setname_np(thread_.native_handle(), "paycore-core");  // top -H, perf
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
  PAYCORE_ASSERT(!thread_.joinable());
  PAYCORE_ASSERT(!stopped_);
  driven_ = true;
  return core_->turn();
}

int Engine::poll_fd() const { return core_->epoll_fd; }

int Engine::timeout_ms() const {
  const std::int64_t until_tick_us = core_->next_tick_us - core_->now_us();
  return static_cast<int>(std::clamp<std::int64_t>(until_tick_us / 1000 + 1, 0, 1000));
}

bool Engine::submit(std::uint32_t producer, const Request& request) {
  PAYCORE_DEBUG_ASSERT(producer < in_.size());  // each producer index is one thread's
  if (!in_[producer]->try_push(request)) {
    metrics_.busy_refusals.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Wake the core only if it sleeps, and only once per sleep: no system call per request on a
  // busy engine, nor per request of a burst that arrives while the core is waking up (a
  // producer handing in 50 requests used to write the eventfd 50 times).
  if (core_sleeping_.load(std::memory_order_seq_cst) &&
      !wake_pending_.exchange(true, std::memory_order_seq_cst)) {
    write_eventfd(wake_fd_);
  }
  return true;
}

std::size_t Engine::take(std::uint32_t producer, std::span<Response> out) {
  PAYCORE_DEBUG_ASSERT(producer < out_.size());
  return out_[producer]->pop(out);
}

int Engine::result_fd(std::uint32_t producer) const { return result_fds_[producer]; }

}  // namespace paycore
