#include "cache/service_core.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <type_traits>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "cache/json_arena.hpp"
#include "cache/service_operation.hpp"
#include "cache/service_text.hpp"
#include "cache/single_flight.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/ttl.hpp"
#include "promptcache/cluster/slot.hpp"
#include "promptcache/error.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/log.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/detect.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "store/scripts.hpp"

namespace promptcache::cache {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
template <class T>
using Result = boost::system::result<T>;
using detail::checked_text;
using detail::loggable;
using detail::parse_value;

namespace {

// Errors that say the tier is unreachable (as opposed to a server that answered badly).
bool is_connection_failure(const error_code& ec) {
  if (ec.category() != error_category()) return true;  // socket, TLS, resolver errors
  switch (static_cast<error>(ec.value())) {
    case error::timeout:
    case error::not_connected:
    case error::connect_timeout:
    case error::connection_lost:
    case error::protocol_error:
    case error::limit_exceeded:
    case error::auth_failed:
    case error::closed:
      return true;
    default:
      return false;
  }
}

// Accepts every event: the parser's own checks are the validation.
struct JsonValidator {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_key_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_key(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) { return true; }
  bool on_double(double, json::string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }
};

// Whether `text` is one JSON document: checked without building a value.
bool is_json(std::string_view text) {
  json::basic_parser<JsonValidator> parser{json::parse_options{}};
  error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size() && parser.done();
}

}  // namespace

ServiceCore::ServiceCore(std::shared_ptr<store::Store> store, ServiceOptions options,
                         std::shared_ptr<telemetry::Tracer> tracer, std::shared_ptr<NearTier> near)
    : store_(std::move(store)),
      options_(options),
      policy_{options.early_refresh, options.lease, options.tombstone_ttl},
      tracer_(std::move(tracer)),
      breaker_(options.breaker),
      flights_(std::make_shared<SingleFlight>()),
      near_(std::move(near)) {}

ServiceCore::~ServiceCore() {
  // Held to the end without close(), the connections would keep their event loops running.
  store_->close();
}

void ServiceCore::close() {
  closed_.store(true, std::memory_order_relaxed);
  store_->close();
}

bool ServiceCore::note_result(const error_code& ec) {
  if (!ec) {
    breaker_.on_success();
    return false;
  }
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  if (is_connection_failure(ec)) {
    breaker_.on_failure(Clock::now());
  } else {
    breaker_.on_success();  // the server answered: the tier is up
  }
  return true;
}

void ServiceCore::record(Op op, Clock::time_point start) {
  latency_[op].record(Clock::now() - start);
}

telemetry::ScopedSpan ServiceCore::command_span(std::string_view command, Parent parent) const {
  if (!options_.redis_command_spans || parent == nullptr || store_->tier() != "redis") return {};
  telemetry::ScopedSpan span(tracer_.get(), command, telemetry::SpanKind::client, parent);
  span.set("db.system", "redis");
  span.set("db.operation", command);
  return span;
}

std::string_view ServiceCore::write_command(const store::Write& w) noexcept {
  return store::scripts::needs_script(w) ? "EVALSHA" : "SET";
}

std::chrono::seconds ServiceCore::jittered(std::chrono::seconds ttl) const {
  if (options_.ttl_jitter <= 0 || ttl.count() <= 0) return ttl;
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_real_distribution<double> spread(-options_.ttl_jitter, options_.ttl_jitter);
  const double seconds = static_cast<double>(ttl.count()) * (1.0 + spread(rng));
  return std::chrono::seconds(std::max<std::int64_t>(1, std::llround(seconds)));
}

std::chrono::seconds ServiceCore::effective_ttl(Ttl ttl) const {
  return ttl.or_default(options_.default_ttl);
}

std::chrono::seconds ServiceCore::stored_ttl(std::chrono::seconds ttl) const {
  return ttl.count() > 0 ? ttl + options_.stale_grace : ttl;
}

std::string ServiceCore::encode(std::string_view text, std::chrono::seconds ttl, bool absent,
                                std::uint64_t version) const {
  EnvelopeMeta meta;
  meta.created = std::chrono::system_clock::now();
  if (ttl.count() > 0) meta.soft_expiry = meta.created + ttl;
  meta.absent = absent;
  meta.version = version;
  return encode_value(text, meta, options_.codec);
}

store::Deadline ServiceCore::deadline_in(std::chrono::milliseconds budget) {
  return budget.count() > 0 ? Clock::now() + budget : store::Deadline{};
}

namespace {}  // namespace

namespace detail {

// Keys may hold anything a user sent: quoted and escaped in logs.
std::string loggable(std::string_view key) {
  return fmt::format("{:?}", key);
}

// JSON text to a value, in one arena sized for it (value_arena, its block recycled): a result
// of a dozen strings costs one small allocation to build and one to free, not one each.
std::optional<json::value> parse_value(std::string_view text) {
  error_code ec;
  // Exact: Boost.JSON 1.81's own parse may be an ulp off, and what was stored is what is served.
  json::value value = parse_exact(text, ec, value_arena(text.size()));
  if (ec) return std::nullopt;
  return value;
}

std::optional<std::string> checked_text(std::string_view text) {
  if (!is_json(text)) return std::nullopt;
  return std::string(text);
}

}  // namespace detail

template <class T, class Parse>
ServiceCore::Found<T> ServiceCore::unwrap(std::string_view stored, Parse parse,
                                          std::string* text) const {
  // Decompressed bytes live only until parsed, before any suspension: one buffer per thread.
  thread_local std::string scratch;
  Found<T> found;
  auto decoded = decode_value(stored, options_.codec, scratch);
  if (!decoded) return found;
  found.meta = decoded->meta;
  if (decoded->meta.absent) {
    found.kind = Kind::absent;
    return found;
  }
  found.value = parse(decoded->json);
  if (!found.value) return found;
  if (text != nullptr) text->assign(decoded->json);
  const bool expired = decoded->meta.soft_expiry != SystemClock::time_point{} &&
                       decoded->meta.soft_expiry <= SystemClock::now();
  found.kind = expired ? Kind::stale : Kind::value;
  return found;
}

asio::awaitable<ServiceCore::Found<std::string>> ServiceCore::read_stored(
    std::string_view key, std::chrono::milliseconds budget) {
  Found<std::string> found;
  auto stored = co_await store_->get(key, deadline_in(budget));
  if (stored && stored->has_value()) found = unwrap<std::string>(**stored, checked_text);
  co_return found;
}

asio::awaitable<void> ServiceCore::discard(std::string_view key, std::size_t bytes) {
  counters_.corrupt.fetch_add(1, std::memory_order_relaxed);
  logger()->warn("cache value discarded op=get key={} reason=\"corrupt or foreign value\" bytes={}",
                 loggable(key), bytes);
  forget(key);
  std::vector<std::string> doomed{std::string(key)};
  auto removed = co_await store_->del(doomed);
  (void)removed;  // best effort: a value that stays is discarded again on the next read
}

// Decodes a stored value where the store hands it over (see Store::get_into).
template <class T, class Parse>
struct ServiceCore::Unwrapping final : store::ValueVisitor {
  Unwrapping(const ServiceCore& core, Parse& parse, std::string* text)
      : core(core), parse(parse), text(text) {}
  void on_value(std::string_view stored) noexcept override {
    seen = true;
    bytes = stored.size();
    try {
      found = core.unwrap<T>(stored, parse, text);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    }
  }
  const ServiceCore& core;
  Parse& parse;
  std::string* text;
  Found<T> found;
  std::size_t bytes = 0;
  bool seen = false;  // the store had a value
  bool out_of_memory = false;
};

template <class T, template <class> class Shape, class Key, class Parse>
asio::awaitable<typename Shape<T>::type> ServiceCore::read_value(Key owned_key, Parse parse,
                                                                 std::chrono::milliseconds budget,
                                                                 Parent parent) {
  const std::string_view key = owned_key;
  Operation op(*this, op_get, Subject::key, key, parent);
  Found<T> found;
  if (!op.admitted()) {
    counters_.skipped_reads.fetch_add(1, std::memory_order_relaxed);
    counters_.misses.fetch_add(1, std::memory_order_relaxed);
    op.span().set("cache.hit", false);
    found.failed = true;
    co_return Shape<T>::from(std::move(found));
  }
  // The near tier first: a live copy answers without I/O; otherwise a place is reserved before
  // the read (see NearTier::visit).
  std::uint64_t ticket = 0;
  if (near_) {
    const bool held = near_->visit(key, op.start(), [&](const NearValue& v) {
      // The text was checked to be JSON when it was kept: copied out, not checked again.
      if constexpr (std::is_same_v<T, std::string>) {
        found.value = v.text;
      } else {
        found.value = parse(v.text);
      }
      found.meta.created = v.created;
      found.meta.soft_expiry = v.soft_expiry;
      found.meta.version = v.version;
    });
    if (held && found.value) {
      found.kind = Kind::value;
      counters_.hits.fetch_add(1, std::memory_order_relaxed);
      counters_.near_hits.fetch_add(1, std::memory_order_relaxed);
      op.span().set("cache.hit", true);
      op.span().set("cache.tier", "near");
      co_return Shape<T>::from(std::move(found));
    }
    ticket = near_->reserve(key, op.start());
  }
  // The value is decoded where the store holds it (the client's read buffer): not copied out
  // first. The budget starts at the store: a near hit reads no clock for it.
  std::string text;
  Unwrapping<T, Parse> decoded(*this, parse, ticket != 0 ? &text : nullptr);
  auto command = op.command("GET");
  const error_code ec = co_await store_->get_into(key, deadline_in(budget), decoded);
  command.end();
  if (op.failed(ec)) {
    found.failed = true;
  } else if (decoded.out_of_memory) {
    found.failed = true;  // a value could not be built: a miss, not a crash of the reader
  } else if (decoded.seen) {
    found = std::move(decoded.found);
    if (found.kind == Kind::miss) co_await discard(key, decoded.bytes);
  }
  if (ticket != 0) {
    if (found.kind == Kind::value) {
      near_->keep(key, ticket, std::move(text), found.meta);
    } else {
      near_->release(key, ticket);
    }
  }
  const bool hit = found.kind == Kind::value;
  (hit ? counters_.hits : counters_.misses).fetch_add(1, std::memory_order_relaxed);
  op.span().set("cache.hit", hit);
  if (found.kind == Kind::absent) op.span().set("cache.not_found", true);
  if (found.kind == Kind::stale) op.span().set("cache.stale", true);
  co_return Shape<T>::from(std::move(found));
}

// The two reads service_load.cpp makes (a value, JSON text).
template asio::awaitable<ServiceCore::Found<json::value>>
    ServiceCore::read_value<json::value, ServiceCore::Whole>(std::string_view, detail::ParseValue,
                                                             std::chrono::milliseconds, Parent);
template asio::awaitable<ServiceCore::Found<std::string>>
    ServiceCore::read_value<std::string, ServiceCore::Whole>(std::string_view, detail::ParseText,
                                                             std::chrono::milliseconds, Parent);

NearValuePtr ServiceCore::peek(std::string_view key) const {
  return near_ ? near_->find(key) : nullptr;
}

asio::awaitable<NearValuePtr> ServiceCore::get_shared(std::string_view key, Parent parent) {
  if (NearValuePtr copy = peek(key)) {
    counters_.hits.fetch_add(1, std::memory_order_relaxed);
    counters_.near_hits.fetch_add(1, std::memory_order_relaxed);
    co_return copy;
  }
  auto text = co_await get_json(key, parent);
  if (!text) co_return nullptr;
  // The read kept it in the near tier if it had a place: that one value, not another copy.
  if (NearValuePtr kept = peek(key)) co_return kept;
  auto value = std::make_shared<NearValue>();
  value->text = std::move(*text);
  co_return value;
}

void ServiceCore::forget(std::string_view key) {
  if (near_) near_->forget(key);
}

// The plain reads are read_value itself, not coroutines around it: one frame less per read.
asio::awaitable<std::optional<ServiceCore::Json>> ServiceCore::get(std::string_view key,
                                                                   Parent parent) {
  return read_value<Json, ValueOnly>(key, parse_value, {}, parent);
}

asio::awaitable<std::optional<std::string>> ServiceCore::get_json(std::string_view key,
                                                                  Parent parent) {
  return read_value<std::string, ValueOnly>(key, checked_text, {}, parent);
}

asio::awaitable<std::optional<std::string>> ServiceCore::get_analysis_result_json(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    Parent parent) {
  return read_value<std::string, ValueOnly>(analysis_key(prompt_hash, user_id, analysis_type),
                                            checked_text, {}, parent);
}

asio::awaitable<NearValuePtr> ServiceCore::get_analysis_result_shared(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    Parent parent) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  co_return co_await get_shared(key, parent);
}

