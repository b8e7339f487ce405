// The core's share of a listing (core/payment_list.hpp): the cursor, the payments back from the
// archive, and a bounded step of the walk down the merchant's chain of rows.
#include "core/payment_list.hpp"

#include <algorithm>

#include "base/assert.hpp"
#include "core/apply.hpp"
#include "core/state.hpp"

namespace paycore {
namespace {

bool older_than(std::int64_t created_at_us, std::string_view order_id,
                const PaymentListPosition& at) {
  return created_at_us < at.created_at_us ||
         (created_at_us == at.created_at_us && order_id > at.order_id);
}

bool newer_than(std::int64_t created_at_us, std::string_view order_id,
                const PaymentListPosition& at) {
  return created_at_us > at.created_at_us ||
         (created_at_us == at.created_at_us && order_id < at.order_id);
}

bool row_is_live(const State& s, std::uint32_t row) {
  return row != row_none && row >= s.payments.begin() && row < s.payments.size();
}

// Keeps `v` among the best limit + 1 of `out` (newest first): the newest ones in a walk
// towards older payments, the oldest ones for ending_before.
void keep_best(const PaymentListQuery& q, const PaymentView& v, std::vector<PaymentView>* out) {
  out->insert(std::upper_bound(out->begin(), out->end(), v, payment_list_before), v);
  if (out->size() <= q.limit + std::size_t{1}) return;
  if (q.cursor == PaymentListCursor::ending_before) {
    out->erase(out->begin());
  } else {
    out->pop_back();
  }
}

// Finds the cursor's place in memory, unless the edge found it in the archive already.
ResultCode resolve_cursor(const State& s, std::uint32_t merchant, PaymentListWork* w) {
  if (w->query.cursor == PaymentListCursor::none || w->cursor_resolved) return ResultCode::ok;
  const std::string_view order_id = w->cursor_order_id.view();
  const std::uint32_t row = merchant == row_none ? row_none : s.find_payment(merchant, order_id);
  if (row != row_none) {
    w->query.cursor_position = {s.payments[row].created_at_us, std::string(order_id)};
    w->cursor_resolved = true;
    // Made here: the rows older than it are those after it in the merchant's chain.
    const bool made_here = (s.payments[row].flags & payment_flag_from_archive) == 0;
    if (made_here && w->query.cursor == PaymentListCursor::starting_after) {
      w->hot_resume_row = s.payments[row].previous_of_merchant;
      if (!row_is_live(s, w->hot_resume_row)) w->hot_done = true;
    }
    return ResultCode::ok;
  }
  if (merchant != row_none && s.order_may_be_archived(merchant, order_id)) {
    return ResultCode::archive_check_needed;
  }
  return ResultCode::invalid_field;
}

// Every payment of the merchant back from the archive: skipped by the archive walk, and the
// ones in range and matching offered at their place.
void collect_returned(const State& s, std::uint32_t merchant, std::int64_t now_us,
                      PaymentListWork* w) {
  const PaymentListQuery& q = w->query;
  for (std::uint32_t row = s.accounts[merchant].newest_returned_payment; row_is_live(s, row);
       row = s.payments[row].previous_of_merchant) {
    const PaymentRow& p = s.payments[row];
    const std::string_view order_id = s.str(p.order_id);
    w->returned_order_ids.emplace_back(order_id);
    if (!payment_list_in_range(q, p.created_at_us, order_id)) continue;
    const PaymentView v = payment_view(s, row, now_us);
    if (payment_list_matches(q, v)) keep_best(q, v, &w->returned);
  }
  std::sort(w->returned_order_ids.begin(), w->returned_order_ids.end());
}

// Whether the walk (newest first) is past every row that can be in range.
bool walk_is_past_range(const PaymentListQuery& q, std::int64_t created_at_us,
                        std::string_view order_id) {
  if (q.created_gte_us && created_at_us < *q.created_gte_us) return true;
  return q.cursor == PaymentListCursor::ending_before &&
         !newer_than(created_at_us, order_id, q.cursor_position);
}

void finish_walk(PaymentListWork* w) {
  w->hot_done = true;
  if (w->query.cursor != PaymentListCursor::ending_before) return;
  // The ring's oldest write (the newest survivor) sits at hot_ring_next once it has wrapped.
  if (w->hot.size() == w->query.limit + std::size_t{1}) {
    std::rotate(w->hot.begin(), w->hot.begin() + w->hot_ring_next, w->hot.end());
  }
  w->hot_ring_next = 0;
}

// Takes a match; true when the page is full (never for ending_before, which needs the oldest).
bool take_match(const PaymentView& v, PaymentListWork* w) {
  const std::size_t keep = w->query.limit + std::size_t{1};
  if (w->query.cursor != PaymentListCursor::ending_before) {
    w->hot.push_back(v);
    return w->hot.size() == keep;
  }
  if (w->hot.size() < keep) {
    w->hot.push_back(v);
  } else {
    w->hot[w->hot_ring_next] = v;
  }
  w->hot_ring_next = static_cast<std::uint32_t>((w->hot_ring_next + 1) % keep);
  return false;
}

// Examines at most scan_max rows of the merchant's chain (made here only), newest first.
void walk_hot(const State& s, std::uint32_t merchant, std::int64_t now_us, PaymentListWork* w) {
  const PaymentListQuery& q = w->query;
  std::uint32_t row = w->hot_resume_row == row_none ? s.accounts[merchant].newest_payment
                                                    : w->hot_resume_row;
  for (std::uint32_t examined = 0; row_is_live(s, row); ++examined) {
    if (examined == q.scan_max) {
      w->hot_resume_row = row;
      return;
    }
    const PaymentRow& p = s.payments[row];
    const std::string_view order_id = s.str(p.order_id);
    if (walk_is_past_range(q, p.created_at_us, order_id)) break;
    if (payment_list_in_range(q, p.created_at_us, order_id)) {
      const PaymentView v = payment_view(s, row, now_us);
      if (payment_list_matches(q, v) && take_match(v, w)) break;
    }
    row = p.previous_of_merchant;
  }
  finish_walk(w);
}

}  // namespace

bool payment_list_in_range(const PaymentListQuery& q, std::int64_t created_at_us,
                           std::string_view order_id) {
  if (q.created_gte_us && created_at_us < *q.created_gte_us) return false;
  if (q.created_lt_us && created_at_us >= *q.created_lt_us) return false;
  switch (q.cursor) {
    case PaymentListCursor::none: return true;
    case PaymentListCursor::starting_after:
      return older_than(created_at_us, order_id, q.cursor_position);
    case PaymentListCursor::ending_before:
      return newer_than(created_at_us, order_id, q.cursor_position);
  }
  return false;
}

bool payment_list_matches(const PaymentListQuery& q, const PaymentView& p) {
  if (q.status && p.status != *q.status) return false;
  if (!q.channel.empty() && p.channel.view() != q.channel) return false;
  return true;
}

bool payment_list_before(const PaymentView& a, const PaymentView& b) {
  return a.created_at_us > b.created_at_us ||
         (a.created_at_us == b.created_at_us && a.order_id.view() < b.order_id.view());
}

bool payment_list_needs_archive(const PaymentListWork& w) {
  if (!w.archive_in_use) return false;
  return w.query.cursor == PaymentListCursor::ending_before ||
         w.hot.size() <= w.query.limit;
}

bool merge_payment_page(const PaymentListWork& w, std::vector<PaymentView>* page) {
  std::vector<PaymentView> all;
  all.reserve(w.hot.size() + w.returned.size() + w.archived.size());
  all.insert(all.end(), w.hot.begin(), w.hot.end());
  all.insert(all.end(), w.returned.begin(), w.returned.end());
  all.insert(all.end(), w.archived.begin(), w.archived.end());
  // Stable: a payment in memory stays ahead of its archived copy (same place in the order).
  std::stable_sort(all.begin(), all.end(), payment_list_before);
  const auto same_payment = [](const PaymentView& a, const PaymentView& b) {
    return a.order_id == b.order_id;
  };
  all.erase(std::unique(all.begin(), all.end(), same_payment), all.end());
  const std::size_t limit = w.query.limit;
  const bool has_more = all.size() > limit || w.archived_more;
  const std::size_t take = std::min(limit, all.size());
  const bool oldest = w.query.cursor == PaymentListCursor::ending_before;
  const auto first = oldest ? all.end() - static_cast<std::ptrdiff_t>(take) : all.begin();
  page->assign(first, first + static_cast<std::ptrdiff_t>(take));
  return has_more;
}

ResultCode list_refunds_in_memory(const State& s, std::uint32_t merchant, PaymentListWork* w) {
  const std::string_view order_id = w->refunds_order_id.view();
  const std::uint32_t row = merchant == row_none ? row_none : s.find_payment(merchant, order_id);
  if (row == row_none) {
    if (merchant == row_none || !s.order_may_be_archived(merchant, order_id)) {
      return ResultCode::payment_not_found;
    }
    w->refunds_in_archive = true;
    return ResultCode::ok;
  }
  const PaymentRow& p = s.payments[row];
  for (std::uint32_t r = p.first_refund; r != row_none; r = s.refunds[r].next) {
    w->refunds.push_back(refund_view(s, r));
  }
  w->refunds_in_archive = (p.flags & payment_flag_from_archive) != 0;
  w->refunds_payment_in_memory = true;
  return ResultCode::ok;
}

std::vector<RefundView> merge_refunds(const PaymentListWork& w) {
  std::vector<RefundView> out = w.archived_refunds;
  for (const RefundView& r : w.refunds) {
    const bool archived = std::any_of(w.archived_refunds.begin(), w.archived_refunds.end(),
                                      [&](const RefundView& a) { return same_refund(a, r); });
    if (!archived) out.push_back(r);
  }
  return out;
}

ResultCode list_payments_in_memory(const State& s, std::uint32_t merchant, std::int64_t now_us,
                                   PaymentListWork* w) {
  PAYCORE_ASSERT(w != nullptr);
  // At every step: payments may start leaving memory between two steps of one listing.
  w->archive_in_use = s.archived_rows_end > 0 || s.payments.begin() > 0;
  if (!w->started) {
    const ResultCode cursor = resolve_cursor(s, merchant, w);
    if (cursor != ResultCode::ok) return cursor;
    w->started = true;
    if (merchant == row_none) {
      w->hot_done = true;
      return ResultCode::ok;
    }
    collect_returned(s, merchant, now_us, w);
    // A cursor found in the archive, or back from it, is older than every row made here
    // (rows leave memory from the front of the table): no row made here is older than it.
    if (w->query.cursor == PaymentListCursor::starting_after && w->hot_resume_row == row_none) {
      w->hot_done = true;
    }
  }
  if (!w->hot_done && merchant != row_none) walk_hot(s, merchant, now_us, w);
  return ResultCode::ok;
}

}  // namespace paycore
