#include "promptcache/cache/service.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/ttl.hpp"
#include "promptcache/error.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/detect.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"

namespace promptcache::cache {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
template <class T>
using Result = boost::system::result<T>;

namespace {

constexpr const char* op_names[] = {"get",          "set",        "delete",  "get_multiple",
                                    "set_multiple", "invalidate", "fallback"};

// Errors that say the tier is unreachable (as opposed to a server that answered badly).
bool is_connection_failure(const error_code& ec) {
  if (ec.category() != error_category()) return true;  // socket, TLS, resolver errors
  switch (static_cast<error>(ec.value())) {
    case error::timeout:
    case error::not_connected:
    case error::connect_timeout:
    case error::connection_lost:
    case error::protocol_error:
    case error::limit_exceeded:
    case error::auth_failed:
    case error::closed:
      return true;
    default:
      return false;
  }
}

// Keys may hold anything a user sent: quoted and escaped in logs.
std::string loggable(std::string_view key) {
  return fmt::format("{:?}", key);
}

// Accepts every event: the parser's own checks are the validation.
struct JsonValidator {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_key_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_key(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) { return true; }
  bool on_double(double, json::string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }
};

// The seed's fields of the server's statistics (and `keys`).
json::object server_fields(const store::ServerStats& s) {
  const std::uint64_t total = s.keyspace_hits + s.keyspace_misses;
  return json::object{
      {"keyspace_hits", s.keyspace_hits},
      {"keyspace_misses", s.keyspace_misses},
      {"hit_rate",
       total > 0 ? static_cast<double>(s.keyspace_hits) / static_cast<double>(total) * 100 : 0.0},
      {"connected_clients", s.connected_clients},
      {"used_memory", s.used_memory_human.empty() ? std::string("unknown") : s.used_memory_human},
      {"total_commands_processed", s.total_commands_processed},
      {"keys", s.keys}};
}

// Whether `text` is one JSON document: checked without building a value.
bool is_json(std::string_view text) {
  json::basic_parser<JsonValidator> parser{json::parse_options{}};
  error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size() && parser.done();
}

}  // namespace

PromptCacheService::PromptCacheService(std::shared_ptr<store::Store> store, ServiceOptions options,
                                       std::shared_ptr<telemetry::Tracer> tracer)
    : store_(std::move(store)),
      options_(options),
      tracer_(std::move(tracer)),
      breaker_(options.breaker) {}

std::unique_ptr<PromptCacheService> PromptCacheService::from_config(
    const CacheConfig& config, const std::vector<asio::any_io_executor>& executors,
    std::shared_ptr<telemetry::Tracer> tracer) {
  return std::make_unique<PromptCacheService>(make_store(config, executors),
                                              config.service_options(), std::move(tracer));
}

std::shared_ptr<store::Store> make_store(const CacheConfig& config,
                                         const std::vector<asio::any_io_executor>& executors) {
  if (!config.redis) return std::make_shared<store::LocalStore>(config.local);
  std::vector<cluster::NodeAddress> nodes = config.cluster_nodes;
  const net::ClientConfig& redis = *config.redis;
  if (nodes.empty() && !redis.sentinel && redis.transport != net::Transport::unix_socket) {
    std::string detail;
    auto enabled = store::probe_cluster_enabled_blocking(redis, detail);
    if (!enabled) {
      spdlog::warn(
          "cannot ask {} whether it is a cluster node ({}): one server assumed; "
          "REDIS_CLUSTER_NODES names a cluster",
          redis.address(), detail);
    } else if (*enabled) {
      spdlog::info("{} is a cluster node: cluster mode", redis.address());
      nodes.push_back({redis.host, redis.port});
    }
  }
  if (!nodes.empty()) {
    return std::make_shared<store::ClusterStore>(executors, redis, nodes, config.cluster);
  }
  return std::make_shared<store::RedisStore>(std::make_shared<net::Client>(executors, redis));
}

bool PromptCacheService::note_result(const error_code& ec) {
  if (!ec) {
    breaker_.on_success();
    return false;
  }
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  if (is_connection_failure(ec)) {
    breaker_.on_failure(Clock::now());
  } else {
    breaker_.on_success();  // the server answered: the tier is up
  }
  return true;
}

PromptCacheService::CounterSnapshot PromptCacheService::counters() const noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {counters_.hits.load(relaxed),          counters_.misses.load(relaxed),
          counters_.errors.load(relaxed),        counters_.corrupt.load(relaxed),
          counters_.skipped_reads.load(relaxed), counters_.dropped_writes.load(relaxed),
          counters_.fallback_calls.load(relaxed)};
}

