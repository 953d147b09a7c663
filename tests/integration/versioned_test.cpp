// Versioned writes (issue 11) on both stores: each race that served an older version, or a
// deleted row, made deterministic by a store that holds one call until the test lets it go.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <string>

#include "promptcache/cache/envelope.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/hooked_store.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using cache::PromptCacheService;
using cache::ServiceOptions;
using testing::HookedStore;
using testing::RedisServer;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;
using Versioned = PromptCacheService::Versioned;
using VersionedLoader = PromptCacheService::VersionedLoader;

enum class Backend { redis, local };

// Holds the next write the store is asked for until released: the cache write of one caller
// arrives after another's.
class Gate {
 public:
  explicit Gate(asio::io_context& io) : timer_(io, asio::steady_timer::time_point::max()) {}

  // Installs itself as `store`'s before-hook: the next write (and only it) waits.
  void hold_next_write(HookedStore& store) {
    armed_ = true;
    store.before = [this](std::string_view op, std::string) -> asio::awaitable<void> {
      if (op != "write" || !armed_) co_return;
      armed_ = false;
      held_ = true;
      boost::system::error_code ignored;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    };
  }
  // Waits until a write is being held.
  asio::awaitable<void> until_held() {
    while (!held_) co_await sleep_for(1ms);
  }
  void release() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
  bool armed_ = false;
  bool held_ = false;
};

class VersionsBase : public ::testing::Test {
 protected:
  void start(Backend backend) {
    backend_ = backend;
    if (backend_ == Backend::redis) server_ = std::make_unique<RedisServer>();
  }
  void TearDown() override {
    service_.reset();
    io_.restart();
    io_.poll();
  }

  PromptCacheService& make(ServiceOptions options = {},
                           std::chrono::milliseconds command_timeout = 5s) {
    std::shared_ptr<store::Store> inner;
    if (backend_ == Backend::redis) {
      auto cfg = net::ClientConfig::from_url(server_->url());
      cfg.command_timeout = command_timeout;
      inner = std::make_shared<store::RedisStore>(
          std::make_shared<net::Client>(io_.get_executor(), cfg));
    } else {
      inner = std::make_shared<store::LocalStore>();
    }
    store_ = std::make_shared<HookedStore>(inner);
    service_ = std::make_unique<PromptCacheService>(store_, options);
    return *service_;
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    io_.restart();
    return run_until_done(io_, std::move(task), std::chrono::seconds(60));
  }

  // What the store holds for `key` now: the version and whether it is a "not found" marker
  // (nullopt: nothing).
  struct Held {
    std::uint64_t version = 0;
    bool absent = false;
    std::string json;
  };
  std::optional<Held> held(const std::string& key) {
    auto stored = run(store_->get(key));
    if (!stored || !*stored) return std::nullopt;
    std::string scratch;
    auto decoded = cache::decode_value(**stored, cache::CodecOptions{}, scratch);
    if (!decoded) return std::nullopt;
    return Held{decoded->meta.version, decoded->meta.absent, std::string(decoded->json)};
  }

  Backend backend_ = Backend::local;
  asio::io_context io_;
  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<HookedStore> store_;
  std::unique_ptr<PromptCacheService> service_;
};

class Versions : public VersionsBase, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override { start(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Stores, Versions, ::testing::Values(Backend::redis, Backend::local),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param == Backend::redis ? "redis" : "local");
                         });

const std::string key = cache::analysis_key(std::string(64, 'a'), "u1", "default");

VersionedLoader returning(std::optional<std::string> json, std::uint64_t version, int* calls) {
  return [json, version, calls]() -> asio::awaitable<Versioned> {
    ++*calls;
    co_return Versioned{json, version};
  };
}

// read/delete: a miss reads the row (v1); a DELETE commits (v2) and leaves its tombstone; then
// the miss's fill arrives. Before versions the fill (SET NX) wrote the deleted row back.
TEST_P(Versions, fill_held_past_a_delete_never_brings_the_deleted_row_back) {
  auto& svc = make();
  Gate gate(io_);
  gate.hold_next_write(*store_);
  int calls = 0;
  const auto loader = returning(R"({"row":1})", 1, &calls);
  std::optional<PromptCacheService::Lookup> first;
  run([&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> { first = co_await svc.get_or_load_versioned(key, loader); },
        asio::detached);
    co_await gate.until_held();  // the fill is on its way, the row read before the delete
    store_->before = nullptr;
    CO_ASSERT(co_await svc.delete_versioned(key, 2));
    gate.release();
    while (!first) co_await sleep_for(1ms);
  }());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->json, R"({"row":1})") << "the read began before the delete: either is right";
  auto now = held(key);
  ASSERT_TRUE(now);
  EXPECT_TRUE(now->absent) << "the tombstone stays; the older fill was refused";
  EXPECT_EQ(now->version, 2u);
  // Every later read answers "not found" from the tombstone, without the database.
  int later_calls = 0;
  const auto later = returning(R"({"row":1})", 1, &later_calls);
  auto answer = run(svc.get_or_load_versioned(key, later));
  EXPECT_FALSE(answer.json);
  EXPECT_TRUE(answer.hit);
  EXPECT_EQ(later_calls, 0);
}

