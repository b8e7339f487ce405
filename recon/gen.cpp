#include "recon/gen.hpp"

#include <cstdio>
#include <numeric>

#include "recon/statement.hpp"
#include "recon/text.hpp"
#include "base/assert.hpp"

namespace paycore::recon {
namespace {

constexpr std::uint32_t ppm_total = 1'000'000;
constexpr std::int64_t us_per_second = 1'000'000;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Everything about payment `p`, derived from (seed, p) alone so that the local pass and the
// statement pass (which visits payments in another order) agree.
struct Planned {
  FindingClass finding_class = FindingClass::matched;
  bool balance = false;
  bool refund = false;
  bool refund_missing_channel = false;
  bool refund_missing_local = false;
  bool pending = false;  // for local_not_paid: PENDING (repairable) or CANCELLED
  std::string channel;
  std::string merchant_id;
  std::string order_id;
  std::string request_id;
  std::string txn_id;
  Amount amount = 0;
  std::int64_t created_at_us = 0;
};

class Planner {
 public:
  explicit Planner(const GenOptions& options) : options_(options) {
    std::uint64_t sum = 0;
    for (std::size_t c = 1; c < finding_class_count; ++c) sum += options.class_ppm[c];
    PAYCORE_ASSERT(sum <= ppm_total);
    PAYCORE_ASSERT(!options.channels.empty());
    PAYCORE_ASSERT_GT(options.merchants_count, 0u);
    PAYCORE_ASSERT(options.cutoff_us - options.tolerance_seconds * us_per_second > options.start_us);
  }

