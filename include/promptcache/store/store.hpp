// Where cached bytes live: one interface, two stores — Redis (remote) and an in-process map
// (local). The service above speaks only to this interface; keys and values arrive already
// built and encoded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace promptcache::store {

template <class T>
using Result = boost::system::result<T>;

// Result<bool> from a bool or an error (the plain constructors are ambiguous for bool).
[[nodiscard]] inline Result<bool> answer(bool value) {
  return Result<bool>(boost::system::in_place_value, value);
}
[[nodiscard]] inline Result<bool> failure(boost::system::error_code ec) {
  return Result<bool>(boost::system::in_place_error, ec);
}

// Told how many keys a long deletion has removed so far (for a progress display).
using Progress = std::function<void(std::uint64_t deleted)>;

// Whether a set replaces what is there or only fills an empty place (SET NX): a fill from the
// database must never overwrite a newer value a writer stored meanwhile.
enum class SetMode : std::uint8_t { always, if_absent };

// When a call gives up: a command still unanswered then fails with error::timeout (and counts
// toward the service's breaker). The default, no time point, is the client's command timeout
// (REDIS_SOCKET_TIMEOUT).
using Deadline = std::chrono::steady_clock::time_point;

struct Entry {
  Entry() = default;
  Entry(std::string k, std::string v, std::chrono::seconds t, std::string i = {},
        std::uint64_t ver = 0)
      : key(std::move(k)), value(std::move(v)), ttl(t), index(std::move(i)), version(ver) {}

  std::string key;
  std::string value;
  std::chrono::seconds ttl{0};  // 0: no expiry
  std::string index;            // see Store::set; empty: none
  std::uint64_t version = 0;    // see Write::version; 0: unversioned (always written)
};

// One write, as Store::write takes it.
//
// Versions: a write with a version takes effect only if the entry held is older — its version,
// which the store reads from the value's envelope header (stored_version), is lower; an entry
// without one counts as 0. That makes writes of one item commute: whatever order they arrive
// in, the newest stays. `mode` is moot for them (an equal or newer entry is always kept).
struct Write {
  std::string_view key;
  std::string_view value;  // an envelope (cache/envelope.hpp) for versioned writes
  std::chrono::seconds ttl{0};
  SetMode mode = SetMode::always;
  std::string_view index;  // see Store::set; empty: none
  std::uint64_t version = 0;
  // Unix milliseconds by the store's clock past which the write is dropped (0: none). A fill
  // that read the source of truth long ago must not land after the tombstone that would have
  // stopped it has expired.
  std::int64_t not_after_ms = 0;
  // A fenced write (a fill under a lease): applied only while `lease` holds `token`, and the
  // lease is released with it. A Redis restart loses the lease, so a fill that read the source
  // before a restart cannot land after it. `lease` must share `key`'s cluster slot.
  std::string_view lease;
  std::string_view token;
};

// The version a stored value carries: the u64 at bytes 22–29 of a format-2 envelope (see
// cache/envelope.hpp; the Redis scripts read the same bytes); 0 for anything else.
[[nodiscard]] std::uint64_t stored_version(std::string_view stored) noexcept;

// What the server says about itself (INFO for Redis; the map's own counters locally).
struct ServerStats {
  std::uint64_t keyspace_hits = 0;
  std::uint64_t keyspace_misses = 0;
  std::uint64_t connected_clients = 0;
  std::uint64_t total_commands_processed = 0;
  std::uint64_t used_memory = 0;
  std::string used_memory_human;
  std::uint64_t keys = 0;
  // A cluster's figures above are the sum over its masters; here each master's own, with its
  // address in `node`.
  std::string node;
  std::vector<ServerStats> nodes;
};

// Receives a stored value's bytes where the store holds them (a client's read buffer): valid
// only during the call, so whatever is kept is copied or decoded there. Must not throw.
class ValueVisitor {
 public:
  virtual void on_value(std::string_view bytes) noexcept = 0;

