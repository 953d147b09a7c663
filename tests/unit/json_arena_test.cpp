// value_arena (src/cache/json_arena.hpp): the arena a read value is built in — its block comes
// back to the thread that frees it and is handed out again, a value may be freed on another
// thread, and arenas past the largest block are plain ones.
#include "cache/json_arena.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace promptcache::cache::detail {
namespace {

namespace json = boost::json;

// The first allocation from a fresh arena: the start of its block.
void* first_byte(const json::storage_ptr& arena) {
  return arena->allocate(1, 1);
}

TEST(JsonArena, a_freed_block_is_handed_out_again_on_the_same_thread) {
  void* first = nullptr;
  {
    json::storage_ptr arena = value_arena(1024);
    first = first_byte(arena);
  }
  EXPECT_GE(cached_arena_blocks(), 1u);
  json::storage_ptr again = value_arena(1024);
  EXPECT_EQ(first_byte(again), first);
}

TEST(JsonArena, a_value_built_in_it_outgrows_its_block_and_stays_whole) {
  const std::string big(10000, 'x');  // more than the 4 KiB block the size asked for
  const std::string text = R"({"a":")" + big + R"(","b":[1,2.5,"c"]})";
  json::value v = json::parse(text, value_arena(100));
  EXPECT_EQ(v, json::parse(text));
}

TEST(JsonArena, a_value_may_be_freed_on_another_thread) {
  const std::string text = R"({"score":0.87,"suggestions":["one","two"]})";
  // Owned through a pointer: a moved-from json::value keeps its storage (and so the arena).
  auto v = std::make_unique<json::value>(json::parse(text, value_arena(text.size())));
  const std::size_t before = cached_arena_blocks();
  std::size_t kept_there = 0;
  std::thread other([&] {
    EXPECT_EQ(*v, json::parse(text));
    v.reset();
    kept_there = cached_arena_blocks();
  });
  other.join();
  EXPECT_EQ(kept_there, 1u);  // the block joined the freeing thread's cache
  EXPECT_EQ(cached_arena_blocks(), before);
}

TEST(JsonArena, the_per_thread_cache_is_bounded) {
  std::size_t kept = 0;
  std::thread fresh([&] {  // a thread whose cache starts empty
    std::vector<json::storage_ptr> held;
    for (int i = 0; i < 100; ++i) held.push_back(value_arena(1024));
    held.clear();  // 100 blocks of 4 KiB freed: 64 kept
    kept = cached_arena_blocks();
  });
  fresh.join();
  EXPECT_EQ(kept, 64u);
}

TEST(JsonArena, arenas_past_the_largest_block_are_ordinary_ones) {
  const std::size_t before = cached_arena_blocks();
  {
    json::storage_ptr arena = value_arena(1 << 20);
    EXPECT_NE(first_byte(arena), nullptr);
  }
  EXPECT_EQ(cached_arena_blocks(), before);  // nothing recycled
}

}  // namespace
}  // namespace promptcache::cache::detail
