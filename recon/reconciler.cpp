// The join of reconciliation (docs/recon.md "Matching"): statement rows against the local
// records of a snapshot, keyed by (merchant_id, order_id) and refund request ids, through an
// open-addressing index on huge pages; then the sweeps for what the statements never named.
#include "recon/match.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "base/assert.hpp"
#include "base/time.hpp"
#include "core/id.hpp"
#include "recon/key_index.hpp"

namespace paycore::recon {
namespace {

std::string_view local_not_paid_reason(PaymentStatus status) {
  switch (status) {
    case PaymentStatus::pending: return "local_pending";
    case PaymentStatus::cancelled: return "local_cancelled";
    default: return "local_failed";
  }
}

}  // namespace

class Reconciler::Impl final : public RowSink {
  friend class Reconciler;

 public:
  Impl(const LocalData& local, MatchOptions options)
      : local_(local),
        options_(std::move(options)),
        payment_index_(local.payments().size()),
        refund_index_(local.refunds().size()),
        payment_seen_(local.payments().size(), 0),
        refund_seen_(local.refunds().size(), 0),
        refund_parent_(local.refunds().size(), no_parent),
        anomaly_linked_(local.anomalies().size(), false) {
    PAYCORE_ASSERT(options_.tolerance_seconds >= 0);
    for (const std::string& channel : options_.channels) cover(channel, {});
    index_local();
  }

  void begin_statement(std::string_view path, bool per_merchant) {
    drain();
    file_ = std::string(path);
    per_merchant_ = per_merchant;
    last_covered_.reset();
  }

  // Rows go through a short pipeline so that the random memory reads of the join overlap
  // instead of stalling one after another (they dominate: the index, the payment, its order
  // id are three cache misses per row at 10M payments). A row is copied in, its index slot
  // prefetched; `probe_age` rows later its candidate record is prefetched, `string_age` rows
  // later the candidate's id bytes; `pipeline_depth` rows later it is matched, in order.
  void row(const StatementRow& row) override {
    ++result_.statement_rows_count;
    cover_row(row);
    max_time_us_ = std::max(max_time_us_, row.time_us);
    if (pending_count_ == pipeline_depth) match_oldest();
    Pending& entry = ring_[(pending_first_ + pending_count_) % pipeline_depth];
    entry.copy(row);
    const bool payment = row.type == RowType::payment;
    entry.hash = key_hash(row.merchant_id, payment ? row.order_id : row.refund_id);
    (payment ? payment_index_ : refund_index_).prefetch(entry.hash);
    entry.candidate = no_candidate;
    entry.probed = false;
    ++pending_count_;
    if (pending_count_ > probe_age)
      probe(ring_[(pending_first_ + pending_count_ - 1 - probe_age) % pipeline_depth]);
    if (pending_count_ > string_age) {
      prefetch_id(ring_[(pending_first_ + pending_count_ - 1 - string_age) % pipeline_depth]);
    }
  }

  void malformed(MalformedRow malformed) override {
    ++result_.malformed_count;
    if (result_.malformed.size() < malformed_listed_max)
      result_.malformed.push_back(std::move(malformed));
  }

  MatchResult finish() {
    drain();
    if (options_.cutoff_us) {
      result_.cutoff_us = *options_.cutoff_us;
    } else {
      result_.cutoff_from_statement = true;
      result_.cutoff_us = max_time_us_ == std::numeric_limits<std::int64_t>::min()
                              ? std::numeric_limits<std::int64_t>::max()
                              : max_time_us_ + 1;
    }
    sweep_payments();
    sweep_refunds();
    sweep_anomalies();
    for (const Coverage& c : covered_) {
      if (c.merchant_id.empty() || !channel_wholly_covered(c.channel)) result_.covered.push_back(c);
    }
    return std::move(result_);
  }

