#pragma once
// Little-endian byte writer and reader for the log's record payloads (core/command.hpp,
// core/command_record.hpp) and for stores that keep what those records hold (events/). The
// formats themselves are documented where they are defined and in docs/wal-format.md.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

#include "base/assert.hpp"
#include "command.hpp"
#include "id.hpp"

namespace paycore::detail {

class Writer {
 public:
  explicit Writer(std::span<std::byte> out) : out_(out) {}
  void u8(std::uint8_t v) { put(&v, 1); }
  template <class T>
  void le(T v) {
    static_assert(std::is_integral_v<T>);
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      u8(static_cast<std::uint8_t>(u & 0xff));
      u = static_cast<std::make_unsigned_t<T>>(u >> 8);
    }
  }
  void id(const Id& v) {
    u8(v.size);
    put(v.bytes.data(), v.size);
  }
  void put(const void* data, std::size_t size) {
    PAYCORE_ASSERT(used_ + size <= out_.size());
    std::memcpy(out_.data() + used_, data, size);
    used_ += size;
  }
  std::size_t used() const { return used_; }

 private:
  std::span<std::byte> out_;
  std::size_t used_ = 0;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  bool u8(std::uint8_t* v) { return get(v, 1); }
  template <class T>
  bool le(T* v) {
    std::make_unsigned_t<T> u = 0;
    if (in_.size() - used_ < sizeof(T)) return false;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      u = static_cast<std::make_unsigned_t<T>>(
          u | (static_cast<std::make_unsigned_t<T>>(in_[used_ + i]) << (8 * i)));
    }
    used_ += sizeof(T);
    *v = static_cast<T>(u);
    return true;
  }
  // Ids: absent (length 0) or valid.
  CommandDecodeError id(Id* v) {
    std::uint8_t size = 0;
    if (!u8(&size)) return CommandDecodeError::truncated;
    if (size > id_bytes_max) return CommandDecodeError::bad_id;
    if (in_.size() - used_ < size) return CommandDecodeError::truncated;
    const std::string_view text(reinterpret_cast<const char*>(in_.data() + used_), size);
    used_ += size;
    if (size == 0) {
      *v = Id{};
      return CommandDecodeError::ok;
    }
    return Id::from(text, v) ? CommandDecodeError::ok : CommandDecodeError::bad_id;
  }
  bool get(void* data, std::size_t size) {
    if (in_.size() - used_ < size) return false;
    std::memcpy(data, in_.data() + used_, size);
    used_ += size;
    return true;
  }
  bool at_end() const { return used_ == in_.size(); }
  std::size_t used() const { return used_; }

 private:
  std::span<const std::byte> in_;
  std::size_t used_ = 0;
};

}  // namespace paycore::detail
