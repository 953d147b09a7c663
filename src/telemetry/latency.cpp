#include "promptcache/telemetry/latency.hpp"

#include <bit>
#include <cmath>

namespace promptcache::telemetry {
namespace {

int bucket_of(std::uint64_t ns) {
  if (ns < 4) return static_cast<int>(ns);
  const int log2 = 63 - std::countl_zero(ns);
  const int quarter = static_cast<int>((ns >> (log2 - 2)) & 3);
  return log2 * 4 + quarter;
}

// The upper bound (ns) of a bucket.
double bucket_upper(int b) {
  if (b < 4) return b + 1;
  const int log2 = b / 4;
  const int quarter = b % 4;
  return std::ldexp(1.0 + (quarter + 1) / 4.0, log2);
}

}  // namespace

void LatencyHistogram::record(std::chrono::nanoseconds d) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0));
  const int b = std::min(bucket_of(ns), buckets - 1);
  counts_[static_cast<std::size_t>(b)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t LatencyHistogram::count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::percentile_us(double quantile) const noexcept {
  const std::uint64_t total = count();
  if (total == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (int b = 0; b < buckets; ++b) {
    seen += counts_[static_cast<std::size_t>(b)].load(std::memory_order_relaxed);
    if (seen >= std::max<std::uint64_t>(rank, 1)) return bucket_upper(b) / 1000.0;
  }
  return bucket_upper(buckets - 1) / 1000.0;
}

}  // namespace promptcache::telemetry
