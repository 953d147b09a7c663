#include "server/api.hpp"
#include "server/api_input.hpp"

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
#include "promptcache/log.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/telemetry/span_context.hpp"

namespace promptcache::server {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace input;

struct Api::Outcome {
  Route route = Route::unknown;
  std::string_view cache = "-";  // hit, miss, bypass, or - when the cache was not asked
  const telemetry::SpanContext* trace = nullptr;  // the request's span, if it has one
  bool callers_trace = false;  // the request came with a valid traceparent, now continued
};

namespace {

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

namespace {

// A database call's span (OpenTelemetry's database conventions): its name, db.operation.
struct DbSpanText {
  const char* name;
  const char* operation;
};
constexpr DbSpanText db_span_text[] = {
    {"INSERT prompt_analysis_results", "INSERT"},  // upsert: INSERT … ON CONFLICT DO UPDATE
    {"SELECT prompt_analysis_results", "SELECT"},  // find
    {"DELETE prompt_analysis_results", "DELETE"},  // remove
    {"SELECT prompt_analysis_results", "SELECT"},  // page
    {"SELECT", "SELECT"},                          // ping: SELECT 1
};
static_assert(std::size(db_span_text) == static_cast<std::size_t>(DbOp::count));

}  // namespace

// `f` by reference: a closure passed by value would be a temporary in the caller's co_await
// expression, which g++ 12 destroys twice.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> Api::on_db(DbOp op, F& f,
                                                     const telemetry::SpanContext* trace) {
  using R = std::invoke_result_t<F&>;
  auto task = [&f]() -> asio::awaitable<R> { co_return f(); };
  const DbSpanText& text = db_span_text[static_cast<std::size_t>(op)];
  telemetry::ScopedSpan span(options_.tracer.get(), text.name, telemetry::SpanKind::client, trace);
  if (span.recording()) {
    span.set("db.system", db_.kind());
    span.set("db.operation", text.operation);
    if (op != DbOp::ping) span.set("db.collection.name", "prompt_analysis_results");
  }
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
    span.record_exception(redact(e.what()));
    throw Refusal{503, "the database is unavailable"};
  } catch (const std::exception& e) {
    span.record_exception(redact(e.what()));
    throw;
  }
}

cache::TracedService Api::traced(const Outcome& out) const noexcept {
  return cache_.traced(out.trace);
}

asio::awaitable<Response> Api::handle(Request& req, const Peer& peer) {
  const auto start = Clock::now();
  Outcome out;
  telemetry::ScopedSpan span = server_span(req, peer, out.callers_trace);
  out.trace = span.parent_for_children();
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
    span.record_exception(redact(e.what()));
    res = error(500, "internal error");
  }
  end_server_span(span, out, res);
  account(req.base(), out, res.result_int(), Clock::now() - start, span.parent_for_children());
  co_return res;
}

// The request's SERVER span (OpenTelemetry's HTTP semantic conventions), continuing the
// caller's W3C trace context when it sent a valid one; named by the method until the route is
// known.
telemetry::ScopedSpan Api::server_span(const Request& req, const Peer& peer,
                                       bool& callers_trace) const {
  telemetry::Tracer* tracer = options_.tracer.get();
  if (tracer == nullptr) return {};
  std::optional<telemetry::SpanContext> caller;
  if (auto tp = req.find("traceparent"); tp != req.end()) {
    auto ts = req.find("tracestate");
    caller = telemetry::parse_traceparent(
        tp->value(), ts != req.end() ? std::string_view(ts->value()) : std::string_view{});
  }
  callers_trace = caller.has_value();
  const std::string_view method =
      req.method() == http::verb::unknown ? "_OTHER" : std::string_view(req.method_string());
  telemetry::ScopedSpan span(tracer, method, telemetry::SpanKind::server,
                             caller ? &*caller : nullptr);
  if (!span.recording()) return span;
  span.set(peer.span_attributes);  // the connection's, encoded when it was accepted
  span.set("http.request.method", method);
  span.set("url.path", path_of(req.target()));
  span.set("network.protocol.version", req.version() == 10 ? "1.0" : "1.1");
  if (auto ua = req.find(http::field::user_agent); ua != req.end()) {
    span.set("user_agent.original", std::string_view(ua->value()));
  }
  return span;
}

