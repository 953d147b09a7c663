// Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16 384.
#pragma once

#include <cstdint>
#include <string_view>

namespace promptcache::cluster {

inline constexpr std::uint16_t slot_count = 16384;

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification uses.
[[nodiscard]] std::uint16_t crc16(std::string_view bytes) noexcept;

// The part of `key` that is hashed: the text between the first '{' and the first '}' after it,
// when that text is not empty; otherwise the whole key.
[[nodiscard]] std::string_view hash_tag(std::string_view key) noexcept;

[[nodiscard]] inline std::uint16_t key_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hash_tag(key)) & (slot_count - 1));
}

}  // namespace promptcache::cluster
