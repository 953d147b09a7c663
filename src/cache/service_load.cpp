// PromptCacheService's loads (ServiceCore's cache-aside half): get_with_fallback, get_or_load
// and get_or_load_versioned over load_through — a read, then on a miss one load per key in this
// process (single-flight), under a lease across processes when configured, its result stored
// (fenced by the lease, bounded by the tombstone's life); a value near its expiry refreshed in
// the background; a stale value served when the loader fails. When each of these happens is
// LoadPolicy's (load_policy.hpp); this file carries it out.
#include <random>
#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "cache/load_policy.hpp"
#include "cache/service_core.hpp"
#include "cache/service_operation.hpp"
#include "cache/service_text.hpp"
#include "cache/single_flight.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cluster/slot.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/log.hpp"

namespace promptcache::cache {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using detail::checked_text;
using detail::loggable;
using detail::parse_value;

namespace {

// A loaded text as the caller's type.
template <class T>
std::optional<T> from_text(std::string&& text) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::move(text);
  } else {
    return parse_value(text);
  }
}

template <class T>
std::string to_text(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else {
    return json_text(value);
  }
}

}  // namespace

asio::awaitable<ServiceCore::Json> ServiceCore::get_with_fallback(std::string_view key,
                                                                  const Fallback& fallback, Ttl ttl,
                                                                  Parent parent) {
  // Made only when a load runs: a hit allocates no loader. A copy of the fallback, since an
  // early refresh may call it after this call has returned.
  const auto make_loader = [&fallback] {
    return TextLoader([fallback]() -> asio::awaitable<Versioned> {
      // Named: g++ 12 destroys a temporary of a co_await expression twice.
      const Json value = co_await fallback();
      Versioned out;
      out.json = json_text(value);
      co_return out;
    });
  };
  auto found = co_await load_through<Json>(key, parse_value, make_loader, ttl, true, {}, parent);
  // A waiter on a get_or_load of the same key can be told "not found": ask the fallback.
  if (!found.value) co_return co_await fallback();
  co_return std::move(*found.value);
}

asio::awaitable<std::optional<ServiceCore::Json>> ServiceCore::get_or_load(std::string_view key,
                                                                           const Loader& loader,
                                                                           Ttl ttl, Parent parent) {
  const auto make_loader = [&loader] {
    return TextLoader([loader]() -> asio::awaitable<Versioned> {
      Versioned out;
      if (auto value = co_await loader()) out.json = json_text(*value);
      co_return out;
    });
  };
  auto found = co_await load_through<Json>(key, parse_value, make_loader, ttl, false, {}, parent);
  co_return std::move(found.value);
}

asio::awaitable<ServiceCore::Json> ServiceCore::get_analysis_with_fallback(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Fallback& fallback, Ttl ttl, Parent parent) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_return co_await get_with_fallback(key, fallback, ttl.or_else(analysis_ttl), parent);
}

asio::awaitable<std::optional<ServiceCore::Json>> ServiceCore::get_or_load_analysis(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Loader& loader, Ttl ttl, Parent parent) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_return co_await get_or_load(key, loader, ttl.or_else(analysis_ttl), parent);
}

asio::awaitable<ServiceCore::Lookup> ServiceCore::get_or_load_versioned(
    std::string_view key, LoaderSource loader, Ttl ttl, std::chrono::milliseconds budget,
    Parent parent) {
  const auto make_loader = [&loader] { return loader(); };
  auto found = co_await load_through<std::string>(key, checked_text, make_loader, ttl, false,
                                                  budget, parent);
  Lookup out;
  out.json = std::move(found.value);
  out.hit = found.hit;
  co_return out;
}

bool ServiceCore::due_for_refresh(const EnvelopeMeta& meta) const {
  if (policy_.early_refresh <= 0) return false;  // no clock read on the hits of the common case
  const auto draw = [] {
    thread_local std::minstd_rand rng(std::random_device{}());
    return std::uniform_real_distribution<double>(0, 1)(rng);
  };
  return policy_.refresh_due(meta.created, meta.soft_expiry, SystemClock::now(), draw);
}

