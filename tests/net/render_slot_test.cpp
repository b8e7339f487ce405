// Rendering a finished slot (net/render.hpp render_slot): the head and body of each kind of
// answer, without a server.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "core/snapshot_store.hpp"
#include "net/render.hpp"

namespace paycore::net {
namespace {

class RenderSlotTest : public ::testing::Test {
 protected:
  ResponseHead render(const Slot& slot, bool shutting_down = false) {
    const RenderContext context{engine_, stopping_, open_, {}, dir_, shutting_down};
    return render_slot(slot, context, body_, &extra_);
  }
  std::string body() const { return std::string(body_.view()); }

  EngineMetrics engine_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint32_t> open_{0};
  std::string dir_ = "/data/snapshots";
  OutBuffer body_{1 << 16};
  ExtraHeaderLines extra_;
};

TEST_F(RenderSlotTest, SnapshotAnswerNamesTheFileTheCoreWrites) {
  Slot slot;
  slot.kind = SlotKind::snapshot;
  slot.snapshot = SnapshotAnswer{true, 42, 3, 7};
  const ResponseHead head = render(slot);
  EXPECT_EQ(head.status, 200);
  EXPECT_NE(body().find("\"path\":\"" + snapshot_path(dir_, 42) + "\""), std::string::npos)
      << body();
  EXPECT_NE(body().find("\"lsn\":42"), std::string::npos) << body();
}

TEST_F(RenderSlotTest, FailedSnapshotIsUnavailable) {
  Slot slot;
  slot.kind = SlotKind::snapshot;
  EXPECT_EQ(render(slot).status, 503);
  EXPECT_NE(body().find("\"unavailable\""), std::string::npos) << body();
}

TEST_F(RenderSlotTest, MethodNotAllowedCarriesAllow) {
  Slot slot;
  slot.error = LocalError{405, "method_not_allowed", "this method is not allowed here", {}};
  slot.allow = "GET, HEAD";
  const ResponseHead head = render(slot);
  EXPECT_EQ(head.status, 405);
  ASSERT_EQ(head.extra_headers.size(), 1u);
  EXPECT_EQ(head.extra_headers[0], "Allow: GET, HEAD");
}

TEST_F(RenderSlotTest, RateLimitedCarriesRetryAfter) {
  Slot slot;
  slot.error = LocalError{429, "rate_limited", "too many requests", {}};
  slot.retry_after_s = 3;
  const ResponseHead head = render(slot);
  ASSERT_EQ(head.extra_headers.size(), 1u);
  EXPECT_EQ(head.extra_headers[0], "Retry-After: 3");
}

TEST_F(RenderSlotTest, TraceIdIsTheRequestIdHeader) {
  Slot slot;
  slot.kind = SlotKind::healthz;
  slot.trace_id = TraceIdGenerator().for_request("trace-1");
  const ResponseHead head = render(slot);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.trace_id, "trace-1");
}

TEST_F(RenderSlotTest, HeadRequestOmitsTheBody) {
  Slot slot;
  slot.kind = SlotKind::healthz;
  slot.head = true;
  EXPECT_TRUE(render(slot).omit_body);
}

TEST_F(RenderSlotTest, ShuttingDownClosesTheConnection) {
  Slot slot;
  slot.kind = SlotKind::healthz;
  EXPECT_TRUE(render(slot).keep_alive);
  EXPECT_FALSE(render(slot, true).keep_alive);
}

TEST_F(RenderSlotTest, ReadyzIsUnavailableWhileRecovering) {
  Slot slot;
  slot.kind = SlotKind::readyz;
  EXPECT_EQ(render(slot).status, 503);
  engine_.ready.store(true);
  EXPECT_EQ(render(slot).status, 200);
  stopping_.store(true);
  EXPECT_EQ(render(slot).status, 503);
}

TEST_F(RenderSlotTest, BatchItemsKeepTheirOrderAndStatus) {
  Slot slot;
  slot.kind = SlotKind::batch;
  slot.batch.entries.resize(2);
  slot.batch.entries[0].local = true;
  slot.batch.entries[0].error = LocalError{429, "rate_limited", "over", {}};
  slot.batch.entries[1].result.code = ResultCode::insufficient_funds;
  slot.batch.entries[1].result.kind = CommandKind::create_payment;
  EXPECT_EQ(render(slot).status, 200);
  const std::size_t first = body().find("\"status\":429");
  const std::size_t second = body().find("\"status\":402");
  ASSERT_NE(first, std::string::npos) << body();
  ASSERT_NE(second, std::string::npos) << body();
  EXPECT_LT(first, second);
}

}  // namespace
}  // namespace paycore::net