 private:
  void index_local() {
    const auto payments = local_.payments();
    for (std::uint32_t i = 0; i < payments.size(); ++i) {
      const LocalPayment& payment = payments[i];
      const std::uint64_t hash = key_hash(payment.merchant_id, payment.order_id);
      if (find_payment(hash, payment.merchant_id, payment.order_id)) {
        Finding finding =
            local_payment_finding(FindingClass::status_mismatch, "local_duplicate_order", payment);
        add(std::move(finding));
        continue;
      }
      payment_index_.insert(hash, i);
      for (std::uint32_t r = payment.refund_first; r < payment.refund_first + payment.refund_count;
           ++r) {
        refund_parent_[r] = i;
        const std::string_view request_id = local_.refunds()[r].request_id;
        refund_index_.insert(key_hash(payment.merchant_id, request_id), r);
      }
    }
    const auto anomalies = local_.anomalies();
    for (std::uint32_t a = 0; a < anomalies.size(); ++a) {
      anomalies_by_key_.emplace(txn_key(anomalies[a].channel, anomalies[a].channel_txn_id), a);
      anomalies_by_key_.emplace(order_key(anomalies[a].merchant_id, anomalies[a].order_id), a);
    }
  }

  static std::string txn_key(std::string_view channel, std::string_view txn) {
    return "t\x1f" + std::string(channel) + "\x1f" + std::string(txn);
  }
  static std::string order_key(std::string_view merchant, std::string_view order) {
    return "o\x1f" + std::string(merchant) + "\x1f" + std::string(order);
  }

  static constexpr std::size_t pipeline_depth = 32;
  static constexpr std::size_t probe_age = 10;
  static constexpr std::size_t string_age = 21;
  static_assert(probe_age < string_age && string_age < pipeline_depth);
  static constexpr std::uint32_t no_candidate = std::numeric_limits<std::uint32_t>::max();

  // A row held in the pipeline: its ids copied into `text`, since the parser reuses its buffer.
  struct Pending {
    StatementRow row;
    std::array<char, 5 * id_bytes_max> text;
    std::uint64_t hash = 0;
    std::uint32_t candidate = no_candidate;
    bool probed = false;

    void copy(const StatementRow& from) {
      row = from;
      std::size_t used = 0;
      for (std::string_view* field :
           {&row.channel, &row.channel_txn_id, &row.merchant_id, &row.order_id, &row.refund_id}) {
        PAYCORE_ASSERT(field->size() <= id_bytes_max);  // ids were validated by the reader
        std::copy(field->begin(), field->end(), text.begin() + static_cast<std::ptrdiff_t>(used));
        *field = std::string_view(text.data() + used, field->size());
        used += field->size();
      }
    }
  };
  void probe(Pending& entry) {
    entry.probed = true;
    const bool payment = entry.row.type == RowType::payment;
    const auto candidate = (payment ? payment_index_ : refund_index_).first_tag_match(entry.hash);
    if (!candidate) return;
    entry.candidate = *candidate;
    if (payment) {
      __builtin_prefetch(&local_.payments()[*candidate]);
    } else {
      __builtin_prefetch(&local_.refunds()[*candidate]);
    }
  }

  void prefetch_id(const Pending& entry) {
    if (entry.candidate == no_candidate) return;
    __builtin_prefetch(entry.row.type == RowType::payment
                           ? local_.payments()[entry.candidate].order_id.data()
                           : local_.refunds()[entry.candidate].request_id.data());
  }

  void match_oldest() {
    PAYCORE_ASSERT(pending_count_ > 0);
    Pending& entry = ring_[pending_first_];
    if (!entry.probed) probe(entry);  // drained before its turn came
    if (entry.row.type == RowType::payment) {
      payment_row(entry.row, entry.hash, entry.candidate);
    } else {
      refund_row(entry.row, entry.hash, entry.candidate);
    }
    pending_first_ = (pending_first_ + 1) % pipeline_depth;
    --pending_count_;
  }

  void drain() {
    while (pending_count_ > 0) match_oldest();
  }

  std::optional<std::uint32_t> find_payment(std::uint64_t hash, std::string_view merchant,
                                            std::string_view order) const {
    const auto payments = local_.payments();
    return payment_index_.find(hash, [&](std::uint32_t i) {
      return payments[i].order_id == order && payments[i].merchant_id == merchant;
    });
  }

  std::optional<std::uint32_t> find_refund(std::uint64_t hash, std::string_view merchant,
                                           std::string_view request_id) const {
    const auto refunds = local_.refunds();
    const auto payments = local_.payments();
    return refund_index_.find(hash, [&](std::uint32_t r) {
      return refunds[r].request_id == request_id &&
             payments[refund_parent_[r]].merchant_id == merchant;
    });
  }

