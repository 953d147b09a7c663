// What only the in-process store promises: its bounds (entries, bytes, least recently used out
// first), expiry on an injected clock, and safety under concurrent callers. The behaviour it
// shares with Redis is in integration/store_contract_test.cpp.
#include "promptcache/store/local_store.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/io_runner.hpp"

namespace promptcache::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The injected clock: a plain function pointer, so its state is a static.
std::atomic<std::int64_t> fake_now_ns{0};

LocalStore::Clock::time_point fake_now() {
  return LocalStore::Clock::time_point(std::chrono::duration_cast<LocalStore::Clock::duration>(
      std::chrono::nanoseconds(fake_now_ns.load())));
}

void advance(std::chrono::nanoseconds d) {
  fake_now_ns += d.count();
}

template <class T>
T run(asio::awaitable<T> task) {
  asio::io_context io;
  return testing::run_until_done(io, std::move(task));
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_now_ns = std::chrono::nanoseconds(1000h).count();  // far from the epoch
  }
};

LocalStore bounded(std::size_t max_entries, std::size_t max_bytes = 1u << 30) {
  return LocalStore(LocalStoreOptions{.max_entries = max_entries, .max_bytes = max_bytes},
                    &fake_now);
}

TEST_F(LocalStoreTest, past_max_entries_the_least_recently_set_entry_is_evicted_first) {
  auto s = bounded(3);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("c", "3", 0s);
  s.set_now("d", "4", 0s);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.get_now("a"), std::nullopt);
  EXPECT_EQ(s.get_now("b"), "2");
  EXPECT_EQ(s.get_now("c"), "3");
  EXPECT_EQ(s.get_now("d"), "4");
}

TEST_F(LocalStoreTest, a_get_refreshes_recency_so_the_oldest_used_entry_goes_instead) {
  auto s = bounded(3);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("c", "3", 0s);
  EXPECT_EQ(s.get_now("a"), "1");  // a is now the most recently used; b the least
  s.set_now("d", "4", 0s);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.get_now("b"), std::nullopt);
  EXPECT_EQ(s.get_now("a"), "1");
  EXPECT_EQ(s.get_now("c"), "3");
  EXPECT_EQ(s.get_now("d"), "4");
}

TEST_F(LocalStoreTest, get_multiple_refreshes_recency_too) {
  auto s = bounded(3);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("c", "3", 0s);
  auto r = run(s.get_multiple({"b", "a"}));  // c is now the least recently used
  ASSERT_TRUE(r);
  s.set_now("d", "4", 0s);
  EXPECT_EQ(s.get_now("c"), std::nullopt);
  EXPECT_EQ(s.get_now("a"), "1");
  EXPECT_EQ(s.get_now("b"), "2");
}

TEST_F(LocalStoreTest, overwriting_an_entry_refreshes_recency_and_does_not_count_twice) {
  auto s = bounded(3);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("c", "3", 0s);
  s.set_now("a", "1bis", 0s);  // b is now the least recently used
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.bytes(), 2u + 2u + 5u);
  s.set_now("d", "4", 0s);
  EXPECT_EQ(s.get_now("b"), std::nullopt);
  EXPECT_EQ(s.get_now("a"), "1bis");
  EXPECT_EQ(s.get_now("c"), "3");
}

TEST_F(LocalStoreTest, set_multiple_past_max_entries_keeps_the_last_ones_written) {
  auto s = bounded(10);
  std::vector<Entry> entries;
  for (int i = 0; i < 25; ++i) entries.push_back(Entry{fmt::format("k{}", i), "v", 0s});
  auto failed = run(s.set_multiple(entries));
  ASSERT_TRUE(failed);
  EXPECT_EQ(*failed, 0u);
  EXPECT_EQ(s.size(), 10u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(s.get_now(fmt::format("k{}", i)), std::nullopt) << i;
  for (int i = 15; i < 25; ++i) EXPECT_EQ(s.get_now(fmt::format("k{}", i)), "v") << i;
}

TEST_F(LocalStoreTest, bytes_count_keys_and_values_and_are_bounded_by_max_bytes) {
  // Each entry: a 2-byte key and a 38-byte value, 40 bytes; three do not fit in 100.
  auto s = bounded(1000, 100);
  const std::string value(38, 'v');
  s.set_now("k1", value, 0s);
  s.set_now("k2", value, 0s);
  EXPECT_EQ(s.bytes(), 80u);
  s.set_now("k3", value, 0s);
  EXPECT_EQ(s.bytes(), 80u);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.get_now("k1"), std::nullopt);  // the least recently used went
  EXPECT_EQ(s.get_now("k2"), value);
  EXPECT_EQ(s.get_now("k3"), value);
  // One entry of 90 bytes needs both others gone.
  s.set_now("k4", std::string(88, 'w'), 0s);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.bytes(), 90u);
}

