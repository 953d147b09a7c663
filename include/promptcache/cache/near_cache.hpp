// NearCache: the in-process tier in front of Redis — a bounded, sharded, thread-safe map from
// key to an immutable published value, with W-TinyLFU admission. Sans-IO: time is passed in
// (defaulted to now), and the caller reads Redis; the cache only decides what it keeps.
//
// Coherence protocol. A read-through reserves the key (a placeholder with a ticket) before its
// Redis read is sent, and fills with that ticket after the reply. invalidate(key) and flush()
// remove placeholders as well as values, and a later reserve takes the placeholder over, so a
// fill whose read may predate an invalidation (or a connection drop that lost some) fails: the
// cache never publishes a value older than the last invalidation it was given.
//
// Admission and eviction (W-TinyLFU, as in Caffeine), per shard. A plain LRU loses its whole
// working set to one scan of keys read once; pure LFU keeps yesterday's hot keys forever and
// lets a burst of new ones in too late. So:
//  - new values enter a small admission window LRU (1% of the shard, at least one entry), which
//    absorbs bursts: a key read twice in quick succession hits there;
//  - the window's oldest entry, when it leaves, competes with the main region's victim (the
//    oldest entry of probation, else of protected) and the one the frequency sketch estimates
//    as less often read is dropped (a tie keeps the incumbent: a scan cannot push anything out);
//  - the main region is a segmented LRU: probation (~20%) for entries not read since they came
//    in, protected (~80%) for those read again there, so one read cannot displace them;
//  - frequencies come from a count-min sketch of 4-bit saturating counters, four per key in one
//    64-byte block (one cache miss), that every find() records (hit or miss); after
//    10 × capacity recorded accesses every counter is halved, so the sketch follows what is
//    popular now. It takes 8 to 16 bytes per entry of capacity.
// reserve() does not record: every read-through reserves after its find() missed, which did.
//
// Bounds. The shard count is options.shards rounded up to a power of two, halved while a shard
// would get less than one entry or 16 KiB. Each shard gets max_entries / shards entries and
// max_bytes / shards bytes (rounded down, so the totals never exceed the options; keys are not
// spread perfectly evenly, so the cache evicts somewhat before the totals are reached). An
// entry weighs key.size() + text.size() + entry_overhead bytes (entry_overhead covers the map
// node and its bucket, the value's shared block, and the allocator's headers on them). The
// window and protected segments are bounded by their share of the entries and of the bytes.
// Placeholders are bounded apart from entries, per shard: at most max(16, entries/4) of them
// and bytes/4 bytes (key.size() + entry_overhead each); a reserve beyond either drops the
// oldest placeholder (its fill then fails). So memory stays below 1.25 × max_bytes plus the
// sketch.
//
// Threading: any mix of calls from any threads. Each shard has its own lock (held for a
// lookup and a few pointer moves, never across an allocation on the hit path); flush() and
// stats() take the shards one after another.
//
// Front tables: each thread keeps a small direct-mapped table (1 024 slots) of the values it
// found, each slot stamped with the cache's epoch when its lookup began. invalidate() and
// flush() move the epoch on (inside the shard lock, after the removal), so a slot is used only
// while nothing has been invalidated since its value was current: a repeated hit takes no lock
// and writes nothing shared but the value's reference count. One hit in 64 still goes through
// the shard, so the admission policy keeps seeing the key. A thread's slots may keep up to 1 024
// values alive after the shards dropped them (until the next invalidation or their expiry);
// max_bytes does not count them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace promptcache::cache {

// A value as the near cache hands it out: immutable once published, shared by every reader.
struct NearValue {
  std::string text;  // the JSON text of the cached value
  // From its envelope: when it was written and when it goes stale (epoch: never).
  std::chrono::system_clock::time_point created{};
  std::chrono::system_clock::time_point soft_expiry{};
  // The source of truth's version of the item (0: unversioned). A fill never replaces a value:
  // it only takes a placeholder a read installed (see reserve), and every write or push of the
  // key removes the placeholder first, so an older read never lands over a newer value.
  std::uint64_t version = 0;
};
using NearValuePtr = std::shared_ptr<const NearValue>;

struct NearCacheOptions {
  std::size_t max_entries =
      10000;  // 0 disables the cache (find always misses, fill stores nothing)
  std::size_t max_bytes = 64u * 1024 * 1024;  // keys + values + NearCache::entry_overhead each
  std::chrono::milliseconds max_ttl{60000};   // no entry lives longer than this in the near cache
  std::size_t shards = 16;                    // rounded up to a power of two
};

class NearCache {
 public:
  using Clock = std::chrono::steady_clock;

  // Fixed bytes counted per entry and per placeholder on top of its key and value text.
  static constexpr std::size_t entry_overhead = 256;