template <class T, class Parse, class MakeLoader>
asio::awaitable<ServiceCore::Loaded<T>> ServiceCore::load_through(std::string_view key, Parse parse,
                                                                  const MakeLoader& make_loader,
                                                                  Ttl ttl, bool absent_is_miss,
                                                                  std::chrono::milliseconds budget,
                                                                  Parent parent) {
  // The load's span starts when a load runs: a hit (or a remembered "not found") is its read's
  // span alone, a sibling of the load's under the caller's.
  Operation op(*this, op_fallback, Subject::key, key, parent, Operation::SpanStart::later);
  op.time_it();  // the read inside asks the breaker
  telemetry::ScopedSpan& span = op.span();
  (void)effective_ttl(ttl);  // a negative TTL is the caller's error, before any load
  // Fails open: a miss.
  auto found = co_await read_value<T>(key, parse, budget, parent);
  Loaded<T> out;
  LoadPlan plan{ttl, budget, !found.failed, nullptr};
  if (found.kind == Kind::value) {
    if (due_for_refresh(found.meta) && !closed_.load(std::memory_order_relaxed) &&
        !flights_->in_flight(key)) {
      counters_.early_refreshes.fetch_add(1, std::memory_order_relaxed);
      op.start_span();
      span.set("cache.hit", true);
      span.set("cache.early_refresh", true);
      // Runs on this loop after the caller has its value; owns copies of the key and loader,
      // and a share of this core (the service may be destroyed meanwhile). Its plan has no
      // parent: the refresh outlives this span, its fill is a trace of its own.
      const auto ex = co_await asio::this_coro::executor;
      asio::co_spawn(ex, refresh(shared_from_this(), std::string(key), make_loader(), plan),
                     [](std::exception_ptr e) {
                       if (!e) return;
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         logger()->warn("early refresh failed op=fallback error=\"{}\"", ex.what());
                       }
                     });
    }
    out.value = std::move(found.value);
    out.hit = true;
    co_return out;
  }
  if (found.kind == Kind::absent && !absent_is_miss) {
    counters_.negative_hits.fetch_add(1, std::memory_order_relaxed);
    out.hit = true;  // the read's span says cache.not_found
    co_return out;
  }
  op.start_span();
  span.set("cache.hit", false);
  plan.parent = span.parent_for_children();
  std::optional<std::string> stale;
  if (found.kind == Kind::stale) stale = to_text(*found.value);
  // Named, not temporaries of the co_await expression (g++ 12 destroys those twice).
  std::string owned_key(key);
  TextLoader loader = make_loader();
  auto text =
      co_await load_once(std::move(owned_key), std::move(loader), plan, std::move(stale), false);
  if (text) out.value = from_text<T>(std::move(*text));
  co_return out;
}

asio::awaitable<void> ServiceCore::refresh(std::shared_ptr<ServiceCore> self, std::string key,
                                           TextLoader loader, LoadPlan plan) {
  (void)co_await self->load_once(std::move(key), std::move(loader), plan, std::nullopt, true);
}

asio::awaitable<std::optional<std::string>> ServiceCore::load_once(std::string key,
                                                                   TextLoader loader, LoadPlan plan,
                                                                   std::optional<std::string> stale,
                                                                   bool refresh) {
  auto [flight, leads] = flights_->join(key);
  if (!leads) {
    counters_.coalesced.fetch_add(1, std::memory_order_relaxed);
    co_return co_await flight->wait();
  }
  FlightLead lead(flights_, key, flight);
  std::exception_ptr failure;
  try {
    if (!refresh && plan.use_store && breaker_.allow(Clock::now())) {
      // A flight that ended between our miss and our join has stored its value: look again.
      auto again = co_await read_stored(key, plan.budget);
      if (again.kind == Kind::value) {
        lead.flight().publish(again.value);
        co_return std::move(again.value);
      }
    }
    auto result = co_await load_and_store(key, loader, plan);
    lead.flight().publish(result);
    co_return result;
  } catch (...) {
    failure = std::current_exception();
  }
  if (stale) {
    counters_.stale_served.fetch_add(1, std::memory_order_relaxed);
    logger()->warn("loader failed, stale value served op=fallback key={}", loggable(key));
    lead.flight().publish(stale);
    co_return std::move(stale);
  }
  lead.flight().fail(failure);
  std::rethrow_exception(failure);
}

