#pragma once
// Listing a merchant's payments across both tiers (docs/api.md `GET /v1/payments`,
// docs/design.md "Listing across tiers"). The order is created_at descending, ties by order_id
// ascending (bytewise); the engine stamps every command with a strictly increasing timestamp,
// so two payments of one paycore never tie, and a payment's place in the order never changes.
//
// A page is the merge of three sources, each giving its best `limit + 1` candidates:
//  - the payments in memory that were made here (the merchant's chain of rows, newest first;
//    every one of them is newer than every archived payment, since rows leave memory from the
//    front of the table);
//  - the payments that came back from the archive (a command on a cold payment) and are in
//    memory again: their archived copies are stale, so the archive walk skips them and the
//    core gives their current version;
//  - the archive (archive/list.cpp), walked off the core thread.
// The core's part is list_payments_in_memory, run on the core thread by the read command
// `list_payments`; the edge (net/io_thread_list.cpp) merges.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "id.hpp"
#include "model.hpp"
#include "result.hpp"

namespace paycore {

class State;

/// A place in a merchant's listing: the payment at (created_at_us, order_id). It need not still
/// exist, nor be archived: the listing continues from where it would be.
struct PaymentListPosition {
  std::int64_t created_at_us = 0;
  std::string order_id;
  friend bool operator==(const PaymentListPosition&, const PaymentListPosition&) = default;
};

enum class PaymentListCursor : std::uint8_t {
  none = 0,        // from the newest
  starting_after,  // payments older than the cursor position
  ending_before,   // the `limit` payments just newer than the cursor position
};

inline constexpr std::uint32_t payment_list_limit_max = 100;
inline constexpr std::uint32_t payment_list_limit_default = 10;
inline constexpr std::uint32_t payment_list_scan_max_default = 10'000;
inline constexpr std::uint32_t payment_list_scan_max_max = 1'000'000;

/// One page of a merchant's payments. Order: created_at descending, ties by order_id ascending
/// (bytewise), in every direction.
struct PaymentListQuery {
  std::string merchant_id;   // a valid id (core/id.hpp)
  std::uint32_t limit = payment_list_limit_default;  // 1..payment_list_limit_max
  PaymentListCursor cursor = PaymentListCursor::none;
  PaymentListPosition cursor_position;         // when cursor != none
  std::optional<PaymentStatus> status;         // only payments with this status
  std::string channel;                         // empty: any channel; else only this one
  std::optional<std::int64_t> created_gte_us;  // created_at_us >= this
  std::optional<std::int64_t> created_lt_us;   // created_at_us < this
  // Entries examined at most (matching or not), so that a selective filter cannot hold a
  // thread for a whole merchant: 1..payment_list_scan_max_max.
  std::uint32_t scan_max = payment_list_scan_max_default;
  // Archive walks only: order ids (sorted, bytewise) whose archived copies are stale because
  // the payment is in memory again; they are passed over as if absent.
  std::vector<std::string> skip_order_ids;
};

struct PaymentPage {
  std::vector<PaymentView> data;  // newest first, at most `limit`
  // More payments may match in the direction walked: beyond the page, or not yet examined
  // because scan_max cut the walk (then `data` may be short, even empty).
  bool has_more = false;
  // With has_more: pass as cursor_position, with the same direction (starting_after for a query
  // without a cursor), to continue exactly after what this page examined.
  std::optional<PaymentListPosition> resume;
  bool scan_cut = false;  // scan_max stopped the walk
};

/// Whether `p` lies in the query's direction from its cursor and inside its created bounds
/// (not the status and channel filters).
bool payment_list_in_range(const PaymentListQuery& q, std::int64_t created_at_us,
                           std::string_view order_id);
/// Whether `p` passes the status and channel filters.
bool payment_list_matches(const PaymentListQuery& q, const PaymentView& p);
/// The listing's order: true if `a` comes before (is newer than) `b`.
bool payment_list_before(const PaymentView& a, const PaymentView& b);

/// What a listing lists: a merchant's payments, or one payment's refunds (`GET
/// /v1/payments/{order_id}/refunds`), which travel the same way.
enum class ListKind : std::uint8_t { payments = 0, refunds };

/// The core's share of one listing request, owned by the I/O thread that serves it and lent
/// to the core thread through the read command `list_payments` (Command::list) until the
/// command's result comes back (Result::list). The core reads the inputs and writes the
/// outputs; nobody else touches it meanwhile.
/// What a listing request asks for, as the edge decoded it (net/list_query.hpp).
struct PaymentListRequest {
  ListKind kind = ListKind::payments;
  PaymentListQuery query;  // merchant_id is the principal; cursor_position see PaymentListWork
  Id cursor_order_id;      // the API's cursor (empty with cursor none)
  Id refunds_order_id;     // kind refunds: the payment whose refunds are listed
};

/// The request (the inputs), then what the core and the edge keep and find while serving it.
struct PaymentListWork : PaymentListRequest {
  // query.cursor_position holds the cursor's place (the edge found the cursor in the archive);
  // otherwise the core looks the cursor up in memory.
  bool cursor_resolved = false;
  // ---- Progress, kept between turns: a walk examines at most query.scan_max rows per
  // command, and the edge hands the command in again until `hot_done`.
  bool started = false;                 // the first command has run (returned rows taken)
  std::uint32_t hot_resume_row = UINT32_MAX;  // the next row to examine (UINT32_MAX: newest)
  bool hot_done = false;
  std::uint32_t hot_ring_next = 0;      // ending_before: where the next match goes in `hot`
  // ---- Outputs.
  // Payments made here that are in range and match, newest first: the first limit + 1 in the
  // walk's direction (for ending_before, the oldest limit + 1 newer than the cursor: a ring
  // until hot_done).
  std::vector<PaymentView> hot;
  // Payments back from the archive that are in range and match (their current version),
  // newest first, at most limit + 1 of them in the direction walked.
  std::vector<PaymentView> returned;
  // Every payment of the merchant that is in memory again (in range or not, matching or not):
  // the archive walk skips them (query.skip_order_ids, sorted).
  std::vector<std::string> returned_order_ids;
  bool archive_in_use = false;  // payments have been archived: the archive may hold some
  // ---- The archive walk's (the edge's worker, net/archive_lookup.hpp): the archive's best
  // `limit` in range and matching, newest first, and whether it holds more beyond them.
  std::vector<PaymentView> archived;
  bool archived_more = false;
  // ---- kind refunds. The refunds memory holds, in the order they were made (for a payment
  // back from the archive, those made since), and whether the archive holds (earlier) ones:
  // the payment is not in memory but may be archived, or came back from it.
  std::vector<RefundView> refunds;
  bool refunds_in_archive = false;
  bool refunds_payment_in_memory = false;
  std::vector<RefundView> archived_refunds;  // the archive's, filled by the edge's worker
};

/// The refunds to show, in the order they were made: the archive's, then those memory made
/// since that the archive does not hold yet (same_refund).
std::vector<RefundView> merge_refunds(const PaymentListWork& work);

/// Whether the archive must be walked for the page once the core's steps are done: it holds
/// payments, and (for a walk towards older payments) memory did not fill the page alone --
/// every archived payment is older than every payment made here that is in memory.
bool payment_list_needs_archive(const PaymentListWork& work);

/// The page from the sources of `work` (hot, returned, archived): merged in the listing's
/// order, a payment in memory replacing an archived copy of itself, cut to query.limit on the
/// side the direction asks for (the newest for none and starting_after, the oldest for
/// ending_before), newest first into *page. Returns has_more: more payments match beyond the
/// page in that direction.
bool merge_payment_page(const PaymentListWork& work, std::vector<PaymentView>* page);

/// The core's step for kind refunds: fills refunds and refunds_in_archive for payment
/// refunds_order_id of merchant account row `merchant`. ok, or payment_not_found when the
/// payment is neither in memory nor possibly archived. O(refunds of the payment).
ResultCode list_refunds_in_memory(const State& state, std::uint32_t merchant,
                                  PaymentListWork* work);

/// Runs one step of `work` (kind payments) for merchant account row `merchant` (row_none: a merchant without
/// an account, which has no payment) at time `now_us` (statuses as a reader sees them then).
/// Returns ok, or: archive_check_needed when the cursor is not in memory but may be in the
/// archive (the edge resolves it and hands the command in again), invalid_field (field
/// starting_after or ending_before) when the cursor payment does not exist at all.
/// O(query.scan_max) rows per call, plus the merchant's returned payments on the first call.
ResultCode list_payments_in_memory(const State& state, std::uint32_t merchant,
                                   std::int64_t now_us, PaymentListWork* work);

}  // namespace paycore
