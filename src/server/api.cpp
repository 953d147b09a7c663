#include "server/api.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>

#include "promptcache/cache/keys.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/redact.hpp"

namespace promptcache::server {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct Api::Outcome {
  Route route = Route::unknown;
  std::string_view cache = "-";  // hit, miss, bypass, or - when the cache was not asked
};

namespace {

// A request the API refuses, with the status and the message the client sees.
struct Refusal {
  unsigned status;
  std::string message;
  std::string allow = {};  // 405: the methods the path takes
};

// A request path for the access log, quoted; escaped as fmt's {:?} does only when it holds
// something to escape (rare: the common path costs a copy, not fmt's escaping per character).
struct LoggedPath {
  std::string_view text;
};

// A request target for the logs: its path, never its query (which may carry a key or a token:
// `?api_key=…`).
std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace
}  // namespace promptcache::server

template <>
struct fmt::formatter<promptcache::server::LoggedPath> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(const promptcache::server::LoggedPath& p, Context& ctx) const {
    const bool plain = std::all_of(p.text.begin(), p.text.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
    });
    if (!plain) return fmt::format_to(ctx.out(), "{:?}", p.text);
    auto out = ctx.out();
    *out++ = '"';
    out = std::copy(p.text.begin(), p.text.end(), out);
    *out++ = '"';
    return out;
  }
};

namespace promptcache::server {
namespace {

// `body` is serialized JSON.
Response json_text_response(unsigned status, std::string body) {
  Response res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response json_response(unsigned status, const json::value& body) {
  return json_text_response(status, json_text(body));
}

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// What is stored is what is served: a number no double can keep exactly as written (out of
// range, underflowing to 0, an integer beyond 64 bits) is refused, naming its field.
json::object parse_body(const Request& req) {
  boost::system::error_code ec;
  json::value v = parse_exact(req.body(), ec);
  if (ec) throw Refusal{400, fmt::format("malformed JSON: {}", ec.message())};
  if (!v.is_object()) throw Refusal{422, "the body must be a JSON object"};
  if (auto bad = find_unrepresentable_number(req.body())) {
    throw Refusal{422, fmt::format("{}: the number {} is {}",
                                   bad->field.empty() ? std::string("body") : bad->field,
                                   bad->literal, bad->reason)};
  }
  return std::move(v.as_object());
}

// PostgreSQL text cannot hold U+0000 (libpq would cut the string there, turning one user id
// into another), so no backend gets one: refused with the field's name.
bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

bool has_nul(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return has_nul(std::string_view(v.get_string()));
    case json::kind::array:
      return std::any_of(v.get_array().begin(), v.get_array().end(),
                         [](const json::value& e) { return has_nul(e); });
    case json::kind::object:
      return std::any_of(v.get_object().begin(), v.get_object().end(), [](const auto& kv) {
        return has_nul(std::string_view(kv.key())) || has_nul(kv.value());
      });
    default:
      return false;
  }
}

void refuse_nul(std::string_view name, bool found) {
  if (found) throw Refusal{422, fmt::format("{}: must not contain NUL characters", name)};
}

// A string field: required unless `fallback` is given; `max` in characters.
std::string string_field(const json::object& o, std::string_view name, std::size_t max,
                         const char* fallback = nullptr, unsigned too_long = 422) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) {
    if (fallback != nullptr) return fallback;
    throw Refusal{422, fmt::format("{}: required", name)};
  }
  if (!v->is_string()) throw Refusal{422, fmt::format("{}: must be a string", name)};
  const json::string& s = v->as_string();
  if (s.empty()) throw Refusal{422, fmt::format("{}: must not be empty", name)};
  refuse_nul(name, has_nul(std::string_view(s)));
  if (utf8_chars(s) > max) {
    throw Refusal{too_long, fmt::format("{}: longer than {} characters", name, max)};
  }
  return std::string(s);
}

