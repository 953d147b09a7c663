// One contract for every Store: each test runs against the in-process LocalStore and against a
// RedisStore on a real redis-server (a fresh server per test), and both must behave the same.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "promptcache/cache/keys.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using net::Client;
using net::ClientConfig;
using store::Entry;
using store::LocalStore;
using store::RedisStore;
using store::ServerStats;
using store::Store;
using testing::RedisServer;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;

enum class Kind { local, redis };

std::string kind_name(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::local ? "local" : "redis";
}

// Bytes a value-by-value comparison would mangle or print badly: every byte value, CR LF, NUL.
std::string patterned_bytes(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed * 7) % 256);
  return s;
}

// Vectors built outside the coroutine frame: g++ 12 rejects a braced list inside a coroutine
// ("array used as initializer").
template <class... S>
std::vector<std::string> key_list(const S&... s) {
  std::vector<std::string> v;
  (v.emplace_back(s), ...);
  return v;
}

template <class... S>
std::vector<std::optional<std::string>> value_list(const S&... s) {
  std::vector<std::optional<std::string>> v;
  (v.emplace_back(s), ...);
  return v;
}

class StoreContract : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::redis) {
      server_ = std::make_unique<RedisServer>();
      ClientConfig cfg = ClientConfig::from_url(server_->url());
      cfg.command_timeout = 10s;
      cfg.connect_timeout = 2s;
      client_ = std::make_shared<Client>(io_.get_executor(), cfg);
      store_ = std::make_unique<RedisStore>(client_);
    } else {
      store_ = std::make_unique<LocalStore>();
    }
  }

  Store& store() { return *store_; }
  bool is_redis() const { return GetParam() == Kind::redis; }
  RedisServer& server() { return *server_; }

  template <class T>
  T run(asio::awaitable<T> task) {
    return run_until_done(io_, std::move(task), std::chrono::seconds(120));
  }

  // Members are destroyed in reverse: the store and client go before the server and the
  // io_context they use.
  asio::io_context io_;
  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<Client> client_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, get_of_a_missing_key_is_nullopt_not_an_error) {
  run([&]() -> asio::awaitable<void> {
    auto r = co_await store().get("never-set");
    CO_ASSERT(r);
    EXPECT_EQ(*r, std::nullopt);
  }());
}

TEST_P(StoreContract, set_then_get_returns_the_exact_bytes_of_binary_values) {
  static constexpr char raw[] = "a\0b\r\nc\0\0$*-\r\n\xff\x80";
  const std::string binary(raw, sizeof(raw) - 1);
  ASSERT_EQ(binary.size(), 15u);
  const std::string binary_key("k\0e\r\ny", 6);
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("bin", binary, 0s));
    EXPECT_FALSE(co_await store().set(binary_key, "under a binary key", 0s));
    auto r = co_await store().get("bin");
    CO_ASSERT(r && r->has_value());
    EXPECT_EQ(**r, binary);
    auto k = co_await store().get(binary_key);
    CO_ASSERT(k && k->has_value());
    EXPECT_EQ(**k, "under a binary key");
    // A key differing only after the NUL is another key.
    auto other = co_await store().get(std::string("k\0e", 3));
    CO_ASSERT(other);
    EXPECT_EQ(*other, std::nullopt);
  }());
}

// What get() returns, get_into() hands to a visitor: the exact bytes, once; nothing for a
// missing key.
TEST_P(StoreContract, get_into_hands_over_exactly_what_get_returns) {
  struct Recorder final : store::ValueVisitor {
    void on_value(std::string_view bytes) noexcept override { seen.emplace_back(bytes); }
    std::vector<std::string> seen;
  };
  static constexpr char raw[] = "a\0b\r\nc\0\0$*-\r\n\xff\x80";
  const std::string binary(raw, sizeof(raw) - 1);
  const std::string big(100 * 1024, 'v');
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("into-bin", binary, 0s));
    EXPECT_FALSE(co_await store().set("into-empty", "", 0s));
    EXPECT_FALSE(co_await store().set("into-big", big, 0s));
    for (const auto& [key, want] : {std::pair<std::string, std::string>{"into-bin", binary},
                                    {"into-empty", ""},
                                    {"into-big", big}}) {
      Recorder seen;
      EXPECT_FALSE(co_await store().get_into(key, {}, seen));
      CO_ASSERT(seen.seen.size() == 1u);
      EXPECT_EQ(seen.seen[0], want) << key;
    }
    Recorder none;
    EXPECT_FALSE(co_await store().get_into("into-never-set", {}, none));
    EXPECT_TRUE(none.seen.empty());
  }());
}

