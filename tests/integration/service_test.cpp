// PromptCacheService against a real redis-server and against the in-process store: the seed's
// test list (hit, miss, TTL, invalidation, batches, fallback, stats, failures) and one test per
// seed defect (docs/cache.md), each run on both stores.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "promptcache/telemetry/tracer.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using cache::analysis_key;
using cache::CacheError;
using cache::PromptCacheService;
using cache::ServiceOptions;
using testing::RedisServer;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;
using Json = json::value;
using Fallback = PromptCacheService::Fallback;
using BreakerState = cache::CircuitBreaker::State;

// A stand-in for a sha256 hex digest (64 hex digits).
std::string hash(int i) {
  return fmt::format("{:064x}", i);
}

// A user id for failure messages: quoted, escaped, long ones shortened.
std::string printable(std::string_view s) {
  if (s.size() > 40) return fmt::format("{:?}... ({} bytes)", s.substr(0, 20), s.size());
  return fmt::format("{:?}", s);
}

// ---- a tracer that keeps every finished span -------------------------------------------------

struct RecordedSpan {
  std::string name;
  std::map<std::string, telemetry::AttributeValue, std::less<>> attributes;
  std::vector<std::string> exceptions;
  telemetry::SpanContext context;
  std::optional<telemetry::SpanId> parent;  // its parent's span id; none for a root

  bool has(std::string_view key) const { return attributes.find(key) != attributes.end(); }
  std::optional<std::string> text(std::string_view key) const {
    auto it = attributes.find(key);
    if (it == attributes.end()) return std::nullopt;
    if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
    return std::nullopt;
  }
  std::optional<bool> flag(std::string_view key) const {
    auto it = attributes.find(key);
    if (it == attributes.end()) return std::nullopt;
    if (const auto* b = std::get_if<bool>(&it->second)) return *b;
    return std::nullopt;
  }
  std::optional<std::int64_t> number(std::string_view key) const {
    auto it = attributes.find(key);
    if (it == attributes.end()) return std::nullopt;
    if (const auto* n = std::get_if<std::int64_t>(&it->second)) return *n;
    return std::nullopt;
  }
};

class RecordingTracer final : public telemetry::Tracer {
 public:
  // Ids as a tracer gives them: the parent's trace (or a new one), a new span id.
  telemetry::StartedSpan start_span(std::string_view name, telemetry::SpanKind,
                                    const telemetry::SpanContext* parent) override {
    telemetry::SpanContext context;
    context.trace_id = parent != nullptr ? parent->trace_id : telemetry::new_trace_id();
    context.span_id = telemetry::new_span_id();
    context.sampled = true;
    auto span = std::make_unique<RecordingSpan>(*this, name, context, parent);
    return {std::move(span), std::move(context)};
  }

  // Finished spans called `name`, in the order they ended.
  std::vector<RecordedSpan> named(std::string_view name) const {
    std::lock_guard lock(mutex_);
    std::vector<RecordedSpan> out;
    for (const auto& s : spans_) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }

 private:
  class RecordingSpan final : public telemetry::Span {
   public:
    RecordingSpan(RecordingTracer& tracer, std::string_view name,
                  const telemetry::SpanContext& context, const telemetry::SpanContext* parent)
        : tracer_(tracer) {
      span_.name = std::string(name);
      span_.context = context;
      if (parent != nullptr) span_.parent = parent->span_id;
    }
    ~RecordingSpan() override { tracer_.finish(std::move(span_)); }
    void set_attribute(std::string_view key, telemetry::AttributeValue value) override {
      span_.attributes.insert_or_assign(std::string(key), std::move(value));
    }
    void record_exception(std::string_view message) override {
      span_.exceptions.emplace_back(message);
    }

   private:
    RecordingTracer& tracer_;
    RecordedSpan span_;
  };

  void finish(RecordedSpan span) {
    std::lock_guard lock(mutex_);
    spans_.push_back(std::move(span));
  }

  mutable std::mutex mutex_;
  std::vector<RecordedSpan> spans_;
};

// ---- fixtures --------------------------------------------------------------------------------

enum class Backend { redis, local };

net::ClientConfig client_config(const RedisServer& server) {
  net::ClientConfig cfg = net::ClientConfig::from_url(server.url());
  cfg.command_timeout = 500ms;
  cfg.connect_timeout = 500ms;
  cfg.reconnect_min_delay = 20ms;
  cfg.reconnect_max_delay = 200ms;
  cfg.retry_on_timeout = false;
  return cfg;
}

// The service's own counters from get_cache_stats()["client"].
asio::awaitable<std::uint64_t> client_counter(PromptCacheService& svc, std::string_view name) {
  const json::object stats = co_await svc.get_cache_stats();
  co_return stats.at("client").at(name).to_number<std::uint64_t>();
}

class ServiceTestBase : public ::testing::Test {
 protected:
  void start(Backend backend) {
    backend_ = backend;
    if (backend_ == Backend::redis) server_ = std::make_unique<RedisServer>();
    use_service();
  }

  // (Re)creates the service, with a new store client, with these options and this tracer.
  void use_service(ServiceOptions options = {},
                   std::shared_ptr<telemetry::Tracer> tracer = nullptr) {
    service_.reset();
    redis_store_.reset();
    std::shared_ptr<store::Store> store;
    if (backend_ == Backend::redis) {
      redis_store_ = std::make_shared<store::RedisStore>(
          std::make_shared<net::Client>(io_.get_executor(), client_config(*server_)));
      store = redis_store_;
    } else {
      store = std::make_shared<store::LocalStore>();
    }
    service_ = std::make_unique<PromptCacheService>(std::move(store), options, std::move(tracer));
  }

  void TearDown() override {
    service_.reset();
    redis_store_.reset();
    io_.restart();
    io_.poll();  // lets the connections close
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    io_.restart();  // the in-process store leaves no work behind: the context stops
    return run_until_done(io_, std::move(task));
  }

  bool on_redis() const { return backend_ == Backend::redis; }
  std::string_view tier() const { return on_redis() ? "redis" : "local"; }
  PromptCacheService& svc() { return *service_; }
  RedisServer& server() { return *server_; }

  Backend backend_ = Backend::local;
  asio::io_context io_;
  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<store::RedisStore> redis_store_;
  std::unique_ptr<PromptCacheService> service_;
};

