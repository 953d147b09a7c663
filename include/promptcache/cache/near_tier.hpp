// The near cache as the service uses it: a NearCache kept coherent by Redis. It listens to the
// client's CLIENT TRACKING stream (net::TrackingListener): a pushed invalidation removes the
// key's entry or its "caching in progress" placeholder, a null one or a dropped connection
// flushes everything, and a server that cannot track (RESP2 only, or refusing) turns the near
// cache off for good — reads then always go to Redis.
//
// Wiring, as CacheConfig's from_config does it: make the tier, put it in the Redis client's
// ClientConfig::tracking.listener before the client is made, and give it to the service.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "promptcache/cache/envelope.hpp"
#include "promptcache/cache/near_cache.hpp"
#include "promptcache/net/config.hpp"

namespace promptcache::cache {

class NearTier final : public net::TrackingListener {
 public:
  explicit NearTier(NearCacheOptions options = {}) : cache_(options) {}

  [[nodiscard]] NearCache& cache() noexcept { return cache_; }
  // False once a connection could not turn tracking on: nothing is cached from then on.
  [[nodiscard]] bool active() const noexcept { return !refused_.load(std::memory_order_acquire); }

  // A read through the tier, in three steps (the service's reads):
  //  1. visit(): a live copy of `key` is handed to `use(const NearValue&)` (borrowed: no
  //     reference count moves on a hit); true if there was one;
  //  2. otherwise reserve() before the store is asked: a placeholder, so that an invalidation
  //     arriving while the store answers keeps that answer out (0: the tier is off);
  //  3. then keep() the answer, or release() the place if there is nothing to keep.
  template <class Use>
  bool visit(std::string_view key, NearCache::Clock::time_point now, Use&& use) {
    return active() && cache_.visit(key, now, std::forward<Use>(use));
  }
  [[nodiscard]] std::uint64_t reserve(std::string_view key, NearCache::Clock::time_point now) {
    return active() ? cache_.reserve(key, now) : 0;
  }
  // Keeps `text` (the JSON of a value read with `ticket`) no longer than its soft expiry, so
  // never past the store's entry; a value without an envelope has no known TTL and is not kept.
  void keep(std::string_view key, std::uint64_t ticket, std::string text, const EnvelopeMeta& meta);
  void release(std::string_view key, std::uint64_t ticket) { cache_.cancel(key, ticket); }
  // The copy of `key`, if live (coarse clock), shared.
  [[nodiscard]] NearValuePtr find(std::string_view key) {
    return active() ? cache_.find(key, NearCache::coarse_now()) : nullptr;
  }
  // A write's part: the copy of `key` goes.
  void forget(std::string_view key) { cache_.invalidate(key); }

  void invalidated(std::string_view key) override;
  void invalidated_all() override;
  void link_down() override;
  void tracking_refused(std::string_view why) override;

  struct Stats {
    std::uint64_t keys_invalidated = 0;  // keys named by invalidation pushes
    std::uint64_t link_flushes = 0;      // flushes for a dropped connection or a null invalidation
  };
  [[nodiscard]] Stats stats() const noexcept {
    return {keys_.load(std::memory_order_relaxed), link_flushes_.load(std::memory_order_relaxed)};
  }

 private:
  NearCache cache_;
  std::atomic<bool> refused_{false};
  std::atomic<std::uint64_t> keys_{0};
  std::atomic<std::uint64_t> link_flushes_{0};
};

}  // namespace promptcache::cache
