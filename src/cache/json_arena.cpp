#include "json_arena.hpp"

#include <boost/json/monotonic_resource.hpp>

#include <array>
#include <cstdint>
#include <new>

namespace promptcache::cache::detail {
namespace {

namespace json = boost::json;

// Block sizes and how many of each a thread keeps: at most 512 KiB per thread. A connection's
// reader decodes a whole read's hits (often dozens) before their callers run and free them:
// the small class keeps that many.
constexpr std::array<std::size_t, 3> block_bytes = {4 * 1024, 16 * 1024, 64 * 1024};
constexpr std::array<std::size_t, 3> kept_per_class = {64, 8, 2};
constexpr std::size_t max_kept = 64;

// Set once this thread's cache is destroyed: a value freed later on the thread (by another
// thread_local's destructor) frees its block directly.
thread_local constinit bool cache_gone = false;

class BlockCache {
 public:
  BlockCache() = default;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  ~BlockCache() {
    for (std::size_t c = 0; c < block_bytes.size(); ++c) {
      for (std::size_t i = 0; i < count_[c]; ++i) ::operator delete(blocks_[c][i]);
    }
    cache_gone = true;
  }

  void* take(std::size_t cls) {
    if (count_[cls] == 0) return ::operator new(block_bytes[cls]);
    return blocks_[cls][--count_[cls]];
  }
  void give(std::size_t cls, void* block) noexcept {
    if (count_[cls] == kept_per_class[cls]) {
      ::operator delete(block);
      return;
    }
    blocks_[cls][count_[cls]++] = block;
  }
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t n = 0;
    for (auto c : count_) n += c;
    return n;
  }

 private:
  std::array<std::array<void*, max_kept>, block_bytes.size()> blocks_{};
  std::array<std::size_t, block_bytes.size()> count_{};
};

BlockCache& thread_cache() {
  thread_local BlockCache cache;
  return cache;
}

void* take_block(std::size_t cls) {
  return cache_gone ? ::operator new(block_bytes[cls]) : thread_cache().take(cls);
}

void give_block(std::size_t cls, void* block) noexcept {
  if (cache_gone) {
    ::operator delete(block);
  } else {
    thread_cache().give(cls, block);
  }
}

// A monotonic arena whose first block is a recycled one; past it, the default resource.
class PooledArena final : public json::memory_resource {
 public:
  PooledArena(std::size_t cls)
      : cls_(cls),
        block_(take_block(cls)),
        mono_(static_cast<unsigned char*>(block_), block_bytes[cls]) {}
  PooledArena(const PooledArena&) = delete;
  PooledArena& operator=(const PooledArena&) = delete;
  ~PooledArena() override {
    mono_.release();
    give_block(cls_, block_);
  }

 private:
  void* do_allocate(std::size_t n, std::size_t align) override { return mono_.allocate(n, align); }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  [[nodiscard]] bool do_is_equal(const memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::size_t cls_;
  void* block_;
  json::monotonic_resource mono_;
};

}  // namespace

json::storage_ptr value_arena(std::size_t text_bytes) {
  // Room for the strings' bytes and the containers around them, as measured on typical
  // analysis results: about twice the text.
  const std::size_t want = text_bytes * 2;
  for (std::size_t cls = 0; cls < block_bytes.size(); ++cls) {
    if (want <= block_bytes[cls]) return json::make_shared_resource<PooledArena>(cls);
  }
  return json::make_shared_resource<json::monotonic_resource>(want);
}

std::size_t cached_arena_blocks() noexcept {
  return cache_gone ? 0 : thread_cache().size();
}

}  // namespace promptcache::cache::detail