void Api::end_server_span(telemetry::ScopedSpan& span, const Outcome& out, Response& res) const {
  const unsigned status = res.result_int();
  if (span.recording()) {
    if (out.route != Route::unknown) {
      const std::string_view name = route_name(out.route);  // "GET /v1/analyses/{prompt_hash}"
      span.update_name(name);
      span.set("http.route", name.substr(name.find(' ') + 1));
    }
    span.set("http.response.status_code", static_cast<std::int64_t>(status));
    if (status >= 500) {
      span.set("error.type", std::to_string(status));
      span.set_error(fmt::format("HTTP {}", status));
    }
  }
  // The answer names the trace it belongs to when there is one to find: the caller's own,
  // continued (sampled or not: the caller may record it elsewhere), or one recorded here. A
  // trace that started here unsampled is recorded nowhere: naming it would cost every answer a
  // header (2 % of a cached read's throughput, measured: docs/telemetry.md) for an id that
  // names nothing.
  if (span.context().valid() && (out.callers_trace || span.context().sampled)) {
    // Inserted, not set: the answer has no trace field yet, and a name given with
    // field::unknown is not looked up.
    res.insert(http::field::unknown, "traceparent",
               telemetry::traceparent_text(span.context()).view());
    if (!span.context().trace_state.empty()) {
      res.insert(http::field::unknown, "tracestate", span.context().trace_state);
    }
  }
}

