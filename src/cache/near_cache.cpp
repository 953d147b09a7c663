#include "promptcache/cache/near_cache.hpp"

#include "cache/near/frequency_sketch.hpp"
#include "cache/near/hash.hpp"
#include "cache/near/intrusive_list.hpp"
#include "cache/near/spin_lock.hpp"

#include <time.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace promptcache::cache {

namespace {

using near::FrequencySketch;
using near::hash_key;
using near::SpinGuard;
using near::SpinLock;
using Clock = NearCache::Clock;

constexpr std::size_t max_shards = std::size_t{1} << 16;
constexpr std::size_t min_shard_bytes = std::size_t{16} * 1024;
// Beyond this many entries a shard's sketch (8 bytes per entry) stops growing.
constexpr std::size_t max_sketched = std::size_t{1} << 24;

// The map's key carries its hash: lookups hash once (the shard is chosen from the same hash),
// and rehashing or erasing never hashes a key again.
struct StoredKey {
  std::string text;
  std::size_t hash;
};
struct KeyView {
  std::string_view text;
  std::size_t hash;
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(const StoredKey& k) const noexcept { return k.hash; }
  std::size_t operator()(const KeyView& k) const noexcept { return k.hash; }
};
struct KeyEqual {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.hash == b.hash && std::string_view(a.text) == std::string_view(b.text);
  }
};

enum class Region : std::uint8_t { placeholder, window, probation, protected_segment };

struct Node {
  Node* prev = nullptr;
  Node* next = nullptr;
  const StoredKey* key = nullptr;  // the map's key of this node (map nodes never move)
  NearValuePtr value;              // null in a placeholder
  Clock::time_point expires_at{};
  std::uint64_t ticket = 0;  // of a placeholder
  std::size_t bytes = 0;
  Region region = Region::placeholder;
};

// What entry_overhead stands for: the map node (its link, key and Node) and its bucket, the
// value's make_shared block (counts, vtable pointer, NearValue), malloc's header on each of the
// three allocations. Key and text characters are counted apart.
static_assert(2 * sizeof(void*) + sizeof(std::pair<const StoredKey, Node>) + 2 * sizeof(int) +
                  sizeof(void*) + sizeof(NearValue) + 3 * 16 <=
              NearCache::entry_overhead);

using List = near::IntrusiveList<Node>;

// Is a region over its share of the entries or of the bytes? One entry always fits.
bool over(const List& list, std::size_t max_entries, std::size_t max_bytes) noexcept {
  return list.size() > max_entries || (list.size() > 1 && list.bytes() > max_bytes);
}

}  // namespace

// A shard of the cache: every member below its lock is guarded by it (the annotations let
// clang prove it; see thread_annotations.hpp).
struct alignas(64) NearCache::Shard {
  SpinLock mutex;
  std::unordered_map<StoredKey, Node, KeyHash, KeyEqual> map PC_GUARDED_BY(mutex);
  List window PC_GUARDED_BY(mutex);
  List probation PC_GUARDED_BY(mutex);
  List protected_segment PC_GUARDED_BY(mutex);
  List placeholders PC_GUARDED_BY(mutex);  // oldest first
  FrequencySketch sketch PC_GUARDED_BY(mutex);

  std::size_t entry_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t byte_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t window_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t window_byte_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t protected_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t protected_byte_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t placeholder_cap PC_GUARDED_BY(mutex) = 0;
  std::size_t placeholder_byte_cap PC_GUARDED_BY(mutex) = 0;

  std::size_t entries PC_GUARDED_BY(mutex) = 0;  // in window, probation and protected
  std::size_t bytes PC_GUARDED_BY(mutex) = 0;
  std::uint64_t next_ticket PC_GUARDED_BY(mutex) = 1;

  std::uint64_t hits PC_GUARDED_BY(mutex) = 0;
  std::uint64_t misses PC_GUARDED_BY(mutex) = 0;
  std::uint64_t fills PC_GUARDED_BY(mutex) = 0;
  std::uint64_t rejected PC_GUARDED_BY(mutex) = 0;
  std::uint64_t evictions PC_GUARDED_BY(mutex) = 0;
  std::uint64_t invalidations PC_GUARDED_BY(mutex) = 0;
  std::uint64_t expirations PC_GUARDED_BY(mutex) = 0;
  std::uint64_t placeholders_dropped PC_GUARDED_BY(mutex) = 0;

