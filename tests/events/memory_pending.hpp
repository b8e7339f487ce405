#pragma once
// PendingPayments in memory, for tests of the derivation rules.

#include <map>
#include <vector>

#include "events/derive.hpp"

namespace paycore::testing {

class MemoryPending final : public events::PendingPayments {
 public:
  Status add(const PaymentView& p) override {
    by_created_[p.created_at_us] = p;
    return Status::ok();
  }
  Status remove(std::int64_t created_at_us) override {
    by_created_.erase(created_at_us);
    return Status::ok();
  }
  Status oldest(std::uint32_t count, std::vector<PaymentView>* out) override {
    out->clear();
    for (auto it = by_created_.begin(); it != by_created_.end() && out->size() < count; ++it) {
      out->push_back(it->second);
    }
    return Status::ok();
  }
  std::size_t size() const { return by_created_.size(); }

 private:
  std::map<std::int64_t, PaymentView> by_created_;
};

}  // namespace paycore::testing
