// The near cache's admission filter: how often each key was asked for lately, in little memory.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace promptcache::cache::near {

// A count-min sketch of 4-bit saturating counters, sixteen to a word, four per key, all four in
// one 64-byte block so that recording or estimating costs one cache miss (Caffeine's
// FrequencySketch). Halving every counter after sample_size recorded increments ages the
// history; the odd counters' lost halves are taken off the tally the same way.
class FrequencySketch {
 public:
  FrequencySketch() = default;
  explicit FrequencySketch(std::size_t capacity)
      : blocks_(std::bit_ceil(std::max<std::size_t>(capacity, 8)) / 8),
        table_(std::make_unique<Block[]>(blocks_)),
        sample_size_(10 * std::max<std::size_t>(capacity, 1)) {}

  void record(std::uint64_t hash) noexcept {
    Block& b = block_of(hash);
    const std::uint64_t h = rehash(hash);
    bool added = false;
    for (unsigned i = 0; i < 4; ++i) {
      const auto [word, shift] = counter(h, i);
      const std::uint64_t full = std::uint64_t{15} << shift;
      if ((b.words[word] & full) != full) {
        b.words[word] += std::uint64_t{1} << shift;
        added = true;
      }
    }
    if (added && ++additions_ >= sample_size_) halve();
  }

  [[nodiscard]] unsigned frequency(std::uint64_t hash) const noexcept {
    const Block& b = block_of(hash);
    const std::uint64_t h = rehash(hash);
    unsigned f = 15;
    for (unsigned i = 0; i < 4; ++i) {
      const auto [word, shift] = counter(h, i);
      f = std::min(f, static_cast<unsigned>((b.words[word] >> shift) & 15));
    }
    return f;
  }

 private:
  struct alignas(64) Block {
    std::array<std::uint64_t, 8> words{};
  };

  [[nodiscard]] Block& block_of(std::uint64_t hash) const noexcept {
    return table_[static_cast<std::size_t>(hash * 0xc3a5c85c97cb3127 >> 32) & (blocks_ - 1)];
  }
  [[nodiscard]] static std::uint64_t rehash(std::uint64_t hash) noexcept {
    hash *= 0x9ae16a3b2f90404f;
    return hash ^ (hash >> 29);
  }
  // The i-th counter: in word 2i or 2i+1 of the block (so four distinct words), any nibble.
  [[nodiscard]] static std::pair<unsigned, unsigned> counter(std::uint64_t h, unsigned i) noexcept {
    const auto byte = static_cast<unsigned>(h >> (i * 8));
    return {2 * i + (byte & 1), ((byte >> 1) & 15) * 4};
  }

  void halve() noexcept {
    std::size_t odd = 0;
    for (std::size_t i = 0; i < blocks_; ++i) {
      for (auto& word : table_[i].words) {
        odd += static_cast<std::size_t>(std::popcount(word & 0x1111111111111111));
        word = (word >> 1) & 0x7777777777777777;
      }
    }
    additions_ = (additions_ - std::min(additions_, odd / 4)) / 2;
  }

  std::size_t blocks_ = 0;
  std::unique_ptr<Block[]> table_;
  std::size_t sample_size_ = 0;
  std::size_t additions_ = 0;
};

}  // namespace promptcache::cache::near