  void configure(std::size_t max_entries, std::size_t max_bytes) PC_REQUIRES(mutex) {
    entry_cap = max_entries;
    byte_cap = max_bytes;
    window_cap = std::max<std::size_t>(1, max_entries / 100);
    window_byte_cap = max_bytes / 100;
    protected_cap = (max_entries - window_cap) - (max_entries - window_cap) / 5;
    protected_byte_cap = (max_bytes - window_byte_cap) - (max_bytes - window_byte_cap) / 5;
    placeholder_cap = std::max<std::size_t>(16, max_entries / 4);
    placeholder_byte_cap = max_bytes / 4;
    // No more entries fit than the bytes allow. (The buckets grow with the entries: reserving
    // them all up front would spread a cache that is not full over more cache lines.)
    sketch = FrequencySketch(std::min({max_entries, max_bytes / entry_overhead, max_sketched}));
  }

  List& list_of(Region r) noexcept PC_REQUIRES(mutex) {
    switch (r) {
      case Region::window:
        return window;
      case Region::probation:
        return probation;
      case Region::protected_segment:
        return protected_segment;
      case Region::placeholder:
        break;
    }
    return placeholders;
  }

  void move(Node* n, Region to) noexcept PC_REQUIRES(mutex) {
    list_of(n->region).remove(n);
    n->region = to;
    list_of(to).push_back(n);
  }

  // Takes n out of its list and the accounting; it stays in the map.
  void unlink(Node& n) noexcept PC_REQUIRES(mutex) {
    list_of(n.region).remove(&n);
    if (n.region != Region::placeholder) {
      --entries;
      bytes -= n.bytes;
    }
  }

  void erase(Node& n) PC_REQUIRES(mutex) {
    unlink(n);
    map.erase(map.find(KeyView{n.key->text, n.key->hash}));
  }

  // A hit: window entries move to the window's back, probation entries are promoted to
  // protected (whose oldest go back to probation when it is over its share).
  void touch(Node& n) noexcept PC_REQUIRES(mutex) {
    switch (n.region) {
      case Region::window:
        window.move_to_back(&n);
        break;
      case Region::probation:
        move(&n, Region::protected_segment);
        while (over(protected_segment, protected_cap, protected_byte_cap)) {
          move(protected_segment.front(), Region::probation);
        }
        break;
      case Region::protected_segment:
        protected_segment.move_to_back(&n);
        break;
      case Region::placeholder:
        break;
    }
  }

  // The main region's entry to drop next: the oldest in probation (other than `candidate`),
  // else the oldest protected one.
  Node* main_victim(const Node* candidate) const noexcept PC_REQUIRES(mutex) {
    Node* v = probation.front();
    if (v != nullptr && v == candidate) v = v->next;
    return v != nullptr ? v : protected_segment.front();
  }

  void make_placeholder(Node& n, std::size_t weight) PC_REQUIRES(mutex) {
    n.value.reset();
    n.region = Region::placeholder;
    n.ticket = next_ticket++;
    n.bytes = weight;
    placeholders.push_back(&n);
    while (placeholders.front() != &n &&
           over(placeholders, placeholder_cap, placeholder_byte_cap)) {
      erase(*placeholders.front());
      ++placeholders_dropped;
    }
  }

  // Publishes `fresh` (unlinked) in the window and restores the bounds; false when `fresh`
  // itself was refused.
  bool insert(Node& fresh) PC_REQUIRES(mutex) {
    fresh.region = Region::window;
    window.push_back(&fresh);
    ++entries;
    bytes += fresh.bytes;

    // Entries leaving the window go to probation's back, in order: the candidates, from
    // `candidate` to probation's back. Nothing else is pushed there until the loop ends.
    Node* candidate = nullptr;
    while (over(window, window_cap, window_byte_cap)) {
      Node* c = window.front();
      move(c, Region::probation);
      if (candidate == nullptr) candidate = c;
    }

    bool kept = true;
    while (entries > entry_cap || bytes > byte_cap) {
      // Without a candidate (the bytes are over, not the window) the window's oldest competes.
      Node* contender = candidate != nullptr ? candidate : window.front();
      Node* victim = main_victim(contender);
      Node* loser = nullptr;
      if (contender == nullptr || victim == nullptr) {
        loser = contender != nullptr ? contender : victim;  // no contest: the region is alone
      } else {
        // A tie keeps the incumbent: a key read as often as the victim is no better bet.
        const bool admit =
            sketch.frequency(contender->key->hash) > sketch.frequency(victim->key->hash);
        loser = admit ? victim : contender;
        ++(admit ? evictions : rejected);
      }
      if (loser == nullptr) break;  // unreachable: over the bounds means some entry exists
      if (victim == nullptr || contender == nullptr) ++(loser == &fresh ? rejected : evictions);
      // Each candidate competes once; the next one is the node after it (unless it just lost).
      if (candidate != nullptr && contender == candidate) candidate = candidate->next;
      if (candidate == loser) candidate = loser->next;
      if (loser == &fresh) kept = false;
      erase(*loser);
    }
    return kept;
  }

