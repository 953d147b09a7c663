// A lock-free latency histogram: log-spaced buckets (4 per power of two) of microseconds,
// good to about ±10 % for percentiles, safe to record from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace promptcache::telemetry {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept;
  // The value (µs) below which `quantile` (0..1) of the recorded samples fall; 0 when empty.
  [[nodiscard]] double percentile_us(double quantile) const noexcept;
  [[nodiscard]] std::uint64_t count() const noexcept;

 private:
  static constexpr int buckets = 4 * 40;  // up to 2^40 ns
  std::array<std::atomic<std::uint64_t>, buckets> counts_{};
};

}  // namespace promptcache::telemetry
