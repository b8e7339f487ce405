#pragma once
// A request in flight on a connection (a Slot of its pipeline) and what its answer is made of.
// Filled by the I/O thread (net/io_thread.hpp) when the request is decided (net/decide.hpp) and
// when the engine answers; read by the renderer (net/render.hpp) when the slot reaches the head
// of its connection's queue (answers go out in request order).

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/engine.hpp"
#include "core/payment_list.hpp"
#include "net/events_call.hpp"
#include "net/request_json.hpp"
#include "net/routes.hpp"

namespace paycore::net {

/// What a slot's answer is made of; each kind names the fields it uses.
enum class SlotKind : std::uint8_t {
  local_error,  // `error` (+ `allow` for 405, `retry_after_s` for 429): decided in net
  engine,       // `response`: one command's result
  batch,        // `batch`: one entry per item of POST /v1/payments/batch
  healthz,      // nothing: rendered from the server's state when it is written
  readyz,
  metrics,
  snapshot,  // `snapshot`: the answer to POST /v1/admin/snapshot
  list,      // `list`: GET /v1/payments (net/io_thread_list.cpp)
  events,    // `events`: the events and webhook routes (net/io_thread_events.cpp)
};
enum class SlotState : std::uint8_t { free, waiting, ready };

/// One item of a batch: answered in net (`local`: not decodable, over the rate limit, ring
/// full) or by the engine (`result`).
struct BatchEntry {
  bool local = false;
  std::uint8_t archive_lookups = 0;  // lookups made for this item (net/archive_lookup.hpp)
  LocalError error;
  Result result;
};

/// The items of a batch slot and how many the engine still owes.
struct BatchAnswer {
  std::vector<BatchEntry> entries;  // capacity kept between batches
  std::uint32_t pending = 0;        // entries still with the engine
};

/// The engine's answer to a snapshot request (Response's snapshot fields, copied out).
struct SnapshotAnswer {
  bool ok = false;
  std::uint64_t lsn = 0;
  std::uint32_t accounts = 0;
  std::uint32_t payments = 0;
};

/// A listing: its work while the engine and the archive serve it, then its page.
struct ListAnswer {
  PaymentListWork* work = nullptr;  // owned by the I/O thread (IoThread::lists_); null once done
  std::vector<PaymentView> page;    // payments: newest first, at most the request's limit
  bool has_more = false;
  std::vector<RefundView> refunds;  // refunds: in the order they were made
};

/// A single write's nonce, sent to the log in its command (Command::nonce) rather than to the
/// nonce journal: settled when the answer reaches the head of its connection's queue
/// (IoThread::settle_nonce), journaled then unless the engine says its record holds it.
struct LoggedNonce {
  bool pending = false;
  Id principal;
  Id nonce;
  std::int64_t timestamp_s = 0;
};

/// One request in flight on a connection, answered when it reaches the head of the queue.
struct Slot {
  SlotState state = SlotState::free;
  SlotKind kind = SlotKind::local_error;
  Route route = Route::unmatched;
  bool keep_alive = true;
  bool head = false;  // a HEAD request: answered as GET without the body
  std::int64_t start_us = 0;
  TraceId trace_id;  // X-Request-Id: echoed or generated (not the idempotency key request_id)
  LocalError error;
  std::string_view allow;  // 405: the Allow header's methods
  Response response;
  BatchAnswer batch;
  SnapshotAnswer snapshot;
  ListAnswer list;
  EventsReply events;  // its body is released once written (a page can be large)
  std::uint64_t nonce_seq = 0;      // rendered only once the nonce journal has this durable
  LoggedNonce logged_nonce;
  std::uint32_t retry_after_s = 0;  // 429: the Retry-After header
  std::uint8_t archive_lookups = 0;  // lookups made for this request (net/archive_lookup.hpp)
  std::uint64_t min_lsn = 0;  // Paycore-Min-Lsn: handed to the core with its command (0: none)
};

}  // namespace paycore::net
