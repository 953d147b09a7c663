// PromptCacheService: the seed's cache of prompt-analysis results (same names, same key
// layout and TTL policy) with its defects fixed, over any Store.
//
// Failure behaviour, as in the seed: reads fail open (a miss, a warning, a counter, the error
// on the span); writes, batch writes and invalidation throw CacheError. A circuit breaker
// skips the store at once after repeated connection failures: reads miss, writes throw
// CacheError(error::circuit_open) and are counted as dropped — nobody waits for a timeout
// during an outage. The README's table says what each operation does in each case.
//
// Threading: the service is safe to share between threads; each call runs on its caller's
// coroutine, the store decides where its I/O happens (see net::Client).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "promptcache/cache/circuit_breaker.hpp"
#include "promptcache/cache/config.hpp"
#include "promptcache/cache/near_tier.hpp"
#include "promptcache/cache/ttl.hpp"
#include "promptcache/error.hpp"
#include "promptcache/store/store.hpp"
#include "promptcache/telemetry/span_context.hpp"

namespace promptcache::telemetry {
class Tracer;
}  // namespace promptcache::telemetry

namespace promptcache::cache {

class ServiceCore;  // src/cache/service_core.hpp: the state and the operations

// A write or an invalidation that did not happen. code() says why: error::circuit_open (the
// breaker skipped the store), error::timeout, error::not_connected, error::connection_lost,
// error::server_error… (promptcache/error.hpp), or the system's own (connection_refused) — a
// timeout can be told from a refused connection. An invalid argument (an empty user id, a negative
// TTL, a version of 0) is std::invalid_argument instead.
class CacheError : public std::runtime_error {
 public:
  CacheError(boost::system::error_code code, const std::string& what)
      : std::runtime_error(what), code_(code) {}
  [[nodiscard]] const boost::system::error_code& code() const noexcept { return code_; }

 private:
  boost::system::error_code code_;
};

// The cache's operations, as the service (PromptCacheService) and its traced views
// (PromptCacheService::traced) share them: each operation records a span (cache_get,
// cache_set, … with cache.key, cache.hit, cache.tier) when the service has a tracer — a root
// span, a trace of its own, when called on the service; a child of the view's parent when
// called on a view.
class ServiceOperations {
 public:
  // A value read from the cache owns one arena (a shared monotonic resource) that all its
  // strings, arrays and objects live in: reading it, copying it and changing it from one
  // thread are as with any value. Two copies share that arena, so copies changed on different
  // threads at once need `Json(v, boost::json::storage_ptr())` (a deep copy on the default
  // allocator) first.
  using Json = boost::json::value;
  using Fallback = std::function<boost::asio::awaitable<Json>()>;
  // A loader for get_or_load: the value, or nullopt when the source of truth has none.
  using Loader = std::function<boost::asio::awaitable<std::optional<Json>>()>;

  // An item as the source of truth holds it: its JSON text, or nullopt when it has none, at
  // the item's version there. The source moves an item's version on with every change of it,
  // deletes included, in the change's own transaction; 0 means the item never existed.
  struct Versioned {
    std::optional<std::string> json;
    std::uint64_t version = 0;
  };
  // Reads an item and its version together (one snapshot of the source of truth).
  using VersionedLoader = std::function<boost::asio::awaitable<Versioned>()>;
  // What get_or_load_versioned answers: the JSON text (nullopt: the source has no such item),
  // and whether the cache answered it (a value or a "not found" marker) without the loader.
  struct Lookup {
    std::optional<std::string> json;
    bool hit = false;
  };
  // What get_or_load_versioned takes: a VersionedLoader, or any callable that makes one. The
  // loader is made only when a load runs (a miss, an early refresh), so a hit builds none: a
  // caller whose loader owns copies of its arguments pays for them on misses only. A reference,
  // valid for the call it is passed to.
  class LoaderSource {
   public:
    LoaderSource(const VersionedLoader& loader) noexcept  // NOLINT: converts implicitly
        : object_(&loader),
          make_([](const void* l) { return *static_cast<const VersionedLoader*>(l); }) {}
    template <class Make>
    requires(std::is_invocable_r_v<VersionedLoader, const Make&> &&
             !std::is_same_v<Make, VersionedLoader>) LoaderSource(const Make& make)
    noexcept  // NOLINT: converts implicitly
        : object_(&make),
          make_([](const void* m) { return VersionedLoader((*static_cast<const Make*>(m))()); }) {}
    [[nodiscard]] VersionedLoader operator()() const { return make_(object_); }