TEST_P(StoreContract, empty_string_value_is_a_hit_not_a_miss) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("empty", "", 0s));
    auto r = co_await store().get("empty");
    CO_ASSERT(r);
    CO_ASSERT(r->has_value());
    EXPECT_EQ(**r, std::string());
    auto many = co_await store().get_multiple(key_list("empty", "missing"));
    CO_ASSERT(many && many->size() == 2u);
    EXPECT_EQ((*many)[0], std::optional<std::string>(std::string()));
    EXPECT_EQ((*many)[1], std::nullopt);
  }());
}

TEST_P(StoreContract, hundred_kib_value_round_trips_byte_for_byte) {
  const std::string big = patterned_bytes(100 * 1024, 3);
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("big", big, 0s));
    auto r = co_await store().get("big");
    CO_ASSERT(r && r->has_value());
    EXPECT_EQ((*r)->size(), big.size());
    EXPECT_TRUE(**r == big) << "100 KiB value came back altered";
  }());
}

TEST_P(StoreContract, set_of_an_existing_key_overwrites_its_value) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("k", "first, and longer than the second", 0s));
    EXPECT_FALSE(co_await store().set("k", "second", 0s));
    auto r = co_await store().get("k");
    CO_ASSERT(r && r->has_value());
    EXPECT_EQ(**r, "second");
  }());
}

TEST_P(StoreContract, ttl_expires_for_real_and_overwrite_without_ttl_removes_the_expiry) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("short", "v", 1s));
    EXPECT_FALSE(co_await store().set("renewed", "old", 1s));
    EXPECT_FALSE(co_await store().set("renewed", "new", 0s));
    EXPECT_FALSE(co_await store().set("long", "v", 3600s));
    auto before = co_await store().get("short");
    CO_ASSERT(before);
    EXPECT_EQ(*before, std::optional<std::string>("v"));  // still live right after the set
    co_await sleep_for(1200ms);
    auto r = co_await store().get_multiple(key_list("short", "renewed", "long"));
    CO_ASSERT(r && r->size() == 3u);
    EXPECT_EQ((*r)[0], std::nullopt) << "a 1 s entry is still there after 1.2 s";
    EXPECT_EQ((*r)[1], std::optional<std::string>("new"));
    EXPECT_EQ((*r)[2], std::optional<std::string>("v"));
    auto single = co_await store().get("short");
    CO_ASSERT(single);
    EXPECT_EQ(*single, std::nullopt);
  }());
  if (is_redis()) {
    EXPECT_EQ(server().cli({"TTL", "renewed"}), "-1");
    const int long_ttl = std::stoi(server().cli({"TTL", "long"}));
    EXPECT_GT(long_ttl, 3590);
    EXPECT_LE(long_ttl, 3600);
  }
}

TEST_P(StoreContract, set_if_absent_fills_an_empty_key_and_leaves_a_present_value_alone) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("fill", "first", 3600s, store::SetMode::if_absent));
    EXPECT_FALSE(co_await store().set("fill", "second", 3600s, store::SetMode::if_absent));
    auto r = co_await store().get("fill");
    CO_ASSERT(r);
    EXPECT_EQ(*r, std::optional<std::string>("first"));
    // An ordinary set still replaces it.
    EXPECT_FALSE(co_await store().set("fill", "third", 3600s));
    r = co_await store().get("fill");
    CO_ASSERT(r);
    EXPECT_EQ(*r, std::optional<std::string>("third"));
    // An expired value is absent: the fill goes in.
    EXPECT_FALSE(co_await store().set("brief", "old", 1s));
    co_await sleep_for(2100ms);
    EXPECT_FALSE(co_await store().set("brief", "new", 3600s, store::SetMode::if_absent));
    r = co_await store().get("brief");
    CO_ASSERT(r);
    EXPECT_EQ(*r, std::optional<std::string>("new"));
  }());
  if (is_redis()) {
    const int ttl = std::stoi(server().cli({"TTL", "brief"}));
    EXPECT_GT(ttl, 3590);
  }
}

