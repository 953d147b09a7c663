// The service's state and operations (PromptCacheService is its handle; the operations are
// documented there). Owned by a shared_ptr: background work — an early refresh — holds one, so
// the handle may go while an event loop still runs it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "cache/load_policy.hpp"
#include "promptcache/cache/circuit_breaker.hpp"
#include "promptcache/cache/config.hpp"
#include "promptcache/cache/envelope.hpp"
#include "promptcache/cache/near_tier.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/cache/ttl.hpp"
#include "promptcache/store/store.hpp"
#include "promptcache/telemetry/latency.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::cache {

class SingleFlight;

class ServiceCore : public std::enable_shared_from_this<ServiceCore> {
 public:
  using Json = PromptCacheService::Json;
  using Fallback = PromptCacheService::Fallback;
  using Loader = PromptCacheService::Loader;
  using Versioned = PromptCacheService::Versioned;
  using VersionedLoader = PromptCacheService::VersionedLoader;
  using Lookup = PromptCacheService::Lookup;
  using LoaderSource = PromptCacheService::LoaderSource;
  using VersionedEntry = PromptCacheService::VersionedEntry;
  using CounterSnapshot = PromptCacheService::CounterSnapshot;
  // The span an operation's span is a child of (nullptr: a root, a trace of its own).
  using Parent = const telemetry::SpanContext*;

  ServiceCore(std::shared_ptr<store::Store> store, ServiceOptions options,
              std::shared_ptr<telemetry::Tracer> tracer, std::shared_ptr<NearTier> near);
  ~ServiceCore();
  ServiceCore(const ServiceCore&) = delete;
  ServiceCore& operator=(const ServiceCore&) = delete;

  boost::asio::awaitable<std::optional<Json>> get_analysis_result(std::string_view prompt_hash,
                                                                  std::string_view user_id,
                                                                  std::string_view analysis_type,
                                                                  Parent parent);
  boost::asio::awaitable<void> set_analysis_result(std::string_view prompt_hash,
                                                   std::string_view user_id,
                                                   std::string_view analysis_type,
                                                   const Json& value, Ttl ttl, Parent parent);
  boost::asio::awaitable<void> add_analysis_result(std::string_view prompt_hash,
                                                   std::string_view user_id,
                                                   std::string_view analysis_type,
                                                   const Json& value, Ttl ttl, Parent parent);
  boost::asio::awaitable<std::optional<std::string>> get_analysis_result_json(
      std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
      Parent parent);
  boost::asio::awaitable<NearValuePtr> get_analysis_result_shared(std::string_view prompt_hash,
                                                                  std::string_view user_id,
                                                                  std::string_view analysis_type,
                                                                  Parent parent);
  boost::asio::awaitable<std::optional<Json>> get(std::string_view key, Parent parent);
  [[nodiscard]] NearValuePtr peek(std::string_view key) const;
  boost::asio::awaitable<NearValuePtr> get_shared(std::string_view key, Parent parent);
  boost::asio::awaitable<std::optional<std::string>> get_json(std::string_view key, Parent parent);
  boost::asio::awaitable<void> set(std::string_view key, const Json& value, Ttl ttl, Parent parent);
  boost::asio::awaitable<void> set_json(std::string_view key, std::string_view json_text, Ttl ttl,
                                        Parent parent);
  boost::asio::awaitable<bool> delete_key(std::string_view key, Parent parent);
  boost::asio::awaitable<std::vector<std::optional<Json>>> get_multiple(
      const std::vector<std::string>& keys, Parent parent);
  boost::asio::awaitable<void> set_multiple(
      const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl, Parent parent);
  boost::asio::awaitable<void> set_multiple_json(
      const std::vector<std::pair<std::string, std::string>>& entries, Ttl ttl, Parent parent);
  boost::asio::awaitable<bool> set_versioned(std::string_view key, std::string_view json_text,
                                             std::uint64_t version, Ttl ttl,
                                             std::chrono::milliseconds budget, Parent parent);
  boost::asio::awaitable<bool> delete_versioned(std::string_view key, std::uint64_t version,
                                                std::chrono::milliseconds budget, Parent parent);
  boost::asio::awaitable<Lookup> get_or_load_versioned(std::string_view key, LoaderSource loader,
                                                       Ttl ttl, std::chrono::milliseconds budget,
                                                       Parent parent);
  boost::asio::awaitable<void> set_multiple_versioned(const std::vector<VersionedEntry>& entries,
                                                      Ttl ttl, Parent parent);
  boost::asio::awaitable<Json> get_with_fallback(std::string_view key, const Fallback& fallback,
                                                 Ttl ttl, Parent parent);
  boost::asio::awaitable<std::optional<Json>> get_or_load(std::string_view key,
                                                          const Loader& loader, Ttl ttl,
                                                          Parent parent);
  boost::asio::awaitable<Json> get_analysis_with_fallback(std::string_view prompt_hash,
                                                          std::string_view user_id,
                                                          std::string_view analysis_type,
                                                          const Fallback& fallback, Ttl ttl,
                                                          Parent parent);
  boost::asio::awaitable<std::optional<Json>> get_or_load_analysis(std::string_view prompt_hash,
                                                                   std::string_view user_id,
                                                                   std::string_view analysis_type,
                                                                   const Loader& loader, Ttl ttl,
                                                                   Parent parent);
  boost::asio::awaitable<std::uint64_t> invalidate_user_analysis_cache(
      std::string_view user_id, const store::Progress& progress, Parent parent);
  boost::asio::awaitable<std::uint64_t> invalidate_pattern(std::string_view pattern,
                                                           const store::Progress& progress,
                                                           Parent parent);
  boost::asio::awaitable<boost::json::object> get_cache_stats();
  boost::asio::awaitable<bool> reachable(std::chrono::milliseconds budget);