asio::awaitable<std::optional<ServiceCore::Json>> ServiceCore::get_analysis_result(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    Parent parent) {
  return read_value<Json, ValueOnly>(analysis_key(prompt_hash, user_id, analysis_type), parse_value,
                                     {}, parent);
}

asio::awaitable<void> ServiceCore::set_analysis_result(std::string_view prompt_hash,
                                                       std::string_view user_id,
                                                       std::string_view analysis_type,
                                                       const Json& value, Ttl ttl, Parent parent) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  // PROMPT_ANALYSIS unless given; set() rejects a negative TTL with CacheError.
  co_await set(key, value, ttl.or_else(analysis_ttl), parent);
}

asio::awaitable<void> ServiceCore::add_analysis_result(std::string_view prompt_hash,
                                                       std::string_view user_id,
                                                       std::string_view analysis_type,
                                                       const Json& value, Ttl ttl, Parent parent) {
  const std::string key = analysis_key(prompt_hash, user_id, analysis_type);
  Put put;
  put.value = &value;
  put.ttl = ttl.or_else(analysis_ttl);
  put.parent = parent;
  put.to_store.mode = store::SetMode::if_absent;
  (void)co_await write(key, put);
}

asio::awaitable<void> ServiceCore::set(std::string_view key, const Json& value, Ttl ttl,
                                       Parent parent) {
  Put put;
  put.value = &value;
  put.ttl = ttl;
  put.parent = parent;
  (void)co_await write(key, put);
}