  // Uses the pipeline's unverified candidate first; a tag collision falls back to the full
  // probe, and no candidate means no entry at all.
  std::optional<std::uint32_t> find_payment_hinted(const StatementRow& row, std::uint64_t hash,
                                                   std::uint32_t candidate) const {
    if (candidate == no_candidate) return std::nullopt;
    const LocalPayment& payment = local_.payments()[candidate];
    if (payment.order_id == row.order_id && payment.merchant_id == row.merchant_id)
      return candidate;
    return find_payment(hash, row.merchant_id, row.order_id);
  }

  // Coverage is a short list (a few channels and merchant accounts per run): a scan is cheap.
  void cover(std::string_view channel, std::string_view merchant_id) {
    if (channel.empty()) return;
    for (const Coverage& c : covered_) {
      if (c.channel == channel && c.merchant_id == merchant_id) return;
    }
    covered_.push_back({std::string(channel), std::string(merchant_id)});
  }
  // Rows of one statement nearly always share their pair: remember the last one.
  void cover_row(const StatementRow& row) {
    const std::string_view merchant = per_merchant_ ? row.merchant_id : std::string_view();
    if (last_covered_ && last_covered_->channel == row.channel &&
        last_covered_->merchant_id == merchant)
      return;
    cover(row.channel, merchant);
    last_covered_ = Coverage{std::string(row.channel), std::string(merchant)};
  }
  bool channel_wholly_covered(std::string_view channel) const {
    return std::any_of(covered_.begin(), covered_.end(), [&](const Coverage& c) {
      return c.channel == channel && c.merchant_id.empty();
    });
  }
  // A record of `merchant_id` (empty for an anomaly whose order nobody has: any statement of
  // the channel may explain it) through `channel` is due on the statements.
  bool covered(std::string_view channel, std::string_view merchant_id) const {
    return std::any_of(covered_.begin(), covered_.end(), [&](const Coverage& c) {
      return c.channel == channel &&
             (c.merchant_id.empty() || merchant_id.empty() || c.merchant_id == merchant_id);
    });
  }

  // Links the first unexplained anomaly about this transaction or order to the finding.
  void link_anomaly(Finding* finding, std::string_view txn) {
    if (anomalies_by_key_.empty()) return;
    for (const std::string& key :
         {txn_key(finding->channel, txn), order_key(finding->merchant_id, finding->order_id)}) {
      auto [begin, end] = anomalies_by_key_.equal_range(key);
      for (auto it = begin; it != end; ++it) {
        if (anomaly_linked_[it->second]) continue;
        anomaly_linked_[it->second] = true;
        finding->anomaly_reason = std::string(local_.anomalies()[it->second].reason);
        return;
      }
    }
  }

  Totals& channel_totals(std::string_view channel) {
    if (last_totals_ < result_.by_channel.size() &&
        result_.by_channel[last_totals_].channel == channel) {
      return result_.by_channel[last_totals_].totals;
    }
    for (std::size_t i = 0; i < result_.by_channel.size(); ++i) {
      if (result_.by_channel[i].channel == channel) {
        last_totals_ = i;
        return result_.by_channel[i].totals;
      }
    }
    result_.by_channel.push_back({std::string(channel), Totals{}});
    last_totals_ = result_.by_channel.size() - 1;
    return result_.by_channel.back().totals;
  }

  void count(FindingClass c, std::string_view channel, Currency local_currency, Amount local_amount,
             Currency channel_currency, Amount channel_amount) {
    result_.totals.add(c, local_currency, local_amount, channel_currency, channel_amount);
    channel_totals(channel).add(c, local_currency, local_amount, channel_currency, channel_amount);
  }

  void add(Finding finding) {
    count(finding.finding_class, finding.channel,
          finding.has_local ? finding.local_currency : Currency{},
          finding.has_local ? finding.local_amount : 0,
          finding.has_channel ? finding.channel_currency : Currency{},
          finding.has_channel ? finding.channel_amount : 0);
    result_.findings.push_back(std::move(finding));
  }

