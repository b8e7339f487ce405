#pragma once
// FaultInjector: tests arm faults here and the log consults it before each write, fdatasync and
// fallocate, on both write paths. An armed write error skips the pwrite and returns the errno
// (writes are pwrite on both paths). An armed fdatasync error on the io_uring path replaces the
// completion's result (the flush itself still runs, as a real failing device may have written
// some of it); on the fallback path the call is skipped and the errno returned. A short write is
// real: fewer bytes are handed to the kernel, so the log must write the rest.
// Not for production use: it takes a mutex, which is fine for tests only.

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

namespace paycore::wal {

enum class FaultOp : std::uint8_t { kWrite = 0, kFsync = 1, kFallocate = 2 };
inline constexpr std::size_t kFaultOpsCount = 3;

struct FaultAction {
  int error = 0;                  // errno to report instead of success; 0 for none
  std::uint32_t short_bytes = 0;  // writes only: hand at most this many bytes to the kernel
};

class FaultInjector {
 public:
  // Arms `error` for the operation of kind `op` that is `skip` operations of that kind from now.
  void fail(FaultOp op, int error, std::uint32_t skip = 0) { arm(op, {error, 0}, skip); }
  // Makes a later write transfer at most `bytes` bytes (the log must then write the rest).
  void short_write(std::uint32_t bytes, std::uint32_t skip = 0) {
    arm(FaultOp::kWrite, {0, bytes}, skip);
  }

  // Called by the log before each operation; counts it and returns what to do.
  FaultAction next(FaultOp op) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto index = static_cast<std::size_t>(op);
    const std::uint64_t ordinal = counts_[index]++;
    for (auto it = armed_.begin(); it != armed_.end(); ++it) {
      if (it->op == op && it->ordinal == ordinal) {
        const FaultAction action = it->action;
        armed_.erase(it);
        ++fired_;
        return action;
      }
    }
    return {};
  }

  std::uint64_t count(FaultOp op) const {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[static_cast<std::size_t>(op)];
  }
  std::uint64_t fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

 private:
  struct Armed {
    FaultOp op;
    std::uint64_t ordinal;
    FaultAction action;
  };
  void arm(FaultOp op, FaultAction action, std::uint32_t skip) {
    std::lock_guard<std::mutex> lock(mu_);
    armed_.push_back({op, counts_[static_cast<std::size_t>(op)] + skip, action});
  }

  mutable std::mutex mu_;
  std::array<std::uint64_t, kFaultOpsCount> counts_{};
  std::vector<Armed> armed_;
  std::uint64_t fired_ = 0;
};

}  // namespace paycore::wal
