// The Lua scripts of the Redis stores (standalone and cluster): a write that records its key
// in an index, atomically, and the index's drain. Both touch only keys of the index's cluster
// slot (the hash tag they share), so a cluster runs each on one node.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "promptcache/error.hpp"
#include "promptcache/resp/node.hpp"
#include "promptcache/resp/request.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store::scripts {

// How many index members one drain call deletes: bounded work per call, so that a large
// index never blocks the server for long.
inline constexpr std::uint64_t drain_batch = 1000;

// Whether a write needs the write script (an index, a version, a fence or a time bound), or is
// a plain SET.
[[nodiscard]] bool needs_script(const Write& w) noexcept;
// EVALSHA when `by_sha`, else EVAL with the script's text (after a NOSCRIPT reply): the write
// as Write describes it — the lease checked and released, the time bound and the version
// checked, SET key value [EX ttl] [NX]; then, if it was written and indexed, ZADD index
// <expiry ms> key, the index's expired members removed, and the index kept alive as long as
// its longest-lived member. Replies 1 when written, 0 when not.
void push_write(resp::Request& req, bool by_sha, const Write& w);
void push_write(resp::Request& req, bool by_sha, const Entry& e);
// Whether a write took effect, from its reply (a top-level type and scalar value): the script
// answers 1 or 0; SET answers OK, or null when NX found the key; a server error is an error.
[[nodiscard]] Result<bool> write_outcome(resp::Type type, std::string_view value);
// SET key value [NX] [EX ttl]: a write that needs no script.
void push_plain_set(resp::Request& req, std::string_view key, std::string_view value,
                    std::chrono::seconds ttl, SetMode mode);
// UNLINKs up to drain_batch members of `index` and removes them from it. Replies with the bulk
// string "<deleted> <left>".
void push_drain(resp::Request& req, bool by_sha, std::string_view index);

// DEL key if it holds `token`; replies 1 when deleted, else 0.
void push_release(resp::Request& req, bool by_sha, std::string_view key, std::string_view token);
// SET key token NX PX ms.
void push_acquire(resp::Request& req, std::string_view key, std::string_view token,
                  std::chrono::milliseconds ttl);

// "<deleted> <left>" of a drain reply.
struct Drained {
  std::uint64_t deleted = 0;
  std::uint64_t left = 0;
};
[[nodiscard]] bool parse_drained(std::string_view reply, Drained& out);

// Runs drain calls until the index is empty: `drain_once()` sends one (push_drain) and gives
// its reply's text, or the error that ends the drain. How many keys were deleted; `progress`
// hears the running count.
template <class DrainOnce>
boost::asio::awaitable<Result<std::uint64_t>> drain_all(const DrainOnce& drain_once,
                                                        const Progress& progress) {
  std::uint64_t deleted = 0;
  for (;;) {
    Result<std::string> reply = co_await drain_once();
    if (!reply) co_return reply.error();
    Drained step;
    if (!parse_drained(*reply, step)) co_return make_error_code(error::unexpected_reply);
    deleted += step.deleted;
    if (progress && step.deleted > 0) progress(deleted);
    if (step.left == 0) co_return deleted;
  }
}

// Whether a server error says the script is not in its cache (restart, SCRIPT FLUSH, failover).
[[nodiscard]] bool is_noscript(std::string_view error) noexcept;

// SCRIPT LOAD of the write script: sent ahead of a batch of EVALSHAs on the same connection.
void push_load_write(resp::Request& req);

}  // namespace promptcache::store::scripts