std::string checked_user(std::string_view user, std::size_t max_bytes) {
  if (user.empty()) throw Refusal{422, "user_id: required"};
  refuse_nul("user_id", has_nul(user));
  if (user.size() > max_bytes) {
    throw Refusal{422, fmt::format("user_id: longer than {} bytes", max_bytes)};
  }
  return std::string(user);
}

std::string checked_type(std::string_view type, std::size_t max) {
  if (type.empty()) throw Refusal{422, "analysis_type: must not be empty"};
  refuse_nul("analysis_type", has_nul(type));
  if (utf8_chars(type) > max) {
    throw Refusal{422, fmt::format("analysis_type: longer than {} characters", max)};
  }
  return std::string(type);
}

std::string checked_hash(std::string_view hash) {
  std::string h(hash);
  const bool hex =
      h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
  if (!hex) throw Refusal{422, "prompt_hash: must be 64 hexadecimal characters (SHA-256)"};
  std::transform(h.begin(), h.end(), h.begin(),
                 [](char c) { return static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c); });
  return h;
}

// Compares without leaking, through timing, how much of a guess was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// The route a path names (for metrics), before anything else is checked.
Route route_of(const std::vector<std::string>& path, http::verb method) {
  auto is = [&](std::initializer_list<std::string_view> expected) {
    return path.size() == expected.size() && std::equal(path.begin(), path.end(), expected.begin());
  };
  if (is({"v1", "analyses"})) return Route::analyses_create;
  if (is({"v1", "analyses", "lookup"})) return Route::analyses_lookup;
  if (path.size() == 3 && path[0] == "v1" && path[1] == "analyses") {
    return method == http::verb::delete_ ? Route::analyses_delete : Route::analyses_get;
  }
  if (path.size() == 5 && path[0] == "v1" && path[1] == "users" && path[3] == "analyses" &&
      path[4] == "cache") {
    return Route::user_cache_delete;
  }
  if (is({"v1", "stats"})) return Route::stats;
  if (is({"metrics"})) return Route::metrics;
  return Route::unknown;
}

// Whether the request carries the key ("Authorization: Bearer KEY"; any request when there is
// no key). The scheme is case-insensitive (RFC 9110 §11.1): "bearer" and "BEARER" are Bearer.
bool carries_key(const Request::header_type& h, std::string_view key) {
  if (key.empty()) return true;
  const std::string_view auth = h[http::field::authorization];
  constexpr std::string_view bearer = "bearer ";
  const bool is_bearer = auth.size() >= bearer.size() &&
                         std::equal(bearer.begin(), bearer.end(), auth.begin(), [](char a, char b) {
                           return a == std::tolower(static_cast<unsigned char>(b));
                         });
  return is_bearer && same_secret(auth.substr(bearer.size()), key);
}

constexpr std::string_view unauthorized = "missing or wrong API key";

}  // namespace

Api::Api(cache::PromptCacheService& cache, db::Database& db, ApiOptions options)
    : cache_(cache),
      db_(db),
      options_(std::move(options)),
      db_threads_(std::max<std::size_t>(options_.db_threads, 1)),
      access_log_(spdlog::get("access")) {
  if (!access_log_) access_log_ = spdlog::default_logger();
}

Api::~Api() {
  db_threads_.join();
}

Response Api::error(unsigned status, std::string_view message) {
  json::object body;
  body["error"] = redact(message);
  return json_response(status, body);
}

std::size_t Api::pending_invalidations() const {
  std::lock_guard lock(pending_mutex_);
  return pending_.size();
}

bool Api::is_pending(const std::string& key) const {
  std::lock_guard lock(pending_mutex_);
  return pending_.count(key) > 0;
}

