#include "promptcache/cache/near_tier.hpp"

#include <spdlog/spdlog.h>

namespace promptcache::cache {

void NearTier::invalidated(const std::vector<std::string>& keys) {
  pushes_.fetch_add(1, std::memory_order_relaxed);
  keys_.fetch_add(keys.size(), std::memory_order_relaxed);
  for (const auto& k : keys) cache_.invalidate(k);
}

void NearTier::invalidated_all() {
  pushes_.fetch_add(1, std::memory_order_relaxed);
  link_flushes_.fetch_add(1, std::memory_order_relaxed);
  cache_.flush();
}

void NearTier::link_down() {
  link_flushes_.fetch_add(1, std::memory_order_relaxed);
  cache_.flush();
}

void NearTier::tracking_refused(std::string_view why) {
  if (!refused_.exchange(true, std::memory_order_acq_rel)) {
    spdlog::error("near cache off: the server cannot track keys for it ({})", why);
  }
  cache_.flush();
}

}  // namespace promptcache::cache