TEST_P(StoreContract, ttl_zero_means_no_expiry) {
  // Built outside the coroutine: g++ 12 destroys an aggregate temporary in a co_await
  // expression twice.
  const std::vector<Entry> batch{Entry{"forever-batch", "w", 0s}};
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("forever", "v", 0s));
    auto set = co_await store().set_multiple(batch);
    CO_ASSERT(set);
    EXPECT_EQ(*set, 0u);
    co_await sleep_for(1200ms);
    auto r = co_await store().get_multiple(key_list("forever", "forever-batch"));
    CO_ASSERT(r && r->size() == 2u);
    EXPECT_EQ((*r)[0], std::optional<std::string>("v"));
    EXPECT_EQ((*r)[1], std::optional<std::string>("w"));
  }());
  if (is_redis()) {
    EXPECT_EQ(server().cli({"TTL", "forever"}), "-1");
    EXPECT_EQ(server().cli({"TTL", "forever-batch"}), "-1");
  }
}

TEST_P(StoreContract, get_multiple_returns_values_in_key_order_with_nullopt_for_missing_keys) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("a", "1", 0s));
    EXPECT_FALSE(co_await store().set("c", "3", 0s));
    EXPECT_FALSE(co_await store().set("e", "", 0s));
    auto r = co_await store().get_multiple(key_list("c", "missing", "a", "e", "a", "b"));
    CO_ASSERT(r);
    const auto expected = value_list("3", std::nullopt, "1", "", "1", std::nullopt);
    EXPECT_EQ(*r, expected);
  }());
}

TEST_P(StoreContract, get_multiple_of_no_keys_is_an_empty_vector) {
  run([&]() -> asio::awaitable<void> {
    auto r = co_await store().get_multiple(std::vector<std::string>());
    CO_ASSERT(r);
    EXPECT_TRUE(r->empty());
  }());
}

TEST_P(StoreContract, set_multiple_of_5000_one_kib_entries_fails_none_and_every_entry_reads_back) {
  std::vector<Entry> entries;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < 5000; ++i) {
    // ~1 KiB each, sizes varying so no two neighbours are alike; ~5 MB in all.
    entries.push_back(Entry{fmt::format("bulk:{}", i), patterned_bytes(1000 + i % 48, i),
                            i % 2 == 0 ? 0s : 3600s});
    keys.push_back(entries.back().key);
  }
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(entries);
    CO_ASSERT(failed);
    EXPECT_EQ(*failed, 0u);
    auto r = co_await store().get_multiple(keys);
    CO_ASSERT(r);
    CO_ASSERT(r->size() == entries.size());
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if ((*r)[i] != entries[i].value) {
        if (++wrong <= 5) ADD_FAILURE() << "entry " << i << " did not read back";
      }
    }
    EXPECT_EQ(wrong, 0u);
    auto stats = co_await store().server_stats();
    CO_ASSERT(stats);
    EXPECT_EQ(stats->keys, entries.size());
  }());
  if (is_redis()) {
    EXPECT_EQ(server().cli({"DBSIZE"}), "5000");
    EXPECT_EQ(server().cli({"TTL", "bulk:0"}), "-1");
    EXPECT_NE(server().cli({"TTL", "bulk:1"}), "-1");
  }
}

TEST_P(StoreContract, set_multiple_of_no_entries_fails_none) {
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(std::vector<Entry>());
    CO_ASSERT(failed);
    EXPECT_EQ(*failed, 0u);
  }());
}

