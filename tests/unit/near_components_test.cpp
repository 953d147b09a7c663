// The near cache's parts, each on its own (src/cache/near/): the key hash, the frequency sketch
// that admits entries, the intrusive lists of its regions, and the shard lock.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/near/frequency_sketch.hpp"
#include "cache/near/hash.hpp"
#include "cache/near/intrusive_list.hpp"
#include "cache/near/spin_lock.hpp"

namespace promptcache::cache::near {
namespace {

// --- hash_key ----------------------------------------------------------------------------

TEST(NearHash, is_a_function_of_the_bytes_and_every_length_path_sees_every_byte) {
  EXPECT_EQ(hash_key("prompt:analysis:abc"), hash_key(std::string("prompt:analysis:abc")));
  // Lengths 0..40 cover each path (empty, 1–3, 4–8, 9–16, the 16-byte loop): flipping any one
  // byte changes the hash, and no two of these keys collide.
  std::set<std::size_t> seen;
  std::size_t keys = 0;
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string key(n, 'k');
    seen.insert(hash_key(key));
    ++keys;
    for (std::size_t i = 0; i < n; ++i) {
      std::string flipped = key;
      flipped[i] = 'j';
      EXPECT_NE(hash_key(flipped), hash_key(key)) << "length " << n << ", byte " << i;
      seen.insert(hash_key(flipped));
      ++keys;
    }
  }
  EXPECT_EQ(seen.size(), keys);
}

TEST(NearHash, ten_thousand_cache_keys_do_not_collide_and_spread_over_the_low_bits) {
  std::set<std::size_t> seen;
  std::vector<int> buckets(64);
  for (int i = 0; i < 10000; ++i) {
    const std::size_t h = hash_key("prompt:analysis:" + std::to_string(i) + ":{user}:default");
    seen.insert(h);
    ++buckets[h % 64];
  }
  EXPECT_EQ(seen.size(), 10000u);
  for (int b : buckets) EXPECT_GT(b, 100);  // 156 expected each: none starved
}

// --- FrequencySketch ---------------------------------------------------------------------

TEST(NearSketch, counts_what_is_recorded_up_to_fifteen) {
  FrequencySketch sketch(1024);
  const std::uint64_t hot = hash_key("hot");
  const std::uint64_t cold = hash_key("cold");
  EXPECT_EQ(sketch.frequency(hot), 0u);
  for (int i = 0; i < 5; ++i) sketch.record(hot);
  EXPECT_GE(sketch.frequency(hot), 5u);  // count-min: never under, rarely over
  EXPECT_LE(sketch.frequency(hot), 6u);
  EXPECT_LE(sketch.frequency(cold), 1u);
  for (int i = 0; i < 100; ++i) sketch.record(hot);
  EXPECT_EQ(sketch.frequency(hot), 15u);  // saturated
}

TEST(NearSketch, ages_by_halving_after_ten_times_its_capacity_in_increments) {
  FrequencySketch sketch(64);  // sample size 640
  const std::uint64_t hot = hash_key("hot");
  for (int i = 0; i < 12; ++i) sketch.record(hot);
  const unsigned before = sketch.frequency(hot);
  EXPECT_GE(before, 12u);
  // Other keys' increments until the sample is full: every counter is halved once.
  for (int i = 0; i < 700; ++i) sketch.record(hash_key("other" + std::to_string(i)));
  EXPECT_LE(sketch.frequency(hot), before / 2 + 1);
  EXPECT_GE(sketch.frequency(hot), before / 2 - 1);
}

// --- IntrusiveList -----------------------------------------------------------------------

struct TestNode {
  TestNode* prev = nullptr;
  TestNode* next = nullptr;
  std::size_t bytes = 0;
  int id = 0;
};

std::vector<int> ids(const IntrusiveList<TestNode>& list) {
  std::vector<int> out;
  for (const TestNode* n = list.front(); n != nullptr; n = n->next) out.push_back(n->id);
  return out;
}

TEST(NearList, keeps_order_count_and_weight_through_every_change) {
  std::vector<TestNode> nodes(4);
  for (int i = 0; i < 4; ++i) nodes[i] = TestNode{nullptr, nullptr, std::size_t(10 * (i + 1)), i};
  IntrusiveList<TestNode> list;
  for (auto& n : nodes) list.push_back(&n);
  EXPECT_EQ(ids(list), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(list.size(), 4u);
  EXPECT_EQ(list.bytes(), 100u);
  list.move_to_back(&nodes[1]);  // from the middle
  EXPECT_EQ(ids(list), (std::vector<int>{0, 2, 3, 1}));
  list.move_to_back(&nodes[1]);  // already last: nothing moves
  EXPECT_EQ(ids(list), (std::vector<int>{0, 2, 3, 1}));
  list.remove(&nodes[0]);  // the front
  list.remove(&nodes[1]);  // the back
  EXPECT_EQ(ids(list), (std::vector<int>{2, 3}));
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.bytes(), 70u);
  EXPECT_EQ(nodes[0].prev, nullptr);
  EXPECT_EQ(nodes[0].next, nullptr);
  list.push_back(&nodes[0]);
  EXPECT_EQ(ids(list), (std::vector<int>{2, 3, 0}));
  list.clear();
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.bytes(), 0u);
}

// --- SpinLock ----------------------------------------------------------------------------

TEST(NearSpinLock, lets_one_thread_in_at_a_time) {
  SpinLock lock;
  std::uint64_t counter = 0;  // not atomic: only the lock keeps the increments whole
  constexpr int threads = 4;
  constexpr int rounds = 100000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        SpinGuard guard(lock);
        counter = counter + 1;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(counter, std::uint64_t{threads} * rounds);
}

}  // namespace
}  // namespace promptcache::cache::near
