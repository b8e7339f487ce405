// ArchiveStore::list_payments: newest first with ties by order_id, each filter, both cursors,
// the created bounds, the limit and the scan_max cut.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "archive/store.hpp"
#include "tests/archive/archive_test_util.hpp"

namespace paycore {
namespace {

using testing::ArchiveDir;
using testing::make_payment;
using testing::open_store;
using testing::write_job;

constexpr std::int64_t t0_us = 1'700'000'000'000'000;

// merchant "m1": p00..p19 created at t0 + 10 * i (p19 newest), except p05 and p06 which share
// p04's time; every fifth one FAILED, every fourth through "wechat". Merchants "m10" and "m"
// have payments too (their ids would share a prefix with "m1" without the length byte).
class ArchiveListing : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(dir_.store());
    ASSERT_NE(store_, nullptr);
    std::vector<ArchivedPayment> payments;
    for (int i = 0; i < 20; ++i) {
      const std::int64_t at_us = t0_us + 10 * ((i == 5 || i == 6) ? 4 : i);
      const PaymentStatus status = i % 5 == 0 ? PaymentStatus::failed : PaymentStatus::completed;
      payments.push_back(
          make_payment("m1", name(i), at_us, status, i % 4 == 0 ? "wechat" : "alipay"));
    }
    payments.push_back(make_payment("m10", "x1", t0_us + 1000));
    payments.push_back(make_payment("m", "x2", t0_us + 1000));
    ASSERT_TRUE(write_job(*store_, payments).is_ok());
  }

  static std::string name(int i) { return (i < 10 ? "p0" : "p") + std::to_string(i); }

  PaymentListQuery query() const {
    PaymentListQuery q;
    q.merchant_id = "m1";
    q.limit = 100;
    return q;
  }

  PaymentPage list(const PaymentListQuery& q) const {
    StatusOr<PaymentPage> page = store_->list_payments(q);
    EXPECT_TRUE(page.is_ok()) << page.status().to_string();
    return page.is_ok() ? std::move(*page) : PaymentPage{};
  }

  static std::vector<std::string> ids(const PaymentPage& page) {
    std::vector<std::string> out;
    for (const PaymentView& p : page.data) out.emplace_back(p.order_id.view());
    return out;
  }

  ArchiveDir dir_;
  std::unique_ptr<ArchiveStore> store_;
};

// Newest first; p04, p05 and p06 share a time and come by order_id ascending.
const std::vector<int> newest_first = {19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
                                       9,  8,  7,  4,  5,  6,  3,  2,  1,  0};

std::vector<std::string> expected(std::vector<int> numbers) {
  std::vector<std::string> out;
  for (int i : numbers) out.push_back((i < 10 ? "p0" : "p") + std::to_string(i));
  return out;
}

TEST_F(ArchiveListing, NewestFirstTiesByOrderIdAscending) {
  const PaymentPage page = list(query());
  EXPECT_EQ(ids(page), expected(newest_first));
  EXPECT_FALSE(page.has_more);
  EXPECT_FALSE(page.resume.has_value());
}

TEST_F(ArchiveListing, OnlyTheMerchantsOwnPayments) {
  PaymentListQuery q = query();
  q.merchant_id = "m10";
  EXPECT_EQ(ids(list(q)), std::vector<std::string>{"x1"});
  q.merchant_id = "m";
  EXPECT_EQ(ids(list(q)), std::vector<std::string>{"x2"});
  q.merchant_id = "m2";
  EXPECT_TRUE(list(q).data.empty());
}

TEST_F(ArchiveListing, StatusFilter) {
  PaymentListQuery q = query();
  q.status = PaymentStatus::failed;
  EXPECT_EQ(ids(list(q)), expected({15, 10, 5, 0}));
}