// `f` by reference: a closure passed by value would be a temporary in the caller's co_await
// expression, which g++ 12 destroys twice.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> Api::on_db(DbOp op, F& f) {
  using R = std::invoke_result_t<F&>;
  auto task = [&f]() -> asio::awaitable<R> { co_return f(); };
  try {
    if constexpr (std::is_void_v<R>) {
      co_await asio::co_spawn(db_threads_.get_executor(), std::move(task), asio::use_awaitable);
      metrics_.db_call(op, true);
    } else {
      R result =
          co_await asio::co_spawn(db_threads_.get_executor(), std::move(task), asio::use_awaitable);
      metrics_.db_call(op, true);
      co_return result;
    }
  } catch (const db::DbError& e) {
    metrics_.db_call(op, false);
    spdlog::error("database call failed op={} error=\"{}\"", static_cast<int>(op), e.what());
    throw Refusal{503, "the database is unavailable"};
  }
}

asio::awaitable<Response> Api::handle(Request& req) {
  const auto start = Clock::now();
  Outcome out;
  Response res;
  try {
    res = co_await route(req, out);
  } catch (const Refusal& r) {
    res = error(r.status, r.message);
    if (!r.allow.empty()) res.set(http::field::allow, r.allow);
    if (r.status == 401) res.set(http::field::www_authenticate, "Bearer");
  } catch (const std::exception& e) {
    spdlog::error("request failed method={} path={:?} error=\"{}\"",
                  std::string_view(req.method_string()), path_of(req.target()), e.what());
    res = error(500, "internal error");
  }
  account(req.base(), out, res.result_int(), Clock::now() - start);
  co_return res;
}

void Api::account(const Request::header_type& h, const Outcome& out, unsigned status,
                  Clock::duration elapsed) {
  metrics_.request(out.route, status, elapsed);
  access_log_->info("method={} path={} status={} duration_us={} cache={}",
                    std::string_view(h.method_string()), LoggedPath{path_of(h.target())}, status,
                    std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count(),
                    out.cache);
}

std::optional<Response> Api::admit(const Request::header_type& h) {
  if (carries_key(h, options_.api_key)) return std::nullopt;
  const auto start = Clock::now();
  std::vector<std::string> path;
  if (auto target = boost::urls::parse_origin_form(h.target())) {
    for (auto seg : target->segments()) path.push_back(seg);
  }
  // Health checks answer without a key: load balancers probe them.
  if (path.size() == 1 && (path[0] == "healthz" || path[0] == "readyz")) return std::nullopt;
  Outcome out;
  out.route = route_of(path, h.method());
  Response res = error(401, unauthorized);
  res.set(http::field::www_authenticate, "Bearer");
  account(h, out, 401, Clock::now() - start);
  return res;
}

asio::awaitable<Response> Api::route(Request& req, Outcome& out) {
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) throw Refusal{400, "malformed request target"};
  std::vector<std::string> path;
  for (auto seg : target->segments()) path.push_back(seg);
  auto param = [&](std::string_view name) -> std::optional<std::string> {
    auto it = target->params().find(name);
    if (it == target->params().end()) return std::nullopt;
    return (*it).value;
  };
  const auto method = req.method();
  auto only = [&](http::verb allowed) {
    if (method != allowed) {
      throw Refusal{405, "method not allowed on this path", std::string(http::to_string(allowed))};
    }
  };
  auto is = [&](std::initializer_list<std::string_view> expected) {
    return path.size() == expected.size() && std::equal(path.begin(), path.end(), expected.begin());
  };

  // Health checks answer without a key: load balancers probe them.
  if (is({"healthz"})) {
    out.route = Route::healthz;
    only(http::verb::get);
    json::object ok;
    ok["status"] = "ok";
    co_return json_response(200, ok);
  }
  if (is({"readyz"})) {
    out.route = Route::readyz;
    only(http::verb::get);
    co_return co_await ready();
  }
  // Every other route needs the key, checked once the route is known (for the metrics).
  out.route = route_of(path, method);
  // (The server asked admit() before reading the body; checked again here for any other caller.)
  if (!carries_key(req.base(), options_.api_key)) throw Refusal{401, std::string(unauthorized)};

  if (is({"v1", "analyses"})) {
    only(http::verb::post);
    co_return co_await create(req, out);
  }
  if (is({"v1", "analyses", "lookup"})) {
    only(http::verb::post);
    co_return co_await lookup(req, out);
  }
  if (path.size() == 3 && path[0] == "v1" && path[1] == "analyses") {
    if (method != http::verb::get && method != http::verb::delete_) {
      throw Refusal{405, "method not allowed on this path", "GET, DELETE"};
    }
    std::string hash = checked_hash(path[2]);
    std::string user = checked_user(param("user_id").value_or(""), options_.max_user_id_bytes);
    std::string type =
        checked_type(param("analysis_type").value_or("default"), options_.max_analysis_type_chars);
    if (method == http::verb::get) co_return co_await read(hash, user, type, out);
    co_return co_await remove(hash, user, type, out);
  }
  if (path.size() == 5 && path[0] == "v1" && path[1] == "users" && path[3] == "analyses" &&
      path[4] == "cache") {
    only(http::verb::delete_);
    co_return co_await invalidate_user(checked_user(path[2], options_.max_user_id_bytes), out);
  }
  if (is({"v1", "stats"})) {
    only(http::verb::get);
    co_return co_await stats();
  }
  if (is({"metrics"})) {
    only(http::verb::get);
    Response res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_.render(cache_);
    co_return res;
  }
  throw Refusal{404, "no such route"};
}

