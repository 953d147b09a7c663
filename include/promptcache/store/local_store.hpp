// The in-process store: the embedded default when REDIS_URL is unset. A map with TTLs,
// bounded by entries and by bytes (least recently used out first). Thread-safe: one mutex;
// every operation is O(1) but delete_matching, which walks the map, and delete_indexed,
// which costs O(keys of that index).
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "promptcache/store/options.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {

class LocalStore final : public Store {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = Clock::time_point (*)();

  explicit LocalStore(LocalStoreOptions options = {}, Now now = &Clock::now);

  [[nodiscard]] std::string_view tier() const noexcept override { return "local"; }

  boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string_view key,
                                                                 Deadline deadline = {}) override;
  boost::asio::awaitable<Result<std::vector<std::optional<std::string>>>> get_multiple(
      const std::vector<std::string>& keys) override;
  boost::asio::awaitable<Result<bool>> write(const Write& w, Deadline deadline = {}) override;
  boost::asio::awaitable<Result<std::size_t>> set_multiple(
      const std::vector<Entry>& entries) override;
  boost::asio::awaitable<Result<std::uint64_t>> del(const std::vector<std::string>& keys) override;
  boost::asio::awaitable<Result<std::uint64_t>> delete_matching(
      std::string_view pattern, const Progress& progress = {}) override;
  boost::asio::awaitable<Result<std::uint64_t>> delete_indexed(
      std::string_view index, const Progress& progress = {}) override;
  boost::asio::awaitable<Result<bool>> acquire_lease(std::string_view key, std::string_view token,
                                                     std::chrono::milliseconds ttl,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<bool>> release_lease(std::string_view key, std::string_view token,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<ServerStats>> server_stats() override;

  // Synchronous forms of the above, for callers without coroutines.
  [[nodiscard]] std::optional<std::string> get_now(std::string_view key);
  void set_now(std::string_view key, std::string_view value, std::chrono::seconds ttl);
  [[nodiscard]] bool del_now(std::string_view key);
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::size_t bytes() const;

 private:
  struct Node {
    std::string key;
    std::string value;
    Clock::time_point expires;  // max(): never
    std::string index;          // the index that lists this key; empty: none
  };
  using Lru = std::list<Node>;  // front: most recently used

  // All with mutex_ held.
  Lru::iterator find_live(std::string_view key, Clock::time_point now);
  void erase(Lru::iterator it);
  void put(std::string_view key, std::string_view value, std::chrono::seconds ttl,
           Clock::time_point now, std::string_view index = {});

  LocalStoreOptions options_;
  Now now_;
  mutable std::mutex mutex_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;  // views into Node::key
  // index name -> the keys it lists. A key leaves its index when it leaves the map (deleted,
  // evicted, expired), so indexes never outgrow the map.
  std::unordered_map<std::string, std::unordered_set<std::string>> indexes_;
  struct Lease {
    std::string token;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Lease> leases_;  // apart from the values: never evicted
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t commands_ = 0;
};

}  // namespace promptcache::store
