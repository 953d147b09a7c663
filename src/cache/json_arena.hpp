// The memory a JSON value read from the cache is built in: one arena per value, its block
// recycled by the thread that frees it.
#pragma once

#include <boost/json/storage_ptr.hpp>

#include <cstddef>

namespace promptcache::cache::detail {

// An arena for a value parsed from `text_bytes` of JSON. Blocks up to 64 KiB come from a small
// per-thread cache of blocks freed before (a hit's value is usually freed soon after it is
// read, and a block of 4 KiB is past glibc's per-thread cache: without this every 1 KiB hit
// took the allocator's slow path twice); larger arenas are ordinary monotonic resources. The
// value may be freed on any thread: its block then joins that thread's cache, or is freed when
// the cache is full.
[[nodiscard]] boost::json::storage_ptr value_arena(std::size_t text_bytes);

// The blocks this thread's cache holds now (for tests).
[[nodiscard]] std::size_t cached_arena_blocks() noexcept;

}  // namespace promptcache::cache::detail