asio::awaitable<void> ServiceCore::set_json(std::string_view key, std::string_view json_text,
                                            Ttl ttl, Parent parent) {
  Put put;
  put.json_text = json_text;
  put.ttl = ttl;
  put.parent = parent;
  (void)co_await write(key, put);
}

asio::awaitable<bool> ServiceCore::write(std::string_view key, const Put& put) {
  Operation op(*this, op_set, Subject::key, key, put.parent);
  if (put.to_store.version > 0) {
    op.span().set("cache.version", static_cast<std::int64_t>(put.to_store.version));
  }
  const auto seconds = effective_ttl(put.ttl);
  if (!op.admitted()) op.refuse_write();
  // Serialized only once the write is going ahead: nothing to do while the breaker is open.
  const std::string serialized = put.value != nullptr ? json_text(*put.value) : std::string();
  const auto spread = jittered(seconds);
  const std::string stored =
      encode(put.value != nullptr ? std::string_view(serialized) : put.json_text, spread,
             put.absent, put.to_store.version);
  // An analysis key is recorded in its user's index with the write (one script on Redis).
  const std::string index = analysis_index_of(key);
  store::Write w = put.to_store;
  w.key = key;
  w.value = stored;
  w.ttl = stored_ttl(spread);
  w.index = index;
  forget(key);  // before: no read starting now is answered by the old copy
  auto command = op.command(write_command(w));
  auto done = co_await store_->write(w, put.deadline);
  command.end();
  forget(key);  // after: a read that raced the write keeps its reply out of the near tier
  if (op.failed(done)) op.raise(done.error());
  op.span().set("cache.written", *done);
  co_return *done;
}

