#include "promptcache/cache/near_tier.hpp"
#include "promptcache/log.hpp"

#include <spdlog/spdlog.h>

namespace promptcache::cache {

void NearTier::invalidated(std::string_view key) {
  keys_.fetch_add(1, std::memory_order_relaxed);
  cache_.invalidate(key);
}

void NearTier::invalidated_all() {
  link_flushes_.fetch_add(1, std::memory_order_relaxed);
  cache_.flush();
}

void NearTier::link_down() {
  link_flushes_.fetch_add(1, std::memory_order_relaxed);
  cache_.flush();
}

void NearTier::tracking_refused(std::string_view why) {
  if (!refused_.exchange(true, std::memory_order_acq_rel)) {
    logger()->error("near cache off: the server cannot track keys for it ({})", why);
  }
  cache_.flush();
}

}  // namespace promptcache::cache