// Every test of this suite runs on Redis and on the in-process store.
class Service : public ServiceTestBase, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override { start(GetParam()); }
};

class ServiceOnRedis : public ServiceTestBase {
 protected:
  void SetUp() override { start(Backend::redis); }
};

INSTANTIATE_TEST_SUITE_P(Stores, Service, ::testing::Values(Backend::redis, Backend::local),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param == Backend::redis ? "redis" : "local");
                         });

// ---- hit, miss, TTL --------------------------------------------------------------------------

TEST_P(Service, analysis_result_misses_before_set_and_hits_after) {
  run([&]() -> asio::awaitable<void> {
    const Json result = json::parse(R"({"quality_scores":{"clarity":0.8},"suggestions":["x"]})");
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(1), "user123"));
    co_await svc().set_analysis_result(hash(1), "user123", "default", result);
    auto got = co_await svc().get_analysis_result(hash(1), "user123");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, result);
    // Another analysis type, prompt or user is another entry.
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(1), "user123", "v2"));
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(2), "user123"));
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(1), "user124"));
  }());
}

TEST_P(Service, get_and_set_round_trip_json_and_an_absent_key_is_a_miss) {
  run([&]() -> asio::awaitable<void> {
    const Json value = json::parse(R"({"a":[1,2.5,"three",null,true],"b":{"c":"ü"}})");
    EXPECT_FALSE(co_await svc().get("plain:key"));
    co_await svc().set("plain:key", value);
    auto got = co_await svc().get("plain:key");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, value);
    // Overwriting replaces the value.
    co_await svc().set("plain:key", Json(7));
    got = co_await svc().get("plain:key");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, Json(7));
  }());
}

TEST_P(Service, empty_object_array_and_string_values_are_hits_not_misses) {
  const std::vector<std::pair<std::string, Json>> values = {
      {"empty:object", json::object{}}, {"empty:array", json::array{}},
      {"empty:string", json::string{}}, {"zero", Json(0)},
      {"false", Json(false)},
  };
  run([&]() -> asio::awaitable<void> {
    for (const auto& [key, value] : values) {
      co_await svc().set(key, value);
      auto got = co_await svc().get(key);
      EXPECT_TRUE(got.has_value()) << key << " read as a miss";
      if (got) {
        EXPECT_EQ(*got, value) << key;
      }
    }
    co_await svc().set_analysis_result(hash(3), "user123", "default", json::object{});
    auto got = co_await svc().get_analysis_result(hash(3), "user123");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, Json(json::object{}));
    EXPECT_EQ(co_await client_counter(svc(), "hits"), values.size() + 1);
    EXPECT_EQ(co_await client_counter(svc(), "misses"), 0u);
  }());
}

TEST_P(Service, ttl_of_one_second_expires_for_real_and_ttl_zero_does_not) {
  run([&]() -> asio::awaitable<void> {
    const Json value = json::object{{"v", 1}};
    co_await svc().set("ttl:one", value, 1s);
    co_await svc().set_analysis_result(hash(4), "user123", "default", value, 1s);
    co_await svc().set("ttl:zero", value, 0s);
    EXPECT_TRUE(co_await svc().get("ttl:one"));
    EXPECT_TRUE(co_await svc().get_analysis_result(hash(4), "user123"));
    co_await sleep_for(1200ms);
    EXPECT_FALSE(co_await svc().get("ttl:one"));
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(4), "user123"));
    EXPECT_TRUE(co_await svc().get("ttl:zero"));
  }());
}

TEST_P(Service, explicit_ttl_zero_is_honoured_as_no_expiry_and_no_ttl_means_the_default) {
  const Json value = json::object{{"v", 2}};
  run([&]() -> asio::awaitable<void> {
    co_await svc().set("ttl:zero", value, 0s);
    co_await svc().set_analysis_result(hash(5), "user123", "default", value, 0s);
    co_await svc().set("ttl:default", value);
    co_await svc().set_analysis_result(hash(6), "user123", "default", value);
    co_await svc().set("ttl:ten", value, 10s);
    co_await svc().set("ttl:never", value, cache::no_expiry);  // the explicit spelling of 0 s
    EXPECT_TRUE(co_await svc().get("ttl:zero"));
    EXPECT_TRUE(co_await svc().get("ttl:never"));
    EXPECT_TRUE(co_await svc().get_analysis_result(hash(5), "user123"));
    EXPECT_TRUE(co_await svc().get("ttl:default"));
    EXPECT_TRUE(co_await svc().get_analysis_result(hash(6), "user123"));
    // A negative TTL is refused (an invalid argument, as ttl.hpp says) and writes nothing.
    bool refused = false;
    try {
      co_await svc().set("ttl:negative", value, -1s);
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    EXPECT_FALSE(co_await svc().get("ttl:negative"));
  }());
  if (!on_redis()) return;
  EXPECT_EQ(server().cli({"TTL", "ttl:zero"}), "-1");
  EXPECT_EQ(server().cli({"TTL", "ttl:never"}), "-1");
  EXPECT_EQ(server().cli({"TTL", analysis_key(hash(5), "user123", "default")}), "-1");
  const int default_ttl = std::stoi(server().cli({"TTL", "ttl:default"}));
  EXPECT_GE(default_ttl, 3590);
  EXPECT_LE(default_ttl, 3600);
  const int analysis_ttl =
      std::stoi(server().cli({"TTL", analysis_key(hash(6), "user123", "default")}));
  EXPECT_GE(analysis_ttl, 3590);  // PROMPT_ANALYSIS
  EXPECT_LE(analysis_ttl, 3600);
  const int ten = std::stoi(server().cli({"TTL", "ttl:ten"}));
  EXPECT_GE(ten, 9);
  EXPECT_LE(ten, 10);
}

// ---- keys (defects 1 and 2) ------------------------------------------------------------------

TEST_P(Service,
       get_analysis_result_reads_the_key_set_analysis_result_writes_and_invalidation_removes) {
  const Json value = json::object{{"score", 0.5}};
  // The seed's layout, the user id as a cluster hash tag.
  const std::string seed_key = "prompt:analysis:" + hash(7) + ":{user123}:default";
  EXPECT_EQ(analysis_key(hash(7), "user123", "default"), seed_key);
  run([&]() -> asio::awaitable<void> {
    co_await svc().set_analysis_result(hash(7), "user123", "default", value);
    // Written under the documented layout, byte for byte.
    auto raw = co_await svc().store().get(seed_key);
    CO_ASSERT(raw && raw->has_value());
    auto by_key = co_await svc().get(seed_key);
    CO_ASSERT(by_key.has_value());
    EXPECT_EQ(*by_key, value);
    auto got = co_await svc().get_analysis_result(hash(7), "user123", "default");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, value);

    EXPECT_EQ(co_await svc().invalidate_user_analysis_cache("user123"), 1u);
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(7), "user123", "default"));
    raw = co_await svc().store().get(seed_key);
    CO_ASSERT(raw.has_value());
    EXPECT_FALSE(raw->has_value());
  }());
  if (on_redis()) {
    EXPECT_EQ(server().cli({"EXISTS", seed_key}), "0");
  }
}

