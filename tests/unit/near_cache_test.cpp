#include "promptcache/cache/near_cache.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace promptcache::cache {
namespace {

using namespace std::chrono_literals;
using Clock = NearCache::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

NearValuePtr value_of(std::string text) {
  auto value = std::make_shared<NearValue>();
  value->text = std::move(text);
  return value;
}

// What a read-through does after its find() missed: reserve, read (here: `text`), fill.
bool put(NearCache& cache, std::string_view key, std::string text, Clock::time_point now = t0,
         Clock::duration ttl = 1h) {
  const std::uint64_t ticket = cache.reserve(key, now);
  return ticket != 0 && cache.fill(key, ticket, value_of(std::move(text)), now + ttl, now);
}

// A miss recorded in the sketch, then the fill.
bool read_through(NearCache& cache, std::string_view key, std::string text) {
  if (cache.find(key, t0) != nullptr) return true;
  return put(cache, key, std::move(text));
}

TEST(NearCache, a_fill_publishes_one_value_that_every_hit_shares) {
  NearCache cache;
  EXPECT_EQ(cache.find("k", t0), nullptr);
  ASSERT_TRUE(put(cache, "k", R"({"a":1})"));
  const NearValuePtr first = cache.find("k", t0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->text, R"({"a":1})");
  EXPECT_EQ(cache.find("k", t0), first);
  EXPECT_EQ(cache.find("other", t0), nullptr);
}

TEST(NearCache, stats_count_hits_misses_fills_and_entries) {
  NearCache cache;
  (void)cache.find("k", t0);
  ASSERT_TRUE(put(cache, "k", "1"));
  (void)cache.find("k", t0);
  (void)cache.find("k", t0);
  const auto s = cache.stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.fills, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.placeholders, 0u);
}

TEST(NearCache, an_entry_weighs_its_key_its_text_and_the_fixed_overhead) {
  NearCache cache;
  const std::uint64_t ticket = cache.reserve("key", t0);
  EXPECT_EQ(cache.stats().placeholder_bytes, 3 + NearCache::entry_overhead);
  ASSERT_TRUE(cache.fill("key", ticket, value_of("value"), t0 + 1h, t0));
  const auto s = cache.stats();
  EXPECT_EQ(s.bytes, 3 + 5 + NearCache::entry_overhead);
  EXPECT_EQ(s.placeholder_bytes, 0u);
}

TEST(NearCache, an_entry_expires_at_its_expiry_and_is_removed_when_found_expired) {
  NearCache cache;
  ASSERT_TRUE(put(cache, "k", "v", t0, 10s));
  EXPECT_NE(cache.find("k", t0 + 9999ms), nullptr);
  EXPECT_EQ(cache.find("k", t0 + 10s), nullptr);
  const auto s = cache.stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.expirations, 1u);
}

TEST(NearCache, max_ttl_caps_the_expiry_given_to_fill) {
  NearCache cache(NearCacheOptions{.max_ttl = 1s});
  ASSERT_TRUE(put(cache, "k", "v", t0, 1h));
  EXPECT_NE(cache.find("k", t0 + 999ms), nullptr);
  EXPECT_EQ(cache.find("k", t0 + 1s), nullptr);
}

TEST(NearCache, a_fill_that_is_already_expired_stores_nothing_and_frees_the_placeholder) {
  NearCache cache;
  const std::uint64_t ticket = cache.reserve("k", t0);
  EXPECT_FALSE(cache.fill("k", ticket, value_of("v"), t0, t0));
  EXPECT_EQ(cache.stats().placeholders, 0u);
  EXPECT_EQ(cache.find("k", t0), nullptr);
}

TEST(NearCache, a_fill_after_invalidate_fails) {
  NearCache cache;
  const std::uint64_t ticket = cache.reserve("k", t0);
  ASSERT_NE(ticket, 0u);
  cache.invalidate("k");
  EXPECT_FALSE(cache.fill("k", ticket, value_of("stale"), t0 + 1h, t0));
  EXPECT_EQ(cache.find("k", t0), nullptr);
  EXPECT_EQ(cache.stats().invalidations, 1u);
}