  Finding channel_finding(FindingClass c, std::string_view reason, const StatementRow& row) const {
    Finding f;
    f.finding_class = c;
    f.reason = reason;
    f.kind = row.type == RowType::payment ? RecordKind::payment : RecordKind::refund;
    f.channel = std::string(row.channel);
    f.merchant_id = std::string(row.merchant_id);
    f.order_id = std::string(row.order_id);
    f.refund_id = std::string(row.refund_id);
    f.has_channel = true;
    f.statement_file = file_;
    f.statement_line = row.line;
    f.channel_txn_id = std::string(row.channel_txn_id);
    f.channel_status = row.status;
    f.channel_amount = row.amount;
    f.channel_currency = row.currency;
    f.channel_time_us = row.time_us;
    return f;
  }

  static void set_local_payment(Finding* f, const LocalPayment& payment) {
    f->has_local = true;
    f->local_status = std::string(payment_status_name(payment.status));
    f->local_amount = payment.amount;
    f->local_currency = payment.currency;
    f->local_channel_txn_id = std::string(payment.channel_txn_id);
    f->local_time_us = payment.created_at_us;
  }

  static void set_local_refund(Finding* f, const LocalPayment& payment, const LocalRefund& refund) {
    f->has_local = true;
    f->local_status = "REFUND";
    f->local_amount = refund.amount;
    f->local_currency = payment.currency;
    f->local_channel_txn_id = std::string(payment.channel_txn_id);
    f->local_time_us = refund.at_us;
  }

  static Finding local_payment_finding(FindingClass c, std::string_view reason,
                                       const LocalPayment& payment) {
    Finding f;
    f.finding_class = c;
    f.reason = reason;
    f.kind = RecordKind::payment;
    f.channel = std::string(payment.channel);
    f.merchant_id = std::string(payment.merchant_id);
    f.order_id = std::string(payment.order_id);
    set_local_payment(&f, payment);
    return f;
  }

  // A row no local record explains: 长款, or a repeat of such a row.
  void unknown_row(const StatementRow& row, std::string_view reason) {
    if (row.status != ChannelStatus::success) {
      ++result_.channel_rows_ignored_count;  // no money moved and we know nothing of it
      return;
    }
    std::string key = (row.type == RowType::payment ? "p\x1f" : "r\x1f") +
                      std::string(row.merchant_id) + "\x1f" +
                      std::string(row.type == RowType::payment ? row.order_id : row.refund_id);
    const bool repeated = !unknown_seen_.insert(std::move(key)).second;
    Finding f = channel_finding(
        repeated ? FindingClass::duplicate_channel_row : FindingClass::missing_local,
        repeated ? "repeated_row_of_unknown_record" : reason, row);
    link_anomaly(&f, row.channel_txn_id);
    add(std::move(f));
  }

  void payment_row(const StatementRow& row, std::uint64_t hash, std::uint32_t candidate) {
    const auto index = find_payment_hinted(row, hash, candidate);
    if (!index) {
      unknown_row(row, "no_local_payment");
      return;
    }
    const LocalPayment& payment = local_.payments()[*index];
    std::uint8_t& seen = payment_seen_[*index];
    const bool repeated = seen != 0;
    seen = 1;
    const auto [c, reason] = repeated
                                 ? std::pair{FindingClass::duplicate_channel_row,
                                             row.channel_txn_id == payment.channel_txn_id
                                                 ? std::string_view("repeated_row")
                                                 : std::string_view("second_channel_transaction")}
                                 : classify_payment(row, payment);
    if (c == FindingClass::matched) {
      count(c, row.channel, payment.currency, payment.amount, row.currency, row.amount);
      return;
    }
    Finding f = channel_finding(c, reason, row);
    set_local_payment(&f, payment);
    f.repairable = !repeated && payment.status == PaymentStatus::pending &&
                   payment.channel == row.channel &&
                   (c == FindingClass::local_not_paid || reason == "local_pending_channel_failed");
    link_anomaly(&f, row.channel_txn_id);
    add(std::move(f));
  }

