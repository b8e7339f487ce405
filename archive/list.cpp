// ArchiveStore::list_payments: one page of a merchant's archived payments, a seek and a walk
// over its 'L' keys (archive/format.hpp), which sort newest first and hold the whole record.
//
// The walk goes forward (older) for a first page and for starting_after, backward (newer) for
// ending_before; either way the page is returned newest first. Every entry met counts toward
// scan_max, matching or not; after `limit` matches the walk looks for one more to tell has_more
// exactly, unless scan_max stops it first (then has_more is true and `resume` says where the
// walk stopped).
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "archive/format.hpp"
#include "archive/store.hpp"
#include "archive/store_impl.hpp"
#include "core/id.hpp"

namespace paycore {

using archive::slice;
using archive::view;

namespace {

bool status_is_valid(const std::optional<PaymentStatus>& status) {
  return !status || payment_status_is_valid(static_cast<std::uint8_t>(*status));
}

Status check_cursor(const PaymentListQuery& q) {
  if (q.cursor == PaymentListCursor::none) return Status::ok();
  if (q.cursor != PaymentListCursor::starting_after &&
      q.cursor != PaymentListCursor::ending_before) {
    return Status::invalid_argument("archive listing: unknown cursor kind");
  }
  if (!id_is_valid(q.cursor_position.order_id) || q.cursor_position.created_at_us < 0) {
    return Status::invalid_argument(
        "archive listing: the cursor needs a valid order_id and "
        "created_at_us >= 0");
  }
  return Status::ok();
}

Status check_query(const PaymentListQuery& q) {
  if (!id_is_valid(q.merchant_id)) {
    return Status::invalid_argument("archive listing: merchant_id is not a valid id");
  }
  if (q.limit < 1 || q.limit > payment_list_limit_max) {
    return Status::invalid_argument("archive listing: limit " + std::to_string(q.limit) +
                                    " is outside 1.." + std::to_string(payment_list_limit_max));
  }
  if (q.scan_max < 1 || q.scan_max > payment_list_scan_max_max) {
    return Status::invalid_argument("archive listing: scan_max " + std::to_string(q.scan_max) +
                                    " is outside 1.." + std::to_string(payment_list_scan_max_max));
  }
  if (!q.channel.empty() && !id_is_valid(q.channel)) {
    return Status::invalid_argument("archive listing: channel is not a valid id");
  }
  if (!status_is_valid(q.status)) return Status::invalid_argument("archive listing: bad status");
  if (!std::is_sorted(q.skip_order_ids.begin(), q.skip_order_ids.end())) {
    return Status::invalid_argument("archive listing: skip_order_ids is not sorted");
  }
  return check_cursor(q);
}

// The merchant's 'L' keys that the created bounds allow: [lower, upper).
struct ListRange {
  std::string lower;  // the newest allowed
  std::string upper;  // past the oldest allowed
};

std::optional<ListRange> list_range(const PaymentListQuery& q) {
  const std::optional<std::int64_t>& lt = q.created_lt_us;
  const std::optional<std::int64_t>& gte = q.created_gte_us;
  // created_at_us is never negative, so created_lt <= 0 and created_gte >= created_lt are empty.
  if (lt && (*lt <= 0 || (gte && *gte >= *lt))) return std::nullopt;
  ListRange range;
  range.lower =
      lt ? archive::list_time_key(q.merchant_id, *lt - 1) : archive::list_prefix(q.merchant_id);
  range.upper = gte && *gte > 0 ? archive::list_time_key(q.merchant_id, *gte - 1)
                                : archive::list_prefix_end(q.merchant_id);
  return range;
}

std::string cursor_key(const PaymentListQuery& q) {
  return archive::list_key(q.merchant_id, q.cursor_position.created_at_us,
                           q.cursor_position.order_id);
}

// Puts `it` on the first entry to examine; false when the range holds none in that direction.
bool seek_start(rocksdb::Iterator* it, const PaymentListQuery& q, const ListRange& range) {
  if (q.cursor == PaymentListCursor::none) {
    it->Seek(slice(range.lower));
    return true;
  }
  const std::string key = cursor_key(q);
  if (q.cursor == PaymentListCursor::starting_after) {
    it->Seek(slice(std::max(key, range.lower)));
    if (it->Valid() && view(it->key()) == key) it->Next();
    return true;
  }
  if (key < range.lower) return false;  // nothing allowed is newer than the cursor
  if (key >= range.upper) {
    it->SeekToLast();  // the oldest allowed: every allowed entry is newer than the cursor
    return true;
  }
  it->SeekForPrev(slice(key));
  if (it->Valid() && view(it->key()) == key) it->Prev();
  return true;
}

bool matches(const PaymentListQuery& q, const PaymentView& payment) {
  if (!payment_list_matches(q, payment)) return false;
  return !std::binary_search(q.skip_order_ids.begin(), q.skip_order_ids.end(),
                             payment.order_id.view(), std::less<>());
}

PaymentListPosition position_of(const PaymentView& payment) {
  return {payment.created_at_us, std::string(payment.order_id.view())};
}

// Examines entries from where `it` stands, in the walk's direction.
StatusOr<PaymentPage> walk(rocksdb::Iterator* it, const PaymentListQuery& q, bool backward) {
  PaymentPage page;
  std::uint32_t examined_count = 0;
  std::optional<PaymentListPosition> consumed;  // the last entry returned or passed over
  for (; it->Valid(); backward ? it->Prev() : it->Next()) {
    if (examined_count == q.scan_max) {
      page.scan_cut = true;
      page.has_more = true;
      break;
    }
    ++examined_count;
    StatusOr<ArchivedPayment> entry = archive::decode_payment(view(it->key()), view(it->value()));
    PAYCORE_RETURN_IF_ERROR(entry.status());
    const PaymentView& payment = entry->payment;
    if (matches(q, payment)) {
      if (page.data.size() == q.limit) {
        page.has_more = true;  // one more match than the page holds
        break;
      }
      page.data.push_back(payment);
    }
    consumed = position_of(payment);
  }
  PAYCORE_RETURN_IF_ERROR(archive::from_rocksdb(it->status(), "listing archived payments"));
  PAYCORE_ASSERT_LE(page.data.size(), q.limit);
  if (page.has_more) {
    PAYCORE_ASSERT(consumed.has_value());  // scan_max >= 1 and limit >= 1: one entry was taken
    page.resume = std::move(consumed);
  }
  if (backward) std::reverse(page.data.begin(), page.data.end());
  return page;
}

}  // namespace

StatusOr<PaymentPage> ArchiveStore::list_payments(const PaymentListQuery& query) const {
  PAYCORE_RETURN_IF_ERROR(check_query(query));
  const std::optional<ListRange> range = list_range(query);
  if (!range) return PaymentPage{};
  const rocksdb::Slice lower = slice(range->lower);
  const rocksdb::Slice upper = slice(range->upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  if (!seek_start(it.get(), query, *range)) return PaymentPage{};
  return walk(it.get(), query, query.cursor == PaymentListCursor::ending_before);
}

}  // namespace paycore