TEST_F(LocalStoreTest, deleting_and_overwriting_give_their_bytes_back) {
  auto s = bounded(1000, 1000);
  s.set_now("key", std::string(100, 'x'), 0s);
  EXPECT_EQ(s.bytes(), 103u);
  s.set_now("key", "short", 0s);
  EXPECT_EQ(s.bytes(), 8u);
  EXPECT_TRUE(s.del_now("key"));
  EXPECT_EQ(s.bytes(), 0u);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.del_now("key"));
}

TEST_F(LocalStoreTest, an_entry_of_exactly_max_bytes_is_stored_alone) {
  auto s = bounded(1000, 100);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("k", std::string(99, 'z'), 0s);  // 1 + 99 = 100 bytes
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.bytes(), 100u);
  EXPECT_EQ(s.get_now("k"), std::string(99, 'z'));
}

TEST_F(LocalStoreTest, a_value_larger_than_max_bytes_is_not_stored_and_evicts_nothing) {
  auto s = bounded(1000, 100);
  s.set_now("a", "1", 0s);
  s.set_now("b", "2", 0s);
  s.set_now("huge", std::string(200, 'x'), 0s);
  EXPECT_EQ(s.get_now("huge"), std::nullopt);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.bytes(), 4u);
  EXPECT_EQ(s.get_now("a"), "1");
  EXPECT_EQ(s.get_now("b"), "2");
  // The same through set_multiple: it is not counted as a failure of the store, just not kept.
  auto failed = run(s.set_multiple({Entry{"huge2", std::string(101, 'y'), 0s}}));
  ASSERT_TRUE(failed);
  EXPECT_EQ(s.get_now("huge2"), std::nullopt);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.bytes(), 4u);
}

TEST_F(LocalStoreTest, entries_expire_on_the_injected_clock) {
  auto s = bounded(100);
  s.set_now("short", "v", 10s);
  s.set_now("forever", "v", 0s);
  advance(10s - 1ms);
  EXPECT_EQ(s.get_now("short"), "v");
  advance(2ms);
  EXPECT_EQ(s.get_now("short"), std::nullopt);
  EXPECT_EQ(s.size(), 1u);  // the expired entry went on access, with its bytes
  EXPECT_EQ(s.bytes(), std::string("forever").size() + 1);
  advance(24h * 365 * 10);
  EXPECT_EQ(s.get_now("forever"), "v");
}

TEST_F(LocalStoreTest, expired_entries_are_misses_everywhere_and_del_does_not_count_them) {
  auto s = bounded(100);
  s.set_now("a", "1", 5s);
  s.set_now("b", "2", 5s);
  s.set_now("c", "3", 0s);
  advance(6s);
  auto many = run(s.get_multiple({"a", "c"}));
  ASSERT_TRUE(many);
  const std::vector<std::optional<std::string>> expected{std::nullopt, "3"};
  EXPECT_EQ(*many, expected);
  auto n = run(s.del({"b", "c"}));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  auto stats = run(s.server_stats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->keyspace_hits, 1u);
  EXPECT_EQ(stats->keyspace_misses, 1u);
  EXPECT_EQ(stats->keys, 0u);
}

TEST_F(LocalStoreTest, overwrite_with_a_new_ttl_replaces_the_old_expiry) {
  auto s = bounded(100);
  s.set_now("k", "old", 5s);
  s.set_now("k", "new", 0s);
  s.set_now("j", "old", 0s);
  s.set_now("j", "new", 5s);
  advance(6s);
  EXPECT_EQ(s.get_now("k"), "new");
  EXPECT_EQ(s.get_now("j"), std::nullopt);
}

