#include "promptcache/cache/near_tier.hpp"
#include "promptcache/log.hpp"

#include <spdlog/spdlog.h>

namespace promptcache::cache {

void NearTier::keep(std::string_view key, std::uint64_t ticket, std::string text,
                    const EnvelopeMeta& meta) {
  if (meta.created == std::chrono::system_clock::time_point{}) {
    release(key, ticket);  // no envelope: how long it may live is unknown
    return;
  }
  auto copy = std::make_shared<NearValue>();
  copy->text = std::move(text);
  copy->created = meta.created;
  copy->soft_expiry = meta.soft_expiry;
  copy->version = meta.version;
  // Less a margin: hits look at a coarse clock, up to a tick behind.
  const auto now = NearCache::Clock::now();
  const auto expires = meta.soft_expiry == std::chrono::system_clock::time_point{}
                           ? NearCache::Clock::time_point::max()
                           : now - NearCache::coarse_margin +
                                 std::chrono::duration_cast<NearCache::Clock::duration>(
                                     meta.soft_expiry - std::chrono::system_clock::now());
  cache_.fill(key, ticket, std::move(copy), expires, now);
}

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