  static std::pair<FindingClass, std::string_view> classify_payment(const StatementRow& row,
                                                                    const LocalPayment& payment) {
    if (payment.channel != row.channel) {
      return {FindingClass::status_mismatch, payment.channel == balance_channel
                                                 ? "balance_payment_on_statement"
                                                 : "paid_through_another_channel"};
    }
    const bool local_paid = payment_status_is_paid(payment.status);
    if (row.status != ChannelStatus::success) {
      if (local_paid) return {FindingClass::status_mismatch, "channel_says_not_paid"};
      if (payment.status == PaymentStatus::pending && row.status != ChannelStatus::processing) {
        return {FindingClass::status_mismatch, "local_pending_channel_failed"};
      }
      return {FindingClass::matched, ""};  // neither side has the money
    }
    if (row.currency != payment.currency)
      return {FindingClass::currency_mismatch, "currency_differs"};
    if (row.amount != payment.amount) return {FindingClass::amount_mismatch, "amount_differs"};
    if (!local_paid) return {FindingClass::local_not_paid, local_not_paid_reason(payment.status)};
    if (!payment.channel_txn_id.empty() && payment.channel_txn_id != row.channel_txn_id) {
      return {FindingClass::status_mismatch, "channel_txn_id_differs"};
    }
    return {FindingClass::matched, ""};
  }

  void refund_row(const StatementRow& row, std::uint64_t hash, std::uint32_t candidate) {
    const auto index = candidate == no_candidate
                           ? std::nullopt
                           : find_refund(hash, row.merchant_id, row.refund_id);
    if (!index) {
      const bool order_known =
          find_payment(key_hash(row.merchant_id, row.order_id), row.merchant_id, row.order_id)
              .has_value();
      unknown_row(row, order_known ? "no_local_refund" : "no_local_payment_for_refund");
      return;
    }
    const LocalRefund& refund = local_.refunds()[*index];
    const LocalPayment& payment = local_.payments()[refund_parent_[*index]];
    std::uint8_t& seen = refund_seen_[*index];
    const bool repeated = seen != 0;
    seen = 1;
    FindingClass c = FindingClass::matched;
    std::string_view reason;
    if (repeated) {
      c = FindingClass::duplicate_channel_row, reason = "repeated_refund_row";
    } else if (payment.order_id != row.order_id || payment.channel != row.channel) {
      c = FindingClass::status_mismatch, reason = "refund_of_another_order";
    } else if (row.status != ChannelStatus::success) {
      c = FindingClass::status_mismatch, reason = "channel_refund_not_successful";
    } else if (row.currency != payment.currency) {
      c = FindingClass::currency_mismatch, reason = "currency_differs";
    } else if (row.amount != refund.amount) {
      c = FindingClass::amount_mismatch, reason = "refund_amount_differs";
    }
    if (c == FindingClass::matched) {
      count(c, row.channel, payment.currency, refund.amount, row.currency, row.amount);
      return;
    }
    Finding f = channel_finding(c, reason, row);
    set_local_refund(&f, payment, refund);
    add(std::move(f));
  }

  // Where a one-sided local record at `time_us` stands against the statements' period.
  enum class Due { not_expected, not_yet, within_cutoff, due };
  Due due(std::int64_t time_us) const {
    if (options_.window_start_us && time_us < *options_.window_start_us) return Due::not_expected;
    if (time_us >= result_.cutoff_us) return Due::not_yet;
    const std::int64_t tolerance_us = options_.tolerance_seconds * us_per_second;
    if (time_us >= result_.cutoff_us - tolerance_us) return Due::within_cutoff;
    return Due::due;
  }

  bool expected_on_statement(const LocalPayment& payment) const {
    return payment.channel != balance_channel && covered(payment.channel, payment.merchant_id);
  }

  void sweep_payments() {
    const auto payments = local_.payments();
    for (std::uint32_t i = 0; i < payments.size(); ++i) {
      const LocalPayment& payment = payments[i];
      check_refund_sum(payment);
      if (payment_seen_[i] != 0 || !payment_status_is_paid(payment.status) ||
          !expected_on_statement(payment)) {
        continue;  // unpaid and absent from the statement: both sides agree
      }
      switch (due(payment.created_at_us)) {
        case Due::not_expected: break;
        case Due::not_yet: ++result_.local_not_due_count; break;
        case Due::within_cutoff:
          add(local_payment_finding(FindingClass::within_cutoff, "no_channel_row_near_cutoff",
                                    payment));
          break;
        case Due::due:
          add(local_payment_finding(FindingClass::missing_channel, "no_channel_row", payment));
          break;
      }
    }
  }