asio::awaitable<bool> ServiceCore::delete_key(std::string_view key, Parent parent) {
  Operation op(*this, op_delete, Subject::key, key, parent);
  if (!op.admitted()) op.refuse_write();
  std::vector<std::string> keys{std::string(key)};
  forget(key);
  auto command = op.command("UNLINK");
  auto removed = co_await store_->del(keys);
  command.end();
  forget(key);
  if (op.failed(removed)) op.raise(removed.error());
  co_return *removed > 0;
}

asio::awaitable<std::vector<std::optional<ServiceCore::Json>>> ServiceCore::get_multiple(
    const std::vector<std::string>& keys, Parent parent) {
  Operation op(*this, op_get_multiple, Subject::keys, keys.size(), parent);
  std::vector<std::optional<Json>> out(keys.size());
  if (keys.empty()) co_return out;
  if (!op.admitted()) {
    counters_.skipped_reads.fetch_add(keys.size(), std::memory_order_relaxed);
    counters_.misses.fetch_add(keys.size(), std::memory_order_relaxed);
    co_return out;
  }
  auto command = op.command("MGET");
  auto stored = co_await store_->get_multiple(keys);
  command.end();
  if (op.failed(stored)) {
    counters_.misses.fetch_add(keys.size(), std::memory_order_relaxed);
    co_return out;
  }
  std::size_t hits = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!(*stored)[i]) continue;
    auto found = unwrap<Json>(*(*stored)[i], parse_value);
    if (found.kind == Kind::miss) co_await discard(keys[i], (*stored)[i]->size());
    if (found.kind != Kind::value) continue;
    out[i] = std::move(found.value);
    ++hits;
  }
  counters_.hits.fetch_add(hits, std::memory_order_relaxed);
  counters_.misses.fetch_add(keys.size() - hits, std::memory_order_relaxed);
  co_return out;
}