  Planned plan(std::uint64_t p) const {
    Planned plan;
    const std::uint64_t r1 = splitmix64(options_.seed * 0x632be59bd9b4e019ULL + p);
    const std::uint64_t r2 = splitmix64(r1);
    const std::uint64_t r3 = splitmix64(r2);
    plan.balance = r2 % ppm_total < options_.balance_ppm;
    if (!plan.balance) {
      auto pick = static_cast<std::uint32_t>(r1 % ppm_total);
      for (std::size_t c = 1; c < finding_class_count; ++c) {
        if (pick < options_.class_ppm[c]) {
          plan.finding_class = static_cast<FindingClass>(c);
          break;
        }
        pick -= options_.class_ppm[c];
      }
    }
    if (plan.finding_class == FindingClass::matched && !plan.balance) {
      const auto refund_pick = static_cast<std::uint32_t>(r3 % ppm_total);
      plan.refund = refund_pick < options_.refund_ppm;
      plan.refund_missing_channel = !plan.refund && refund_pick < options_.refund_ppm +
                                                                      options_.refund_missing_channel_ppm;
      plan.refund_missing_local =
          !plan.refund && !plan.refund_missing_channel &&
          refund_pick < options_.refund_ppm + options_.refund_missing_channel_ppm +
                            options_.refund_missing_local_ppm;
    }
    plan.pending = (r3 >> 40) % 2 == 0;
    plan.channel = plan.balance ? std::string(balance_channel)
                                : options_.channels[(r2 >> 20) % options_.channels.size()];
    char text[48];
    std::snprintf(text, sizeof text, "m_%04u", static_cast<unsigned>(p % options_.merchants_count));
    plan.merchant_id = text;
    std::snprintf(text, sizeof text, "o-%010llu", static_cast<unsigned long long>(p));
    plan.order_id = text;
    std::snprintf(text, sizeof text, "rq-%010llu", static_cast<unsigned long long>(p));
    plan.request_id = text;
    std::snprintf(text, sizeof text, "2026%012llu", static_cast<unsigned long long>(p));
    plan.txn_id = text;
    plan.amount = static_cast<Amount>(100 + (r2 >> 8) % 100'000);
    const std::int64_t tolerance_us = options_.tolerance_seconds * us_per_second;
    if (plan.finding_class == FindingClass::within_cutoff) {
      plan.created_at_us = options_.cutoff_us - tolerance_us / 2;
    } else {
      // Spread before the cut-off window, leaving room for a refund an hour later.
      const std::int64_t span_us = options_.cutoff_us - tolerance_us - options_.start_us -
                                   2 * 3600 * us_per_second;
      PAYCORE_ASSERT(span_us > 0);
      const auto n = static_cast<std::int64_t>(options_.payments_count);
      plan.created_at_us = options_.start_us + static_cast<std::int64_t>(p) * (span_us / n);
    }
    return plan;
  }

 private:
  const GenOptions& options_;
};

Amount refund_amount(const Planned& plan) { return plan.amount / 3 + 1; }
std::int64_t refund_at_us(const Planned& plan) { return plan.created_at_us + 3600 * us_per_second; }

void add_local(const Planned& plan, LocalData* local) {
  const Currency cny = *currency_from_code("CNY");
  if (plan.finding_class == FindingClass::missing_local) return;
  if (plan.finding_class == FindingClass::local_anomaly) {
    LocalAnomaly anomaly;
    anomaly.channel = plan.channel;
    anomaly.channel_txn_id = plan.txn_id;
    anomaly.merchant_id = plan.merchant_id;
    anomaly.order_id = plan.order_id;
    anomaly.amount = plan.amount;
    anomaly.currency = cny;
    anomaly.status = "SUCCESS";
    anomaly.paid_at_us = plan.created_at_us;
    anomaly.reason = "unknown_order";
    local->add_anomaly(anomaly);
    return;
  }
  LocalPayment payment;
  payment.merchant_id = plan.merchant_id;
  payment.order_id = plan.order_id;
  payment.request_id = plan.request_id;
  payment.channel = plan.channel;
  payment.amount = plan.amount;
  payment.currency = cny;
  payment.created_at_us = plan.created_at_us;
  payment.updated_at_us = plan.created_at_us + 5 * us_per_second;
  payment.status = PaymentStatus::paid;
  payment.channel_txn_id = plan.balance ? std::string_view() : std::string_view(plan.txn_id);
  if (plan.finding_class == FindingClass::local_not_paid) {
    payment.status = plan.pending ? PaymentStatus::pending : PaymentStatus::cancelled;
    payment.channel_txn_id = {};
  }
  LocalRefund refund;
  const bool refunded = plan.refund || plan.refund_missing_channel;
  // LocalRefund holds views: the id must outlive add_payment, which copies it.
  const std::string refund_request_id = plan.request_id + "-r";
  if (refunded) {
    refund = {refund_request_id, refund_amount(plan), refund_at_us(plan)};
    payment.refunded_amount = refund.amount;
  }
  local->add_payment(payment, refunded ? std::span<const LocalRefund>(&refund, 1)
                                        : std::span<const LocalRefund>());
}

// One row of `plan` (a refund has a transaction of its own at the channel: txn "-r").
void write_row(StatementCsvWriter* writer, const Planned& plan, bool refund, std::string_view refund_id,
               Amount amount, std::string_view currency, std::string_view status, std::int64_t time_us) {
  const std::string txn = refund ? plan.txn_id + "-r" : plan.txn_id;
  writer->row(plan.channel, txn, plan.merchant_id, plan.order_id, refund, refund_id, amount, currency, status,
              time_us);
}

void add_rows(const Planned& plan, StatementCsvWriter* writer) {
  if (plan.balance) return;
  const std::int64_t paid_at_us = plan.created_at_us + 5 * us_per_second;
  switch (plan.finding_class) {
    case FindingClass::missing_channel:
    case FindingClass::within_cutoff:
    case FindingClass::local_anomaly:
      return;
    case FindingClass::amount_mismatch:
      write_row(writer, plan, false, "", plan.amount + 1, "CNY", "SUCCESS", paid_at_us);
      return;
    case FindingClass::currency_mismatch:
      write_row(writer, plan, false, "", plan.amount, "USD", "SUCCESS", paid_at_us);
      return;
    case FindingClass::status_mismatch:
      write_row(writer, plan, false, "", plan.amount, "CNY", "FAILED", paid_at_us);
      return;
    case FindingClass::duplicate_channel_row:
      write_row(writer, plan, false, "", plan.amount, "CNY", "SUCCESS", paid_at_us);
      write_row(writer, plan, false, "", plan.amount, "CNY", "SUCCESS", paid_at_us);
      return;
    case FindingClass::matched:
    case FindingClass::missing_local:
    case FindingClass::local_not_paid:
      write_row(writer, plan, false, "", plan.amount, "CNY", "SUCCESS", paid_at_us);
      break;
  }
  if (plan.refund) {
    write_row(writer, plan, true, plan.request_id + "-r", refund_amount(plan), "CNY", "SUCCESS",
                refund_at_us(plan));
  }
  if (plan.refund_missing_local) {
    write_row(writer, plan, true, plan.request_id + "-x", refund_amount(plan), "CNY", "SUCCESS",
                refund_at_us(plan));
  }
}

void expect(const Planned& plan, GenExpected* expected) {
  if (plan.balance) return;
  auto& counts = expected->counts;
  const auto c = static_cast<std::size_t>(plan.finding_class);
  ++counts[c];
  if (plan.finding_class == FindingClass::duplicate_channel_row) {
    ++counts[static_cast<std::size_t>(FindingClass::matched)];
  }
  if (plan.finding_class == FindingClass::local_not_paid && plan.pending) ++expected->repairable_count;
  if (plan.refund) ++counts[static_cast<std::size_t>(FindingClass::matched)];
  if (plan.refund_missing_channel) ++counts[static_cast<std::size_t>(FindingClass::missing_channel)];
  if (plan.refund_missing_local) ++counts[static_cast<std::size_t>(FindingClass::missing_local)];
}

// A permutation of [0, n): statement rows come in another order than the local records.
std::uint64_t permuted(std::uint64_t q, std::uint64_t n) {
  constexpr std::uint64_t stride = 2'654'435'761ULL;  // prime, so coprime with any n below it
  static_assert(stride > 0);
  return n % stride == 0 ? q : (q * stride) % n;
}

}  // namespace

GenExpected generate(const GenOptions& options, LocalData* local, std::ostream& statement_csv) {
  PAYCORE_ASSERT(options.payments_count < 4'000'000'000ULL);
  const Planner planner(options);
  GenExpected expected;
  local->reserve(local->payments().size() + options.payments_count,
                 local->refunds().size() + options.payments_count / 10);
  for (std::uint64_t p = 0; p < options.payments_count; ++p) {
    const Planned plan = planner.plan(p);
    add_local(plan, local);
    expect(plan, &expected);
  }
  StatementCsvWriter writer(statement_csv);
  for (std::uint64_t q = 0; q < options.payments_count; ++q) {
    add_rows(planner.plan(permuted(q, options.payments_count)), &writer);
  }
  writer.flush();
  expected.statement_rows_count = writer.rows_count();
  return expected;
}

}  // namespace paycore::recon