TEST_P(StoreContract, del_returns_how_many_of_the_keys_existed) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("a", "1", 0s));
    EXPECT_FALSE(co_await store().set("b", "2", 0s));
    EXPECT_FALSE(co_await store().set("keep", "3", 0s));
    auto n = co_await store().del(key_list("a", "missing", "b", "a"));
    CO_ASSERT(n);
    EXPECT_EQ(*n, 2u);
    auto again = co_await store().del(key_list("a", "b"));
    CO_ASSERT(again);
    EXPECT_EQ(*again, 0u);
    auto none = co_await store().del(std::vector<std::string>());
    CO_ASSERT(none);
    EXPECT_EQ(*none, 0u);
    auto r = co_await store().get_multiple(key_list("a", "b", "keep"));
    CO_ASSERT(r);
    const auto expected = value_list(std::nullopt, std::nullopt, "3");
    EXPECT_EQ(*r, expected);
  }());
}

// 50 users, many of them with ids built to collide after naive key building or to act as glob
// specials; every one of them in turn has its analysis keys deleted by pattern.
std::vector<std::string> hostile_user_ids() {
  std::vector<std::string> ids{
      "a:b",
      "a_b",
      "a%3Ab",  // the escaped form of "a:b"
      "a",
      "b",
      "a*",
      "a?",
      "*",
      "**",
      "?",
      "[x]",
      "x",
      "[",
      "]",
      "[a-z]",
      "[^a]",
      "%",
      "%25",  // the escaped form of "%"
      "%2A",  // the escaped form of "*"
      "{",
      "}",
      "{}",
      std::string(1024, 'u'),
      std::string(1023, 'u'),
      "\\",
      "\\*",
      "a\\:b",
      "\xc3\xbc"
      "ber",                       // "über"
      "\xe7\x94\xa8\xe6\x88\xb7",  // "用户"
      "\xff\xfe",
      std::string("nul\0id", 6),
      "nul",
      "line\r\nbreak",
      " ",
      "user1",
      "user10",
      "user1:",
      ":user1",
      "prompt",
      "analysis",
      "sentiment",
      "3f2a9c",  // equal to a prompt hash
  };
  for (int i = 0; ids.size() < 50; ++i) ids.push_back(fmt::format("user-{}", i));
  return ids;
}

TEST_P(StoreContract, delete_matching_removes_exactly_one_users_analysis_keys_among_hostile_ids) {
  const std::vector<std::string> users = hostile_user_ids();
  ASSERT_EQ(users.size(), 50u);
  const std::vector<std::string> hashes{"3f2a9c", "b71e04"};
  const std::vector<std::string> types{"sentiment", "quality"};
  // keys[u]: user u's analysis keys; other_keys[u]: a non-analysis key of the same user.
  std::vector<std::vector<std::string>> keys(users.size());
  std::vector<std::string> other_keys;
  std::vector<Entry> entries;
  for (std::size_t u = 0; u < users.size(); ++u) {
    for (const auto& h : hashes) {
      for (const auto& t : types) {
        keys[u].push_back(cache::analysis_key(h, users[u], t));
        entries.push_back(Entry{keys[u].back(), fmt::format("{}/{}/{}", u, h, t), 0s});
      }
    }
    other_keys.push_back(cache::suggestions_key(hashes[0], users[u], "v1"));
    entries.push_back(Entry{other_keys.back(), "suggestion", 0s});
  }
  std::vector<std::string> all_analysis;
  for (const auto& k : keys) all_analysis.insert(all_analysis.end(), k.begin(), k.end());

  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(entries);
    CO_ASSERT(failed && *failed == 0u);
    auto stats = co_await store().server_stats();
    CO_ASSERT(stats);
    CO_ASSERT(stats->keys == entries.size());  // no two users' keys collided

    for (std::size_t target = 0; target < users.size(); ++target) {
      const std::string pattern = cache::user_analysis_pattern(users[target]);
      auto n = co_await store().delete_matching(pattern);
      CO_ASSERT(n);
      EXPECT_EQ(*n, keys[target].size()) << "user #" << target << " (" << users[target].size()
                                         << " bytes), pattern " << pattern.substr(0, 80);
      auto present = co_await store().get_multiple(all_analysis);
      CO_ASSERT(present && present->size() == all_analysis.size());
      std::size_t i = 0;
      for (std::size_t u = 0; u < users.size(); ++u) {
        for (std::size_t j = 0; j < keys[u].size(); ++j, ++i) {
          const bool should_exist = u > target;  // users up to `target` are deleted by now
          EXPECT_EQ((*present)[i].has_value(), should_exist)
              << "deleting user #" << target << " left user #" << u << "'s key " << j
              << (should_exist ? " deleted" : " present");
        }
      }
    }
    auto others = co_await store().get_multiple(other_keys);
    CO_ASSERT(others);
    for (std::size_t u = 0; u < users.size(); ++u) {
      EXPECT_EQ((*others)[u], std::optional<std::string>("suggestion"))
          << "user #" << u << "'s suggestions key was deleted with the analysis keys";
    }
    auto after = co_await store().server_stats();
    CO_ASSERT(after);
    EXPECT_EQ(after->keys, users.size());
  }());
}