asio::awaitable<void> ServiceCore::set_multiple(
    const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl, Parent parent) {
  std::vector<std::pair<std::string, std::string>> texts;
  texts.reserve(entries.size());
  for (const auto& [key, value] : entries) texts.emplace_back(key, json_text(value));
  co_await set_multiple_json(texts, ttl, parent);
}

asio::awaitable<void> ServiceCore::set_multiple_json(
    const std::vector<std::pair<std::string, std::string>>& entries, Ttl ttl, Parent parent) {
  co_await write_batch(
      entries, ttl,
      [](const auto& e) {
        return std::tuple<std::string_view, std::string_view, std::uint64_t>(e.first, e.second, 0);
      },
      parent);
}

asio::awaitable<void> ServiceCore::set_multiple_versioned(
    const std::vector<VersionedEntry>& entries, Ttl ttl, Parent parent) {
  for (const auto& e : entries) {
    if (e.version == 0) throw std::invalid_argument("a versioned write needs a version above 0");
  }
  co_await write_batch(
      entries, ttl,
      [](const VersionedEntry& e) {
        return std::tuple<std::string_view, std::string_view, std::uint64_t>(e.key, e.json,
                                                                             e.version);
      },
      parent);
}

template <class Entries, class Fields>
asio::awaitable<void> ServiceCore::write_batch(const Entries& entries, Ttl ttl, Fields fields,
                                               Parent parent) {
  if (entries.empty()) co_return;
  Operation op(*this, op_set_multiple, Subject::entries, entries.size(), parent);
  const auto seconds = effective_ttl(ttl);
  if (!op.admitted()) op.refuse_write(entries.size());
  std::vector<store::Entry> encoded;
  encoded.reserve(entries.size());
  for (const auto& entry : entries) {
    const auto [key, text, version] = fields(entry);
    const auto spread = jittered(seconds);
    encoded.emplace_back(std::string(key), encode(text, spread, false, version), stored_ttl(spread),
                         analysis_index_of(key), version);
  }
  for (const auto& e : encoded) forget(e.key);
  auto command = op.command("pipeline");  // SETs, or write scripts
  auto refused = co_await store_->set_multiple(encoded);
  command.end();
  for (const auto& e : encoded) forget(e.key);
  if (op.failed(refused)) op.raise(refused.error());
  if (*refused > 0) {
    const std::string why =
        fmt::format("the server refused {} of {} writes", *refused, entries.size());
    op.report(why);
    op.raise(error::server_error, why);
  }
  logger()->debug("set {} cache entries op=set_multiple", entries.size());
}