// Payments back in memory are passed over (their archived copies are stale), and count toward
// nothing: the page fills from the next ones. An unsorted skip list is refused.
TEST_F(ArchiveListing, SkippedOrderIdsArePassedOver) {
  PaymentListQuery q = query();
  q.limit = 3;
  q.skip_order_ids = {"p17", "p19"};
  const PaymentPage page = list(q);
  EXPECT_EQ(ids(page), expected({18, 16, 15}));
  EXPECT_TRUE(page.has_more);
  q.skip_order_ids = {"p19", "p17"};
  EXPECT_EQ(store_->list_payments(q).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ArchiveListing, ChannelFilter) {
  PaymentListQuery q = query();
  q.channel = "wechat";
  EXPECT_EQ(ids(list(q)), expected({16, 12, 8, 4, 0}));
  q.status = PaymentStatus::failed;
  EXPECT_EQ(ids(list(q)), expected({0}));
}

TEST_F(ArchiveListing, CreatedBoundsAreGteAndLt) {
  PaymentListQuery q = query();
  q.created_gte_us = t0_us + 40;
  q.created_lt_us = t0_us + 90;
  EXPECT_EQ(ids(list(q)), expected({8, 7, 4, 5, 6}));
  q.created_gte_us = t0_us + 41;
  EXPECT_EQ(ids(list(q)), expected({8, 7}));
  q.created_gte_us.reset();
  q.created_lt_us = t0_us + 10;
  EXPECT_EQ(ids(list(q)), expected({0}));
  q.created_gte_us = t0_us + 10;  // an empty range
  EXPECT_TRUE(list(q).data.empty());
  q.created_gte_us.reset();
  q.created_lt_us = 0;
  EXPECT_TRUE(list(q).data.empty());
}

TEST_F(ArchiveListing, LimitCutsThePageAndSaysHasMore) {
  PaymentListQuery q = query();
  q.limit = 3;
  PaymentPage page = list(q);
  EXPECT_EQ(ids(page), expected({19, 18, 17}));
  EXPECT_TRUE(page.has_more);
  EXPECT_FALSE(page.scan_cut);
  q.limit = 20;
  page = list(q);
  EXPECT_EQ(page.data.size(), 20U);
  EXPECT_FALSE(page.has_more);  // exactly all: the look-ahead found nothing more
}

TEST_F(ArchiveListing, StartingAfterWalksEveryPaymentOncePageByPage) {
  PaymentListQuery q = query();
  q.limit = 3;
  std::vector<std::string> all;
  for (int pages = 0; pages < 20; ++pages) {
    const PaymentPage page = list(q);
    for (const std::string& id : ids(page)) all.push_back(id);
    if (!page.has_more) break;
    q.cursor = PaymentListCursor::starting_after;
    q.cursor_position = {page.data.back().created_at_us,
                         std::string(page.data.back().order_id.view())};
  }
  EXPECT_EQ(all, expected(newest_first));
}

TEST_F(ArchiveListing, EndingBeforeIsThePageJustNewerNewestFirst) {
  PaymentListQuery q = query();
  q.limit = 3;
  q.cursor = PaymentListCursor::ending_before;
  q.cursor_position = {t0_us + 40, name(5)};  // between p04 and p06 in the listing
  PaymentPage page = list(q);
  EXPECT_EQ(ids(page), expected({8, 7, 4}));
  EXPECT_TRUE(page.has_more);
  q.cursor_position = {t0_us + 170, name(17)};
  page = list(q);
  EXPECT_EQ(ids(page), expected({19, 18}));
  EXPECT_FALSE(page.has_more);
}

TEST_F(ArchiveListing, CursorsWorkFromAPositionNotArchived) {
  PaymentListQuery q = query();
  q.limit = 2;
  q.cursor = PaymentListCursor::starting_after;
  q.cursor_position = {t0_us + 45, "hot_payment"};  // a hot payment between p07 and p04
  EXPECT_EQ(ids(list(q)), expected({4, 5}));
  q.cursor = PaymentListCursor::ending_before;
  EXPECT_EQ(ids(list(q)), expected({8, 7}));
}

TEST_F(ArchiveListing, CursorsRespectTheCreatedBounds) {
  PaymentListQuery q = query();
  q.created_gte_us = t0_us + 100;
  q.created_lt_us = t0_us + 150;
  q.cursor = PaymentListCursor::starting_after;
  q.cursor_position = {t0_us + 500, "future"};  // newer than the range: from its newest
  EXPECT_EQ(ids(list(q)), expected({14, 13, 12, 11, 10}));
  q.cursor = PaymentListCursor::ending_before;
  q.cursor_position = {t0_us, "p00"};  // older than the range: up to its oldest
  EXPECT_EQ(ids(list(q)), expected({14, 13, 12, 11, 10}));
  q.cursor_position = {t0_us + 500, "future"};  // newer than the range: nothing newer in it
  EXPECT_TRUE(list(q).data.empty());
}

TEST_F(ArchiveListing, ScanMaxCutsThePageWithHasMoreAndAResumePosition) {
  PaymentListQuery q = query();
  q.status = PaymentStatus::failed;
  q.scan_max = 6;
  std::vector<std::string> found;
  int pages = 0;
  for (; pages < 10; ++pages) {
    const PaymentPage page = list(q);
    for (const std::string& id : ids(page)) found.push_back(id);
    if (!page.has_more) break;
    ASSERT_TRUE(page.resume.has_value());
    q.cursor = PaymentListCursor::starting_after;
    q.cursor_position = *page.resume;
  }
  EXPECT_EQ(found, expected({15, 10, 5, 0}));
  EXPECT_GE(pages, 3);  // 20 entries, 6 examined per page
  q = query();
  q.status = PaymentStatus::failed;
  q.scan_max = 3;
  const PaymentPage first = list(q);  // examines p19, p18, p17: no match
  EXPECT_TRUE(first.data.empty());
  EXPECT_TRUE(first.has_more);
  EXPECT_TRUE(first.scan_cut);
  EXPECT_EQ(first.resume, (PaymentListPosition{t0_us + 170, "p17"}));
}

TEST_F(ArchiveListing, ScanMaxCutEndingBeforeResumesNewer) {
  PaymentListQuery q = query();
  q.status = PaymentStatus::failed;
  q.scan_max = 4;
  q.cursor = PaymentListCursor::ending_before;
  q.cursor_position = {t0_us, "p00"};
  std::vector<std::string> found;
  for (int pages = 0; pages < 10; ++pages) {
    const PaymentPage page = list(q);
    // Each page is newest first; pages come oldest first: prepend to keep newest first.
    const std::vector<std::string> page_ids = ids(page);
    found.insert(found.begin(), page_ids.begin(), page_ids.end());
    if (!page.has_more) break;
    q.cursor_position = *page.resume;
  }
  EXPECT_EQ(found, expected({15, 10, 5}));
}

TEST_F(ArchiveListing, QueryOutOfItsRangesIsInvalidArgument) {
  const auto code = [&](PaymentListQuery q) { return store_->list_payments(q).status().code(); };
  PaymentListQuery q = query();
  q.limit = 0;
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
  q.limit = payment_list_limit_max + 1;
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
  q = query();
  q.scan_max = 0;
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
  q = query();
  q.merchant_id = "";
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
  q = query();
  q.cursor = PaymentListCursor::starting_after;  // without a cursor position
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
  q = query();
  q.channel = "we chat";
  EXPECT_EQ(code(q), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace paycore