TEST_P(Service, users_a_colon_b_and_a_underscore_b_do_not_see_each_others_entries) {
  EXPECT_NE(analysis_key(hash(8), "a:b", "default"), analysis_key(hash(8), "a_b", "default"));
  // (g++ 12 cannot keep a braced initializer with string literals across a co_await.)
  const Json of_colon = json::object{{"owner", "a:b"}};
  const Json of_underscore = json::object{{"owner", "a_b"}};
  run([&]() -> asio::awaitable<void> {
    co_await svc().set_analysis_result(hash(8), "a:b", "default", of_colon);
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(8), "a_b"));
    co_await svc().set_analysis_result(hash(8), "a_b", "default", of_underscore);
    auto colon = co_await svc().get_analysis_result(hash(8), "a:b");
    auto underscore = co_await svc().get_analysis_result(hash(8), "a_b");
    CO_ASSERT(colon && underscore);
    EXPECT_EQ(*colon, of_colon);
    EXPECT_EQ(*underscore, of_underscore);

    EXPECT_EQ(co_await svc().invalidate_user_analysis_cache("a:b"), 1u);
    EXPECT_FALSE(co_await svc().get_analysis_result(hash(8), "a:b"));
    EXPECT_TRUE(co_await svc().get_analysis_result(hash(8), "a_b"));
  }());
}

// ---- invalidation (defect 3) -----------------------------------------------------------------

TEST_P(Service, invalidate_user_finds_analysis_entries_whichever_write_stored_them) {
  // set, set_json, set_multiple, set_multiple_json and add_analysis_result all record an
  // analysis key in its user's index; a key outside the layout is left alone.
  run([&]() -> asio::awaitable<void> {
    const Json value = json::object{{"n", 1}};
    co_await svc().set(analysis_key(hash(1), "u", "set"), value);
    co_await svc().set_json(analysis_key(hash(1), "u", "set_json"), R"({"n":2})");
    std::vector<std::pair<std::string, Json>> batch;
    batch.emplace_back(analysis_key(hash(1), "u", "set_multiple"), value);
    batch.emplace_back(analysis_key(hash(1), "someone", "set_multiple"), value);
    co_await svc().set_multiple(batch);
    std::vector<std::pair<std::string, std::string>> texts;
    texts.emplace_back(analysis_key(hash(1), "u", "set_multiple_json"), "[]");
    co_await svc().set_multiple_json(texts);
    co_await svc().add_analysis_result(hash(1), "u", "add", value);
    co_await svc().set("prompt:analysis:" + hash(1) + ":u:untagged", value);
    EXPECT_EQ(co_await svc().invalidate_user_analysis_cache("u"), 5u);
    EXPECT_FALSE(co_await svc().get(analysis_key(hash(1), "u", "set_json")));
    EXPECT_TRUE(co_await svc().get(analysis_key(hash(1), "someone", "set_multiple")));
    EXPECT_TRUE(co_await svc().get("prompt:analysis:" + hash(1) + ":u:untagged"));
  }());
}

TEST_P(Service, an_empty_user_id_is_refused_with_invalid_argument) {
  run([&]() -> asio::awaitable<void> {
    bool refused = false;
    try {
      (void)co_await svc().invalidate_user_analysis_cache("");
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    refused = false;
    try {
      (void)co_await svc().get_analysis_result(hash(1), "", "default");
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
  }());
}

TEST_P(Service, invalidate_user_removes_exactly_that_users_entries_among_hostile_ids) {
  // Glob specials first: with the seed's pattern "*" would have wiped everybody.
  const std::vector<std::string> users = {
      "*",
      "?",
      "[x]",
      "x",
      "a:b",
      "a_b",
      "a",
      "b",
      "%",
      "%3A",
      ":",
      "{",
      "}",
      "{}",
      "\\",
      "a*",
      "[^x]",
      std::string(1024, 'u'),
      std::string(1024, '*'),
      "ünïcødé-用户-🙂",
      "user123",
  };
  // Three analysis entries per user (one with the user id as hash and type too), one
  // suggestions entry (another family, never invalidated here).
  auto entries_of = [](std::size_t i, const std::string& user) {
    const int n = static_cast<int>(i) * 10;
    return std::vector<std::pair<std::string, std::string>>{
        {hash(n), "default"}, {hash(n + 1), "v2"}, {user, user}};
  };
  const std::string prediction = cache::prediction_key("model_v1.2", hash(999));
  run([&]() -> asio::awaitable<void> {
    for (std::size_t i = 0; i < users.size(); ++i) {
      for (const auto& [h, type] : entries_of(i, users[i])) {
        const Json value = json::object{{"user", users[i]}};
        co_await svc().set_analysis_result(h, users[i], type, value);
      }
      co_await svc().set(cache::suggestions_key(hash(0), users[i], "v2"), Json(true));
    }
    co_await svc().set(prediction, Json(1));

    for (std::size_t target = 0; target < users.size(); ++target) {
      EXPECT_EQ(co_await svc().invalidate_user_analysis_cache(users[target]), 3u)
          << "user " << printable(users[target]);
      for (std::size_t j = 0; j < users.size(); ++j) {
        const bool expected = j > target;  // users before and including the target are gone
        for (const auto& [h, type] : entries_of(j, users[j])) {
          auto got = co_await svc().get_analysis_result(h, users[j], type);
          EXPECT_EQ(got.has_value(), expected)
              << "after invalidating " << printable(users[target]) << ", entry of "
              << printable(users[j]) << " type " << printable(type);
          const Json value = json::object{{"user", users[j]}};
          if (got && expected) {
            EXPECT_EQ(*got, value);
          }
        }
      }
    }
    for (const auto& user : users) {
      EXPECT_TRUE(co_await svc().get(cache::suggestions_key(hash(0), user, "v2")))
          << printable(user);
      EXPECT_EQ(co_await svc().invalidate_user_analysis_cache(user), 0u) << printable(user);
    }
    EXPECT_TRUE(co_await svc().get(prediction));
  }());
}

TEST_P(Service, invalidate_pattern_removes_every_matching_key_and_returns_the_count) {
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) co_await svc().set(fmt::format("admin:{}", i), Json(i));
    co_await svc().set("admin2", Json(5));
    co_await svc().set("other:1", Json(6));
    EXPECT_EQ(co_await svc().invalidate_pattern("admin:*"), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(co_await svc().get(fmt::format("admin:{}", i)));
    EXPECT_TRUE(co_await svc().get("admin2"));
    EXPECT_TRUE(co_await svc().get("other:1"));
    EXPECT_EQ(co_await svc().invalidate_pattern("admin:*"), 0u);
    EXPECT_EQ(co_await svc().invalidate_pattern("admin?"), 1u);
    EXPECT_FALSE(co_await svc().get("admin2"));
  }());
}