   private:
    const void* object_;
    VersionedLoader (*make_)(const void*);
  };
  // One entry of set_multiple_versioned.
  struct VersionedEntry {
    std::string key;
    std::string json;
    std::uint64_t version = 0;
  };

  // --- Reads ---------------------------------------------------------------------------------
  // Three reads, each for a key and for an analysis key; all fail open (nullopt or null on a
  // miss, an outage, an open breaker or a corrupt value, which is discarded):
  //   get / get_analysis_result                 a JSON value to work with;
  //   get_json / get_analysis_result_json       the JSON text, to pass on as it is (no parse);
  //   get_shared / get_analysis_result_shared   the text as a shared immutable value: the near
  //                                             tier's own copy when it holds one (no copy).
  // peek and peek_with ask the near tier alone (no I/O, for a fast path in front of a read):
  // always a miss without one. get_multiple reads many keys in one round trip.

  // prompt:analysis:<prompt_hash>:{<user_id>}:<analysis_type> (cache::analysis_key;
  // cache::prompt_hash(prompt) is the seed's hash); nullopt on a miss or an error.
  boost::asio::awaitable<std::optional<Json>> get_analysis_result(
      std::string_view prompt_hash, std::string_view user_id,
      std::string_view analysis_type = "default");
  // Stores an analysis result under the same key (TTL: the seed's PROMPT_ANALYSIS, 1 h, unless
  // given). Throws CacheError.
  boost::asio::awaitable<void> set_analysis_result(std::string_view prompt_hash,
                                                   std::string_view user_id,
                                                   std::string_view analysis_type,
                                                   const Json& value, Ttl ttl = {});

  // The same, only if no entry is there (SET NX): for filling the cache from the database after
  // a miss, so the fill never overwrites what a writer stored meanwhile. Throws CacheError.
  boost::asio::awaitable<void> add_analysis_result(std::string_view prompt_hash,
                                                   std::string_view user_id,
                                                   std::string_view analysis_type,
                                                   const Json& value, Ttl ttl = {});

  // get_analysis_result as serialized JSON, for callers that pass it on as it is (the HTTP
  // service): checked to be JSON, but neither parsed into a value nor serialized again.
  boost::asio::awaitable<std::optional<std::string>> get_analysis_result_json(
      std::string_view prompt_hash, std::string_view user_id,
      std::string_view analysis_type = "default");

  // get_shared of an analysis key.
  boost::asio::awaitable<NearValuePtr> get_analysis_result_shared(
      std::string_view prompt_hash, std::string_view user_id,
      std::string_view analysis_type = "default");

  boost::asio::awaitable<std::optional<Json>> get(std::string_view key);
  // The near tier's value of `key`, if it holds a live one: no I/O, no copy, no counter (the
  // value is shared and immutable). Always null without a near tier (CacheConfig::near), and
  // when the tier misses: then read with get_shared.
  [[nodiscard]] NearValuePtr peek(std::string_view key) const;
  // peek without taking a reference: `use(const NearValue&)` runs on the value if the near
  // tier holds a live one (see NearCache::visit: `use` must not call into the service's cache
  // nor keep the reference); whether it did.
  template <class Use>
  bool peek_with(std::string_view key, Use&& use) const {
    if (near_ == nullptr || !near_->active()) return false;
    return near_->cache().visit(key, NearCache::coarse_now(), std::forward<Use>(use));
  }
  // get_json handing out the near tier's shared value when it holds one (no copy); otherwise
  // the value read (and kept in the tier when it has a place for it). Null on a miss.
  boost::asio::awaitable<NearValuePtr> get_shared(std::string_view key);
  // get(key) as serialized JSON (see get_analysis_result_json).
  boost::asio::awaitable<std::optional<std::string>> get_json(std::string_view key);
  // --- Writes: throw CacheError (error::circuit_open while the breaker is open) ---------------
  // ttl (see Ttl): nothing for ServiceOptions::default_ttl, a duration, or no_expiry.
  boost::asio::awaitable<void> set(std::string_view key, const Json& value, Ttl ttl = {});
  // For callers that already hold serialized JSON (the HTTP service): stored as given, no
  // parse and no re-serialization. The text must be JSON; anything else reads back as a
  // corrupt value (a miss) and is discarded.
  boost::asio::awaitable<void> set_json(std::string_view key, std::string_view json_text,
                                        Ttl ttl = {});
  // The seed's delete(key) (a C++ keyword): whether the key existed. Throws CacheError.
  boost::asio::awaitable<bool> delete_key(std::string_view key);
  // One MGET; fails open (every value nullopt).
  boost::asio::awaitable<std::vector<std::optional<Json>>> get_multiple(
      const std::vector<std::string>& keys);
  // One pipelined write. Throws CacheError saying how many entries failed.
  boost::asio::awaitable<void> set_multiple(
      const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl = {});
  // set_multiple for serialized JSON (see set_json).
  boost::asio::awaitable<void> set_multiple_json(
      const std::vector<std::pair<std::string, std::string>>& entries, Ttl ttl = {});
  // --- Versioned writes (docs/consistency.md) ---------------------------------------------
  // Writes carrying the source of truth's version of the item take effect only if they are
  // newer than what the cache holds, checked atomically where the entry lives (the write
  // script on Redis): whatever order concurrent writers' cache writes arrive in, the newest
  // version stays, and a delete's tombstone keeps every older fill out. The unversioned
  // writes above (set, set_json, set_multiple…) stay last-writer-wins, as in the seed.
  //
  // `budget` bounds the wait for the store (0: the client's command timeout, as for every
  // other call); a call past it fails with a timeout, which counts toward the breaker.