void PromptCacheService::record(Op op, Clock::time_point start) {
  latency_[op].record(Clock::now() - start);
}

std::chrono::seconds PromptCacheService::jittered(std::chrono::seconds ttl) const {
  if (options_.ttl_jitter <= 0 || ttl.count() <= 0) return ttl;
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_real_distribution<double> spread(-options_.ttl_jitter, options_.ttl_jitter);
  const double seconds = static_cast<double>(ttl.count()) * (1.0 + spread(rng));
  return std::chrono::seconds(std::max<std::int64_t>(1, std::llround(seconds)));
}

std::chrono::seconds PromptCacheService::effective_ttl(std::optional<std::int64_t> ttl) const {
  if (!ttl) return options_.default_ttl;
  if (*ttl < 0) throw CacheError("TTL must not be negative");
  return std::chrono::seconds(*ttl);
}

std::string PromptCacheService::encode(std::string_view json_text) const {
  return encode_value(json_text, EnvelopeMeta{std::chrono::system_clock::now(), {}},
                      options_.codec);
}

std::optional<PromptCacheService::Json> PromptCacheService::decode(std::string_view stored) const {
  // Decompressed bytes live only until parsed, before any suspension: one buffer per thread.
  thread_local std::string scratch;
  auto decoded = decode_value(stored, options_.codec, scratch);
  if (!decoded) return std::nullopt;
  // One arena per value, sized for it: a result of a dozen strings costs one allocation to
  // build and one to free, not one each.
  error_code ec;
  json::value value =
      json::parse(decoded->json, ec,
                  json::make_shared_resource<json::monotonic_resource>(decoded->json.size() * 2));
  if (ec) return std::nullopt;
  return value;
}

std::optional<std::string> PromptCacheService::decode_text(std::string_view stored) const {
  thread_local std::string scratch;
  auto decoded = decode_value(stored, options_.codec, scratch);
  if (!decoded || !is_json(decoded->json)) return std::nullopt;
  return std::string(decoded->json);
}

asio::awaitable<void> PromptCacheService::discard(std::string_view key, std::size_t bytes) {
  counters_.corrupt.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("cache value discarded op=get key={} reason=\"corrupt or foreign value\" bytes={}",
               loggable(key), bytes);
  std::vector<std::string> doomed{std::string(key)};
  auto removed = co_await store_->del(doomed);
  (void)removed;  // best effort: a value that stays is discarded again on the next read
}

template <class T, class Decode>
asio::awaitable<std::optional<T>> PromptCacheService::read_value(std::string_view key,
                                                                 Decode decode_fn) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_get");
  span.set("cache.key", key);
  span.set("cache.tier", store_->tier());
  if (!breaker_.allow(start)) {
    counters_.skipped_reads.fetch_add(1, std::memory_order_relaxed);
    counters_.misses.fetch_add(1, std::memory_order_relaxed);
    span.set("cache.hit", false);
    span.set("cache.skipped", true);
    co_return std::nullopt;
  }
  auto stored = co_await store_->get(key);
  std::optional<T> result;
  if (note_result(stored)) {
    const std::string message = stored.error().message();
    span.record_exception(message);
    spdlog::warn("cache get failed op=get key={} error=\"{}\"", loggable(key), message);
  } else if (stored->has_value()) {
    result = decode_fn(**stored);
    if (!result) co_await discard(key, (*stored)->size());
  }
  (result ? counters_.hits : counters_.misses).fetch_add(1, std::memory_order_relaxed);
  span.set("cache.hit", result.has_value());
  record(op_get, start);
  co_return result;
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get(
    std::string_view key) {
  return read_value<Json>(key, [this](std::string_view stored) { return decode(stored); });
}

