// The near cache's key hash: shards, buckets and the frequency sketch all take their bits from
// one hash of the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace promptcache::cache::near {

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 128-bit product folded to 64 bits: one multiply mixes every input bit into the output.
inline std::uint64_t fold(std::uint64_t a, std::uint64_t b) noexcept {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

// A multiply-fold hash of 16 bytes per step (the wyhash construction): a 100-byte key in about
// a quarter of std::hash's time, which was a fifth of a hit. Shards, buckets and the sketch
// all take their bits from it.
inline std::size_t hash_key(std::string_view key) noexcept {
  constexpr std::uint64_t p0 = 0xa0761d6478bd642full;
  constexpr std::uint64_t p1 = 0xe7037ed1a0b428dbull;
  constexpr std::uint64_t p2 = 0x8ebc6af09c88c6e3ull;
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t seed = p0 ^ fold(n ^ p0, p1);
  while (n > 16) {
    seed = fold(load64(p) ^ p1, load64(p + 8) ^ seed);
    p += 16;
    n -= 16;
  }
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n > 8) {
    a = load64(p);
    b = load64(p + n - 8);
  } else if (n >= 4) {
    a = load32(p);
    b = load32(p + n - 4);
  } else if (n > 0) {
    const auto byte = [&](std::size_t i) {
      return static_cast<std::uint64_t>(static_cast<unsigned char>(p[i]));
    };
    a = (byte(0) << 16) | (byte(n >> 1) << 8) | byte(n - 1);
  }
  return static_cast<std::size_t>(fold(p2 ^ key.size(), fold(a ^ p1, b ^ seed)));
}

}  // namespace promptcache::cache::near