  // Closes the store; no background work starts after it. Idempotent.
  void close();
  [[nodiscard]] CounterSnapshot counters() const noexcept;
  [[nodiscard]] store::Store& store() noexcept { return *store_; }
  [[nodiscard]] const CircuitBreaker& breaker() const noexcept { return breaker_; }

 private:
  enum Op {
    op_get,
    op_set,
    op_delete,
    op_get_multiple,
    op_set_multiple,
    op_invalidate,
    op_fallback,
    op_count
  };

  // An operation's names: in the statistics and log lines, its span's, the start of its
  // failure's log line and message; `severe`: logged as an error (else a warning).
  struct OpText {
    const char* name;
    const char* span;
    const char* failure;
    bool severe;
  };
  static const std::array<OpText, op_count> op_text;

  // What an operation is about: in its span (cache.<subject>) and its failure's log line and
  // message.
  enum class Subject : std::uint8_t { key, keys, entries, pattern, user };
  // One operation's span, breaker admission, latency, failure note, log line and CacheError
  // (service_operation.hpp).
  class Operation;

  struct Counters {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> corrupt{0};
    std::atomic<std::uint64_t> skipped_reads{0};   // breaker open
    std::atomic<std::uint64_t> dropped_writes{0};  // breaker open
    std::atomic<std::uint64_t> fallback_calls{0};
    std::atomic<std::uint64_t> negative_hits{0};
    std::atomic<std::uint64_t> coalesced{0};
    std::atomic<std::uint64_t> stale_served{0};
    std::atomic<std::uint64_t> early_refreshes{0};
    std::atomic<std::uint64_t> lease_waits{0};
    std::atomic<std::uint64_t> near_hits{0};
  };

  // Every counter once: its name in get_cache_stats, where it lives, where counters() copies it.
  struct CounterField {
    const char* name;
    std::atomic<std::uint64_t> Counters::*live;
    std::uint64_t CounterSnapshot::*copy;
  };
  static const std::array<CounterField, 13> counter_fields;

  // What a stored value turned out to be.
  enum class Kind : std::uint8_t { miss, value, absent, stale };
  template <class T>
  struct Found {
    Kind kind = Kind::miss;
    std::optional<T> value;  // value and stale
    EnvelopeMeta meta;
    bool failed = false;  // the store failed the read (or the breaker skipped it)
  };