asio::awaitable<std::optional<std::string>> PromptCacheService::get_json(std::string_view key) {
  return read_value<std::string>(key,
                                 [this](std::string_view stored) { return decode_text(stored); });
}

asio::awaitable<std::optional<std::string>> PromptCacheService::get_analysis_result_json(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_return co_await get_json(key);
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get_analysis_result(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_return co_await get(key);
}

asio::awaitable<void> PromptCacheService::set_analysis_result(std::string_view prompt_hash,
                                                              std::string_view user_id,
                                                              std::string_view analysis_type,
                                                              const Json& value,
                                                              std::optional<std::int64_t> ttl) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  // PROMPT_ANALYSIS unless given; set() rejects a negative TTL with CacheError.
  co_await set(key, value, ttl ? *ttl : CacheTTLConfig::PROMPT_ANALYSIS);
}

asio::awaitable<void> PromptCacheService::add_analysis_result(std::string_view prompt_hash,
                                                              std::string_view user_id,
                                                              std::string_view analysis_type,
                                                              const Json& value,
                                                              std::optional<std::int64_t> ttl) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_await write(key, {}, &value, ttl ? *ttl : CacheTTLConfig::PROMPT_ANALYSIS,
                 store::SetMode::if_absent);
}

asio::awaitable<void> PromptCacheService::set(std::string_view key, const Json& value,
                                              std::optional<std::int64_t> ttl) {
  co_await write(key, {}, &value, ttl, store::SetMode::always);
}

asio::awaitable<void> PromptCacheService::set_json(std::string_view key, std::string_view json_text,
                                                   std::optional<std::int64_t> ttl) {
  co_await write(key, json_text, nullptr, ttl, store::SetMode::always);
}

asio::awaitable<void> PromptCacheService::write(std::string_view key, std::string_view json_text,
                                                const Json* value, std::optional<std::int64_t> ttl,
                                                store::SetMode mode) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_set");
  span.set("cache.key", key);
  span.set("cache.tier", store_->tier());
  const auto seconds = effective_ttl(ttl);
  if (!breaker_.allow(start)) {
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    span.set("cache.skipped", true);
    throw CacheError(fmt::format("cache set skipped for {}: circuit breaker open", loggable(key)));
  }
  // Serialized only once the write is going ahead: nothing to do while the breaker is open.
  const std::string serialized = value != nullptr ? json::serialize(*value) : std::string();
  const std::string stored = encode(value != nullptr ? std::string_view(serialized) : json_text);
  // An analysis key is recorded in its user's index with the write (one script on Redis).
  const std::string index = analysis_index_of(key);
  const error_code ec = co_await store_->set(key, stored, jittered(seconds), mode, index);
  record(op_set, start);
  if (note_result(ec)) {
    span.record_exception(ec.message());
    spdlog::warn("cache set failed op=set key={} error=\"{}\"", loggable(key), ec.message());
    throw CacheError(fmt::format("cache set failed for {}: {}", loggable(key), ec.message()));
  }
}

asio::awaitable<bool> PromptCacheService::delete_key(std::string_view key) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_delete");
  span.set("cache.key", key);
  if (!breaker_.allow(start)) {
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    throw CacheError(
        fmt::format("cache delete skipped for {}: circuit breaker open", loggable(key)));
  }
  std::vector<std::string> keys{std::string(key)};
  auto removed = co_await store_->del(keys);
  record(op_delete, start);
  if (note_result(removed)) {
    span.record_exception(removed.error().message());
    throw CacheError(
        fmt::format("cache delete failed for {}: {}", loggable(key), removed.error().message()));
  }
  co_return *removed > 0;
}