  void clear() noexcept PC_REQUIRES(mutex) {
    map.clear();
    window.clear();
    probation.clear();
    protected_segment.clear();
    placeholders.clear();
    entries = bytes = 0;
  }
};

namespace {

std::atomic<std::uint64_t> next_cache_id{1};

// A thread's front table: the values it found lately, for the cache `owner`.
struct FrontSlot {
  std::uint64_t hash = 0;
  std::uint64_t epoch = 0;  // 0: empty
  NearCache::Clock::time_point expires{};
  NearValuePtr value;
  std::string key;
};
struct FrontTable {
  static constexpr std::size_t size = 1024;
  std::uint64_t owner = 0;
  std::uint32_t tick = 0;
  std::size_t stripe = 0;
  std::array<FrontSlot, size> slots;
};

FrontTable& front_table(std::uint64_t owner, std::size_t stripes) {
  thread_local FrontTable table = [stripes] {
    FrontTable t;
    static std::atomic<std::size_t> threads{0};
    t.stripe = threads.fetch_add(1, std::memory_order_relaxed) % stripes;
    return t;
  }();
  if (table.owner != owner) {  // another cache's slots: start over for this one
    for (auto& slot : table.slots) slot = FrontSlot{};
    table.owner = owner;
  }
  return table;
}

}  // namespace

NearCache::NearCache(NearCacheOptions options)
    : options_(options),
      id_(next_cache_id.fetch_add(1, std::memory_order_relaxed)),
      front_hits_(std::make_unique<Stripe[]>(stripes)) {
  enabled_ = options_.max_entries > 0 && options_.max_bytes > 0;
  std::size_t shards = std::bit_ceil(std::clamp<std::size_t>(options_.shards, 1, max_shards));
  while (shards > 1 &&
         (shards > options_.max_entries || options_.max_bytes / shards < min_shard_bytes)) {
    shards /= 2;
  }
  shard_mask_ = shards - 1;
  shards_ = std::make_unique<Shard[]>(shards);
  if (!enabled_) return;
  for (std::size_t i = 0; i < shards; ++i) {
    SpinGuard lock(shards_[i].mutex);  // uncontended: for the analysis, which sees no "new"
    shards_[i].configure(options_.max_entries / shards, options_.max_bytes / shards);
  }
}

NearCache::~NearCache() = default;

NearCache::Shard& NearCache::shard_for(std::size_t hash) const noexcept {
  // The map's buckets use the hash modulo a prime; the shard, the high bits of a product.
  return shards_[((hash * 0x9e3779b97f4a7c15) >> 32) & shard_mask_];
}