// The defect the versions fix, shown on the same schedule with the unversioned fill (SET NX).
TEST_P(Versions, unversioned_fill_held_past_a_delete_writes_the_deleted_row_back) {
  auto& svc = make();
  Gate gate(io_);
  gate.hold_next_write(*store_);
  const auto row = boost::json::value(boost::json::object{{"row", 1}});
  bool done = false;
  run([&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await svc.add_analysis_result(std::string(64, 'a'), "u1", "default", row);
          done = true;
        },
        asio::detached);
    co_await gate.until_held();
    store_->before = nullptr;
    (void)co_await svc.delete_key(key);
    gate.release();
    while (!done) co_await sleep_for(1ms);
  }());
  auto now = held(key);
  ASSERT_TRUE(now);
  EXPECT_FALSE(now->absent) << "last writer wins: the deleted row is back (the seed's semantics)";
}

// write/write: two upserts commit v1 then v2; their cache writes arrive v2 first, then v1.
TEST_P(Versions, cache_writes_arriving_out_of_order_keep_the_newer_version) {
  auto& svc = make();
  Gate gate(io_);
  gate.hold_next_write(*store_);
  bool older_written = true;
  bool older_done = false;
  run([&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          older_written = co_await svc.set_versioned(key, R"({"v":1})", 1);
          older_done = true;
        },
        asio::detached);
    co_await gate.until_held();
    store_->before = nullptr;
    CO_ASSERT(co_await svc.set_versioned(key, R"({"v":2})", 2));
    gate.release();
    while (!older_done) co_await sleep_for(1ms);
  }());
  EXPECT_FALSE(older_written);
  auto now = held(key);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->version, 2u);
  EXPECT_EQ(now->json, R"({"v":2})");
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"v":2})"));
}

TEST_P(Versions, equal_version_is_not_written_again_and_a_newer_one_replaces_a_tombstone) {
  auto& svc = make();
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":3})", 3)));
  EXPECT_FALSE(run(svc.set_versioned(key, R"({"v":"other"})", 3)));
  EXPECT_FALSE(run(svc.delete_versioned(key, 2))) << "a delete older than the row is stale";
  EXPECT_TRUE(run(svc.delete_versioned(key, 4)));
  EXPECT_FALSE(run(svc.set_versioned(key, R"({"v":3})", 3)));
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":5})", 5)));
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"v":5})"));
}

TEST_P(Versions, not_found_marker_from_a_load_is_replaced_by_any_later_upsert) {
  auto& svc = make();
  int calls = 0;
  const auto absent = returning(std::nullopt, 4, &calls);
  auto miss = run(svc.get_or_load_versioned(key, absent));
  EXPECT_FALSE(miss.json);
  EXPECT_FALSE(miss.hit);
  auto marker = held(key);
  ASSERT_TRUE(marker);
  EXPECT_TRUE(marker->absent);
  EXPECT_EQ(marker->version, 4u);
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":5})", 5)));
  auto hit = run(svc.get_or_load_versioned(key, absent));
  EXPECT_EQ(hit.json, std::optional<std::string>(R"({"v":5})"));
  EXPECT_TRUE(hit.hit);
  EXPECT_EQ(calls, 1);
}

// A fill that read the source longer ago than half a tombstone's life is refused by the store:
// the tombstone it might have met could have expired.
TEST_P(Versions, fill_older_than_half_the_tombstone_life_is_dropped) {
  ServiceOptions options;
  options.tombstone_ttl = 2s;
  auto& svc = make(options);
  int calls = 0;
  const VersionedLoader slow = [&calls]() -> asio::awaitable<Versioned> {
    ++calls;
    co_await sleep_for(1200ms);  // longer than tombstone_ttl / 2
    co_return Versioned{R"({"row":1})", 1};
  };
  auto answer = run(svc.get_or_load_versioned(key, slow));
  EXPECT_EQ(answer.json, std::optional<std::string>(R"({"row":1})"));
  EXPECT_FALSE(held(key)) << "the late fill was dropped";
}