  // A local inconsistency the channel cannot see: refunds that do not add up.
  void check_refund_sum(const LocalPayment& payment) {
    Amount sum = 0;
    for (const LocalRefund& refund : local_.refunds_of(payment)) sum += refund.amount;
    if (sum == payment.refunded_amount) return;
    Finding f =
        local_payment_finding(FindingClass::amount_mismatch, "local_refunds_sum_differs", payment);
    f.local_amount = payment.refunded_amount;
    add(std::move(f));
  }

  void sweep_refunds() {
    const auto refunds = local_.refunds();
    for (std::uint32_t r = 0; r < refunds.size(); ++r) {
      if (refund_parent_[r] == no_parent) continue;  // of a duplicated order, reported as such
      const LocalPayment& payment = local_.payments()[refund_parent_[r]];
      if (refund_seen_[r] != 0 || !expected_on_statement(payment)) continue;
      const Due where = due(refunds[r].at_us);
      if (where == Due::not_yet) ++result_.local_not_due_count;
      if (where != Due::within_cutoff && where != Due::due) continue;
      Finding f = local_payment_finding(
          where == Due::due ? FindingClass::missing_channel : FindingClass::within_cutoff,
          where == Due::due ? "no_channel_refund_row" : "no_channel_refund_row_near_cutoff",
          payment);
      f.kind = RecordKind::refund;
      f.refund_id = std::string(refunds[r].request_id);
      set_local_refund(&f, payment, refunds[r]);
      add(std::move(f));
    }
  }

  void sweep_anomalies() {
    const auto anomalies = local_.anomalies();
    for (std::size_t a = 0; a < anomalies.size(); ++a) {
      const LocalAnomaly& anomaly = anomalies[a];
      if (anomaly_linked_[a] || !covered(anomaly.channel, anomaly.merchant_id)) continue;
      const Due where = due(anomaly.paid_at_us);
      if (where == Due::not_expected || where == Due::not_yet) continue;
      Finding f;
      f.finding_class = FindingClass::local_anomaly;
      f.reason = "anomaly_not_on_statement";
      f.kind = RecordKind::anomaly;
      f.channel = std::string(anomaly.channel);
      f.merchant_id = std::string(anomaly.merchant_id);
      f.order_id = std::string(anomaly.order_id);
      f.has_local = true;
      f.local_status = std::string(anomaly.status);
      f.local_amount = anomaly.amount;
      f.local_currency = anomaly.currency;
      f.local_channel_txn_id = std::string(anomaly.channel_txn_id);
      f.local_time_us = anomaly.paid_at_us;
      f.anomaly_reason = std::string(anomaly.reason);
      add(std::move(f));
    }
  }

  static constexpr std::uint32_t no_parent = std::numeric_limits<std::uint32_t>::max();

  const LocalData& local_;
  const MatchOptions options_;
  KeyIndex payment_index_;
  KeyIndex refund_index_;
  std::vector<std::uint8_t> payment_seen_;
  std::vector<std::uint8_t> refund_seen_;
  std::vector<std::uint32_t> refund_parent_;
  std::vector<bool> anomaly_linked_;
  std::unordered_multimap<std::string, std::uint32_t> anomalies_by_key_;
  std::unordered_set<std::string> unknown_seen_;
  std::vector<Coverage> covered_;
  std::optional<Coverage> last_covered_;
  bool per_merchant_ = false;
  std::string file_;
  std::size_t last_totals_ = 0;
  std::int64_t max_time_us_ = std::numeric_limits<std::int64_t>::min();
  std::array<Pending, pipeline_depth> ring_{};
  std::size_t pending_first_ = 0;
  std::size_t pending_count_ = 0;
  MatchResult result_;
};

Reconciler::Reconciler(const LocalData& local, MatchOptions options)
    : impl_(std::make_unique<Impl>(local, std::move(options))) {}
Reconciler::~Reconciler() = default;

void Reconciler::begin_statement(std::string_view path, bool per_merchant) {
  impl_->begin_statement(path, per_merchant);
}
void Reconciler::cover_channel(std::string_view channel) { impl_->cover(channel, {}); }
void Reconciler::cover_merchant(std::string_view channel, std::string_view merchant_id) {
  PAYCORE_ASSERT(!merchant_id.empty());
  impl_->cover(channel, merchant_id);
}
RowSink& Reconciler::sink() { return *impl_; }
MatchResult Reconciler::finish() { return impl_->finish(); }

}  // namespace paycore::recon