asio::awaitable<std::optional<std::string>> ServiceCore::load_and_store(const std::string& key,
                                                                        const TextLoader& loader,
                                                                        const LoadPlan& plan) {
  std::string lease_key;
  std::string token;
  if (options_.lease.count() > 0 && plan.use_store && breaker_.allow(Clock::now())) {
    lease_key = "promptcache:lease:" + key;  // the key's hash tag, if any, still comes first
    thread_local std::mt19937_64 rng(std::random_device{}());
    token = fmt::format("{:016x}{:016x}", rng(), rng());
    const auto deadline = Clock::now() + policy_.lease_wait();
    int polls = 0;
    for (;;) {
      auto command = command_span("SET", plan.parent);  // NX PX
      auto got = co_await store_->acquire_lease(lease_key, token, options_.lease,
                                                deadline_in(plan.budget));
      command.end();
      if (!got || *got) {
        if (!got) lease_key.clear();  // the store failed: load without a lease
        break;
      }
      // Another process is loading: wait for its value, never longer than the lease lives.
      counters_.lease_waits.fetch_add(1, std::memory_order_relaxed);
      if (Clock::now() >= deadline) {
        lease_key.clear();
        break;
      }
      asio::steady_timer timer(co_await asio::this_coro::executor,
                               LoadPolicy::lease_pause(polls++));
      error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      auto found = co_await read_stored(key, plan.budget);
      if (found.kind == Kind::value) co_return std::move(found.value);
      if (found.kind == Kind::absent) co_return std::nullopt;
    }
  }
  counters_.fallback_calls.fetch_add(1, std::memory_order_relaxed);
  // Taken before the load: a fill is bounded by when its read began.
  const auto read_at = SystemClock::now();
  Versioned result;
  std::exception_ptr failure;
  try {
    result = co_await loader();  // its error is the caller's
  } catch (...) {
    failure = std::current_exception();
  }
  // The fill is fenced by the lease when the two share a cluster slot (the write script then
  // checks and releases it); otherwise the lease is released on its own.
  const bool fenced = !lease_key.empty() && cluster::key_slot(lease_key) == cluster::key_slot(key);
  // Views, not temporaries of the co_await expression (g++ 12 destroys those twice).
  const std::string_view fence = fenced ? std::string_view(lease_key) : std::string_view();
  const std::string_view fence_token = fenced ? std::string_view(token) : std::string_view();
  bool released = false;
  if (!failure && plan.use_store) {
    released = co_await store_loaded(key, result, plan, read_at, fence, fence_token) && fenced;
  }
  if (!lease_key.empty() && !released) {
    auto command = command_span("EVALSHA", plan.parent);  // the release script
    (void)co_await store_->release_lease(lease_key, token, deadline_in(plan.budget));
    command.end();
  }
  if (failure) std::rethrow_exception(failure);
  co_return std::move(result.json);
}

asio::awaitable<bool> ServiceCore::store_loaded(const std::string& key, const Versioned& loaded,
                                                const LoadPlan& plan,
                                                SystemClock::time_point read_at,
                                                std::string_view lease, std::string_view token) {
  const bool absent = !loaded.json;
  if (absent && options_.negative_ttl.count() <= 0) co_return false;
  if (breaker_.rejecting(Clock::now())) {
    // During an outage the write is dropped (and counted) without a throw or a log line.
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  Put put;
  put.json_text = absent ? std::string_view() : std::string_view(*loaded.json);
  put.ttl = absent ? Ttl(options_.negative_ttl) : plan.ttl;
  put.absent = absent;
  put.to_store.version = loaded.version;
  put.to_store.lease = lease;
  put.to_store.token = token;
  put.deadline = deadline_in(plan.budget);
  put.parent = plan.parent;
  if (loaded.version > 0) {
    // No fill outlives the tombstone that must stop it (see ServiceOptions::tombstone_ttl).
    put.to_store.not_after_ms = policy_.fill_deadline_ms(read_at);
  }
  try {
    (void)co_await write(key, put);
    co_return true;
  } catch (const CacheError& e) {
    // While the breaker is open every write is dropped (and counted): one line per call would
    // flood the log during an outage.
    if (breaker_.state() == CircuitBreaker::State::closed) {
      logger()->warn("cache set after fallback failed op=fallback key={} error=\"{}\"",
                     loggable(key), e.what());
    }
  }
  co_return false;
}

}  // namespace promptcache::cache
