// The I/O thread's way in: complete requests parsed from a connection's buffer, each given a
// slot, decided (net/decide.hpp), admitted (rate limit, nonce) and submitted to the engine or
// answered locally. Which connection work is done on, and when, is io_thread.cpp's business.

#include <sys/types.h>

#include "base/assert.hpp"
#include "base/log.hpp"
#include "base/time.hpp"
#include "net/io_thread.hpp"

namespace paycore::net {
namespace {

const LocalError busy_answer{503, "unavailable", "the server is busy; retry", {}};
const LocalError signature_refused{401, {}, "the request's signature headers were refused", {}};

// Paycore-Min-Lsn (docs/api.md "Replication"): at most one, an unsigned decimal of at most 19
// digits (an LSN is a u64; 19 digits never overflow). Absent: 0 (no wait).
bool parse_min_lsn(const HttpRequest& request, std::uint64_t* min_lsn) {
  *min_lsn = 0;
  const std::optional<std::string_view> text = request.header("Paycore-Min-Lsn");
  if (!text) return true;
  if (request.header_occurrences("Paycore-Min-Lsn") != 1) return false;
  if (text->empty() || text->size() > 19) return false;
  for (const char ch : *text) {
    if (ch < '0' || ch > '9') return false;
    *min_lsn = *min_lsn * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  return true;
}

constexpr LocalError min_lsn_invalid{
    400, "invalid_field", "Paycore-Min-Lsn must be one unsigned decimal log position",
    "Paycore-Min-Lsn"};

}  // namespace

Slot& IoThread::push_slot(Connection& c) {
  PAYCORE_ASSERT_LT(c.count, c.slots.size());
  const std::uint32_t index = (c.head + c.count) % static_cast<std::uint32_t>(c.slots.size());
  ++c.count;
  Slot& slot = c.slots[index];
  PAYCORE_ASSERT(slot.state == SlotState::free);
  slot.state = SlotState::waiting;
  slot.kind = SlotKind::local_error;
  slot.route = Route::unmatched;
  slot.keep_alive = true;
  slot.head = false;
  slot.start_us = now_us_;
  slot.allow = {};
  slot.batch.pending = 0;
  slot.nonce_seq = 0;
  slot.logged_nonce.pending = false;
  slot.retry_after_s = 0;
  slot.archive_lookups = 0;
  slot.min_lsn = 0;
  slot.batch.entries.clear();
  return slot;
}

// Parses and dispatches the complete requests in the buffer while the pipeline depth and the
// output high-water mark allow. True when it stopped for want of bytes (nothing buffered, a
// partial request) or because the connection takes no more requests; false when a budget
// stopped it, complete requests possibly still buffered (see service()).
bool IoThread::parse_requests(Connection& c) {
  while (c.count < c.slots.size() && c.out.size() < out_high_water_bytes) {
    if (c.closing || c.in_begin == c.in_end) return true;
    const std::string_view buffer(c.in.get() + c.in_begin, c.in_end - c.in_begin);
    HttpParseResult parsed = c.parser.parse(buffer, &c.request);
    if (parsed.status != HttpParseStatus::error && parsed.header_bytes != 0) {
      const HttpParseResult checked = check_http_request(c.request);
      if (checked.status == HttpParseStatus::error) parsed = checked;
    }
    if (parsed.status == HttpParseStatus::error) {
      refuse_malformed(c, parsed);
      return true;
    }
    if (parsed.status == HttpParseStatus::need_more) {
      if (c.peer_closed) {
        c.closing = true;  // a request cut short by the client: nothing to answer
      } else if (parsed.header_bytes != 0) {
        expect_continue(c, buffer.size() - parsed.header_bytes);
      }
      return true;
    }
    PAYCORE_ASSERT_GT(parsed.consumed_bytes, 0u);
    PAYCORE_ASSERT_LE(parsed.consumed_bytes, buffer.size());
    handle_request(c, c.request);
    c.in_begin += parsed.consumed_bytes;
    c.parser.reset();
    c.continue_state = ContinueState::none;
    c.request_started_ms = c.in_begin < c.in_end ? now_ms() : 0;
    if (!c.request.keep_alive) c.closing = true;
  }
  return false;
}

void IoThread::send_continue_if_due(Connection& c) {
  // After every earlier answer, which are all in `out` once nothing is in flight.
  if (c.continue_state != ContinueState::due || c.count != 0 || c.closing) return;
  PAYCORE_ASSERT(c.request.expect_continue);
  PAYCORE_ASSERT_EQ(c.request.version_minor, 1);
  if (write_continue(c.out)) c.continue_state = ContinueState::sent;
}

// RFC 9110 10.1.1. Called while the body of c.request (header section parsed) is incomplete.
void IoThread::expect_continue(Connection& c, std::size_t body_bytes_received) {
  if (c.continue_state != ContinueState::none || !c.request.expect_continue) return;
  // The client did not wait (or sent the body with the header): 100 MAY be omitted.
  if (body_bytes_received > 0) {
    c.continue_state = ContinueState::settled;
    return;
  }
  // A final answer decided from the header section goes instead of 100. The body is then
  // never read, so the connection closes after the answer (RFC 9110 10.1.1: a server that
  // answers before reading the content says whether it closes). Framing errors (411, 413,
  // 400 Host) were refused by the parser and check_http_request already.
  const bool head = c.request.method_kind == HttpMethod::head;
  const RouteMatch match =
      match_route(head ? HttpMethod::get : c.request.method_kind, c.request.path);
  std::optional<Decision> unmatched = decide_unmatched(match);
  std::optional<LocalError> refusal;
  if (!unmatched) {
    refusal = decide_before_body(match, c.request, keys());
    if (!refusal) {
      c.continue_state = ContinueState::due;
      return;
    }
  }
  Slot& slot = push_slot(c);
  slot.trace_id = trace_ids_.for_request(c.request.header("X-Request-Id"));
  slot.keep_alive = false;
  slot.head = head;
  if (unmatched) {
    slot.allow = unmatched->allow;
    finish_local(slot, unmatched->answer);
  } else {
    finish_local(slot, *refusal);
  }
  c.closing = true;
  c.continue_state = ContinueState::settled;
}

void IoThread::refuse_malformed(Connection& c, const HttpParseResult& parsed) {
  Slot& slot = push_slot(c);
  slot.trace_id = trace_ids_.next();
  slot.keep_alive = false;
  finish_local(
      slot, LocalError{
                http_error_status(parsed.error), http_error_code(parsed.error), parsed.reason, {}});
  c.closing = true;
  ServerMetrics::bump(metrics.protocol_errors);
  log_line(LogLevel::warn, "malformed request",
           {{"request_id", slot.trace_id.view()},
            {"reason", parsed.reason},
            {"status", http_error_code(parsed.error)}});
}

void IoThread::handle_request(Connection& c, const HttpRequest& request) {
  Slot& slot = push_slot(c);
  slot.keep_alive = request.keep_alive;
  slot.trace_id = trace_ids_.for_request(request.header("X-Request-Id"));
  // HEAD is routed (and authorised, and executed) as GET; only the body is left out.
  slot.head = request.method_kind == HttpMethod::head;
  const RouteMatch match =
      match_route(slot.head ? HttpMethod::get : request.method_kind, request.path);
  if (const std::optional<Decision> unmatched = decide_unmatched(match)) {
    slot.allow = unmatched->allow;
    finish_local(slot, unmatched->answer);
    return;
  }
  slot.route = match.route;
  if (!parse_min_lsn(request, &slot.min_lsn)) {
    finish_local(slot, min_lsn_invalid);
    return;
  }
  // One Keys for the whole request: the principal authenticated below points into it.
  const auth::Keys& current = keys();
  auth::AuthResult auth;
  const bool is_signed = route_is_signed(match.route);
  if (is_signed && !authenticate(slot, request, current, &auth)) return;
  const RequestContext context{current, is_signed ? auth.principal : nullptr, decoder_,
                               &batch_items_, events_calls_ != nullptr};
  execute(c, slot, decide(match, request, context), is_signed ? &auth : nullptr, request);
}

// The HMAC signature (net/auth.hpp); false with the 401 answer. With rate limits on, a replay
// is refused here, before it costs its principal anything (a captured request replayed by
// someone else must not spend the principal's rate limit). Without them the nonce's insert
// (record_signed_nonce) refuses it, and one cache probe per request is enough.
bool IoThread::authenticate(Slot& slot, const HttpRequest& request, const auth::Keys& keys,
                            auth::AuthResult* auth) {
  now_s_ = wall_seconds();
  *auth = verify_signature(keys, request_credentials(request), now_s_, server_.nonces_.window_s());
  if (auth->status != auth::AuthStatus::ok) {
    LocalError refused = signature_refused;
    refused.status = auth::auth_status_http(auth->status);
    refused.code = auth::auth_status_code(auth->status);
    finish_local(slot, refused);
    return false;
  }
  const bool replay = server_.rate_limiter_.enabled() &&
                      server_.nonces_.seen(auth->principal->id.view(), auth->nonce, now_s_);
  if (replay) {
    finish_local(slot, LocalError{401,
                                  auth::auth_status_code(auth::AuthStatus::replayed_nonce),
                                  "this nonce was used within the window",
                                  {}});
    return false;
  }
  return true;
}

// Does what `decision` says. `auth` is the signer of a signed request (null otherwise), whose
// admission comes first (see Admission in net/decide.hpp).
void IoThread::execute(Connection& c, Slot& slot, const Decision& decision, const auth::AuthResult* auth,
                       const HttpRequest& request) {
  if (decision.kind == DecisionKind::batch) {
    PAYCORE_ASSERT(auth != nullptr);
    execute_batch(c, slot, *auth, request);
    return;
  }
  const bool admit_first = auth != nullptr && (decision.kind != DecisionKind::local_answer ||
                                               decision.admission == Admission::before_answer);
  // A single write's nonce can go to the log in its command instead of to the journal.
  const bool nonce_to_log =
      decision.kind == DecisionKind::command && !command_is_read(decision.command.kind);
  if (admit_first && !admit(slot, *auth, slot.route, request, nonce_to_log)) return;
  switch (decision.kind) {
    case DecisionKind::local_answer:
      slot.allow = decision.allow;
      finish_local(slot, decision.answer);
      return;
    case DecisionKind::server_page:
      slot.kind = slot.route == Route::healthz  ? SlotKind::healthz
                  : slot.route == Route::readyz ? SlotKind::readyz
                                                : SlotKind::metrics;
      slot.state = SlotState::ready;
      return;
    case DecisionKind::snapshot:
      slot.kind = SlotKind::snapshot;
      submit_single(c, slot, Command{}, RequestOp::snapshot);
      return;
    case DecisionKind::command:
      slot.kind = SlotKind::engine;
      submit_single(c, slot, decision.command, RequestOp::command);
      return;
    case DecisionKind::list:
      execute_list(c, slot, decision.list);
      return;
    case DecisionKind::events:
      execute_events(c, slot, decision.events);
      return;
    case DecisionKind::batch: break;
  }
}

// A batch is charged per item once decoded: one token per item, as many as the bucket holds;
// the items beyond are answered 429 one by one (a batch cannot carry a principal past its
// burst); none at all is a 429 for the batch. The nonce takes room in the shared cache only
// after the rate limit let the request through.
void IoThread::execute_batch(Connection& c, Slot& slot, const auth::AuthResult& auth,
                             const HttpRequest& request) {
  std::uint32_t granted = 0;
  if (!admit_batch_items(slot, auth, request, &granted)) return;
  if (!record_signed_nonce(slot, auth)) return;
  submit_batch_items(c, slot, auth, granted);
}

// How many items the rate limit lets through (all when limits are off) into `granted`; false
// with the 429 answer when not even one.
bool IoThread::admit_batch_items(Slot& slot, const auth::AuthResult& auth, const HttpRequest& request,
                                 std::uint32_t* granted) {
  const auto items = static_cast<std::uint32_t>(batch_items_.size());
  *granted = items;
  RateLimiter& limiter = server_.rate_limiter_;
  if (!limiter.enabled()) return true;
  const auth::Principal& principal = *auth.principal;
  *granted = limiter.take_up_to(principal.id.view(), rate_class_of(Route::payment_batch, false),
                                items, now_us_);
  if (*granted != 0) return true;
  if (rate_limited(slot, principal, Route::payment_batch, request, 1)) return false;
  *granted = 1;
  return true;
}

void IoThread::submit_batch_items(Connection& c, Slot& slot, const auth::AuthResult& auth,
                                  std::uint32_t granted) {
  PAYCORE_ASSERT_LE(batch_items_.size(), std::size_t{1} << answer_token_item_bits);
  slot.kind = SlotKind::batch;
  BatchAnswer& batch = slot.batch;
  batch.entries.resize(batch_items_.size());
  batch.pending = 0;
  for (std::size_t i = 0; i < batch_items_.size(); ++i) {
    BatchEntry& entry = batch.entries[i];
    entry.local = true;
    entry.archive_lookups = 0;
    if (batch_items_[i].error) {
      entry.error = local_error_from(*batch_items_[i].error);
      continue;
    }
    if (i >= granted) {
      entry.error = LocalError{429,
                               "rate_limited",
                               "over the rate limit: this item was not executed; retry it later",
                               {}};
      continue;
    }
    const Command command = payment_command(*auth.principal, batch_items_[i].request);
    const AnswerToken token = AnswerToken::for_batch_item(
        c.index, c.generation, slot_index(c, slot), static_cast<std::uint32_t>(i));
    if (submit(token, command)) {
      entry.local = false;
      ++batch.pending;
    } else {
      entry.error = busy_answer;
    }
  }
  if (batch.pending == 0) slot.state = SlotState::ready;
}

// Charges the request to its principal's rate limit and records its nonce; false with the
// answer (429, 401 replay, 503 nonce cache full) when either refuses.
bool IoThread::admit(Slot& slot, const auth::AuthResult& auth, Route route, const HttpRequest& request,
                     bool nonce_to_log) {
  if (rate_limited(slot, *auth.principal, route, request, 1)) return false;
  return record_signed_nonce(slot, auth, nonce_to_log);
}

// Records the request's nonce once authorization and the rate limit let it through; false (with
// the answer) for a replay that raced this one, or a full nonce cache. With the nonce journal
// (net/nonce_journal.hpp) the nonce is made durable before the answer leaves: `nonce_to_log`
// (a single write), when the engine keeps logged nonces, sends it to the log in the command
// (settled by settle_nonce); otherwise it is journaled now and the answer waits until that
// record is durable (or its batch failed: see there).
bool IoThread::record_signed_nonce(Slot& slot, const auth::AuthResult& auth, bool nonce_to_log) {
  const auth::AuthStatus status = auth::record_nonce(server_.nonces_, auth, now_s_);
  if (status == auth::AuthStatus::replayed_nonce) {
    finish_local(
        slot,
        LocalError{401, auth::auth_status_code(status), "this nonce was used within the window", {}});
    return false;
  }
  if (status == auth::AuthStatus::nonce_cache_full) {
    finish_local(slot, LocalError{503,
                                  auth::auth_status_code(status),
                                  "too many signed requests within the window (nonce cache "
                                  "full); retry later",
                                  {}});
    return false;
  }
  NonceJournal* journal = server_.journal_.get();
  if (journal == nullptr) return true;
  if (nonce_to_log && server_.log_carries_nonces_) {
    LoggedNonce& logged = slot.logged_nonce;
    logged.pending = true;
    logged.principal = auth.principal->id;
    logged.nonce = Id::trusted(auth.nonce);  // verified: 8-64 of [A-Za-z0-9_-], a subset of an id
    logged.timestamp_s = auth.timestamp_s;
    return true;
  }
  slot.nonce_seq = journal->append(auth.principal->id.view(), auth.nonce, auth.timestamp_s);
  ServerMetrics::bump(metrics.nonces_journaled);
  return true;
}

// A write's nonce went to the log in its command: if the engine's answer says the record holds
// it (Response::nonce_logged), it is durable with the answer; otherwise (a repeat answered from
// its idempotency record, a refusal that changed nothing, a ring full, an archive lookup that
// sent a new command) it is journaled now and the answer waits for that.
void IoThread::settle_nonce(Slot& slot) {
  LoggedNonce& logged = slot.logged_nonce;
  PAYCORE_ASSERT(logged.pending);
  logged.pending = false;
  // Only an answer that came back says anything: a waiting slot's response is an earlier one's.
  if (slot.state == SlotState::ready && slot.kind == SlotKind::engine && slot.response.nonce_logged) {
    ServerMetrics::bump(metrics.nonces_logged);
    return;
  }
  slot.nonce_seq = server_.journal_->append(logged.principal.view(), logged.nonce.view(),
                                            logged.timestamp_s);
  ServerMetrics::bump(metrics.nonces_journaled);
}

// Per-principal token buckets (net/rate_limit.hpp): true (and a 429 answer) when over the limit.
bool IoThread::rate_limited(Slot& slot, const auth::Principal& principal, Route route,
                            const HttpRequest& request, std::uint32_t cost) {
  RateLimiter& limiter = server_.rate_limiter_;
  if (!limiter.enabled()) return false;
  const RateClass rate_class = rate_class_of(route, request.method_kind == HttpMethod::get);
  const std::uint32_t wait_s = limiter.take(principal.id.view(), rate_class, cost, now_us_);
  if (wait_s == 0) return false;
  slot.retry_after_s = wait_s;
  finish_local(
      slot,
      LocalError{429, "rate_limited", "too many requests; retry after Retry-After seconds", {}});
  return true;
}

// A connection closing with requests not yet answered (the client went away, its output
// overflowed, the shutdown's grace ran out): their nonces were accepted and the requests may
// still be executed, or were refused in a way that keeps nothing (a full ring, a refusal that
// changed nothing), so each goes to the journal unless its answer already said its record holds
// it. Nobody waits for these records.
void IoThread::settle_nonces_of_closed(Connection& c) {
  for (Slot& slot : c.slots) {
    if (slot.state != SlotState::free && slot.logged_nonce.pending) settle_nonce(slot);
  }
}

// The slot's command, with its nonce when that goes to the log (LoggedNonce).
void IoThread::submit_single(Connection& c, Slot& slot, const Command& command, RequestOp op) {
  const AnswerToken token = AnswerToken::for_request(c.index, c.generation, slot_index(c, slot));
  const LoggedNonce* nonce = slot.logged_nonce.pending ? &slot.logged_nonce : nullptr;
  if (!submit(token, command, op, nonce, slot.min_lsn)) finish_local(slot, busy_answer);
}

bool IoThread::submit(const AnswerToken& token, const Command& command, RequestOp op,
                      const LoggedNonce* nonce, std::uint64_t min_lsn) {
  Request request;
  request.command = command;
  if (nonce != nullptr) {  // the signer is the command's principal
    PAYCORE_ASSERT(command.principal == nonce->principal);
    request.command.flags |= command_flag_nonce;
    request.command.nonce = nonce->nonce;
    request.command.nonce_timestamp_s = nonce->timestamp_s;
  }
  request.op = op;
  request.min_lsn = min_lsn;
  request.token = token.pack();
  request.submitted_ns = monotonic_ns();
  if (!server_.engine_.submit(producer_, request)) return false;
  ++submitted_;
  return true;
}

}  // namespace paycore::net