// ---- batches, delete ---------------------------------------------------------------------------

TEST_P(Service, set_multiple_of_a_thousand_entries_then_get_multiple_returns_them_in_order) {
  constexpr int n = 1000;
  std::vector<std::pair<std::string, Json>> entries;
  for (int i = 0; i < n; ++i) {
    entries.emplace_back(fmt::format("batch:{}", i),
                         json::object{{"i", i}, {"text", fmt::format("value {}", i)}});
  }
  // Every entry, with a missing key after every tenth.
  std::vector<std::string> keys;
  std::vector<std::optional<Json>> expected;
  for (int i = 0; i < n; ++i) {
    keys.push_back(entries[i].first);
    expected.emplace_back(entries[i].second);
    if (i % 10 == 0) {
      keys.push_back(fmt::format("missing:{}", i));
      expected.emplace_back(std::nullopt);
    }
  }
  run([&]() -> asio::awaitable<void> {
    co_await svc().set_multiple(entries);
    co_await svc().set_multiple({});  // nothing to do
    const auto got = co_await svc().get_multiple(keys);
    CO_ASSERT(got.size() == keys.size());
    int wrong = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (got[i] != expected[i]) {
        if (++wrong <= 5) ADD_FAILURE() << "position " << i << " key " << keys[i];
      }
    }
    EXPECT_EQ(wrong, 0);
    EXPECT_TRUE((co_await svc().get_multiple({})).empty());
    EXPECT_EQ(co_await client_counter(svc(), "hits"), static_cast<std::uint64_t>(n));
    EXPECT_EQ(co_await client_counter(svc(), "misses"), static_cast<std::uint64_t>(n / 10));
  }());
  if (!on_redis()) return;
  EXPECT_EQ(server().cli({"DBSIZE"}), "1000");
  const int ttl = std::stoi(server().cli({"TTL", "batch:999"}));
  EXPECT_GE(ttl, 3590);
  EXPECT_LE(ttl, 3600);
}

TEST_P(Service, delete_key_returns_whether_the_key_existed) {
  run([&]() -> asio::awaitable<void> {
    const Json value = json::object{{"v", 1}};
    co_await svc().set("del:k", value);
    EXPECT_TRUE(co_await svc().delete_key("del:k"));
    EXPECT_FALSE(co_await svc().get("del:k"));
    EXPECT_FALSE(co_await svc().delete_key("del:k"));
    EXPECT_FALSE(co_await svc().delete_key("never:set"));
  }());
}

TEST_P(Service, serialized_json_is_stored_as_given_and_reads_back_as_json) {
  run([&]() -> asio::awaitable<void> {
    const std::string text = R"({"score":0.87,"suggestions":["a","b"]})";
    co_await svc().set_json("raw:one", text);
    auto one = co_await svc().get("raw:one");
    CO_ASSERT(one.has_value());
    EXPECT_EQ(*one, json::parse(text));
    std::vector<std::pair<std::string, std::string>> entries;
    for (int i = 0; i < 100; ++i) {
      entries.emplace_back("raw:many:" + std::to_string(i), "[" + std::to_string(i) + "]");
    }
    co_await svc().set_multiple_json(entries);
    std::vector<std::string> keys{"raw:many:7", "raw:many:99", "raw:absent"};
    auto got = co_await svc().get_multiple(keys);
    CO_ASSERT(got.size() == 3u);
    EXPECT_EQ(got[0], std::optional<Json>(json::array{7}));
    EXPECT_EQ(got[1], std::optional<Json>(json::array{99}));
    EXPECT_FALSE(got[2].has_value());
  }());
}

TEST_P(Service, serialized_text_that_is_not_json_reads_back_as_a_discarded_miss) {
  run([&]() -> asio::awaitable<void> {
    co_await svc().set_json("raw:bad", "{not json");
    EXPECT_FALSE(co_await svc().get("raw:bad"));
    auto stored = co_await svc().store().get("raw:bad");
    EXPECT_TRUE(stored && !stored->has_value());  // discarded
  }());
}