TEST_F(LocalStoreTest, set_multiple_honours_each_entrys_ttl) {
  auto s = bounded(100);
  auto failed =
      run(s.set_multiple({Entry{"t1", "v", 1s}, Entry{"t0", "v", 0s}, Entry{"t9", "v", 9s}}));
  ASSERT_TRUE(failed);
  advance(2s);
  EXPECT_EQ(s.get_now("t1"), std::nullopt);
  EXPECT_EQ(s.get_now("t0"), "v");
  EXPECT_EQ(s.get_now("t9"), "v");
}

TEST_F(LocalStoreTest, delete_matching_also_drops_expired_entries_without_counting_them) {
  auto s = bounded(100);
  s.set_now("user:1", "v", 5s);    // matches, but expired by then: dropped, not counted
  s.set_now("other:1", "v", 5s);   // no match, expired: dropped too
  s.set_now("user:2", "v", 0s);    // matches: deleted and counted
  s.set_now("other:2", "v", 0s);   // no match, live: kept
  s.set_now("user:3", "v", 100s);  // matches, live
  advance(6s);
  EXPECT_EQ(s.size(), 5u);  // nothing was touched yet
  auto n = run(s.delete_matching("user:*"));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.bytes(), std::string("other:2").size() + 1);
  EXPECT_EQ(s.get_now("other:2"), "v");
}

TEST_F(LocalStoreTest, server_stats_reports_the_maps_own_counters) {
  auto s = bounded(100);
  s.set_now("a", "12345", 0s);
  (void)s.get_now("a");
  (void)s.get_now("a");
  (void)s.get_now("nope");
  auto stats = run(s.server_stats());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->keyspace_hits, 2u);
  EXPECT_EQ(stats->keyspace_misses, 1u);
  EXPECT_EQ(stats->keys, 1u);
  EXPECT_EQ(stats->used_memory, 6u);
  EXPECT_EQ(s.tier(), "local");
}

TEST_F(LocalStoreTest, four_threads_of_mixed_operations_keep_bounds_and_byte_count_consistent) {
  constexpr std::size_t max_entries = 48;
  constexpr std::size_t max_bytes = 4096;
  constexpr int threads = 4;
  constexpr int ops = 10000;
  constexpr int key_space = 32;  // overlapping: every thread touches every key
  auto s = bounded(max_entries, max_bytes);
  // Present before the threads start, so reads hit whatever the scheduling.
  for (int k = 0; k < key_space; ++k) {
    const std::string key = fmt::format("k{}", k);
    s.set_now(key, key + "|a", 0s);
  }
  std::atomic<int> corrupt{0};
  std::atomic<int> hits{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < ops; ++i) {
        const std::string key = fmt::format("k{}", (i * 37 + t * 11) % key_space);
        switch ((i + t) % 3) {
          case 0: {
            // The value names its key, so a read can tell a torn or misplaced value.
            const std::size_t len = static_cast<std::size_t>((i * 7 + t * 13) % 150);
            s.set_now(key, key + "|" + std::string(len, static_cast<char>('a' + t)), 0s);
            break;
          }
          case 1: {
            auto v = s.get_now(key);
            if (!v) break;
            ++hits;
            // key + "|" + a run of one thread's letter.
            bool ok = v->starts_with(key + "|");
            const std::string_view rest =
                ok ? std::string_view(*v).substr(key.size() + 1) : std::string_view();
            if (!rest.empty()) {
              ok = rest[0] >= 'a' && rest[0] < 'a' + threads &&
                   rest.find_first_not_of(rest[0]) == std::string_view::npos;
            }
            if (!ok) ++corrupt;
            break;
          }
          default:
            (void)s.del_now(key);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(s.size(), max_entries);
  EXPECT_LE(s.bytes(), max_bytes);
  std::size_t present = 0;
  std::size_t bytes = 0;
  for (int k = 0; k < key_space; ++k) {
    const std::string key = fmt::format("k{}", k);
    if (auto v = s.get_now(key)) {
      ++present;
      bytes += key.size() + v->size();
    }
  }
  EXPECT_EQ(present, s.size());
  EXPECT_EQ(bytes, s.bytes());
}

}  // namespace
}  // namespace promptcache::store