  // One write of the service: everything write() needs besides the key.
  struct Put {
    std::string_view json_text;   // the value's text, unless `value` is given
    const Json* value = nullptr;  // serialized only once the write goes ahead
    Ttl ttl;
    bool absent = false;  // the "not found" marker (or a tombstone) instead of a value
    store::Deadline deadline{};
    Parent parent = nullptr;  // the write's span's
    // The store's part that the caller decides: mode, version, not_after_ms, lease and token.
    // write() fills in the key, the encoded value, the stored TTL and the index.
    store::Write to_store;
  };
  // The write; whether it took effect. Throws CacheError.
  boost::asio::awaitable<bool> write(std::string_view key, const Put& put);
  // set_multiple_json and set_multiple_versioned: `fields(entry)` gives its key, JSON text and
  // version (0: unversioned).
  template <class Entries, class Fields>
  boost::asio::awaitable<void> write_batch(const Entries& entries, Ttl ttl, Fields fields,
                                           Parent parent);
  // A stored value through `parse` (JSON text to T; nullopt: not JSON); miss when corrupt.
  // `text`, if given, receives the JSON text of a value (for the near tier).
  template <class T, class Parse>
  [[nodiscard]] Found<T> unwrap(std::string_view stored, Parse parse,
                                std::string* text = nullptr) const;
  // The store's value handed to unwrap() where it lies (read_value's visitor).
  template <class T, class Parse>
  struct Unwrapping;
  // The near tier's part of a write: its copy of `key` goes (before and after the write).
  void forget(std::string_view key);
  // The store's value of `key` now as JSON text, unwrapped: no near tier, counter or span (the
  // re-reads of a load: the leader's second look, a lease waiter's poll). A store error reads
  // as a miss.
  boost::asio::awaitable<Found<std::string>> read_stored(std::string_view key,
                                                         std::chrono::milliseconds budget);
  // What read_value returns: all it found (Whole), or the value alone (ValueOnly, as the plain
  // reads return it: those then need no coroutine of their own, one frame less per read).
  template <class T>
  struct Whole {
    using type = Found<T>;
    static type from(Found<T>&& found) { return std::move(found); }
  };
  template <class T>
  struct ValueOnly {
    using type = std::optional<T>;
    static type from(Found<T>&& found) {
      if (found.kind != Kind::value) return std::nullopt;
      return std::move(found.value);
    }
  };
  // The value of `key` through `parse`, counted and traced; a corrupt value is discarded.
  // `Key` is a string_view, or a std::string the read owns (a key its caller built).
  template <class T, template <class> class Shape = Whole, class Key = std::string_view,
            class Parse>
  boost::asio::awaitable<typename Shape<T>::type> read_value(Key key, Parse parse,
                                                             std::chrono::milliseconds budget,
                                                             Parent parent);
  // The loads' own loader: the source's item as text, at its version (0: unversioned).
  using TextLoader = VersionedLoader;
  // What load_through found: the value (nullopt: "not found") and whether the cache had it.
  template <class T>
  struct Loaded {
    std::optional<T> value;
    bool hit = false;
  };
  // How a load goes: `budget` for each store call (0: the client's timeout); `use_store`
  // false once the cache failed the read (a load then neither takes a lease nor fills);
  // `parent`: the fill's span's (the load's span; none for an early refresh, which outlives
  // it).
  struct LoadPlan {
    Ttl ttl;
    std::chrono::milliseconds budget{0};
    bool use_store = true;
    Parent parent = nullptr;
  };
  // get_or_load, get_with_fallback (`absent_is_miss`) and get_or_load_versioned, read as T
  // through `parse`. `make_loader()` gives the TextLoader, called only when one is needed (a
  // miss, an early refresh): a hit builds none.
  template <class T, class Parse, class MakeLoader>
  boost::asio::awaitable<Loaded<T>> load_through(std::string_view key, Parse parse,
                                                 const MakeLoader& make_loader, Ttl ttl,
                                                 bool absent_is_miss,
                                                 std::chrono::milliseconds budget, Parent parent);
  // An early refresh of `key` in the background, holding `self` to its end.
  static boost::asio::awaitable<void> refresh(std::shared_ptr<ServiceCore> self, std::string key,
                                              TextLoader loader, LoadPlan plan);
  // The single-flight leader's or waiter's part of a miss: the loaded text (nullopt: "not
  // found"); `stale`: served if the loader fails.
  boost::asio::awaitable<std::optional<std::string>> load_once(std::string key, TextLoader loader,
                                                               LoadPlan plan,
                                                               std::optional<std::string> stale,
                                                               bool refresh);
  // The loader's call, under the cross-process lease when configured; the result stored.
  boost::asio::awaitable<std::optional<std::string>> load_and_store(const std::string& key,
                                                                    const TextLoader& loader,
                                                                    const LoadPlan& plan);
  // Stores a loader's result (a fill): the value, or the "not found" marker, at its version,
  // fenced by `lease`/`token` when given. Whether the store was reached (the write ran there,
  // taking effect or not). Never throws.
  boost::asio::awaitable<bool> store_loaded(const std::string& key, const Versioned& loaded,
                                            const LoadPlan& plan,
                                            std::chrono::system_clock::time_point read_at,
                                            std::string_view lease, std::string_view token);
  // Whether a value read now should be refreshed early (probabilistic, see ServiceOptions).
  [[nodiscard]] bool due_for_refresh(const EnvelopeMeta& meta) const;
  // Deletes, logs and counts a corrupt or foreign value.
  boost::asio::awaitable<void> discard(std::string_view key, std::size_t bytes);
  // JSON text (or the "not found" marker) in its envelope, soft-expiring after `ttl`.
  [[nodiscard]] std::string encode(std::string_view json_text, std::chrono::seconds ttl,
                                   bool absent = false, std::uint64_t version = 0) const;
  // The deadline a budget gives a call starting now (none for 0).
  [[nodiscard]] static store::Deadline deadline_in(std::chrono::milliseconds budget);
  // How long the store keeps an entry of `ttl`: the stale grace on top (0 stays 0).
  [[nodiscard]] std::chrono::seconds stored_ttl(std::chrono::seconds ttl) const;
  [[nodiscard]] std::chrono::seconds effective_ttl(Ttl ttl) const;
  // `ttl` with the configured jitter applied (0, no expiry, stays 0).
  [[nodiscard]] std::chrono::seconds jittered(std::chrono::seconds ttl) const;
  // Feeds the breaker; true when `ec` is an error.
  bool note_result(const boost::system::error_code& ec);
  template <class T>
  bool note_result(const boost::system::result<T>& r) {
    return note_result(r.has_error() ? r.error() : boost::system::error_code{});
  }
  void record(Op op, std::chrono::steady_clock::time_point start);
  // A call to Redis as a CLIENT span named by its command, a child of `parent` — only when
  // ServiceOptions::redis_command_spans asks, the store is Redis and there is a parent; else
  // an empty span (no cost).
  [[nodiscard]] telemetry::ScopedSpan command_span(std::string_view command, Parent parent) const;
  // The command a write sends: SET, or the write script (versioned, indexed, fenced).
  [[nodiscard]] static std::string_view write_command(const store::Write& w) noexcept;

  std::shared_ptr<store::Store> store_;
  ServiceOptions options_;
  LoadPolicy policy_;  // the part of options_ that load coordination decides with
  std::shared_ptr<telemetry::Tracer> tracer_;
  CircuitBreaker breaker_;
  Counters counters_;
  std::array<telemetry::LatencyHistogram, op_count> latency_;
  std::shared_ptr<SingleFlight> flights_;
  std::shared_ptr<NearTier> near_;
  std::atomic<bool> closed_{false};  // close(): no early refresh starts
};

}  // namespace promptcache::cache