TEST_P(Service, get_json_hands_back_the_stored_text_and_discards_what_is_not_json) {
  const std::string text = R"({"score":0.87,"suggestions":["a","b"],"nested":{"k":[1,2]}})";
  run([&]() -> asio::awaitable<void> {
    co_await svc().set_json("raw:good", text);
    EXPECT_EQ(co_await svc().get_json("raw:good"), std::optional<std::string>(text));
    // The analysis form reads the same key as get_analysis_result.
    co_await svc().set_analysis_result(hash(7), "u:1", "default", json::parse(text));
    // Written as given: numbers in their shortest form (0.87, not Boost's 8.7E-1).
    EXPECT_EQ(co_await svc().get_analysis_result_json(hash(7), "u:1"),
              std::optional<std::string>(text));
    // A value compressed in its envelope comes back as the JSON text too.
    const std::string big = json::serialize(json::value(std::string(4000, 'x')));
    co_await svc().set_json("raw:big", big);
    EXPECT_EQ(co_await svc().get_json("raw:big"), std::optional<std::string>(big));

    const auto corrupt_before = svc().counters().corrupt;
    co_await svc().set_json("raw:bad", "{\"a\":1} trailing");
    EXPECT_FALSE(co_await svc().get_json("raw:bad"));
    auto stored = co_await svc().store().get("raw:bad");
    EXPECT_TRUE(stored && !stored->has_value());  // discarded
    EXPECT_EQ(svc().counters().corrupt, corrupt_before + 1);
    EXPECT_FALSE(co_await svc().get_json("raw:never-set"));
  }());
}

// ---- get_with_fallback -----------------------------------------------------------------------

TEST_P(Service, get_with_fallback_calls_the_fallback_once_on_a_miss_caches_it_then_hits) {
  run([&]() -> asio::awaitable<void> {
    const Json from_db = json::object{{"from", "db"}, {"score", 0.75}};
    int calls = 0;
    const Fallback fallback = [&]() -> asio::awaitable<Json> {
      ++calls;
      co_return from_db;
    };
    EXPECT_EQ(co_await svc().get_with_fallback("fb:k", fallback), from_db);
    EXPECT_EQ(calls, 1);
    auto cached = co_await svc().get("fb:k");
    CO_ASSERT(cached.has_value());
    EXPECT_EQ(*cached, from_db);
    EXPECT_EQ(co_await svc().get_with_fallback("fb:k", fallback), from_db);
    EXPECT_EQ(calls, 1);

    // An empty result is cached and hit too.
    int empty_calls = 0;
    const Fallback empty = [&]() -> asio::awaitable<Json> {
      ++empty_calls;
      co_return json::object{};
    };
    EXPECT_EQ(co_await svc().get_with_fallback("fb:empty", empty), Json(json::object{}));
    EXPECT_EQ(co_await svc().get_with_fallback("fb:empty", empty), Json(json::object{}));
    EXPECT_EQ(empty_calls, 1);

    // The TTL given is the cached entry's.
    EXPECT_EQ(co_await svc().get_with_fallback("fb:ttl", fallback, 1s), from_db);
    EXPECT_EQ(calls, 2);
    co_await sleep_for(1200ms);
    EXPECT_FALSE(co_await svc().get("fb:ttl"));
    EXPECT_EQ(co_await client_counter(svc(), "fallback_calls"), 3u);
  }());
}

TEST_P(Service, get_with_fallback_lets_the_fallbacks_own_exception_reach_the_caller) {
  run([&]() -> asio::awaitable<void> {
    const Fallback failing = []() -> asio::awaitable<Json> {
      throw std::runtime_error("database down");
      co_return Json();
    };
    bool cache_error = false;
    std::optional<std::string> what;
    try {
      (void)co_await svc().get_with_fallback("fb:error", failing);
    } catch (const CacheError&) {
      cache_error = true;
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_FALSE(cache_error);
    EXPECT_EQ(what, std::optional<std::string>("database down"));
    EXPECT_FALSE(co_await svc().get("fb:error"));  // nothing cached
  }());
}

// ---- stored values: corrupt, compressed --------------------------------------------------------

TEST_P(Service, corrupt_value_reads_as_a_miss_without_throwing_and_is_deleted_and_counted) {
  const std::string key = analysis_key(hash(10), "user123", "default");
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT(!co_await svc().store().set(key, std::string("\x01\x02") + "garbage", 0s));
    std::optional<Json> got;
    try {
      got = co_await svc().get_analysis_result(hash(10), "user123");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "get threw " << e.what();
    }
    EXPECT_FALSE(got.has_value());
    auto raw = co_await svc().store().get(key);
    CO_ASSERT(raw.has_value());
    EXPECT_FALSE(raw->has_value()) << "the corrupt value was not deleted";
    EXPECT_EQ(co_await client_counter(svc(), "corrupt_values"), 1u);
    EXPECT_EQ(co_await client_counter(svc(), "hits"), 0u);

    // More kinds of garbage: a truncated envelope, an unknown envelope version, broken JSON,
    // an empty value. Each is a miss, deleted, counted.
    const std::vector<std::string> garbage = {
        std::string("\0PC", 3), std::string("\0PC\x09\x00\x01", 6) + std::string(20, 'x'),
        "{\"unterminated", "nonsense", ""};
    for (std::size_t i = 0; i < garbage.size(); ++i) {
      const std::string k = fmt::format("corrupt:{}", i);
      CO_ASSERT(!co_await svc().store().set(k, garbage[i], 0s));
      EXPECT_FALSE(co_await svc().get(k)) << i;
      auto r = co_await svc().store().get(k);
      EXPECT_TRUE(r && !r->has_value()) << i;
    }
    EXPECT_EQ(co_await client_counter(svc(), "corrupt_values"), 1u + garbage.size());
  }());
}

TEST_P(Service, value_above_one_kib_is_stored_compressed_and_reads_back_equal) {
  json::object big;
  big["prompt_text"] = std::string(3000, 'a') + " write a better prompt " + std::string(3000, 'b');
  json::array scores;
  for (int i = 0; i < 300; ++i) scores.emplace_back(i * 0.25);
  big["quality_scores"] = std::move(scores);
  const Json value = big;
  const std::size_t json_size = json::serialize(value).size();
  ASSERT_GT(json_size, 1024u);
  // 100 KiB happens in production.
  const Json huge = json::object{{"blob", std::string(100 * 1024, 'z')}};
  std::size_t stored_size = 0;
  run([&]() -> asio::awaitable<void> {
    co_await svc().set("big", value);
    auto raw = co_await svc().store().get("big");
    CO_ASSERT(raw && raw->has_value());
    stored_size = (*raw)->size();
    auto got = co_await svc().get("big");
    CO_ASSERT(got.has_value());
    // The same numbers: 2.0 is written (and read back) as the integer 2, as JSON has it.
    EXPECT_EQ(json_text(*got), json_text(value));

    co_await svc().set("huge", huge);
    got = co_await svc().get("huge");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, huge);
  }());
  EXPECT_LT(stored_size, json_size);
  if (on_redis()) {
    EXPECT_LT(std::stoul(server().cli({"STRLEN", "big"})), json_size);
  }
}