  explicit NearCache(NearCacheOptions options = {});

  // Clock::now() from the kernel's coarse clock: a few nanoseconds instead of tens, at most a
  // tick (1–4 ms) behind. A hit path may pass it to find(); an entry may then be found up to a
  // tick past its expires_at, so fill() callers that must not overstay subtract a margin
  // (coarse_margin).
  [[nodiscard]] static Clock::time_point coarse_now() noexcept;
  static constexpr std::chrono::milliseconds coarse_margin{10};
  ~NearCache();
  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  // A hit: the published value for key, if present and not expired at `now`. Records the access
  // (hit or miss) in the admission policy's frequency sketch. An expired entry is removed.
  [[nodiscard]] NearValuePtr find(std::string_view key, Clock::time_point now = Clock::now());

  // find() without handing out a reference: calls `use(const NearValue&)` with the live value
  // of `key` and says whether there was one. On a front-table hit the value is borrowed from
  // this thread's slot — no reference count moves, nothing shared is written — so `use` must
  // not call into this cache (that could replace the slot) nor keep the reference.
  template <class Use>
  bool visit(std::string_view key, Clock::time_point now, Use&& use) {
    NearValuePtr owned;
    const NearValuePtr* found = lookup(key, now, owned);
    if (found == nullptr) return false;
    use(**found);
    return true;
  }

  // Called before a read of `key` from Redis is sent: installs a "caching in progress"
  // placeholder for key (replacing an entry expired at `now`) and returns its ticket (nonzero).
  // 0 when nothing is to be cached: the cache is disabled, the key is too large, or a live entry
  // is present (it is left alone). A later reserve of the same key gets a new ticket and takes
  // the placeholder over (the earlier ticket's fill then fails).
  [[nodiscard]] std::uint64_t reserve(std::string_view key, Clock::time_point now = Clock::now());

  // After the read: publishes `value` for key if, and only if, the placeholder installed with
  // `ticket` is still there (no invalidate(key), no flush(), no later reserve since). It expires
  // at min(expires_at, now + max_ttl). true when stored; otherwise false and the placeholder of
  // `ticket` is gone: refused by admission, too large for a shard, null, or already expired.
  bool fill(std::string_view key, std::uint64_t ticket, NearValuePtr value,
            Clock::time_point expires_at, Clock::time_point now = Clock::now());

  // Removes the placeholder of `ticket` if it is still there (the read found nothing or failed).
  void cancel(std::string_view key, std::uint64_t ticket);

  // Invalidation (a Redis push, or this process's own write): removes key's entry or placeholder.
  void invalidate(std::string_view key);

  // Everything, placeholders included (the connection that carried the invalidations dropped).
  // Every placeholder installed before the call is gone when it returns.
  void flush();

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t fills = 0;          // values stored
    std::uint64_t rejected = 0;       // by admission: fills refused and window entries that lost
    std::uint64_t evictions = 0;      // entries dropped to make room for a better candidate
    std::uint64_t invalidations = 0;  // invalidate() calls that removed an entry or placeholder
    std::uint64_t flushes = 0;
    std::size_t entries = 0;  // published values (expired ones until found or evicted)
    std::size_t bytes = 0;    // their weight, as above
    // Additions to the seed's figures.
    std::uint64_t expirations = 0;           // expired entries removed by find or reserve
    std::size_t placeholders = 0;            // reads in flight
    std::size_t placeholder_bytes = 0;       // their weight
    std::uint64_t placeholders_dropped = 0;  // oldest placeholders dropped by the bound
  };
  [[nodiscard]] Stats stats() const;

  // The shard count in effect (see Bounds above).
  [[nodiscard]] std::size_t shard_count() const noexcept { return shard_mask_ + 1; }

 private:
  struct Shard;

  [[nodiscard]] Shard& shard_for(std::size_t hash) const noexcept;
  // find()'s work: the value found, in this thread's front-table slot or in `owned`; null on a
  // miss.
  const NearValuePtr* lookup(std::string_view key, Clock::time_point now, NearValuePtr& owned);

  NearCacheOptions options_;
  bool enabled_ = false;
  std::size_t shard_mask_ = 0;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<std::uint64_t> flushes_{0};
  // Front tables (see find): every invalidate() and flush() moves the epoch on, which retires
  // every slot filled before it; `id_` tells this cache's slots from another's.
  std::uint64_t id_ = 0;
  alignas(64) std::atomic<std::uint64_t> epoch_{1};
  // Front-table hits, one counter per stripe of threads (no line shared by two busy threads).
  struct alignas(64) Stripe {
    std::atomic<std::uint64_t> hits{0};
  };
  static constexpr std::size_t stripes = 16;
  std::unique_ptr<Stripe[]> front_hits_;
};

}  // namespace promptcache::cache