NearCache::Clock::time_point NearCache::coarse_now() noexcept {
  // steady_clock is CLOCK_MONOTONIC; the coarse variant counts from the same origin.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
      std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

NearValuePtr NearCache::find(std::string_view key, Clock::time_point now) {
  NearValuePtr owned;
  const NearValuePtr* found = lookup(key, now, owned);
  return found != nullptr ? *found : nullptr;
}

const NearValuePtr* NearCache::lookup(std::string_view key, Clock::time_point now,
                                      NearValuePtr& owned) {
  if (!enabled_) return nullptr;
  const std::size_t h = hash_key(key);
  // Read before the lookup: a slot filled from it is void once anything is invalidated after.
  const std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
  FrontTable& front = front_table(id_, stripes);
  FrontSlot& slot = front.slots[h % FrontTable::size];
  if (slot.epoch == epoch && slot.hash == h && now < slot.expires && slot.key == key &&
      (++front.tick & 63) != 0) {
    front_hits_[front.stripe].hits.fetch_add(1, std::memory_order_relaxed);
    return &slot.value;
  }
  Shard& s = shard_for(h);
  SpinGuard lock(s.mutex);
  s.sketch.record(h);
  const auto it = s.map.find(KeyView{key, h});
  if (it == s.map.end() || it->second.region == Region::placeholder) {
    ++s.misses;
    return nullptr;
  }
  Node& n = it->second;
  if (now >= n.expires_at) {
    s.erase(n);
    ++s.expirations;
    ++s.misses;
    return nullptr;
  }
  s.touch(n);
  ++s.hits;
  if (slot.hash != h) {
    // A key's first hit here only claims the slot: one-off keys (a scan, a uniform spread over
    // more keys than slots) do not churn slots, whose old values would cost a cache miss each.
    slot.hash = h;
    slot.epoch = 0;
  } else {
    slot.epoch = epoch;
    slot.expires = n.expires_at;
    if (slot.value != n.value) {  // a sampled hit of the same value moves no reference count
      slot.value = n.value;
      slot.key.assign(key);
    }
  }
  owned = n.value;
  return &owned;
}

std::uint64_t NearCache::reserve(std::string_view key, Clock::time_point now) {
  if (!enabled_) return 0;
  const std::size_t h = hash_key(key);
  Shard& s = shard_for(h);
  const std::size_t weight = key.size() + entry_overhead;
  SpinGuard lock(s.mutex);
  if (weight > s.placeholder_byte_cap) return 0;
  Node* n = nullptr;
  if (const auto it = s.map.find(KeyView{key, h}); it != s.map.end()) {
    n = &it->second;
    if (n->region != Region::placeholder) {
      if (now < n->expires_at) return 0;
      ++s.expirations;
    }
    s.unlink(*n);
  } else {
    const auto pos = s.map.try_emplace(StoredKey{std::string(key), h}).first;
    n = &pos->second;
    n->key = &pos->first;
  }
  s.make_placeholder(*n, weight);
  return n->ticket;
}

bool NearCache::fill(std::string_view key, std::uint64_t ticket, NearValuePtr value,
                     Clock::time_point expires_at, Clock::time_point now) {
  if (!enabled_ || ticket == 0) return false;
  const std::size_t h = hash_key(key);
  Shard& s = shard_for(h);
  SpinGuard lock(s.mutex);
  const auto it = s.map.find(KeyView{key, h});
  if (it == s.map.end()) return false;
  Node& n = it->second;
  if (n.region != Region::placeholder || n.ticket != ticket) return false;
  const Clock::time_point until = std::min(expires_at, now + options_.max_ttl);
  if (value == nullptr || until <= now) {
    s.erase(n);
    return false;
  }
  const std::size_t weight = key.size() + value->text.size() + entry_overhead;
  if (weight > s.byte_cap) {
    s.erase(n);
    ++s.rejected;
    return false;
  }
  s.unlink(n);
  n.value = std::move(value);
  n.expires_at = until;
  n.ticket = 0;
  n.bytes = weight;
  if (!s.insert(n)) return false;
  ++s.fills;
  return true;
}

void NearCache::cancel(std::string_view key, std::uint64_t ticket) {
  if (!enabled_ || ticket == 0) return;
  const std::size_t h = hash_key(key);
  Shard& s = shard_for(h);
  SpinGuard lock(s.mutex);
  const auto it = s.map.find(KeyView{key, h});
  if (it == s.map.end()) return;
  if (it->second.region == Region::placeholder && it->second.ticket == ticket) s.erase(it->second);
}

void NearCache::invalidate(std::string_view key) {
  if (!enabled_) return;
  const std::size_t h = hash_key(key);
  Shard& s = shard_for(h);
  SpinGuard lock(s.mutex);
  const auto it = s.map.find(KeyView{key, h});
  // Even for a key the shards do not hold: a front table may (the shards may have evicted it).
  // Inside the lock, after the removal: a lookup that found the old value started before.
  if (it == s.map.end()) {
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  s.erase(it->second);
  ++s.invalidations;
  epoch_.fetch_add(1, std::memory_order_acq_rel);
}

void NearCache::flush() {
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    SpinGuard lock(shards_[i].mutex);
    shards_[i].clear();
  }
  epoch_.fetch_add(1, std::memory_order_acq_rel);  // every front-table slot with it
  flushes_.fetch_add(1, std::memory_order_relaxed);
}

NearCache::Stats NearCache::stats() const {
  Stats out;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    SpinGuard lock(s.mutex);
    out.hits += s.hits;
    out.misses += s.misses;
    out.fills += s.fills;
    out.rejected += s.rejected;
    out.evictions += s.evictions;
    out.invalidations += s.invalidations;
    out.entries += s.entries;
    out.bytes += s.bytes;
    out.expirations += s.expirations;
    out.placeholders += s.placeholders.size();
    out.placeholder_bytes += s.placeholders.bytes();
    out.placeholders_dropped += s.placeholders_dropped;
  }
  out.flushes = flushes_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < stripes; ++i) {
    out.hits += front_hits_[i].hits.load(std::memory_order_relaxed);
  }
  return out;
}

}  // namespace promptcache::cache