void Api::account(const Request::header_type& h, const Outcome& out, unsigned status,
                  Clock::duration elapsed, const telemetry::SpanContext* trace) {
  metrics_.request(out.route, status, elapsed);
  std::optional<LogTraceScope> in_trace;  // around the log call only: no co_await here
  if (trace != nullptr)
    in_trace.emplace(trace->trace_id, trace->span_id);  // no text made unless a line is
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

// Not a coroutine: the checks throw before any frame is made, and the handler's frame is the
// only one a request adds.
asio::awaitable<Response> Api::route(Request& req, Outcome& out) {
  const auto target = boost::urls::parse_origin_form(req.target());
  if (!target) throw Refusal{400, "malformed request target"};
  std::vector<std::string> path;
  for (auto seg : target->segments()) path.push_back(seg);
  out.route = route_of(path, req.method());
  // Health checks answer without a key: load balancers probe them. Every other route needs it,
  // checked once the route is known (for the metrics). The server asked admit() before reading
  // the body; checked again here for any other caller.
  const bool health = out.route == Route::healthz || out.route == Route::readyz;
  if (!health && !carries_key(req.base(), options_.api_key)) {
    throw Refusal{401, std::string(unauthorized)};
  }
  if (out.route == Route::unknown) throw Refusal{404, "no such route"};
  if (!allows(out.route, req.method())) {
    throw Refusal{405, "method not allowed on this path", std::string(allowed_methods(out.route))};
  }
  return dispatch(req, *target, std::move(path), out);
}

asio::awaitable<Response> Api::dispatch(Request& req, boost::urls::url_view target,
                                        std::vector<std::string> path, Outcome& out) {
  switch (out.route) {
    case Route::healthz: {
      json::object ok;
      ok["status"] = "ok";
      co_return json_response(200, ok);
    }
    case Route::readyz:
      co_return co_await ready(out);
    case Route::analyses_create:
      co_return co_await create(req, out);
    case Route::analyses_lookup:
      co_return co_await lookup(req, out);
    case Route::analyses_get:
    case Route::analyses_delete: {
      const auto params = target.params();
      auto param = [&](std::string_view name) -> std::string {
        auto it = params.find(name);
        return it == params.end() ? std::string() : std::string((*it).value);
      };
      std::string hash = checked_hash(path[2]);
      std::string user = checked_user(param("user_id"), options_.max_user_id_bytes);
      std::string type = params.contains("analysis_type") ? param("analysis_type") : "default";
      type = checked_type(type, options_.max_analysis_type_chars);
      if (out.route == Route::analyses_get) co_return co_await read(hash, user, type, out);
      co_return co_await remove(hash, user, type, out);
    }
    case Route::user_cache_delete:
      co_return co_await invalidate_user(checked_user(path[2], options_.max_user_id_bytes), out);
    case Route::stats:
      co_return co_await stats();
    case Route::metrics: {
      Response res{http::status::ok, 11};
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = metrics_.render(
          cache_, dynamic_cast<const telemetry::OtlpTracer*>(options_.tracer.get()));
      co_return res;
    }
    default:
      break;
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
  const db::AnalysisRecord record = co_await on_db(DbOp::upsert, upsert, out.trace);
  std::string text = json_text(db::to_json(record));
  // The row is the truth and is durable now: whatever the cache does, the answer is 201. The
  // cache write carries the row's version, so a slower writer of an older version, or a fill
  // that read one, can never replace it; a write that failed is repaired later.
  std::string key = cache::analysis_key(record.prompt_hash, record.user_id, record.analysis_type);
  out.cache = "write";
  try {
    (void)co_await traced(out).set_versioned(key, text, static_cast<std::uint64_t>(record.version),
                                             {}, options_.cache_write_budget);
  } catch (const cache::CacheError&) {
    out.cache = "write-failed";
    repair_later(std::move(key), Item{record.prompt_hash, record.user_id, record.analysis_type});
  }
  co_return json_text_response(201, std::move(text));
}

asio::awaitable<cache::PromptCacheService::Versioned> Api::load(
    const std::string& hash, const std::string& user, const std::string& type,
    const telemetry::SpanContext* trace) {
  auto find = [this, hash, user, type]() { return db_.lookup(hash, user, type); };
  const db::Lookup found = co_await on_db(DbOp::find, find, trace);
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
    auto item = co_await load(hash, user, type, out.trace);
    found.json = std::move(item.json);
  } else {
    // Through the library's stampede protection: one database read per key at a time in this
    // process (one across processes with a lease), the row filled at the version it was read
    // with, a 404 remembered as a versioned "not found" marker. The cache's own failures and
    // budget overruns fall through to the database.
    // The loader (owning copies of the key's parts) is made only on a miss: a hit allocates
    // nothing for it.
    // The loader owns a copy of the request's span context: an early refresh calls it after the
    // request has ended.
    const auto make_loader = [this, &hash, &user, &type, &out] {
      std::optional<telemetry::SpanContext> trace;
      if (out.trace != nullptr) trace = *out.trace;
      return cache::PromptCacheService::VersionedLoader(
          [this, hash, user, type,
           trace = std::move(trace)]() -> asio::awaitable<cache::PromptCacheService::Versioned> {
            co_return co_await load(hash, user, type, trace ? &*trace : nullptr);
          });
    };
    found = co_await traced(out).get_or_load_versioned(key, make_loader, {},
                                                       options_.cache_read_budget);
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
  const db::Removal removal = co_await on_db(DbOp::remove, erase, out.trace);
  out.cache = "delete";
  if (removal.version > 0) {
    // A tombstone at the delete's version: no fill that read the row before it lands after it.
    std::string key = cache::analysis_key(hash, user, type);
    try {
      (void)co_await traced(out).delete_versioned(key, static_cast<std::uint64_t>(removal.version),
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
    n = co_await traced(out).invalidate_user_analysis_cache(user);
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

asio::awaitable<Response> Api::ready(const Outcome& out) {
  json::object body;
  auto ping = [this]() { db_.ping(); };
  try {
    co_await on_db(DbOp::ping, ping, out.trace);
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
    now = co_await load(item.hash, item.user, item.type, nullptr);  // background: its own trace
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