  // Stores `json_text` for `key` at `version` unless the cache holds that version or a newer
  // one (or its tombstone); whether it was stored. Throws CacheError (the breaker open, a store
  // error, a version of 0).
  boost::asio::awaitable<bool> set_versioned(std::string_view key, std::string_view json_text,
                                             std::uint64_t version, Ttl ttl = {},
                                             std::chrono::milliseconds budget = {});
  // The source of truth deleted the item at `version`: a tombstone replaces any older entry —
  // a "not found" marker holding the version, kept for ServiceOptions::tombstone_ttl, so that
  // no fill that read the item before the delete can bring it back. Whether it was stored (not
  // when the cache already holds a newer version). Throws CacheError as set_versioned.
  boost::asio::awaitable<bool> delete_versioned(std::string_view key, std::uint64_t version,
                                                std::chrono::milliseconds budget = {});
  // Cache-aside over a versioned source: the cached JSON text (or a remembered "not found");
  // on a miss the loader's item, stored at the version it was read with (a fill never replaces
  // a newer entry, and is dropped if it took longer than half a tombstone's life). Concurrent
  // misses of one key in this process make one loader call; with ServiceOptions::lease, one
  // across processes too, and fills are then fenced by the lease (a Redis restart between the
  // read and the fill voids the fill). A "not found" is remembered for negative_ttl (as a
  // marker holding the version, which any later versioned write replaces). The cache's errors
  // and `budget` overruns never reach the caller (the loader answers); the loader's own do.
  boost::asio::awaitable<Lookup> get_or_load_versioned(std::string_view key, LoaderSource loader,
                                                       Ttl ttl = {},
                                                       std::chrono::milliseconds budget = {});
  // set_versioned of many entries in one pipelined write (as set_multiple_json). Throws
  // CacheError saying how many entries failed; an entry the cache holds newer is not a failure.
  boost::asio::awaitable<void> set_multiple_versioned(const std::vector<VersionedEntry>& entries,
                                                      Ttl ttl = {});

  // Cache-aside: a cache error never reaches the caller; the fallback's own error does.
  // Stampede-protected as get_or_load (a "not found" marker there is a miss here).
  boost::asio::awaitable<Json> get_with_fallback(std::string_view key, const Fallback& fallback,
                                                 Ttl ttl = {});
  // Cache-aside with negative caching: the cached value; else the loader's, stored with `ttl`
  // (as set); a loader's nullopt ("not found") is stored as a marker for
  // ServiceOptions::negative_ttl and answered from it without the loader until then.
  // Concurrent misses of one key in this process make one loader call (the others get its
  // result or its error); with ServiceOptions::lease, one per key across processes too. A
  // value near its expiry is refreshed in the background (early_refresh); a loader's error
  // with a stale value in its grace (stale_grace) serves the stale value. A cache error never
  // reaches the caller; the loader's own error does.
  boost::asio::awaitable<std::optional<Json>> get_or_load(std::string_view key,
                                                          const Loader& loader, Ttl ttl = {});

