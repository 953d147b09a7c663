#include "promptcache/store/local_store.hpp"

namespace promptcache::store {

namespace asio = boost::asio;
using boost::system::error_code;

LocalStore::LocalStore(LocalStoreOptions options, Now now) : options_(options), now_(now) {}

LocalStore::Lru::iterator LocalStore::find_live(std::string_view key, Clock::time_point now) {
  auto it = index_.find(key);
  if (it == index_.end()) return lru_.end();
  auto node = it->second;
  if (node->expires <= now) {
    erase(node);
    return lru_.end();
  }
  return node;
}

void LocalStore::erase(Lru::iterator it) {
  bytes_ -= it->key.size() + it->value.size();
  if (!it->index.empty()) {
    if (auto idx = indexes_.find(it->index); idx != indexes_.end()) {
      idx->second.erase(it->key);
      if (idx->second.empty()) indexes_.erase(idx);
    }
  }
  index_.erase(std::string_view(it->key));
  lru_.erase(it);
}

void LocalStore::put(std::string_view key, std::string_view value, std::chrono::seconds ttl,
                     Clock::time_point now, std::string_view index) {
  ++commands_;
  if (auto it = index_.find(key); it != index_.end()) erase(it->second);
  const std::size_t size = key.size() + value.size();
  if (size > options_.max_bytes) return;  // could never fit: stored nowhere, like an eviction
  while (!lru_.empty() &&
         (lru_.size() >= options_.max_entries || bytes_ + size > options_.max_bytes)) {
    erase(std::prev(lru_.end()));
  }
  const auto expires = ttl.count() > 0 ? now + ttl : Clock::time_point::max();
  lru_.push_front(Node{std::string(key), std::string(value), expires, std::string(index)});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
  if (!index.empty()) indexes_[lru_.front().index].emplace(key);
  bytes_ += size;
}

std::optional<std::string> LocalStore::get_now(std::string_view key) {
  std::lock_guard lock(mutex_);
  ++commands_;
  auto it = find_live(key, now_());
  if (it == lru_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it);
  return it->value;
}

void LocalStore::set_now(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
  std::lock_guard lock(mutex_);
  put(key, value, ttl, now_());
}

bool LocalStore::del_now(std::string_view key) {
  std::lock_guard lock(mutex_);
  ++commands_;
  auto it = find_live(key, now_());
  if (it == lru_.end()) return false;
  erase(it);
  return true;
}

std::size_t LocalStore::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

std::size_t LocalStore::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

asio::awaitable<Result<std::optional<std::string>>> LocalStore::get(std::string_view key,
                                                                    Deadline) {
  co_return get_now(key);
}

asio::awaitable<Result<std::vector<std::optional<std::string>>>> LocalStore::get_multiple(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (const auto& k : keys) values.push_back(get_now(k));
  co_return values;
}

asio::awaitable<Result<bool>> LocalStore::write(const Write& w, Deadline) {
  std::lock_guard lock(mutex_);
  ++commands_;
  const auto now = now_();
  // The same checks, in the same order, as the Redis stores' write script.
  if (!w.token.empty()) {
    auto lease = leases_.find(std::string(w.lease));
    if (lease == leases_.end() || lease->second.expires <= now || lease->second.token != w.token) {
      co_return answer(false);
    }
    leases_.erase(lease);
  }
  if (w.not_after_ms > 0) {
    const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    if (wall.count() > w.not_after_ms) co_return answer(false);
  }
  const auto held = find_live(w.key, now);
  if (w.version > 0) {
    if (held != lru_.end() && stored_version(held->value) >= w.version) co_return answer(false);
  } else if (w.mode == SetMode::if_absent && held != lru_.end()) {
    co_return answer(false);
  }
  put(w.key, w.value, w.ttl, now, w.index);
  co_return answer(true);
}

asio::awaitable<Result<std::size_t>> LocalStore::set_multiple(const std::vector<Entry>& entries) {
  std::lock_guard lock(mutex_);
  const auto now = now_();
  for (const auto& e : entries) {
    if (e.version > 0) {
      const auto held = find_live(e.key, now);
      if (held != lru_.end() && stored_version(held->value) >= e.version) continue;
    }
    put(e.key, e.value, e.ttl, now, e.index);
  }
  co_return std::size_t{0};
}

asio::awaitable<Result<std::uint64_t>> LocalStore::del(const std::vector<std::string>& keys) {
  std::uint64_t n = 0;
  for (const auto& k : keys) n += del_now(k) ? 1 : 0;
  co_return n;
}

asio::awaitable<Result<std::uint64_t>> LocalStore::delete_matching(std::string_view pattern,
                                                                   const Progress& progress) {
  std::lock_guard lock(mutex_);
  ++commands_;
  const auto now = now_();
  std::uint64_t n = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->expires <= now) {
      erase(it);
    } else if (glob_match(pattern, it->key)) {
      erase(it);
      ++n;
    }
    it = next;
  }
  if (progress) progress(n);
  co_return n;
}

asio::awaitable<Result<std::uint64_t>> LocalStore::delete_indexed(std::string_view index,
                                                                  const Progress& progress) {
  std::lock_guard lock(mutex_);
  ++commands_;
  auto idx = indexes_.find(std::string(index));
  if (idx == indexes_.end()) co_return std::uint64_t{0};
  // erase() edits the set: walk a copy of its keys.
  const std::vector<std::string> keys(idx->second.begin(), idx->second.end());
  const auto now = now_();
  std::uint64_t n = 0;
  for (const auto& k : keys) {
    auto it = index_.find(std::string_view(k));
    if (it == index_.end()) continue;
    n += it->second->expires > now ? 1 : 0;  // an expired key goes too, uncounted
    erase(it->second);
  }
  if (progress) progress(n);
  co_return n;
}

asio::awaitable<Result<bool>> LocalStore::acquire_lease(std::string_view key,
                                                        std::string_view token,
                                                        std::chrono::milliseconds ttl, Deadline) {
  std::lock_guard lock(mutex_);
  ++commands_;
  const auto now = now_();
  std::erase_if(leases_, [&](const auto& l) { return l.second.expires <= now; });
  const bool got =
      leases_.try_emplace(std::string(key), Lease{std::string(token), now + ttl}).second;
  co_return answer(got);
}

asio::awaitable<Result<bool>> LocalStore::release_lease(std::string_view key,
                                                        std::string_view token, Deadline) {
  std::lock_guard lock(mutex_);
  ++commands_;
  auto it = leases_.find(std::string(key));
  if (it == leases_.end() || it->second.token != token || it->second.expires <= now_()) {
    co_return answer(false);
  }
  leases_.erase(it);
  co_return answer(true);
}

asio::awaitable<Result<ServerStats>> LocalStore::server_stats() {
  std::lock_guard lock(mutex_);
  ServerStats s;
  s.keyspace_hits = hits_;
  s.keyspace_misses = misses_;
  s.connected_clients = 1;
  s.total_commands_processed = commands_;
  s.used_memory = bytes_;
  s.used_memory_human = std::to_string(bytes_ / 1024) + "K";
  s.keys = lru_.size();
  co_return s;
}

}  // namespace promptcache::store