asio::awaitable<std::vector<std::optional<PromptCacheService::Json>>>
PromptCacheService::get_multiple(const std::vector<std::string>& keys) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_get_multiple");
  span.set("cache.keys", static_cast<std::int64_t>(keys.size()));
  std::vector<std::optional<Json>> out(keys.size());
  if (keys.empty()) co_return out;
  if (!breaker_.allow(start)) {
    counters_.skipped_reads.fetch_add(keys.size(), std::memory_order_relaxed);
    counters_.misses.fetch_add(keys.size(), std::memory_order_relaxed);
    co_return out;
  }
  auto stored = co_await store_->get_multiple(keys);
  if (note_result(stored)) {
    span.record_exception(stored.error().message());
    spdlog::warn("cache get_multiple failed op=get_multiple keys={} error=\"{}\"", keys.size(),
                 stored.error().message());
    counters_.misses.fetch_add(keys.size(), std::memory_order_relaxed);
    co_return out;
  }
  std::size_t hits = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!(*stored)[i]) continue;
    out[i] = decode(*(*stored)[i]);
    if (!out[i]) co_await discard(keys[i], (*stored)[i]->size());
    hits += out[i] ? 1 : 0;
  }
  counters_.hits.fetch_add(hits, std::memory_order_relaxed);
  counters_.misses.fetch_add(keys.size() - hits, std::memory_order_relaxed);
  record(op_get_multiple, start);
  co_return out;
}

asio::awaitable<void> PromptCacheService::set_multiple(
    const std::vector<std::pair<std::string, Json>>& entries, std::optional<std::int64_t> ttl) {
  std::vector<std::pair<std::string, std::string>> texts;
  texts.reserve(entries.size());
  for (const auto& [key, value] : entries) texts.emplace_back(key, json::serialize(value));
  co_await set_multiple_json(texts, ttl);
}

asio::awaitable<void> PromptCacheService::set_multiple_json(
    const std::vector<std::pair<std::string, std::string>>& entries,
    std::optional<std::int64_t> ttl) {
  if (entries.empty()) co_return;
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_set_multiple");
  span.set("cache.entries", static_cast<std::int64_t>(entries.size()));
  span.set("cache.tier", store_->tier());
  const auto seconds = effective_ttl(ttl);
  if (!breaker_.allow(start)) {
    counters_.dropped_writes.fetch_add(entries.size(), std::memory_order_relaxed);
    throw CacheError(fmt::format("failed to set {} of {} cache entries: circuit breaker open",
                                 entries.size(), entries.size()));
  }
  std::vector<store::Entry> encoded;
  encoded.reserve(entries.size());
  for (const auto& [key, text] : entries) {
    encoded.push_back({key, encode(text), jittered(seconds), analysis_index_of(key)});
  }
  auto failed = co_await store_->set_multiple(encoded);
  record(op_set_multiple, start);
  const bool error = note_result(failed);
  const std::size_t n = error ? entries.size() : *failed;
  if (n > 0) {
    const std::string why = error ? failed.error().message() : "the server refused some writes";
    span.record_exception(why);
    spdlog::error("batch cache set failed op=set_multiple failed={} total={} error=\"{}\"", n,
                  entries.size(), why);
    throw CacheError(
        fmt::format("failed to set {} of {} cache entries: {}", n, entries.size(), why));
  }
  spdlog::debug("set {} cache entries op=set_multiple", entries.size());
}

asio::awaitable<PromptCacheService::Json> PromptCacheService::get_with_fallback(
    std::string_view key, const Fallback& fallback, std::optional<std::int64_t> ttl) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_fallback");
  span.set("cache.key", key);
  std::optional<Json> cached = co_await get(key);  // fails open: never throws a cache error
  if (cached) {
    span.set("cache.hit", true);
    record(op_fallback, start);
    co_return std::move(*cached);
  }
  span.set("cache.hit", false);
  counters_.fallback_calls.fetch_add(1, std::memory_order_relaxed);
  Json result = co_await fallback();  // its error is the caller's
  if (breaker_.rejecting(Clock::now())) {
    // During an outage the write is dropped (and counted) without a throw or a log line.
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    record(op_fallback, start);
    co_return result;
  }
  try {
    co_await set(key, result, ttl);
  } catch (const CacheError& e) {
    // While the breaker is open every write is dropped (and counted): one line per call would
    // flood the log during an outage.
    if (breaker_.state() == CircuitBreaker::State::closed) {
      spdlog::warn("cache set after fallback failed op=fallback key={} error=\"{}\"", loggable(key),
                   e.what());
    }
  }
  record(op_fallback, start);
  co_return result;
}