TEST(NearCache, a_fill_after_flush_fails) {
  NearCache cache;
  const std::uint64_t ticket = cache.reserve("k", t0);
  ASSERT_NE(ticket, 0u);
  cache.flush();
  EXPECT_FALSE(cache.fill("k", ticket, value_of("stale"), t0 + 1h, t0));
  EXPECT_EQ(cache.find("k", t0), nullptr);
  EXPECT_EQ(cache.stats().flushes, 1u);
}

TEST(NearCache, flush_removes_every_value_and_placeholder) {
  NearCache cache;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(put(cache, "k" + std::to_string(i), "v"));
  (void)cache.reserve("pending", t0);
  cache.flush();
  const auto s = cache.stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.placeholders, 0u);
  EXPECT_EQ(cache.find("k0", t0), nullptr);
  EXPECT_TRUE(put(cache, "k0", "again"));
}

TEST(NearCache, a_later_reserve_takes_the_placeholder_over) {
  NearCache cache;
  const std::uint64_t first = cache.reserve("k", t0);
  const std::uint64_t second = cache.reserve("k", t0);
  ASSERT_NE(first, 0u);
  ASSERT_NE(second, 0u);
  EXPECT_NE(first, second);
  EXPECT_FALSE(cache.fill("k", first, value_of("old read"), t0 + 1h, t0));
  EXPECT_TRUE(cache.fill("k", second, value_of("new read"), t0 + 1h, t0));
  EXPECT_EQ(cache.find("k", t0)->text, "new read");
  EXPECT_EQ(cache.stats().placeholders, 0u);
}

TEST(NearCache, a_fill_without_its_placeholder_or_with_a_wrong_ticket_fails) {
  NearCache cache;
  EXPECT_FALSE(cache.fill("k", 1, value_of("v"), t0 + 1h, t0));
  const std::uint64_t ticket = cache.reserve("k", t0);
  EXPECT_FALSE(cache.fill("k", 0, value_of("v"), t0 + 1h, t0));
  EXPECT_FALSE(cache.fill("k", ticket + 1, value_of("v"), t0 + 1h, t0));
  EXPECT_FALSE(cache.fill("other", ticket, value_of("v"), t0 + 1h, t0));
  EXPECT_TRUE(cache.fill("k", ticket, value_of("v"), t0 + 1h, t0));
  EXPECT_FALSE(cache.fill("k", ticket, value_of("twice"), t0 + 1h, t0));
  EXPECT_EQ(cache.find("k", t0)->text, "v");
}

TEST(NearCache, reserve_leaves_a_live_entry_alone_and_replaces_an_expired_one) {
  NearCache cache;
  ASSERT_TRUE(put(cache, "k", "v", t0, 10s));
  EXPECT_EQ(cache.reserve("k", t0 + 1s), 0u);
  EXPECT_EQ(cache.find("k", t0 + 1s)->text, "v");
  const std::uint64_t ticket = cache.reserve("k", t0 + 10s);
  ASSERT_NE(ticket, 0u);
  EXPECT_EQ(cache.find("k", t0 + 10s), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_TRUE(cache.fill("k", ticket, value_of("w"), t0 + 1h, t0 + 10s));
  EXPECT_EQ(cache.find("k", t0 + 10s)->text, "w");
}

TEST(NearCache, cancel_removes_only_the_placeholder_of_its_ticket) {
  NearCache cache;
  const std::uint64_t ticket = cache.reserve("k", t0);
  cache.cancel("k", ticket + 1);
  EXPECT_EQ(cache.stats().placeholders, 1u);
  cache.cancel("k", ticket);
  EXPECT_EQ(cache.stats().placeholders, 0u);
  EXPECT_FALSE(cache.fill("k", ticket, value_of("v"), t0 + 1h, t0));
  ASSERT_TRUE(put(cache, "k", "v"));
  cache.cancel("k", ticket);  // a value, not a placeholder: untouched
  EXPECT_NE(cache.find("k", t0), nullptr);
}

TEST(NearCache, invalidate_removes_a_published_value) {
  NearCache cache;
  ASSERT_TRUE(put(cache, "k", "v"));
  cache.invalidate("k");
  cache.invalidate("never cached");
  EXPECT_EQ(cache.find("k", t0), nullptr);
  const auto s = cache.stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.invalidations, 1u);
}