 protected:
  ~ValueVisitor() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // "redis" or "local": the cache.tier of spans and metrics.
  [[nodiscard]] virtual std::string_view tier() const noexcept = 0;

  [[nodiscard]] virtual boost::asio::awaitable<Result<std::optional<std::string>>> get(
      std::string_view key, Deadline deadline = {}) = 0;
  // get(), the value handed to `visitor` instead of copied out (not called: no value). The
  // default calls get(); the Redis store hands over the bytes as they lie in its read buffer
  // (one copy and one allocation less per hit).
  [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> get_into(
      std::string_view key, Deadline deadline, ValueVisitor& visitor);
  // One value (or nullopt) per key, in order.
  [[nodiscard]] virtual boost::asio::awaitable<Result<std::vector<std::optional<std::string>>>>
  get_multiple(const std::vector<std::string>& keys) = 0;
  // Whether the write took effect: a versioned one finding a newer entry, a fenced one that
  // lost its lease, an if_absent one finding the key there, or one past its not_after_ms is
  // success without effect, not an error. With an `index`, the key is also recorded there,
  // atomically with the write (on Redis: one script; the index key must share the key's
  // cluster slot), so that delete_indexed finds it.
  [[nodiscard]] virtual boost::asio::awaitable<Result<bool>> write(const Write& w,
                                                                   Deadline deadline = {}) = 0;
  // write() of a plain entry; the error, if any.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> set(
      std::string_view key, std::string_view value, std::chrono::seconds ttl,
      SetMode mode = SetMode::always, std::string_view index = {});
  // Writes every entry in as few round trips as the store allows; the number that failed.
  [[nodiscard]] virtual boost::asio::awaitable<Result<std::size_t>> set_multiple(
      const std::vector<Entry>& entries) = 0;
  // How many of `keys` existed.
  [[nodiscard]] virtual boost::asio::awaitable<Result<std::uint64_t>> del(
      const std::vector<std::string>& keys) = 0;
  // Deletes every key matching a Redis glob pattern, in batches; how many were deleted.
  // `progress`, if set, hears the running count after each batch.
  [[nodiscard]] virtual boost::asio::awaitable<Result<std::uint64_t>> delete_matching(
      std::string_view pattern, const Progress& progress = {}) = 0;
  // Deletes every live key recorded in `index` and the index itself; how many keys were
  // deleted. Costs O(keys in that index), whatever the size of the keyspace.
  [[nodiscard]] virtual boost::asio::awaitable<Result<std::uint64_t>> delete_indexed(
      std::string_view index, const Progress& progress = {}) = 0;
  // A lease: `key` set to `token` for `ttl` unless present (SET NX PX); whether this caller
  // got it. Another process holding it makes it false; its expiry frees the key.
  [[nodiscard]] virtual boost::asio::awaitable<Result<bool>> acquire_lease(
      std::string_view key, std::string_view token, std::chrono::milliseconds ttl,
      Deadline deadline = {}) = 0;
  // Deletes `key` only if it still holds `token` (compare-and-delete): a lease that expired
  // and was taken by another process is left to it. Whether it was deleted.
  [[nodiscard]] virtual boost::asio::awaitable<Result<bool>> release_lease(
      std::string_view key, std::string_view token, Deadline deadline = {}) = 0;
  [[nodiscard]] virtual boost::asio::awaitable<Result<ServerStats>> server_stats() = 0;
  // Connects now rather than at the first command (a cluster loads its slot map): for a tool
  // that must say at once whether the cache can be reached. The error; nothing to do for the
  // in-process store.
  [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> connect();
  // The last connection failure in words, for that tool's one line (empty when none).
  [[nodiscard]] virtual std::string last_error() const { return {}; }
  // Releases connections; calls after it fail. The in-process store has nothing to close.
  virtual void close() {}
};

// Redis glob matching (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as SCAN MATCH does it.
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace promptcache::store
