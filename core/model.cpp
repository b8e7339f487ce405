#include "model.hpp"

namespace paycore {

std::string_view to_string(AccountKind kind) {
  switch (kind) {
    case AccountKind::customer: return "customer";
    case AccountKind::merchant: return "merchant";
  }
  return "unknown";
}

std::string_view to_string(PaymentStatus status) {
  switch (status) {
    case PaymentStatus::pending: return "PENDING";
    case PaymentStatus::paid: return "PAID";
    case PaymentStatus::shipped: return "SHIPPED";
    case PaymentStatus::completed: return "COMPLETED";
    case PaymentStatus::cancelled: return "CANCELLED";
    case PaymentStatus::failed: return "FAILED";
    case PaymentStatus::refunded: return "REFUNDED";
  }
  return "UNKNOWN";
}

std::string_view to_string(NotificationStatus status) {
  switch (status) {
    case NotificationStatus::success: return "SUCCESS";
    case NotificationStatus::failed: return "FAILED";
  }
  return "UNKNOWN";
}

std::string_view to_string(MandateStatus status) {
  switch (status) {
    case MandateStatus::active: return "ACTIVE";
    case MandateStatus::revoked: return "REVOKED";
    case MandateStatus::expired: return "EXPIRED";
    case MandateStatus::used: return "USED";
  }
  return "UNKNOWN";
}

std::string_view to_string(AnomalyReason reason) {
  switch (reason) {
    case AnomalyReason::unknown_order: return "unknown_order";
    case AnomalyReason::channel_mismatch: return "channel_mismatch";
    case AnomalyReason::amount_mismatch: return "amount_mismatch";
    case AnomalyReason::currency_mismatch: return "currency_mismatch";
    case AnomalyReason::not_pending: return "not_pending";
    case AnomalyReason::balance_overflow: return "balance_overflow";
  }
  return "unknown";
}

std::optional<AccountKind> account_kind_from(std::string_view text) {
  if (text == "customer") return AccountKind::customer;
  if (text == "merchant") return AccountKind::merchant;
  return std::nullopt;
}

std::optional<NotificationStatus> notification_status_from(std::string_view text) {
  if (text == "SUCCESS") return NotificationStatus::success;
  if (text == "FAILED") return NotificationStatus::failed;
  return std::nullopt;
}

std::optional<PaymentStatus> payment_status_from(std::string_view text) {
  for (std::uint8_t v = 1; v <= 7; ++v) {
    const auto status = static_cast<PaymentStatus>(v);
    if (to_string(status) == text) return status;
  }
  return std::nullopt;
}

}  // namespace paycore