// The front table: repeated hits come from this thread's slot, and an invalidation or a flush
// (even of a key the shards no longer hold) retires it at once.
TEST(NearCache, repeated_hits_are_answered_by_the_front_table_until_an_invalidation) {
  NearCache cache;
  ASSERT_TRUE(put(cache, "k", "v1"));
  for (int i = 0; i < 10; ++i) ASSERT_NE(cache.find("k", t0), nullptr);  // slot claimed, filled
  const NearValue* borrowed = nullptr;
  EXPECT_TRUE(cache.visit("k", t0, [&](const NearValue& v) { borrowed = &v; }));
  EXPECT_EQ(borrowed, cache.find("k", t0).get());  // the same value, not a copy
  EXPECT_EQ(cache.stats().hits, 12u);
  cache.invalidate("k");
  EXPECT_EQ(cache.find("k", t0), nullptr);
  EXPECT_FALSE(cache.visit("k", t0, [](const NearValue&) {}));
  ASSERT_TRUE(put(cache, "k", "v2"));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(cache.find("k", t0)->text, "v2");
  cache.flush();
  EXPECT_EQ(cache.find("k", t0), nullptr);
  ASSERT_TRUE(put(cache, "k", "v3"));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(cache.find("k", t0)->text, "v3");
  EXPECT_EQ(cache.find("k", t0 + 2h), nullptr);  // the slot keeps the entry's expiry
}

TEST(NearCache, an_invalidation_of_a_key_evicted_from_the_shards_still_retires_front_slots) {
  NearCacheOptions options;
  options.max_entries = 4;
  options.shards = 1;
  NearCache cache(options);
  ASSERT_TRUE(put(cache, "hot", "v1"));
  for (int i = 0; i < 10; ++i) ASSERT_NE(cache.find("hot", t0), nullptr);
  for (int i = 0; i < 1000; ++i) (void)put(cache, "cold" + std::to_string(i), "x");
  // Whether or not admission kept it, no slot may answer after its invalidation.
  cache.invalidate("hot");
  EXPECT_EQ(cache.find("hot", t0), nullptr);
}

TEST(NearCache, the_entry_bound_holds_after_many_fills) {
  NearCache cache(NearCacheOptions{.max_entries = 100, .shards = 4});
  ASSERT_EQ(cache.shard_count(), 4u);
  for (int i = 0; i < 10000; ++i) (void)read_through(cache, "key:" + std::to_string(i), "v");
  const auto s = cache.stats();
  EXPECT_LE(s.entries, 100u);
  EXPECT_GE(s.entries, 50u);
  EXPECT_EQ(s.evictions + s.rejected + s.entries, 10000u);
  EXPECT_EQ(s.placeholders, 0u);
}

TEST(NearCache, the_byte_bound_holds_after_many_fills_of_varied_sizes) {
  constexpr std::size_t max_bytes = std::size_t{64} * 1024;
  NearCache cache(NearCacheOptions{.max_entries = 100000, .max_bytes = max_bytes, .shards = 4});
  ASSERT_EQ(cache.shard_count(), 4u);
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    (void)read_through(cache, "key:" + std::to_string(i), std::string(50 + rng() % 2000, 'x'));
    ASSERT_LE(cache.stats().bytes, max_bytes);
  }
  const auto s = cache.stats();
  EXPECT_GT(s.entries, 0u);
  EXPECT_GE(s.bytes, max_bytes / 2);
  EXPECT_LE(s.placeholder_bytes, max_bytes / 4);
}