asio::awaitable<std::uint64_t> PromptCacheService::invalidate_pattern(
    std::string_view pattern, const store::Progress& progress) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_invalidate");
  span.set("cache.pattern", pattern);
  if (!breaker_.allow(start)) {
    throw CacheError(
        fmt::format("failed to invalidate {}: circuit breaker open", loggable(pattern)));
  }
  auto deleted = co_await store_->delete_matching(pattern, progress);
  record(op_invalidate, start);
  if (note_result(deleted)) {
    span.record_exception(deleted.error().message());
    spdlog::error("cache invalidation failed op=invalidate pattern={} error=\"{}\"",
                  loggable(pattern), deleted.error().message());
    throw CacheError(
        fmt::format("failed to invalidate {}: {}", loggable(pattern), deleted.error().message()));
  }
  span.set("cache.invalidated", static_cast<std::int64_t>(*deleted));
  co_return *deleted;
}

asio::awaitable<std::uint64_t> PromptCacheService::invalidate_user_analysis_cache(
    std::string_view user_id, const store::Progress& progress) {
  const auto start = Clock::now();
  telemetry::ScopedSpan span(tracer_.get(), "cache_invalidate");
  span.set("cache.user", user_id);
  // The user's index lists their entries: O(that user's entries), whatever the keyspace holds.
  const std::string index = user_analysis_index_key(user_id);
  span.set("cache.index", index);
  auto fail = [&](std::string_view why) {
    spdlog::error("cache invalidation failed op=invalidate user={} error=\"{}\"", loggable(user_id),
                  why);
    return CacheError(
        fmt::format("Failed to invalidate cache for user {}: {}", loggable(user_id), why));
  };
  if (!breaker_.allow(start)) throw fail("circuit breaker open");
  auto deleted = co_await store_->delete_indexed(index, progress);
  record(op_invalidate, start);
  if (note_result(deleted)) {
    span.record_exception(deleted.error().message());
    throw fail(deleted.error().message());
  }
  span.set("cache.invalidated", static_cast<std::int64_t>(*deleted));
  spdlog::info("invalidated cache for user op=invalidate user={} deleted={}", loggable(user_id),
               *deleted);
  co_return *deleted;
}

asio::awaitable<json::object> PromptCacheService::get_cache_stats() {
  json::object client;
  client["tier"] = store_->tier();
  client["hits"] = counters_.hits.load();
  client["misses"] = counters_.misses.load();
  client["errors"] = counters_.errors.load();
  client["corrupt_values"] = counters_.corrupt.load();
  client["skipped_reads"] = counters_.skipped_reads.load();
  client["dropped_writes"] = counters_.dropped_writes.load();
  client["fallback_calls"] = counters_.fallback_calls.load();
  client["breaker"] = to_string(breaker_.state());
  client["breaker_opened"] = breaker_.times_opened();
  json::object latency;
  for (int op = 0; op < op_count; ++op) {
    const auto& h = latency_[op];
    latency[op_names[op]] = json::object{
        {"count", h.count()}, {"p50_us", h.percentile_us(0.50)}, {"p99_us", h.percentile_us(0.99)}};
  }
  client["latency"] = std::move(latency);

  json::object stats;
  const auto start = Clock::now();
  Result<store::ServerStats> server = make_error_code(error::circuit_open);
  if (breaker_.allow(start)) {  // during an outage, stats answer at once too
    server = co_await store_->server_stats();
    note_result(server);
  }
  if (server.has_error()) {
    stats["error"] = server.error().message();
    spdlog::error("failed to get cache stats error=\"{}\"", server.error().message());
  } else {
    stats = server_fields(*server);
    if (!server->nodes.empty()) {
      json::array nodes;
      for (const auto& n : server->nodes) {
        json::object node = server_fields(n);
        node["node"] = n.node;
        nodes.push_back(std::move(node));
      }
      stats["nodes"] = std::move(nodes);
    }
  }
  stats["client"] = std::move(client);
  co_return stats;
}

}  // namespace promptcache::cache
