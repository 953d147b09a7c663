#include "cache/load_policy.hpp"

#include <algorithm>

namespace promptcache::cache {

double LoadPolicy::refresh_threshold(SystemClock::time_point created,
                                     SystemClock::time_point soft_expiry,
                                     SystemClock::time_point now) const noexcept {
  constexpr double never = 2;  // no draw in [0, 1) reaches it
  if (early_refresh <= 0 || soft_expiry == SystemClock::time_point{}) return never;
  const double life = std::chrono::duration<double>(soft_expiry - created).count();
  const double left = std::chrono::duration<double>(soft_expiry - now).count();
  const double window = life * early_refresh;
  if (window <= 0 || left >= window) return never;
  return left / window;  // falls from 1 to 0 (and below, once stale)
}

std::chrono::milliseconds LoadPolicy::lease_pause(int polls) noexcept {
  const int shift = std::clamp(polls, 0, 5);  // 2 << 5 = 64: past the cap
  return std::min(std::chrono::milliseconds(2 << shift), std::chrono::milliseconds(50));
}

std::int64_t LoadPolicy::fill_deadline_ms(SystemClock::time_point read_at) const noexcept {
  const auto bound = read_at + tombstone_ttl / 2;
  return std::chrono::duration_cast<std::chrono::milliseconds>(bound.time_since_epoch()).count();
}

}  // namespace promptcache::cache