  // get_with_fallback and get_or_load for an analysis key (analysis_key(prompt_hash, user_id,
  // analysis_type); TTL PROMPT_ANALYSIS unless given), as get/set_analysis_result are to get/set.
  boost::asio::awaitable<Json> get_analysis_with_fallback(std::string_view prompt_hash,
                                                          std::string_view user_id,
                                                          std::string_view analysis_type,
                                                          const Fallback& fallback, Ttl ttl = {});
  boost::asio::awaitable<std::optional<Json>> get_or_load_analysis(std::string_view prompt_hash,
                                                                   std::string_view user_id,
                                                                   std::string_view analysis_type,
                                                                   const Loader& loader,
                                                                   Ttl ttl = {});

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
  // g++ 12 destroys a temporary of a co_await expression twice (docs/client.md): a lambda
  // passed here directly becomes a temporary Fallback/Loader and its captures are freed twice
  // (and without the co_await, the reference the operation keeps would dangle). Refused at
  // compile time, with the way out.
  template <class Never = void>
  boost::asio::awaitable<Json> get_with_fallback(std::string_view, Fallback&&, Ttl = {}) {
    static_assert(sizeof(Never) == 0,
                  "g++ 12: name the fallback first (PromptCacheService::Fallback f = ...; "
                  "co_await cache.get_with_fallback(key, f)), or use BlockingCache; a temporary "
                  "in a co_await expression is destroyed twice by this compiler");
    return {};
  }
  template <class Never = void>
  boost::asio::awaitable<std::optional<Json>> get_or_load(std::string_view, Loader&&, Ttl = {}) {
    static_assert(sizeof(Never) == 0,
                  "g++ 12: name the loader first (PromptCacheService::Loader l = ...; "
                  "co_await cache.get_or_load(key, l)), or use BlockingCache; a temporary in a "
                  "co_await expression is destroyed twice by this compiler");
    return {};
  }
#endif
  // Removes that user's analysis entries and nothing else; how many. Throws CacheError
  // (std::invalid_argument for an empty id). Reads the user's index (user_analysis_index_key):
  // O(that user's entries), independent of the keyspace; entries written under the key layout
  // but not through this service are not in it (invalidate_pattern finds those).
  // `progress` (optional) hears the running count during a long deletion.
  boost::asio::awaitable<std::uint64_t> invalidate_user_analysis_cache(
      std::string_view user_id, const store::Progress& progress = {});
  // Admin: removes every key matching a Redis glob pattern; how many. Throws CacheError.
  boost::asio::awaitable<std::uint64_t> invalidate_pattern(std::string_view pattern,
                                                           const store::Progress& progress = {});
  // The seed's fields from the server, this client's counters and latencies, the breaker.
  // On failure {"error": "..."} (plus this client's own counters).
  boost::asio::awaitable<boost::json::object> get_cache_stats();

  // Whether the cache answers now: false while the breaker is open or when a read of a probe
  // key fails or takes longer than `budget`. Counts nothing and feeds no breaker (a readiness
  // probe must not change what it observes).
  boost::asio::awaitable<bool> reachable(std::chrono::milliseconds budget);

 protected:
  ServiceOperations(ServiceCore& core, NearTier* near) noexcept : core_(&core), near_(near) {}
  ServiceOperations(const ServiceOperations&) = default;
  ServiceOperations& operator=(const ServiceOperations&) = default;
  ~ServiceOperations() = default;

  // The parent handed to each operation: nullptr on the service itself.
  [[nodiscard]] const telemetry::SpanContext* parent() const noexcept {
    return parent_;
  }

  // Pointers alone, so that a view is trivially copied and destroyed (g++ 12 destroys a
  // temporary of a co_await expression twice: harmless for this one).
  ServiceCore* core_;
  NearTier* near_;  // for peek_with (also the core's); may be null
  const telemetry::SpanContext* parent_ = nullptr;
};

// The service's operations as children of a span of the caller's (PromptCacheService::traced).
// A view, as a string_view is: it refers to the service and to the parent's context, which
// must outlive it and every operation started through it; copy it freely.
class TracedService final : public ServiceOperations {
 public:
  TracedService(const TracedService&) = default;
  TracedService& operator=(const TracedService&) = default;
  ~TracedService() = default;
  // The span its operations' spans are children of (nullptr: none, they are roots).
  [[nodiscard]] const telemetry::SpanContext* parent_context() const noexcept { return parent_; }

 private:
  friend class PromptCacheService;
  TracedService(ServiceCore& core, NearTier* near, const telemetry::SpanContext* parent) noexcept
      : ServiceOperations(core, near) {
    parent_ = parent;
  }
};

class PromptCacheService : public ServiceOperations {
 public:
  // `near`: an in-process tier in front of the store, kept coherent by the store's client (its
  // ClientConfig::tracking.listener must be this tier; see near_tier.hpp). Reads of values are
  // answered from it when it holds them; every write and invalidation through this service
  // clears its keys first.
  PromptCacheService(std::shared_ptr<store::Store> store, ServiceOptions options = {},
                     std::shared_ptr<telemetry::Tracer> tracer = nullptr,
                     std::shared_ptr<NearTier> near = nullptr);