asio::awaitable<Response> Api::create(Request& req, Outcome& out) {
  const json::object body = parse_body(req);
  db::AnalysisInput in;
  in.prompt_text = string_field(body, "prompt", options_.max_prompt_chars, nullptr, 413);
  in.user_id = checked_user(string_field(body, "user_id", options_.max_user_id_bytes),
                            options_.max_user_id_bytes);
  in.analysis_type =
      string_field(body, "analysis_type", options_.max_analysis_type_chars, "default");
  const json::value* scores = body.if_contains("quality_scores");
  if (scores == nullptr || !scores->is_object()) {
    throw Refusal{422, "quality_scores: required, a JSON object"};
  }
  refuse_nul("quality_scores", has_nul(*scores));
  in.quality_scores = scores->as_object();
  const json::value* suggestions = body.if_contains("improvement_suggestions");
  if (suggestions == nullptr || !suggestions->is_array()) {
    throw Refusal{422, "improvement_suggestions: required, a JSON array"};
  }
  refuse_nul("improvement_suggestions", has_nul(*suggestions));
  in.improvement_suggestions = suggestions->as_array();
  if (const json::value* meta = body.if_contains("metadata"); meta != nullptr && !meta->is_null()) {
    if (!meta->is_object()) throw Refusal{422, "metadata: must be a JSON object"};
    refuse_nul("metadata", has_nul(*meta));
    in.metadata = meta->as_object();
  }
  if (const json::value* ms = body.if_contains("processing_time_ms");
      ms != nullptr && !ms->is_null()) {
    if (ms->is_int64() && ms->as_int64() >= 0) {
      in.processing_time_ms = ms->as_int64();
    } else if (ms->is_uint64() && ms->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      in.processing_time_ms = static_cast<std::int64_t>(ms->as_uint64());
    } else {
      throw Refusal{422, "processing_time_ms: must be a non-negative integer"};
    }
  }
  if (body.contains("model_version") && !body.at("model_version").is_null()) {
    in.model_version = string_field(body, "model_version", options_.max_model_version_bytes);
  }
  in.prompt_hash = cache::prompt_hash(in.prompt_text);

  auto upsert = [this, in]() { return db_.upsert(in); };
  const db::AnalysisRecord record = co_await on_db(DbOp::upsert, upsert);
  std::string text = json_text(db::to_json(record));
  // The row is the truth and is durable now: whatever the cache does, the answer is 201. The
  // cache write carries the row's version, so a slower writer of an older version, or a fill
  // that read one, can never replace it; a write that failed is repaired later.
  std::string key = cache::analysis_key(record.prompt_hash, record.user_id, record.analysis_type);
  out.cache = "write";
  try {
    (void)co_await cache_.set_versioned(key, text, static_cast<std::uint64_t>(record.version), {},
                                        options_.cache_write_budget);
  } catch (const cache::CacheError&) {
    out.cache = "write-failed";
    repair_later(std::move(key), Item{record.prompt_hash, record.user_id, record.analysis_type});
  }
  co_return json_text_response(201, std::move(text));
}

