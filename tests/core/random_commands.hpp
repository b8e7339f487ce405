#pragma once
// A seeded generator of random commands over a small universe of ids, so that collisions
// (same order, same request_id, same channel transaction) happen often.

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "commands.hpp"

namespace paycore::testing {

inline std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

class Generator {
 public:
  // `start_us`: the driver's start time, so that mandate expiries fall near the commands' times.
  explicit Generator(std::uint64_t seed, std::int64_t start_us = 1'700'000'000'000'000)
      : rng_(seed), now_us_(start_us) {}

  Command next() {
    const auto kind = pick(104);
    if (kind >= 100) return next_mandate_command();
    if (kind < 5) return open_account(req(), account(), pick(8) == 0 ? "USD" : "CNY",
                                      pick(5) == 0 ? AccountKind::merchant : AccountKind::customer);
    if (kind < 15) return deposit(req(), account(), amount() * 10, pick(10) == 0 ? "USD" : "CNY");
    // Now and then more than any payer holds (but within most mandates): insufficient_funds.
    if (kind < 40) {
      return pay(merchant(), req(), order(), pick(25) == 0 ? 50'000 : amount(), account(),
                 pick(20) == 0 ? "USD" : "CNY");
    }
    if (kind < 52) return pay_external(merchant(), req(), order(), amount(), channel());
    if (kind < 57) return order_command(CommandKind::cancel_payment, merchant(), req(), order());
    if (kind < 63) return order_command(CommandKind::ship_payment, merchant(), req(), order());
    if (kind < 67) return order_command(CommandKind::complete_payment, merchant(), req(), order());
    if (kind < 77) return refund(merchant(), req(), order(), amount() / 2);
    if (kind < 90) {
      return notify(channel(), "t" + std::to_string(pick(400)), merchant(), order(),
                    pick(10) == 0 ? amount() : pick_amount_hint(), pick(4) == 0 ? NotificationStatus::failed : NotificationStatus::success,
                    pick(30) == 0 ? "USD" : "CNY");
    }
    if (kind < 92) return tick(pending_lifetime_default_us, UINT32_MAX);
    if (kind < 96) return get_account(pick(2) ? "operator" : merchant(), account(), pick(2) == 0);
    return get_payment(merchant(), order());
  }

  std::int64_t step_us() {
    const std::int64_t step = static_cast<std::int64_t>(pick(120)) * 1'000'000 + 1;
    now_us_ += step;
    return step;
  }

 private:
  // Mandates over the same small universe: most pairs get one, some are revoked, expire
  // (within about an hour of commands), are single-use or have a small amount_max.
  Command next_mandate_command() {
    const std::string id = "md" + std::to_string(pick(400));
    if (pick(4) == 0) return revoke_mandate(req(), id);
    if (pick(6) == 0) return get_mandate(pick(2) ? "operator" : merchant(), id, pick(2) == 0);
    const Amount amount_max = pick(4) == 0 ? 60 : 1'000'000;
    const std::int64_t expires_at_us =
        pick(5) == 0 ? now_us_ + static_cast<std::int64_t>(pick(3600)) * 1'000'000 - 120'000'000 : 0;
    return create_mandate(req(), id, account(), merchant(), amount_max, expires_at_us, pick(8) == 0);
  }

  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  std::string req() { return "r" + std::to_string(pick(3000)); }
  std::string account() { return pick(10) == 0 ? "m" + std::to_string(pick(4)) : "a" + std::to_string(pick(30)); }
  std::string merchant() { return "m" + std::to_string(pick(4)); }
  std::string order() { return "o" + std::to_string(pick(600)); }
  std::string channel() { return pick(2) ? "alipay" : "wechat"; }
  Amount amount() { return static_cast<Amount>(pick(3)) * 50 + 50 - static_cast<Amount>(pick(2)); }
  Amount pick_amount_hint() { return static_cast<Amount>(pick(3)) * 50 + 50; }

  std::mt19937_64 rng_;
  std::int64_t now_us_;  // the time of the last step (commands are stamped a step later)
};

}  // namespace paycore::testing
