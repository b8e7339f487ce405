#pragma once
// Secrets and ids from the operating system's CSPRNG (OpenSSL RAND_bytes), as lowercase hex.

#include <cstddef>
#include <string>

namespace paycore {

/// `bytes` random bytes (1..64) as 2 * bytes lowercase hex digits. No entropy means no safe
/// secret: asserted.
std::string random_hex(std::size_t bytes);

}  // namespace paycore