asio::awaitable<cache::PromptCacheService::Versioned> Api::load(const std::string& hash,
                                                                const std::string& user,
                                                                const std::string& type) {
  auto find = [this, hash, user, type]() { return db_.lookup(hash, user, type); };
  const db::Lookup found = co_await on_db(DbOp::find, find);
  cache::PromptCacheService::Versioned out;
  out.version = static_cast<std::uint64_t>(found.version);
  if (!found.row) co_return out;
  if (!found.row->corrupt.empty()) {
    metrics_.corrupt_row();
    spdlog::error(
        "stored analysis cannot be decoded prompt_hash={} user_id={:?} analysis_type={:?} "
        "problem=\"{}\"",
        hash, user, type, found.row->corrupt);
    throw Refusal{500, fmt::format("the stored analysis (prompt_hash {}, user_id {:?}, "
                                   "analysis_type {:?}) cannot be decoded: {}",
                                   hash, user, type, found.row->corrupt)};
  }
  out.json = json_text(db::to_json(*found.row));
  co_return out;
}

asio::awaitable<Response> Api::read(std::string hash, std::string user, std::string type,
                                    Outcome& out) {
  const std::string key = cache::analysis_key(hash, user, type);
  cache::PromptCacheService::Lookup found;
  if (is_pending(key)) {
    // The cache may hold an older state until the repair lands: the database answers.
    out.cache = "bypass";
    auto item = co_await load(hash, user, type);
    found.json = std::move(item.json);
  } else {
    // Through the library's stampede protection: one database read per key at a time in this
    // process (one across processes with a lease), the row filled at the version it was read
    // with, a 404 remembered as a versioned "not found" marker. The cache's own failures and
    // budget overruns fall through to the database.
    // The loader (owning copies of the key's parts) is made only on a miss: a hit allocates
    // nothing for it.
    const auto make_loader = [this, &hash, &user, &type] {
      return cache::PromptCacheService::VersionedLoader(
          [this, hash, user, type]() -> asio::awaitable<cache::PromptCacheService::Versioned> {
            co_return co_await load(hash, user, type);
          });
    };
    found = co_await cache_.get_or_load_versioned(key, make_loader, {}, options_.cache_read_budget);
    out.cache = found.hit ? "hit" : "miss";
  }
  if (!found.json) {
    Response res = error(404, "no analysis for this prompt_hash, user_id and analysis_type");
    res.set("X-Cache", out.cache);
    co_return res;
  }
  Response res = json_text_response(200, std::move(*found.json));
  res.set("X-Cache", out.cache);
  co_return res;
}

asio::awaitable<Response> Api::lookup(Request& req, Outcome& out) {
  const json::object body = parse_body(req);
  const std::string prompt = string_field(body, "prompt", options_.max_prompt_chars, nullptr, 413);
  std::string user = checked_user(string_field(body, "user_id", options_.max_user_id_bytes),
                                  options_.max_user_id_bytes);
  std::string type =
      string_field(body, "analysis_type", options_.max_analysis_type_chars, "default");
  co_return co_await read(cache::prompt_hash(prompt), std::move(user), std::move(type), out);
}