asio::awaitable<bool> ServiceCore::set_versioned(std::string_view key, std::string_view json_text,
                                                 std::uint64_t version, Ttl ttl,
                                                 std::chrono::milliseconds budget, Parent parent) {
  if (version == 0) throw std::invalid_argument("a versioned write needs a version above 0");
  Put put;
  put.parent = parent;
  put.json_text = json_text;
  put.ttl = ttl;
  put.to_store.version = version;
  put.deadline = deadline_in(budget);
  co_return co_await write(key, put);
}

asio::awaitable<bool> ServiceCore::delete_versioned(std::string_view key, std::uint64_t version,
                                                    std::chrono::milliseconds budget,
                                                    Parent parent) {
  if (version == 0) throw std::invalid_argument("a versioned delete needs a version above 0");
  Put put;
  put.parent = parent;
  put.ttl = options_.tombstone_ttl;
  put.absent = true;
  put.to_store.version = version;
  put.deadline = deadline_in(budget);
  co_return co_await write(key, put);
}

asio::awaitable<std::uint64_t> ServiceCore::invalidate_pattern(std::string_view pattern,
                                                               const store::Progress& progress,
                                                               Parent parent) {
  Operation op(*this, op_invalidate, Subject::pattern, pattern, parent);
  if (!op.admitted()) op.raise(error::circuit_open, "circuit breaker open");
  auto command = op.command("SCAN");  // and UNLINK of what it finds
  auto deleted = co_await store_->delete_matching(pattern, progress);
  command.end();
  // Which keys went is not known here: the near tier starts over (their pushes follow).
  if (near_) near_->cache().flush();
  if (op.failed(deleted)) op.raise(deleted.error());
  op.span().set("cache.invalidated", static_cast<std::int64_t>(*deleted));
  co_return *deleted;
}

asio::awaitable<std::uint64_t> ServiceCore::invalidate_user_analysis_cache(
    std::string_view user_id, const store::Progress& progress, Parent parent) {
  Operation op(*this, op_invalidate, Subject::user, user_id, parent);
  // The user's index lists their entries: O(that user's entries), whatever the keyspace holds.
  const std::string index = user_analysis_index_key(user_id);
  op.span().set("cache.index", index);
  if (!op.admitted()) op.raise(error::circuit_open, "circuit breaker open");
  auto command = op.command("EVALSHA");  // the index's drain script
  auto deleted = co_await store_->delete_indexed(index, progress);
  command.end();
  if (near_) near_->cache().flush();  // as invalidate_pattern
  if (op.failed(deleted)) op.raise(deleted.error());
  op.span().set("cache.invalidated", static_cast<std::int64_t>(*deleted));
  logger()->info("invalidated cache for user op=invalidate user={} deleted={}", loggable(user_id),
                 *deleted);
  co_return *deleted;
}

asio::awaitable<bool> ServiceCore::reachable(std::chrono::milliseconds budget) {
  if (breaker_.state() != CircuitBreaker::State::closed) co_return false;
  auto probe = co_await store_->get("promptcache:probe", deadline_in(budget));
  co_return !probe.has_error();
}

}  // namespace promptcache::cache