TEST_P(StoreContract, delete_matching_with_no_match_deletes_nothing) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("prompt:analysis:h:u:t", "v", 0s));
    auto n = co_await store().delete_matching(cache::user_analysis_pattern("someone-else"));
    CO_ASSERT(n);
    EXPECT_EQ(*n, 0u);
    auto r = co_await store().get("prompt:analysis:h:u:t");
    CO_ASSERT(r);
    EXPECT_TRUE(r->has_value());
  }());
}

TEST_P(StoreContract, delete_matching_handles_more_keys_than_one_scan_page) {
  std::vector<Entry> entries;
  for (int i = 0; i < 2500; ++i) entries.push_back(Entry{fmt::format("page:{}", i), "v", 0s});
  entries.push_back(Entry{"pages-not", "v", 0s});
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(entries);
    CO_ASSERT(failed && *failed == 0u);
    auto n = co_await store().delete_matching("page:*");
    CO_ASSERT(n);
    EXPECT_EQ(*n, 2500u);
    auto stats = co_await store().server_stats();
    CO_ASSERT(stats);
    EXPECT_EQ(stats->keys, 1u);
  }());
}

// ---- indexes (issue 6: per-user invalidation in O(that user's entries)) ----------------------

TEST_P(StoreContract, delete_indexed_removes_exactly_one_users_indexed_keys_among_hostile_ids) {
  const std::vector<std::string> users = hostile_user_ids();
  std::vector<std::vector<std::string>> keys(users.size());
  std::vector<Entry> batch;    // half of each user's entries go through set_multiple
  std::vector<Entry> singles;  // the other half through set, plain and if_absent
  for (std::size_t u = 0; u < users.size(); ++u) {
    const std::string index = cache::user_analysis_index_key(users[u]);
    for (int j = 0; j < 4; ++j) {
      keys[u].push_back(cache::analysis_key(fmt::format("h{}", j), users[u], "t"));
      (j < 2 ? batch : singles)
          .push_back(Entry{keys[u].back(), fmt::format("{}/{}", u, j), 0s, index});
    }
  }
  std::vector<std::string> all;
  for (const auto& k : keys) all.insert(all.end(), k.begin(), k.end());
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(batch);
    CO_ASSERT(failed && *failed == 0u);
    for (std::size_t i = 0; i < singles.size(); ++i) {
      const auto mode = i % 2 == 0 ? store::SetMode::always : store::SetMode::if_absent;
      CO_ASSERT(
          !co_await store().set(singles[i].key, singles[i].value, 3600s, mode, singles[i].index));
    }
    for (std::size_t target = 0; target < users.size(); ++target) {
      auto n = co_await store().delete_indexed(cache::user_analysis_index_key(users[target]));
      CO_ASSERT(n);
      EXPECT_EQ(*n, keys[target].size()) << "user #" << target;
      auto present = co_await store().get_multiple(all);
      CO_ASSERT(present && present->size() == all.size());
      for (std::size_t i = 0; i < all.size(); ++i) {
        const bool should_exist = i / 4 > target;
        EXPECT_EQ((*present)[i].has_value(), should_exist)
            << "deleting user #" << target << " left key " << i
            << (should_exist ? " deleted" : " present");
      }
    }
    auto stats = co_await store().server_stats();
    CO_ASSERT(stats);
    EXPECT_EQ(stats->keys, 0u);  // the indexes went with their last members
    auto again = co_await store().delete_indexed(cache::user_analysis_index_key(users[0]));
    CO_ASSERT(again);
    EXPECT_EQ(*again, 0u);
  }());
}