// ---- stats -----------------------------------------------------------------------------------

TEST_P(Service, get_cache_stats_has_the_seeds_fields_and_this_clients_counters) {
  run([&]() -> asio::awaitable<void> {
    co_await svc().set("stats:k", Json(1));
    EXPECT_TRUE(co_await svc().get("stats:k"));
    EXPECT_FALSE(co_await svc().get("stats:absent"));
    const json::object stats = co_await svc().get_cache_stats();
    EXPECT_FALSE(stats.contains("error")) << json::serialize(stats);
    for (const char* field : {"keyspace_hits", "keyspace_misses", "hit_rate", "connected_clients",
                              "used_memory", "total_commands_processed"}) {
      EXPECT_TRUE(stats.contains(field)) << field << " missing in " << json::serialize(stats);
    }
    CO_ASSERT(stats.contains("keyspace_hits") && stats.contains("keyspace_misses") &&
              stats.contains("hit_rate") && stats.contains("client"));
    const auto hits = stats.at("keyspace_hits").to_number<std::uint64_t>();
    const auto misses = stats.at("keyspace_misses").to_number<std::uint64_t>();
    EXPECT_EQ(hits, 1u);
    EXPECT_EQ(misses, 1u);
    EXPECT_DOUBLE_EQ(stats.at("hit_rate").to_number<double>(), 50.0);
    EXPECT_GE(stats.at("connected_clients").to_number<std::uint64_t>(), 1u);
    EXPECT_TRUE(stats.at("used_memory").is_string());
    EXPECT_FALSE(stats.at("used_memory").as_string().empty());
    EXPECT_GE(stats.at("total_commands_processed").to_number<std::uint64_t>(), 3u);

    const json::object& client = stats.at("client").as_object();
    EXPECT_EQ(client.at("tier").as_string(), tier());
    EXPECT_EQ(client.at("hits").to_number<std::uint64_t>(), 1u);
    EXPECT_EQ(client.at("misses").to_number<std::uint64_t>(), 1u);
    EXPECT_EQ(client.at("errors").to_number<std::uint64_t>(), 0u);
    EXPECT_EQ(client.at("breaker").as_string(), "closed");
    EXPECT_EQ(client.at("latency").at("get").at("count").to_number<std::uint64_t>(), 2u);
    EXPECT_EQ(client.at("latency").at("set").at("count").to_number<std::uint64_t>(), 1u);
  }());
}

// ---- tracing ---------------------------------------------------------------------------------

TEST_P(Service, tracer_sees_get_set_set_multiple_invalidate_and_fallback_spans) {
  auto tracer = std::make_shared<RecordingTracer>();
  use_service({}, tracer);
  run([&]() -> asio::awaitable<void> {
    co_await svc().set("t:k", Json(1));
    EXPECT_TRUE(co_await svc().get("t:k"));
    EXPECT_FALSE(co_await svc().get("t:absent"));
    const std::vector<std::pair<std::string, Json>> batch = {{"t:1", Json(1)}, {"t:2", Json(2)}};
    co_await svc().set_multiple(batch);
    co_await svc().set_analysis_result(hash(11), "user123", "default", Json(3));
    EXPECT_EQ(co_await svc().invalidate_user_analysis_cache("user123"), 1u);
    const Fallback fallback = []() -> asio::awaitable<Json> { co_return Json("db"); };
    EXPECT_EQ(co_await svc().get_with_fallback("t:fb", fallback), Json("db"));
  }());

  auto find = [](const std::vector<RecordedSpan>& spans, std::string_view key) {
    for (const auto& s : spans) {
      if (s.text("cache.key") == std::optional<std::string>(key)) return std::optional(s);
    }
    return std::optional<RecordedSpan>();
  };
  const auto gets = tracer->named("cache_get");
  const auto hit = find(gets, "t:k");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->flag("cache.hit"), std::optional(true));
  EXPECT_EQ(hit->text("cache.tier"), std::optional<std::string>(tier()));
  const auto miss = find(gets, "t:absent");
  ASSERT_TRUE(miss.has_value());
  EXPECT_EQ(miss->flag("cache.hit"), std::optional(false));
  EXPECT_EQ(miss->text("cache.tier"), std::optional<std::string>(tier()));

  const auto sets = tracer->named("cache_set");
  const auto set = find(sets, "t:k");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->text("cache.tier"), std::optional<std::string>(tier()));
  EXPECT_TRUE(find(sets, analysis_key(hash(11), "user123", "default")).has_value());

  const auto batches = tracer->named("cache_set_multiple");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].number("cache.entries"), std::optional<std::int64_t>(2));

  const auto invalidations = tracer->named("cache_invalidate");
  ASSERT_EQ(invalidations.size(), 1u);
  EXPECT_EQ(invalidations[0].text("cache.user"), std::optional<std::string>("user123"));
  EXPECT_EQ(invalidations[0].text("cache.index"),
            std::optional(cache::user_analysis_index_key("user123")));
  EXPECT_TRUE(invalidations[0].has("cache.invalidated"));

  const auto fallbacks = tracer->named("cache_fallback");
  ASSERT_EQ(fallbacks.size(), 1u);
  EXPECT_EQ(fallbacks[0].text("cache.key"), std::optional<std::string>("t:fb"));
  EXPECT_EQ(fallbacks[0].flag("cache.hit"), std::optional(false));
  // The fallback's own cache_get (a miss) and cache_set are traced inside it.
  EXPECT_TRUE(find(gets, "t:fb").has_value());
  EXPECT_TRUE(find(sets, "t:fb").has_value());
  for (const auto& s : gets) EXPECT_TRUE(s.exceptions.empty()) << s.name;
}