  // The service on store::make_store(config.store_spec(), executors), with the near tier the
  // configuration asks
  // for. Throws net::ConfigError for an unusable TLS file. With one Redis server configured
  // (REDIS_URL or REDIS_HOST, no REDIS_CLUSTER_NODES) it first asks that server whether it is a
  // cluster node (INFO cluster), blocking the caller up to REDIS_CONNECT_TIMEOUT (5 s) when the
  // server does not answer; a default CacheConfig{} (no Redis at all) is the in-process store.
  [[nodiscard]] static std::unique_ptr<PromptCacheService> from_config(
      const CacheConfig& config, const std::vector<boost::asio::any_io_executor>& executors,
      std::shared_ptr<telemetry::Tracer> tracer = nullptr);

  // The operations as children of `parent`, a span of the caller's: each operation's span
  // continues the parent's trace (its parentSpanId is the parent's span id), and a parent-based
  // sampler follows the parent's sampled flag. `parent` comes from the caller's own tracing —
  // telemetry::parse_traceparent of an incoming request's header, or a span this library's
  // Tracer started (ScopedSpan::context()) — and must outlive the view and the operations
  // started through it (a temporary is refused). An invalid context (all-zero ids) gives the
  // service's own behaviour: root spans.
  //   co_await cache.traced(request_span.context()).get_json(key);
  [[nodiscard]] TracedService traced(const telemetry::SpanContext& parent) const noexcept;
  TracedService traced(telemetry::SpanContext&& parent) const = delete;
  // The same for a context that may be absent (nullptr: root spans).
  [[nodiscard]] TracedService traced(const telemetry::SpanContext* parent) const noexcept;

  // Closes the store's connections (an event loop running only the cache then ends). Idempotent.
  void close();
  // A completion handler for co_spawn that closes the service when the work ends, however it
  // ends — so the event loop runs out instead of waiting for ever on the cache's connections
  // after an exception — then hands the work's exception (null when it returned) to `then`:
  //   co_spawn(io, work(cache), cache.closing([](std::exception_ptr e) { … }));
  // Without `then`, the work's exception is rethrown out of io_context::run().
  auto closing() {
    return [this](std::exception_ptr e, auto&&...) {
      close();
      if (e) std::rethrow_exception(e);
    };
  }
  template <class Then>
  auto closing(Then then) {
    return [this, then = std::move(then)](std::exception_ptr e, auto&&...) mutable {
      close();
      then(e);
    };
  }
  // Closes the service (as close()). Safe while its event loops still run: background work —
  // an early refresh — owns the state it uses, not this object; none starts after this, and
  // one under way meets a closed store (its fill is dropped) while its loader, which owns what
  // it captures (see ServiceOptions::early_refresh), runs to its end. Calls of the service's
  // operations must have ended, as with any object.
  ~PromptCacheService();
  PromptCacheService(const PromptCacheService&) = delete;
  PromptCacheService& operator=(const PromptCacheService&) = delete;

  // This client's counters as they stand, without asking the server (for /metrics).
  struct CounterSnapshot {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t errors = 0;
    std::uint64_t corrupt = 0;
    std::uint64_t skipped_reads = 0;
    std::uint64_t dropped_writes = 0;
    std::uint64_t fallback_calls = 0;
    std::uint64_t negative_hits = 0;  // "not found" answered from the marker
    std::uint64_t coalesced = 0;      // misses that waited for another caller's load
    std::uint64_t stale_served = 0;   // the loader failed; a stale value was served
    std::uint64_t early_refreshes = 0;
    std::uint64_t lease_waits = 0;  // misses that found another process loading
    std::uint64_t near_hits = 0;    // hits answered by the near tier (also in `hits`)
  };
  [[nodiscard]] CounterSnapshot counters() const noexcept;

  [[nodiscard]] store::Store& store() noexcept;
  // "redis" (one server or a cluster) or "local" (the in-process store).
  [[nodiscard]] std::string_view tier() const noexcept;
  [[nodiscard]] const CircuitBreaker& breaker() const noexcept;

 private:
  PromptCacheService(std::shared_ptr<ServiceCore> core, std::shared_ptr<NearTier> near);

  std::shared_ptr<ServiceCore> owner_;    // shared with the service's background work
  std::shared_ptr<NearTier> near_owner_;  // the near tier (ServiceOperations::near_)
};

}  // namespace promptcache::cache