TEST(NearCache, a_value_larger_than_a_shard_is_refused_and_its_placeholder_removed) {
  NearCache cache(NearCacheOptions{.max_bytes = std::size_t{64} * 1024, .shards = 1});
  const std::uint64_t ticket = cache.reserve("big", t0);
  ASSERT_NE(ticket, 0u);
  EXPECT_FALSE(
      cache.fill("big", ticket, value_of(std::string(std::size_t{64} * 1024, 'x')), t0 + 1h, t0));
  const auto s = cache.stats();
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.placeholders, 0u);
}

TEST(NearCache, placeholders_are_bounded_and_the_oldest_is_dropped) {
  NearCache cache(NearCacheOptions{.max_entries = 64, .shards = 1});  // max(16, 64 / 4) = 16
  std::vector<std::uint64_t> tickets;
  tickets.reserve(40);
  for (int i = 0; i < 40; ++i) tickets.push_back(cache.reserve("key:" + std::to_string(i), t0));
  auto s = cache.stats();
  EXPECT_EQ(s.placeholders, 16u);
  EXPECT_EQ(s.placeholders_dropped, 24u);
  EXPECT_FALSE(cache.fill("key:0", tickets[0], value_of("v"), t0 + 1h, t0));
  EXPECT_TRUE(cache.fill("key:39", tickets[39], value_of("v"), t0 + 1h, t0));
}

TEST(NearCache, zero_max_entries_disables_the_cache) {
  NearCache cache(NearCacheOptions{.max_entries = 0});
  EXPECT_EQ(cache.reserve("k", t0), 0u);
  EXPECT_FALSE(cache.fill("k", 1, value_of("v"), t0 + 1h, t0));
  EXPECT_EQ(cache.find("k", t0), nullptr);
  cache.invalidate("k");
  cache.flush();
  const auto s = cache.stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.fills, 0u);
}

TEST(NearCache, shards_are_a_power_of_two_no_more_than_the_entries_or_bytes_allow) {
  EXPECT_EQ(NearCache(NearCacheOptions{.shards = 10}).shard_count(), 16u);
  EXPECT_EQ(NearCache(NearCacheOptions{.shards = 0}).shard_count(), 1u);
  EXPECT_EQ(NearCache(NearCacheOptions{.max_entries = 3}).shard_count(), 2u);
  EXPECT_EQ(NearCache(NearCacheOptions{.max_bytes = std::size_t{32} * 1024}).shard_count(), 2u);
}

TEST(NearCache, frequently_read_keys_survive_a_scan_of_keys_read_once) {
  // A plain LRU of 1000 entries keeps none of the hot keys: each is read once every 2000 cold
  // fills. The protected segment keeps them, and admission keeps the scan in the window.
  NearCache cache(NearCacheOptions{.max_entries = 1000});
  const std::string pad(50, '.');
  std::vector<std::string> hot;
  hot.reserve(200);
  for (int i = 0; i < 200; ++i) hot.push_back("hot:" + std::to_string(i) + pad);
  for (const auto& key : hot) ASSERT_TRUE(read_through(cache, key, "hot"));
  for (int round = 0; round < 10; ++round) {
    for (const auto& key : hot) (void)cache.find(key, t0);
  }
  std::size_t next_hot = 0;
  for (int i = 0; i < 100000; ++i) {
    (void)read_through(cache, "cold:" + std::to_string(i) + pad, "cold");
    if (i % 10 == 0) (void)cache.find(hot[next_hot++ % hot.size()], t0);
  }
  std::size_t present = 0;
  for (const auto& key : hot) present += cache.find(key, t0) != nullptr ? 1 : 0;
  EXPECT_GE(present, 180u);
  EXPECT_LE(cache.stats().entries, 1000u);
}

TEST(NearCache, admission_keeps_often_missed_entries_against_keys_read_once) {
  // Entries never hit stay in probation, where a segmented LRU alone would let the scan push
  // them out; the sketch remembers they were asked for eight times each.
  NearCache cache(NearCacheOptions{.max_entries = 100, .shards = 1});
  std::vector<std::string> warm;
  warm.reserve(99);
  for (int i = 0; i < 99; ++i) warm.push_back("warm:" + std::to_string(i));
  for (const auto& key : warm) {
    for (int n = 0; n < 8; ++n) (void)cache.find(key, t0);
    ASSERT_TRUE(put(cache, key, "warm"));
  }
  for (int i = 0; i < 1000; ++i) (void)read_through(cache, "cold:" + std::to_string(i), "cold");
  std::size_t present = 0;
  for (const auto& key : warm) present += cache.find(key, t0) != nullptr ? 1 : 0;
  EXPECT_GE(present, 90u);
  EXPECT_GT(cache.stats().rejected, 900u);
}