TEST_P(Service, a_traced_view_makes_each_operation_a_child_of_the_callers_span) {
  auto tracer = std::make_shared<RecordingTracer>();
  use_service({}, tracer);
  // A span of the caller's, as an incoming traceparent gives it.
  const auto caller =
      telemetry::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(caller.has_value());
  run([&]() -> asio::awaitable<void> {
    cache::TracedService traced = svc().traced(*caller);
    co_await traced.set("p:k", Json(1));
    EXPECT_TRUE(co_await traced.get_json("p:k"));
    const std::vector<std::pair<std::string, Json>> batch = {{"p:1", Json(1)}};
    co_await traced.set_multiple(batch);
    EXPECT_TRUE(co_await traced.delete_key("p:1"));
    const PromptCacheService::Loader loader = []() -> asio::awaitable<std::optional<Json>> {
      co_return Json(2);
    };
    EXPECT_EQ(co_await traced.get_or_load("p:load", loader), std::optional(Json(2)));
    EXPECT_EQ(co_await traced.get_or_load("p:load", loader), std::optional(Json(2)));  // a hit
    co_await traced.set_analysis_result(hash(21), "user-p", "default", Json(3));
    EXPECT_EQ(co_await traced.invalidate_user_analysis_cache("user-p"), 1u);
    // The service itself: root spans, each a trace of its own.
    EXPECT_TRUE(co_await svc().get_json("p:k"));
  }());

  const auto with_key = [&](std::string_view name, std::string_view key) {
    std::vector<RecordedSpan> out;
    for (auto& s : tracer->named(name)) {
      if (s.text("cache.key") == std::optional<std::string>(key)) out.push_back(s);
    }
    return out;
  };
  const auto child_of_caller = [&](const RecordedSpan& s) {
    EXPECT_EQ(s.context.trace_id, caller->trace_id) << s.name;
    ASSERT_TRUE(s.parent.has_value()) << s.name;
    EXPECT_EQ(*s.parent, caller->span_id) << s.name;
  };
  const auto sets = with_key("cache_set", "p:k");
  ASSERT_EQ(sets.size(), 1u);
  child_of_caller(sets[0]);
  const auto gets = with_key("cache_get", "p:k");
  ASSERT_EQ(gets.size(), 2u);
  child_of_caller(gets[0]);
  EXPECT_FALSE(gets[1].parent.has_value()) << "the service's own read is a root";
  EXPECT_NE(gets[1].context.trace_id, caller->trace_id);
  const auto batches = tracer->named("cache_set_multiple");
  ASSERT_EQ(batches.size(), 1u);
  child_of_caller(batches[0]);
  const auto deletes = with_key("cache_delete", "p:1");
  ASSERT_EQ(deletes.size(), 1u);
  child_of_caller(deletes[0]);
  const auto invalidations = tracer->named("cache_invalidate");
  ASSERT_EQ(invalidations.size(), 1u);
  child_of_caller(invalidations[0]);
  child_of_caller(with_key("cache_set", analysis_key(hash(21), "user-p", "default")).at(0));

  // A load that missed: its read, then the load (its span from the miss on), both the caller's
  // children; the fill is the load's. The hit after it is its read's span alone.
  const auto loads = with_key("cache_fallback", "p:load");
  ASSERT_EQ(loads.size(), 1u);
  child_of_caller(loads[0]);
  const auto reads = with_key("cache_get", "p:load");
  ASSERT_EQ(reads.size(), 2u);
  for (const auto& read : reads) child_of_caller(read);
  const auto fill = with_key("cache_set", "p:load");
  ASSERT_EQ(fill.size(), 1u);
  EXPECT_EQ(fill[0].context.trace_id, caller->trace_id);
  EXPECT_EQ(fill[0].parent, std::optional(loads[0].context.span_id));
}

TEST_P(Service, a_traced_view_of_an_invalid_context_makes_root_spans) {
  auto tracer = std::make_shared<RecordingTracer>();
  use_service({}, tracer);
  const telemetry::SpanContext none;  // all-zero ids: the standard's "invalid"
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await svc().traced(none).get_json("p:none"));
    EXPECT_FALSE(co_await svc().traced(nullptr).get_json("p:none"));
  }());
  const auto gets = tracer->named("cache_get");
  ASSERT_EQ(gets.size(), 2u);
  for (const auto& s : gets) EXPECT_FALSE(s.parent.has_value());
}

// ---- Redis only: values the seed wrote, an outage ----------------------------------------------

TEST_F(ServiceOnRedis, plain_json_written_by_the_seed_is_read_back_by_get) {
  // The seed's own key (no hash tag): get() reads what it wrote; get_analysis_result looks
  // under the tagged layout (docs/cache.md, Keys).
  const std::string key = "prompt:analysis:" + hash(12) + ":user123:default";
  ASSERT_EQ(server().cli({"SET", key, "{\"score\": 0.9}"}), "OK");
  ASSERT_EQ(server().cli({"SET", "seed:array", "[1, 2, 3]"}), "OK");
  ASSERT_EQ(server().cli({"SET", "seed:string", "\"text\""}), "OK");
  run([&]() -> asio::awaitable<void> {
    auto got = co_await svc().get(key);
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, json::parse(R"({"score":0.9})"));
    got = co_await svc().get("seed:array");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, json::parse("[1,2,3]"));
    got = co_await svc().get("seed:string");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, Json("text"));
    EXPECT_EQ(co_await client_counter(svc(), "corrupt_values"), 0u);
  }());
  EXPECT_EQ(server().cli({"EXISTS", key}), "1");  // a legacy value is not discarded
}

TEST_F(ServiceOnRedis, garbage_written_with_redis_cli_reads_as_a_miss_and_is_deleted) {
  const std::string key = analysis_key(hash(13), "user123", "default");
  server().cli({"SET", key, std::string("\x01\x02") + "garbage"});
  ASSERT_EQ(server().cli({"EXISTS", key}), "1");
  run([&]() -> asio::awaitable<void> {
    std::optional<Json> got;
    try {
      got = co_await svc().get_analysis_result(hash(13), "user123");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "get threw " << e.what();
    }
    EXPECT_FALSE(got.has_value());
    EXPECT_EQ(co_await client_counter(svc(), "corrupt_values"), 1u);
  }());
  EXPECT_EQ(server().cli({"EXISTS", key}), "0");
}