TEST_P(Versions, concurrent_misses_of_one_key_make_one_load) {
  auto& svc = make();
  int calls = 0;
  const VersionedLoader loader = [&calls]() -> asio::awaitable<Versioned> {
    ++calls;
    co_await sleep_for(5ms);
    co_return Versioned{R"({"row":1})", 1};
  };
  int right = 0;
  run([&]() -> asio::awaitable<void> {
    int left = 100;
    for (int i = 0; i < 100; ++i) {
      asio::co_spawn(
          io_,
          [&]() -> asio::awaitable<void> {
            auto r = co_await svc.get_or_load_versioned(key, loader);
            right += r.json == std::optional<std::string>(R"({"row":1})") ? 1 : 0;
            --left;
          },
          asio::detached);
    }
    while (left > 0) co_await sleep_for(1ms);
  }());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(right, 100);
}

// What the seed's writes and the seed's Python service leave (an unversioned envelope, plain
// JSON) counts as version 0: any versioned write replaces it; an unversioned write replaces a
// versioned entry (last writer wins, as documented).
TEST_P(Versions, unversioned_and_legacy_entries_count_as_version_zero) {
  auto& svc = make();
  run(svc.set_json(key, R"({"seed":1})"));
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":1})", 1)));
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"v":1})"));
  EXPECT_FALSE(run(store_->set(key, R"({"legacy":true})", 0s)));  // plain JSON, as the seed
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":2})", 2)));
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"v":2})"));
  run(svc.set_json(key, R"({"seed":2})"));
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"seed":2})"));
}

TEST_P(Versions, version_zero_is_refused_by_the_versioned_calls) {
  auto& svc = make();
  EXPECT_THROW(run(svc.set_versioned(key, "{}", 0)), std::invalid_argument);
  EXPECT_THROW(run(svc.delete_versioned(key, 0)), std::invalid_argument);
}

TEST_P(Versions, batch_of_versioned_entries_keeps_newer_entries_and_counts_no_failure) {
  auto& svc = make();
  EXPECT_TRUE(run(svc.set_versioned(key, R"({"v":9})", 9)));
  const std::string other = cache::analysis_key(std::string(64, 'b'), "u1", "default");
  std::vector<PromptCacheService::VersionedEntry> batch{{key, R"({"v":8})", 8},
                                                        {other, R"({"v":1})", 1}};
  run(svc.set_multiple_versioned(batch));
  EXPECT_EQ(run(svc.get_json(key)), std::optional<std::string>(R"({"v":9})"));
  EXPECT_EQ(run(svc.get_json(other)), std::optional<std::string>(R"({"v":1})"));
}

// Redis only: what a real server adds — restarts and a hung server.
class VersionsOnRedis : public VersionsBase {
 protected:
  void SetUp() override { start(Backend::redis); }
};

TEST_F(VersionsOnRedis, fenced_fill_held_across_a_redis_restart_is_dropped) {
  ServiceOptions options;
  options.lease = 5000ms;
  auto& svc = make(options);
  Gate gate(io_);
  gate.hold_next_write(*store_);
  int calls = 0;
  const auto loader = returning(R"({"row":1})", 1, &calls);
  bool done = false;
  run([&]() -> asio::awaitable<void> {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          (void)co_await svc.get_or_load_versioned(key, loader);
          done = true;
        },
        asio::detached);
    co_await gate.until_held();
    // The delete's tombstone is lost with the restart; only the fence stops the old fill.
    server_->stop();
    server_->start();
    store_->before = nullptr;
    gate.release();
    while (!done) co_await sleep_for(1ms);
  }());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(held(key)) << "the fill lost its lease with the restart and was dropped";
}

// The client's own timeout is two minutes here and the test's run gives up after one: only the
// budget can end the read.
TEST_F(VersionsOnRedis, read_of_a_hung_redis_gives_up_at_its_budget_and_leaves_no_fill) {
  auto& svc = make({}, 120s);
  ASSERT_TRUE(run(svc.set_versioned(key, R"({"v":1})", 1)));
  const std::string cold = cache::analysis_key(std::string(64, 'c'), "u1", "default");
  int calls = 0;
  const auto loader = returning(R"({"row":2})", 2, &calls);
  const auto errors_before = svc.counters().errors;
  server_->freeze();
  auto answer = run(svc.get_or_load_versioned(cold, loader, {}, 100ms));
  server_->thaw();
  EXPECT_EQ(answer.json, std::optional<std::string>(R"({"row":2})"));
  EXPECT_FALSE(answer.hit);
  EXPECT_EQ(calls, 1);
  EXPECT_GT(svc.counters().errors, errors_before) << "the timeout counts toward the breaker";
  EXPECT_FALSE(held(cold)) << "a read abandoned by its budget fills nothing";
}

}  // namespace
}  // namespace promptcache
