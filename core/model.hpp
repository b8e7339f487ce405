#pragma once
// The small enumerations of the payment model (docs/api.md), shared by commands, results, the state
// and every reader of snapshots. Their numeric values are stored on disk: never renumber.

#include <cstdint>
#include <optional>
#include <string_view>

namespace paycore {

enum class AccountKind : std::uint8_t { customer = 1, merchant = 2 };

enum class PaymentStatus : std::uint8_t {
  pending = 1,
  paid = 2,
  shipped = 3,
  completed = 4,
  cancelled = 5,
  failed = 6,
  refunded = 7,
};

enum class NotificationStatus : std::uint8_t { success = 1, failed = 2 };

// A mandate's status (docs/api.md "Mandates"). EXPIRED is never stored: a mandate past its
// `expires_at` reads EXPIRED (as a PENDING payment past its lifetime reads CANCELLED).
enum class MandateStatus : std::uint8_t { active = 1, revoked = 2, expired = 3, used = 4 };

// Why a channel notification could not be applied (kept as an anomaly, docs/api.md).
enum class AnomalyReason : std::uint8_t {
  unknown_order = 1,
  channel_mismatch = 2,
  amount_mismatch = 3,
  currency_mismatch = 4,
  not_pending = 5,
  balance_overflow = 6,  // crediting the merchant would overflow its balance
};

std::string_view to_string(AccountKind kind);
std::string_view to_string(PaymentStatus status);
std::string_view to_string(NotificationStatus status);
std::string_view to_string(MandateStatus status);
std::string_view to_string(AnomalyReason reason);
std::optional<AccountKind> account_kind_from(std::string_view text);
std::optional<NotificationStatus> notification_status_from(std::string_view text);
std::optional<PaymentStatus> payment_status_from(std::string_view text);

constexpr bool account_kind_is_valid(std::uint8_t v) { return v >= 1 && v <= 2; }
constexpr bool payment_status_is_valid(std::uint8_t v) { return v >= 1 && v <= 7; }
constexpr bool notification_status_is_valid(std::uint8_t v) { return v >= 1 && v <= 2; }
// The statuses a mandate row may hold (EXPIRED is computed, never stored).
constexpr bool mandate_status_is_stored(std::uint8_t v) { return v == 1 || v == 2 || v == 4; }
constexpr bool anomaly_reason_is_valid(std::uint8_t v) { return v >= 1 && v <= 6; }

// The name reserved for paying from the payer's own account (docs/api.md "Payments").
inline constexpr std::string_view channel_name_balance = "balance";
// System accounts: `external` (source of deposits) and `channel:{name}`.
inline constexpr std::string_view system_account_external = "external";
inline constexpr std::string_view system_account_channel_prefix = "channel:";

}  // namespace paycore