TEST_F(ServiceOnRedis, server_stopped_reads_miss_writes_throw_cache_error_and_fallback_answers) {
  ServiceOptions options;
  options.breaker.failure_threshold = 1000;  // every call below really meets the outage
  use_service(options);
  run([&]() -> asio::awaitable<void> {
    co_await svc().set("k", Json(1));
    CO_ASSERT(co_await svc().get("k"));
  }());
  server().stop();
  run([&]() -> asio::awaitable<void> {
    auto expect_cache_error = [&](auto call, const char* what) -> asio::awaitable<void> {
      bool cache_error = false;
      try {
        co_await call();
      } catch (const CacheError&) {
        cache_error = true;
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << " threw something else: " << e.what();
      }
      EXPECT_TRUE(cache_error) << what;
    };
    try {
      EXPECT_FALSE(co_await svc().get("k"));
      EXPECT_FALSE(co_await svc().get_analysis_result(hash(1), "user123"));
      const std::vector<std::string> keys = {"k", "k2"};
      const auto many = co_await svc().get_multiple(keys);
      EXPECT_EQ(many.size(), 2u);
      for (const auto& v : many) EXPECT_FALSE(v.has_value());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a read threw " << e.what();
    }
    // (Coroutine lambdas: the temporaries below must live until the call completes.)
    co_await expect_cache_error(
        [&]() -> asio::awaitable<void> { co_await svc().set("k", Json(2)); }, "set");
    co_await expect_cache_error(
        [&]() -> asio::awaitable<void> {
          const std::vector<std::pair<std::string, Json>> batch = {{"a", Json(1)}, {"b", Json(2)}};
          co_await svc().set_multiple(batch);
        },
        "set_multiple");
    co_await expect_cache_error(
        [&]() -> asio::awaitable<void> { (void)co_await svc().delete_key("k"); }, "delete_key");
    co_await expect_cache_error(
        [&]() -> asio::awaitable<void> {
          (void)co_await svc().invalidate_user_analysis_cache("user123");
        },
        "invalidate_user_analysis_cache");
    co_await expect_cache_error(
        [&]() -> asio::awaitable<void> { (void)co_await svc().invalidate_pattern("k*"); },
        "invalidate_pattern");

    int calls = 0;
    const Fallback fallback = [&]() -> asio::awaitable<Json> {
      ++calls;
      co_return Json("from the database");
    };
    try {
      EXPECT_EQ(co_await svc().get_with_fallback("k", fallback), Json("from the database"));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "get_with_fallback threw " << e.what();
    }
    EXPECT_EQ(calls, 1);

    const json::object stats = co_await svc().get_cache_stats();
    EXPECT_TRUE(stats.contains("error")) << json::serialize(stats);
    if (stats.contains("error")) {
      EXPECT_FALSE(stats.at("error").as_string().empty());
    }
    CO_ASSERT(stats.contains("client"));
    // get, get_analysis_result, get_multiple, set, set_multiple, delete_key, two
    // invalidations, and get_with_fallback's get (a load after a failed read fills nothing).
    EXPECT_EQ(stats.at("client").at("errors").to_number<std::uint64_t>(), 9u)
        << json::serialize(stats);
    EXPECT_EQ(svc().breaker().state(), BreakerState::closed);
  }());
}

TEST_F(ServiceOnRedis, circuit_breaker_opens_after_threshold_skips_the_network_then_closes) {
  ServiceOptions options;
  options.breaker.failure_threshold = 3;
  options.breaker.open_for = 2s;  // longer than the open window's calls take on any machine
  use_service(options);
  run([&]() -> asio::awaitable<void> { co_await svc().set("k", Json(1)); }());
  server().stop();
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(svc().breaker().state(), BreakerState::closed) << "after " << i << " failures";
      EXPECT_FALSE(co_await svc().get("k"));
    }
    EXPECT_EQ(svc().breaker().state(), BreakerState::open);
    EXPECT_EQ(svc().breaker().times_opened(), 1u);

    // Open: no call goes to the network (a real one would wait 500 ms for its timeout here and
    // count it): every read is counted skipped, every write dropped. No get_cache_stats in
    // this window: it asks the server whatever the breaker says.
    const auto timeouts_before = redis_store_->client().stats().timeouts;
    int calls = 0;
    const Fallback fallback = [&]() -> asio::awaitable<Json> {
      ++calls;
      co_return Json(42);
    };
    int cache_errors = 0;
    for (int i = 0; i < 10; ++i) {
      EXPECT_FALSE(co_await svc().get("k"));
      EXPECT_FALSE(co_await svc().get_analysis_result(hash(1), "user123"));
      EXPECT_EQ(co_await svc().get_with_fallback("k", fallback), Json(42));
      try {
        co_await svc().set("k", Json(2));
      } catch (const CacheError&) {
        ++cache_errors;
      }
    }
    EXPECT_EQ(calls, 10);
    EXPECT_EQ(cache_errors, 10);
    EXPECT_EQ(svc().breaker().state(), BreakerState::open);
    EXPECT_EQ(redis_store_->client().stats().timeouts, timeouts_before);
    // get, get_analysis_result and get_with_fallback's get; set (a load after a skipped read
    // does not try to fill).
    EXPECT_EQ(co_await client_counter(svc(), "skipped_reads"), 30u);
    EXPECT_EQ(co_await client_counter(svc(), "dropped_writes"), 10u);
    EXPECT_EQ(co_await client_counter(svc(), "errors"), 3u);
  }());

  server().start();
  run([&]() -> asio::awaitable<void> {
    // After the back-off one probe goes through, succeeds, and closes the breaker.
    for (int i = 0; i < 100 && svc().breaker().state() != BreakerState::closed; ++i) {
      co_await sleep_for(50ms);
      (void)co_await svc().get("probe");
    }
    CO_ASSERT(svc().breaker().state() == BreakerState::closed);
    try {
      co_await svc().set("after", Json("restart"));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "set after the restart threw " << e.what();
    }
    auto got = co_await svc().get("after");
    CO_ASSERT(got.has_value());
    EXPECT_EQ(*got, Json("restart"));
    const json::object stats = co_await svc().get_cache_stats();
    EXPECT_FALSE(stats.contains("error"));
    EXPECT_EQ(stats.at("client").at("breaker").as_string(), "closed");
    EXPECT_GE(stats.at("client").at("breaker_opened").to_number<std::uint64_t>(), 1u);
  }());
}

}  // namespace
}  // namespace promptcache