TEST_P(StoreContract,
       delete_indexed_of_more_keys_than_one_drain_reports_progress_and_leaves_others) {
  const std::string index = cache::user_analysis_index_key("big");
  std::vector<Entry> entries;
  for (int i = 0; i < 2500; ++i) {
    entries.push_back(
        Entry{cache::analysis_key(fmt::format("h{}", i), "big", "t"), "v", 3600s, index});
  }
  entries.push_back(Entry{cache::analysis_key("h", "small", "t"), "v", 3600s,
                          cache::user_analysis_index_key("small")});
  entries.push_back(Entry{"unindexed", "v", 0s});
  std::vector<std::uint64_t> heard;
  const store::Progress progress = [&](std::uint64_t d) { heard.push_back(d); };
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store().set_multiple(entries);
    CO_ASSERT(failed && *failed == 0u);
    auto n = co_await store().delete_indexed(index, progress);
    CO_ASSERT(n);
    EXPECT_EQ(*n, 2500u);
    auto small = co_await store().get(entries[2500].key);
    CO_ASSERT(small);
    EXPECT_TRUE(small->has_value());
    auto unindexed = co_await store().get("unindexed");
    CO_ASSERT(unindexed);
    EXPECT_TRUE(unindexed->has_value());
  }());
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard.back(), 2500u);
  EXPECT_TRUE(std::is_sorted(heard.begin(), heard.end()));
}

TEST_P(StoreContract, delete_indexed_does_not_count_expired_or_overwritten_unindexed_keys) {
  const std::string index = cache::user_analysis_index_key("u");
  const std::string short_key = cache::analysis_key("short", "u", "t");
  const std::string long_key = cache::analysis_key("long", "u", "t");
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT(!co_await store().set(short_key, "v", 1s, store::SetMode::always, index));
    CO_ASSERT(!co_await store().set(long_key, "v", 3600s, store::SetMode::always, index));
    co_await sleep_for(1500ms);  // short_key has expired
    auto n = co_await store().delete_indexed(index);
    CO_ASSERT(n);
    EXPECT_EQ(*n, 1u);
    auto gone = co_await store().get(long_key);
    CO_ASSERT(gone);
    EXPECT_FALSE(gone->has_value());
  }());
}

TEST_P(StoreContract, server_stats_counts_hits_misses_and_keys) {
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await store().set("h1", "v", 0s));
    EXPECT_FALSE(co_await store().set("h2", "v", 0s));
    EXPECT_FALSE(co_await store().set("h3", "", 0s));
    auto before = co_await store().server_stats();
    CO_ASSERT(before);
    EXPECT_EQ(before->keys, 3u);

    auto hit = co_await store().get("h1");   // hit
    auto miss = co_await store().get("m1");  // miss
    CO_ASSERT(hit && miss);
    auto many =
        co_await store().get_multiple(key_list("h2", "h3", "m2", "m3"));  // 2 hits, 2 misses
    CO_ASSERT(many);

    auto after = co_await store().server_stats();
    CO_ASSERT(after);
    EXPECT_EQ(after->keyspace_hits - before->keyspace_hits, 3u);
    EXPECT_EQ(after->keyspace_misses - before->keyspace_misses, 3u);
    EXPECT_EQ(after->keys, 3u);
    EXPECT_GT(after->total_commands_processed, before->total_commands_processed);
    EXPECT_GE(after->connected_clients, 1u);
    EXPECT_GT(after->used_memory, 0u);
    EXPECT_FALSE(after->used_memory_human.empty());
  }());
}

INSTANTIATE_TEST_SUITE_P(BothStores, StoreContract, ::testing::Values(Kind::local, Kind::redis),
                         kind_name);

}  // namespace
}  // namespace promptcache