asio::awaitable<Response> Api::remove(std::string hash, std::string user, std::string type,
                                      Outcome& out) {
  auto erase = [this, hash, user, type]() { return db_.remove(hash, user, type); };
  const db::Removal removal = co_await on_db(DbOp::remove, erase);
  out.cache = "delete";
  if (removal.version > 0) {
    // A tombstone at the delete's version: no fill that read the row before it lands after it.
    std::string key = cache::analysis_key(hash, user, type);
    try {
      (void)co_await cache_.delete_versioned(key, static_cast<std::uint64_t>(removal.version),
                                             options_.cache_write_budget);
    } catch (const cache::CacheError&) {
      out.cache = "delete-failed";
      repair_later(std::move(key), Item{hash, user, type});
    }
  }
  if (!removal.removed) {
    throw Refusal{404, "no analysis for this prompt_hash, user_id and analysis_type"};
  }
  json::object body;
  body["deleted"] = true;
  body["prompt_hash"] = hash;
  co_return json_response(200, body);
}

asio::awaitable<Response> Api::invalidate_user(std::string user, Outcome& out) {
  out.cache = "invalidate";
  std::uint64_t n = 0;
  try {
    n = co_await cache_.invalidate_user_analysis_cache(user);
  } catch (const cache::CacheError&) {
    throw Refusal{503, "the cache is unavailable"};
  }
  json::object body;
  body["invalidated"] = n;
  co_return json_response(200, body);
}

asio::awaitable<Response> Api::stats() {
  json::object s = co_await cache_.get_cache_stats();
  s["pending_invalidations"] = pending_invalidations();
  // The cache could not be asked: the client's own figures still come, with a 503.
  co_return json_response(s.contains("error") ? 503 : 200, s);
}

asio::awaitable<Response> Api::ready() {
  json::object body;
  auto ping = [this]() { db_.ping(); };
  try {
    co_await on_db(DbOp::ping, ping);
  } catch (const Refusal&) {
    body["status"] = "unavailable";
    body["database"] = "unreachable";
    co_return json_response(503, body);
  }
  body["status"] = "ready";
  body["database"] = "ok";
  // Reads fall back to the database, so a cache that is down (unreachable, hung past the read
  // budget, or skipped by the open breaker) degrades the service, no more: still 200.
  body["cache"] = co_await cache_.reachable(options_.cache_read_budget) ? "ok" : "degraded";
  co_return json_response(200, body);
}

void Api::repair_later(std::string key, Item item) {
  spdlog::warn("cache entry could not be written; bypassed and repaired later key={:?}", key);
  std::lock_guard lock(pending_mutex_);
  item.ticket = ++next_ticket_;
  pending_.insert_or_assign(std::move(key), std::move(item));
}

asio::awaitable<bool> Api::repair(const std::string& key, const Item& item) {
  cache::PromptCacheService::Versioned now;
  try {
    now = co_await load(item.hash, item.user, item.type);
  } catch (const Refusal&) {
    co_return false;  // the database is down (or the row corrupt): not repaired yet
  }
  try {
    if (now.json) {
      (void)co_await cache_.set_versioned(key, *now.json, now.version);
    } else if (now.version > 0) {
      (void)co_await cache_.delete_versioned(key, now.version);
    }
  } catch (const cache::CacheError&) {
    co_return false;
  }
  co_return true;
}

void Api::start_invalidation_retry(const asio::any_io_executor& ex) {
  asio::co_spawn(ex, retry_invalidations(), asio::detached);
}

asio::awaitable<void> Api::retry_invalidations() {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  for (;;) {
    tick.expires_after(options_.invalidation_retry);
    boost::system::error_code ec;
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    std::vector<std::pair<std::string, Item>> items;
    {
      std::lock_guard lock(pending_mutex_);
      items.assign(pending_.begin(), pending_.end());
    }
    for (const auto& [key, item] : items) {
      if (!co_await repair(key, item)) break;  // still down: the next tick tries again
      // A write that failed after this repair read the database has registered the key anew
      // (a new ticket): only the entry repaired here may go.
      std::lock_guard lock(pending_mutex_);
      auto it = pending_.find(key);
      if (it != pending_.end() && it->second.ticket == item.ticket) pending_.erase(it);
    }
  }
}

}  // namespace promptcache::server
