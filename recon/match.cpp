#include "recon/match.hpp"

#include "base/assert.hpp"

namespace paycore::recon {

std::string_view finding_class_name(FindingClass finding_class) {
  switch (finding_class) {
    case FindingClass::matched: return "matched";
    case FindingClass::missing_local: return "missing_local";
    case FindingClass::local_not_paid: return "local_not_paid";
    case FindingClass::missing_channel: return "missing_channel";
    case FindingClass::amount_mismatch: return "amount_mismatch";
    case FindingClass::currency_mismatch: return "currency_mismatch";
    case FindingClass::status_mismatch: return "status_mismatch";
    case FindingClass::duplicate_channel_row: return "duplicate_channel_row";
    case FindingClass::within_cutoff: return "within_cutoff";
    case FindingClass::local_anomaly: return "local_anomaly";
  }
  return "?";
}

std::string_view record_kind_name(RecordKind kind) {
  switch (kind) {
    case RecordKind::payment: return "payment";
    case RecordKind::refund: return "refund";
    case RecordKind::anomaly: return "anomaly";
  }
  return "?";
}

Totals::Totals() {
  for (ClassTotals& c : classes) {
    c.local_amount.assign(currency_table_size(), 0);
    c.channel_amount.assign(currency_table_size(), 0);
  }
}

void Totals::add(FindingClass c, Currency local_currency, Amount local_amount,
                 Currency channel_currency, Amount channel_amount) {
  ClassTotals& totals = classes[static_cast<std::size_t>(c)];
  ++totals.count;
  PAYCORE_ASSERT(local_currency.index < totals.local_amount.size());
  PAYCORE_ASSERT(channel_currency.index < totals.channel_amount.size());
  totals.local_amount[local_currency.index] += local_amount;
  totals.channel_amount[channel_currency.index] += channel_amount;
}

std::uint64_t MatchResult::problems_count() const {
  std::uint64_t count = 0;
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    if (finding_class_is_problem(static_cast<FindingClass>(c))) count += totals.classes[c].count;
  }
  return count;
}

}  // namespace paycore::recon