TEST(NearCache, concurrent_calls_never_return_a_value_older_than_the_last_invalidation) {
  // The source of truth is a version per key. A writer bumps it, then invalidates, then
  // raises `invalidated` to that version; a reader reserves, then reads the version, then
  // fills. A value carries the version it was read at, so a hit must carry at least the
  // `invalidated` figure read before the find: an older one was read before a write whose
  // invalidation had completed.
  constexpr std::size_t key_count = 64;
  constexpr int threads = 4;
  constexpr int iterations = 200000;
  NearCache cache(NearCacheOptions{.max_entries = 48, .max_bytes = 1 << 20, .shards = 4});
  std::array<std::string, key_count> names;
  for (std::size_t k = 0; k < key_count; ++k) names[k] = "key:" + std::to_string(k);
  std::array<std::atomic<std::uint64_t>, key_count> version{};
  std::array<std::atomic<std::uint64_t>, key_count> invalidated{};
  std::atomic<std::uint64_t> stale{0};
  std::atomic<std::uint64_t> wrong_key{0};
  std::atomic<std::uint64_t> hits{0};

  const auto raise = [](std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t seen = a.load();
    while (seen < v && !a.compare_exchange_weak(seen, v)) {
    }
  };
  const auto check = [&](const NearValue& value, std::size_t k, std::uint64_t floor) {
    const std::string_view text = value.text;
    const std::string prefix = names[k] + "=";
    if (!text.starts_with(prefix)) {
      wrong_key.fetch_add(1);
      return;
    }
    std::uint64_t v = 0;
    const auto parsed = std::from_chars(text.data() + prefix.size(), text.data() + text.size(), v);
    if (parsed.ec != std::errc{} || v < floor) stale.fetch_add(1);
    hits.fetch_add(1);
  };
  const auto worker = [&](unsigned seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < iterations; ++i) {
      const std::size_t k = rng() % key_count;
      const std::string& name = names[k];
      const unsigned op = rng() % 1000;
      if (op < 900) {  // a read, through to the source on a miss two times in three
        const std::uint64_t floor = invalidated[k].load();
        if (const NearValuePtr v = cache.find(name)) {
          check(*v, k, floor);
          continue;
        }
        if (op >= 600) continue;
        const std::uint64_t ticket = cache.reserve(name);
        if (ticket == 0) continue;
        const std::uint64_t read = version[k].load();
        if (op < 30) {
          cache.cancel(name, ticket);
        } else {
          (void)cache.fill(name, ticket, value_of(name + "=" + std::to_string(read)),
                           Clock::now() + 1min);
        }
      } else if (op < 985) {  // a write and its invalidation
        const std::uint64_t written = version[k].fetch_add(1) + 1;
        cache.invalidate(name);
        raise(invalidated[k], written);
      } else {  // a write whose invalidation was lost with the connection, then the flush
        const std::uint64_t written = version[k].fetch_add(1) + 1;
        cache.flush();
        raise(invalidated[k], written);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, 1234u + static_cast<unsigned>(t));
  for (auto& t : pool) t.join();

  EXPECT_EQ(stale.load(), 0u);
  EXPECT_EQ(wrong_key.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  const auto s = cache.stats();
  EXPECT_LE(s.entries, 48u);
  EXPECT_LE(s.bytes, std::size_t{1} << 20);
  EXPECT_EQ(s.placeholders, 0u);  // every reserve was filled or cancelled
  EXPECT_GT(s.fills, 0u);
  EXPECT_GT(s.invalidations, 0u);
}

}  // namespace
}  // namespace promptcache::cache
