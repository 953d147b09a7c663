// `promptcache serve` traced, against a real OTLP receiver (@elastic/mockotlpserver, or the same
// script's failing endpoint): the SERVER span of a request in the caller's trace, the trace
// context in the answer, the samplers, a receiver that is down, refusing or slow, the flush at
// shutdown, and no secret in what is exported or logged.
#include <gtest/gtest.h>
#include <signal.h>

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "promptcache/telemetry/otlp.hpp"
#include "promptcache/telemetry/span_context.hpp"
#include "support/http_client.hpp"
#include "support/otlp_receiver.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"
#include "telemetry/otlp_http.hpp"
#include "telemetry/sansio/http_exchange.hpp"

namespace promptcache::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Spans = std::vector<json::object>;

constexpr std::string_view caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view caller_span = "00f067aa0ba902b7";
const std::string hash(64, 'a');

struct TempDir {
  std::string path = detail::make_temp_dir("promptcache-tracing-");
  ~TempDir() { detail::remove_dir(path); }
};

// serve on SQLite in `dir`, exporting to `endpoint` with `env` besides.
ServeProcess traced_serve(const TempDir& dir, const std::string& endpoint, EnvVars env = {}) {
  env.emplace_back("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
  const bool delay_given = std::any_of(
      env.begin(), env.end(), [](const auto& e) { return e.first == "OTEL_BSP_SCHEDULE_DELAY"; });
  if (!delay_given) env.emplace_back("OTEL_BSP_SCHEDULE_DELAY", "50");
  return ServeProcess({"serve", "--listen", "127.0.0.1:0", "--db",
                       "sqlite://" + dir.path + "/db.sqlite", "--threads", "2"},
                      env);
}

std::string text_of(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

bool is_decimal(const json::value& v) {
  if (!v.is_string() || v.as_string().empty()) return false;
  const auto& s = v.as_string();
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_hex(const json::value& v, std::size_t length) {
  if (!v.is_string() || v.as_string().size() != length) return false;
  const auto& s = v.as_string();
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The value inside an AnyValue ({"stringValue": …}), as text.
std::string attr(const json::object& span, std::string_view key) {
  const json::value v = otlp_attribute(span, key);
  if (!v.is_object() || v.as_object().empty()) return "<absent>";
  return text_of(v.as_object().begin()->value());
}

// The spans of OTLP kind `kind` (1 internal, 2 server, 3 client).
Spans of_kind(const Spans& spans, int kind) {
  Spans out;
  std::copy_if(spans.begin(), spans.end(), std::back_inserter(out),
               [kind](const json::object& s) { return s.at("kind") == kind; });
  return out;
}

// The one span named `name` whose attribute `key` is `value` (an empty object if none or more).
json::object one_span(const Spans& spans, std::string_view name, std::string_view key = {},
                      std::string_view value = {}) {
  json::object found;
  int matches = 0;
  for (const auto& s : spans) {
    if (text_of(s.at("name")) != name) continue;
    if (!key.empty() && attr(s, key) != value) continue;
    found = s;
    ++matches;
  }
  EXPECT_EQ(matches, 1) << name << " " << key << "=" << value;
  return matches == 1 ? found : json::object();
}

// The exporter's counter from /metrics.
std::uint64_t otel_metric(HttpClient& c, std::string_view series) {
  const std::string body = c.request("GET", "/metrics").body;
  const std::string line = "\n" + std::string(series) + " ";  // the sample, not its # HELP
  const auto at = body.find(line);
  if (at == std::string::npos) return ~std::uint64_t{0};
  return std::stoull(body.substr(at + line.size()));
}

// Polls /metrics until the exporter's `series` is above zero (exports run on their own thread);
// its value then, or 0 after `timeout`.
std::uint64_t wait_for_metric(HttpClient& c, std::string_view series,
                              std::chrono::milliseconds timeout = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::uint64_t v = otel_metric(c, series);
    if (v > 0 || std::chrono::steady_clock::now() >= deadline) return v;
    std::this_thread::sleep_for(20ms);
  }
}

// A request in the caller's trace, exported in `encoding` ("protobuf" or "json") as `env` asks:
// the SERVER span with every field and attribute, the answer's trace context, the resource.
void expect_server_span_in_callers_trace(const EnvVars& env, std::string_view encoding) {
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint(), env);
  HttpClient c(server.port());
  const HttpResponse r =
      c.request("GET", fmt::format("/v1/analyses/{}?user_id=alice&secret_query=1", hash), {},
                {{"traceparent", fmt::format("00-{}-{}-01", caller_trace, caller_span)},
                 {"tracestate", "vendor=opaque"},
                 {"User-Agent", "tracing-test/1"}});
  EXPECT_EQ(r.status, 404u);
  // The answer names the request's own span in the caller's trace.
  const auto answered = telemetry::parse_traceparent(r.header("traceparent"));
  ASSERT_TRUE(answered) << r.header("traceparent");
  EXPECT_EQ(telemetry::to_hex(answered->trace_id), caller_trace);
  EXPECT_NE(telemetry::to_hex(answered->span_id), caller_span);
  EXPECT_TRUE(answered->sampled);
  EXPECT_EQ(r.header("tracestate"), "vendor=opaque");

  const Spans spans = receiver.wait_for(
      [](const Spans& s) { return !of_kind(s, 2).empty(); });  // its children come too
  const Spans servers = of_kind(spans, 2);
  ASSERT_EQ(servers.size(), 1u);
  const json::object& span = servers[0];
  EXPECT_TRUE(is_hex(span.at("traceId"), 32));
  EXPECT_TRUE(is_hex(span.at("spanId"), 16));
  EXPECT_EQ(text_of(span.at("traceId")), caller_trace);
  EXPECT_EQ(text_of(span.at("parentSpanId")), caller_span);
  EXPECT_EQ(text_of(span.at("spanId")), telemetry::to_hex(answered->span_id));
  EXPECT_EQ(text_of(span.at("traceState")), "vendor=opaque");
  EXPECT_EQ(span.at("kind"), 2);  // SERVER
  EXPECT_EQ(text_of(span.at("name")), "GET /v1/analyses/{prompt_hash}");
  ASSERT_TRUE(is_decimal(span.at("startTimeUnixNano")));
  ASSERT_TRUE(is_decimal(span.at("endTimeUnixNano")));
  EXPECT_LE(std::stoull(text_of(span.at("startTimeUnixNano"))),
            std::stoull(text_of(span.at("endTimeUnixNano"))));
  EXPECT_EQ(attr(span, "http.request.method"), "GET");
  EXPECT_EQ(attr(span, "http.route"), "/v1/analyses/{prompt_hash}");
  EXPECT_EQ(attr(span, "http.response.status_code"), "404");
  EXPECT_EQ(attr(span, "url.path"), "/v1/analyses/" + hash);  // no query
  EXPECT_EQ(attr(span, "server.address"), "127.0.0.1");
  EXPECT_EQ(attr(span, "server.port"), std::to_string(server.port()));
  EXPECT_EQ(attr(span, "client.address"), "127.0.0.1");
  EXPECT_EQ(attr(span, "url.scheme"), "http");
  EXPECT_EQ(attr(span, "network.protocol.version"), "1.1");
  EXPECT_EQ(attr(span, "user_agent.original"), "tracing-test/1");
  // The resource names the service.
  const json::value request = receiver.requests().at(0);
  const auto& resource = request.at("resourceSpans").at(0).at("resource").as_object();
  EXPECT_EQ(attr(resource, "service.name"), "promptcache");
  const auto& scope = request.at("resourceSpans").at(0).at("scopeSpans").at(0).at("scope");
  EXPECT_EQ(text_of(scope.at("name")), "promptcache");
  for (const auto& r : receiver.requests()) EXPECT_EQ(text_of(r.at("encoding")), encoding);
}

TEST(Tracing, a_request_is_a_server_span_in_the_callers_trace_and_the_answer_carries_it) {
  // OTLP/HTTP protobuf unless asked otherwise, as the standard's exporters.
  expect_server_span_in_callers_trace({}, "protobuf");
}

TEST(Tracing, otlp_json_carries_the_same_span_when_asked) {
  // The receiver takes JSON only as exactly "Content-Type: application/json".
  expect_server_span_in_callers_trace({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}, "json");
}

// Stops serve (its shutdown flushes the queue) and returns the spans the receiver got.
Spans after_shutdown(ServeProcess& server, const OtlpReceiver& receiver) {
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0) << server.stderr_text();
  return receiver.spans();
}

// Whether `child` is a child of `parent` in `parent`'s trace.
::testing::AssertionResult child_of(const json::object& child, const json::object& parent) {
  if (child.empty() || parent.empty()) return ::testing::AssertionFailure() << "no such span";
  if (child.at("traceId") != parent.at("traceId")) {
    return ::testing::AssertionFailure() << text_of(child.at("name")) << " in another trace";
  }
  if (!child.contains("parentSpanId") || child.at("parentSpanId") != parent.at("spanId")) {
    return ::testing::AssertionFailure()
           << text_of(child.at("name")) << "'s parent is not " << text_of(parent.at("name"));
  }
  return ::testing::AssertionSuccess();
}

// A sampled traceparent of the caller's in the trace whose id is `trace` 32 times.
HttpHeaders in_trace(char trace) {
  return HttpHeaders{
      {"traceparent", fmt::format("00-{}-{}-01", std::string(32, trace), caller_span)}};
}

// The spans of that trace.
Spans of_trace(const Spans& spans, char trace) {
  Spans out;
  std::copy_if(spans.begin(), spans.end(), std::back_inserter(out), [&](const json::object& s) {
    return text_of(s.at("traceId")) == std::string(32, trace);
  });
  return out;
}

// POSTs an analysis of `prompt` for `user` in `trace`; its prompt_hash (empty on failure).
std::string create_in_trace(HttpClient& c, std::string_view prompt, std::string_view user,
                            char trace) {
  const std::string body = fmt::format(
      R"({{"prompt":"{}","user_id":"{}","quality_scores":{{}},"improvement_suggestions":[]}})",
      prompt, user);
  const HttpResponse created = c.request("POST", "/v1/analyses", body, in_trace(trace));
  EXPECT_EQ(created.status, 201u) << created.body;
  if (created.status != 201u) return {};
  return std::string(json::parse(created.body).at("prompt_hash").as_string());
}

TEST(Tracing, a_requests_cache_and_database_calls_are_children_of_its_server_span) {
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint());
  HttpClient c(server.port());
  // A write (the database, then the cache), a hit, a miss (the database through the cache's
  // load, the "not found" remembered), a delete.
  const std::string created_hash = create_in_trace(c, "traced", "alice", '1');
  ASSERT_FALSE(created_hash.empty());
  const std::string path = fmt::format("/v1/analyses/{}?user_id=alice", created_hash);
  EXPECT_EQ(c.request("GET", path, {}, in_trace('2')).status, 200u);
  const std::string missing = fmt::format("/v1/analyses/{}?user_id=bob", hash);
  EXPECT_EQ(c.request("GET", missing, {}, in_trace('3')).status, 404u);
  EXPECT_EQ(c.request("DELETE", path, {}, in_trace('4')).status, 200u);
  const Spans spans = after_shutdown(server, receiver);
  const auto server_of = [](const Spans& trace) {
    const Spans servers = of_kind(trace, 2);
    EXPECT_EQ(servers.size(), 1u);
    return servers.empty() ? json::object() : servers[0];
  };
  for (const auto& s : spans) {
    EXPECT_TRUE(is_hex(s.at("spanId"), 16));
    EXPECT_TRUE(is_decimal(s.at("startTimeUnixNano")));
  }

  {  // POST: INSERT, then cache_set of the row's version
    const Spans trace = of_trace(spans, '1');
    EXPECT_EQ(trace.size(), 3u);
    const json::object request = server_of(trace);
    const json::object insert = one_span(trace, "INSERT prompt_analysis_results");
    EXPECT_TRUE(child_of(insert, request));
    EXPECT_EQ(insert.at("kind"), 3);  // CLIENT
    EXPECT_EQ(attr(insert, "db.system"), "sqlite");
    EXPECT_EQ(attr(insert, "db.operation"), "INSERT");
    const json::object set = one_span(trace, "cache_set");
    EXPECT_TRUE(child_of(set, request));
    EXPECT_EQ(set.at("kind"), 1);  // INTERNAL
    EXPECT_EQ(attr(set, "cache.key"),
              fmt::format("prompt:analysis:{}:{{alice}}:default", created_hash));
    EXPECT_EQ(attr(set, "cache.tier"), "local");
    EXPECT_EQ(attr(set, "cache.version"), "1");
  }
  {  // GET, a hit: the read alone, no load and no database
    const Spans trace = of_trace(spans, '2');
    EXPECT_EQ(trace.size(), 2u);
    const json::object request = server_of(trace);
    const json::object read = one_span(trace, "cache_get");
    EXPECT_TRUE(child_of(read, request));
    EXPECT_EQ(attr(read, "cache.hit"), "true");
    EXPECT_EQ(attr(read, "cache.key"),
              fmt::format("prompt:analysis:{}:{{alice}}:default", created_hash));
    EXPECT_TRUE(of_kind(trace, 3).empty());
  }
  {  // GET, a miss: the read, then the load — the database's SELECT, the "not found" stored
    const Spans trace = of_trace(spans, '3');
    EXPECT_EQ(trace.size(), 5u);
    const json::object request = server_of(trace);
    const json::object read = one_span(trace, "cache_get");
    EXPECT_TRUE(child_of(read, request));
    EXPECT_EQ(attr(read, "cache.hit"), "false");
    const json::object load = one_span(trace, "cache_fallback");
    EXPECT_TRUE(child_of(load, request));
    EXPECT_EQ(attr(load, "cache.hit"), "false");
    const json::object select = one_span(trace, "SELECT prompt_analysis_results");
    EXPECT_TRUE(child_of(select, request));
    EXPECT_EQ(attr(select, "db.operation"), "SELECT");
    EXPECT_EQ(attr(select, "db.collection.name"), "prompt_analysis_results");
    const json::object fill = one_span(trace, "cache_set");
    EXPECT_TRUE(child_of(fill, load));
  }
  {  // DELETE: the row, then the tombstone
    const Spans trace = of_trace(spans, '4');
    EXPECT_EQ(trace.size(), 3u);
    const json::object request = server_of(trace);
    EXPECT_TRUE(child_of(one_span(trace, "DELETE prompt_analysis_results"), request));
    const json::object tombstone = one_span(trace, "cache_set");
    EXPECT_TRUE(child_of(tombstone, request));
    EXPECT_EQ(attr(tombstone, "cache.version"), "2");
  }
  // Nothing outside the callers' traces: no cache span is a trace of its own.
  EXPECT_EQ(of_trace(spans, '1').size() + of_trace(spans, '2').size() +
                of_trace(spans, '3').size() + of_trace(spans, '4').size(),
            spans.size());
}

TEST(Tracing, redis_commands_are_spans_when_asked_and_a_cache_failure_is_logged_in_its_trace) {
  OtlpReceiver receiver;
  RedisServer redis;
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint(),
                                     {{"REDIS_URL", redis.url()},
                                      {"PROMPTCACHE_TRACE_REDIS", "true"},
                                      {"PROMPTCACHE_LOG_FORMAT", "json"}});
  HttpClient c(server.port());
  const std::string created_hash = create_in_trace(c, "redis", "carol", '5');
  ASSERT_FALSE(created_hash.empty());
  const std::string path = fmt::format("/v1/analyses/{}?user_id=carol", created_hash);
  EXPECT_EQ(c.request("GET", path, {}, in_trace('6')).status, 200u);
  redis.stop();  // the next read fails: logged in its request's trace
  const std::string missing = fmt::format("/v1/analyses/{}?user_id=dave", hash);
  EXPECT_EQ(c.request("GET", missing, {}, in_trace('7')).status, 404u);
  const Spans spans = after_shutdown(server, receiver);
  const Spans write = of_trace(spans, '5');
  const json::object script = one_span(write, "EVALSHA");  // a versioned write is the script
  EXPECT_TRUE(child_of(script, one_span(write, "cache_set")));
  EXPECT_EQ(script.at("kind"), 3);  // CLIENT
  EXPECT_EQ(attr(script, "db.system"), "redis");
  EXPECT_EQ(attr(script, "db.operation"), "EVALSHA");
  const Spans read = of_trace(spans, '6');
  const json::object get = one_span(read, "GET");
  EXPECT_TRUE(child_of(get, one_span(read, "cache_get")));
  EXPECT_EQ(attr(get, "db.system"), "redis");

  // The failed read's warning carries its trace (JSON logs), and its span the error.
  const json::object failed_read = one_span(of_trace(spans, '7'), "cache_get");
  ASSERT_FALSE(failed_read.empty());
  EXPECT_EQ(failed_read.at("status").at("code"), 2);
  std::istringstream lines(server.stderr_text());
  std::string line;
  int in_its_trace = 0;
  while (std::getline(lines, line)) {
    if (line.find("cache get failed") == std::string::npos) continue;
    const json::object o = json::parse(line).as_object();
    EXPECT_EQ(text_of(o.at("trace_id")), std::string(32, '7')) << line;
    EXPECT_EQ(text_of(o.at("span_id")), text_of(failed_read.at("spanId"))) << line;
    ++in_its_trace;
  }
  EXPECT_EQ(in_its_trace, 1) << server.stderr_text();
}

TEST(Tracing, a_request_without_a_valid_traceparent_starts_a_trace_of_its_own) {
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint());
  HttpClient c(server.port());
  const HttpResponse r =
      c.request("GET", "/healthz", {}, {{"traceparent", "00-zz-not-a-context-01"}});
  const auto answered = telemetry::parse_traceparent(r.header("traceparent"));
  ASSERT_TRUE(answered);
  const Spans spans = receiver.wait_for([](const Spans& s) { return !s.empty(); });
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_FALSE(spans[0].contains("parentSpanId"));
  EXPECT_EQ(text_of(spans[0].at("traceId")), telemetry::to_hex(answered->trace_id));
}

TEST(Tracing, sampling_off_exports_nothing_and_parent_based_follows_the_callers_flag) {
  {
    OtlpReceiver receiver;
    TempDir dir;
    ServeProcess server =
        traced_serve(dir, receiver.endpoint(), {{"OTEL_TRACES_SAMPLER", "always_off"}});
    HttpClient c(server.port());
    for (int i = 0; i < 20; ++i) {
      const HttpResponse r = c.request("GET", "/healthz");
      ASSERT_EQ(r.status, 200u);
      // A trace that started here unsampled is recorded nowhere: not named in the answer.
      ASSERT_EQ(r.header("traceparent"), "");
    }
    // A caller's trace is named back, unsampled as it came.
    const HttpResponse continued =
        c.request("GET", "/healthz", {},
                  {{"traceparent", fmt::format("00-{}-{}-01", caller_trace, caller_span)}});
    const auto answered = telemetry::parse_traceparent(continued.header("traceparent"));
    ASSERT_TRUE(answered) << continued.header("traceparent");
    EXPECT_EQ(telemetry::to_hex(answered->trace_id), caller_trace);
    EXPECT_FALSE(answered->sampled);  // always_off
    EXPECT_TRUE(after_shutdown(server, receiver).empty());
    EXPECT_TRUE(receiver.requests().empty());
  }
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint());  // parentbased_always_on
  HttpClient c(server.port());
  const std::string unsampled_trace = "11111111111111111111111111111111";
  const std::string sampled_trace = "22222222222222222222222222222222";
  for (int i = 0; i < 5; ++i) {
    const HttpResponse no =
        c.request("GET", "/healthz", {},
                  {{"traceparent", fmt::format("00-{}-{}-00", unsampled_trace, caller_span)}});
    EXPECT_EQ(no.header("traceparent").substr(53), "00");
    const HttpResponse yes =
        c.request("GET", "/healthz", {},
                  {{"traceparent", fmt::format("00-{}-{}-01", sampled_trace, caller_span)}});
    EXPECT_EQ(yes.header("traceparent").substr(53), "01");
  }
  const Spans spans = after_shutdown(server, receiver);
  EXPECT_EQ(spans.size(), 5u);
  for (const auto& s : spans) EXPECT_EQ(text_of(s.at("traceId")), sampled_trace);
}

TEST(Tracing, a_ratio_sampler_exports_about_that_share_of_requests) {
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server =
      traced_serve(dir, receiver.endpoint(),
                   {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "0.25"}});
  HttpClient c(server.port());
  constexpr int requests = 800;
  int sampled_answers = 0;
  for (int i = 0; i < requests; ++i) {
    const HttpResponse r = c.request("GET", "/healthz");
    // Only a sampled trace that started here is named in the answer.
    const auto answered = telemetry::parse_traceparent(r.header("traceparent"));
    EXPECT_TRUE(r.header("traceparent").empty() || (answered && answered->sampled));
    sampled_answers += answered ? 1 : 0;
  }
  const Spans spans = after_shutdown(server, receiver);
  // Binomial(800, 0.25): mean 200, standard deviation 12.2; ±60 is five of them.
  EXPECT_GT(spans.size(), 140u);
  EXPECT_LT(spans.size(), 260u);
  EXPECT_EQ(spans.size(), static_cast<std::size_t>(sampled_answers));  // exactly those
}

TEST(Tracing, a_refusing_receiver_costs_no_request_an_error_and_drops_only_past_the_bound) {
  OtlpReceiver receiver(OtlpReceiver::Mode::unavailable);
  TempDir dir;
  ServeProcess server = traced_serve(dir, receiver.endpoint(),
                                     {{"OTEL_BSP_MAX_QUEUE_SIZE", "20"},
                                      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5"},
                                      {"OTEL_BSP_SCHEDULE_DELAY", "10"}});
  HttpClient c(server.port());
  for (int i = 0; i < 200; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200u);
  EXPECT_GT(wait_for_metric(c, "promptcache_otel_export_failures_total"), 0u);
  const std::uint64_t dropped = otel_metric(c, "promptcache_otel_spans_total{outcome=\"dropped\"}");
  EXPECT_GT(dropped, 0u);
  EXPECT_LT(dropped, 200u);  // the queue kept its 20, and the batch being retried its 5
  EXPECT_EQ(otel_metric(c, "promptcache_otel_spans_total{outcome=\"exported\"}"), 0u);
  EXPECT_LE(otel_metric(c, "promptcache_otel_spans_queued"), 25u);
  EXPECT_TRUE(receiver.requests().empty());
  // The log says so, at most once every 10 s (the log is flushed every second).
  std::string log = server.stderr_text();
  for (int i = 0; i < 300 && log.find("HTTP 503") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
    log = server.stderr_text();
  }
  EXPECT_NE(log.find("trace export to http://127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("HTTP 503"), std::string::npos) << log;
}

TEST(Tracing, a_receiver_that_is_down_or_slow_costs_no_request_an_error) {
  TempDir dir;
  {
    const std::uint16_t nobody = detail::free_loopback_port();
    // A shutdown goes on retrying until OTEL_BSP_EXPORT_TIMEOUT: short here.
    ServeProcess server = traced_serve(dir, fmt::format("http://127.0.0.1:{}", nobody),
                                       {{"OTEL_BSP_EXPORT_TIMEOUT", "500"}});
    HttpClient c(server.port());
    for (int i = 0; i < 50; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200u);
    EXPECT_GT(wait_for_metric(c, "promptcache_otel_export_failures_total"), 0u);
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(20s), 0);  // the flush gives up within its deadline
  }
  OtlpReceiver slow(OtlpReceiver::Mode::slow, 1500ms);
  ServeProcess server = traced_serve(dir, slow.endpoint(), {{"OTEL_EXPORTER_OTLP_TIMEOUT", "300"}});
  HttpClient c(server.port());
  for (int i = 0; i < 50; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200u);
}

// A name lookup that blocks until the test lets it answer (at most a minute, so that a poster
// that waits for it fails the test rather than hangs it).
class HeldLookup {
 public:
  telemetry::NameLookup lookup() {
    return [this](const std::string& host, std::string&) -> std::vector<std::string> {
      std::unique_lock lock(mutex_);
      ++started_;
      changed_.wait_for(lock, 60s, [this] { return released_; });
      ++finished_;
      changed_.notify_all();
      EXPECT_EQ(host, "collector.test");
      return {"127.0.0.1"};
    };
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  void wait_until_finished(int count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 60s, [&] { return finished_ >= count; });
  }
  int started() {
    std::lock_guard lock(mutex_);
    return started_;
  }
  int finished() {
    std::lock_guard lock(mutex_);
    return finished_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool released_ = false;
  int started_ = 0;
  int finished_ = 0;
};

// A collector's name whose lookup hangs (an unreachable DNS server) holds an export no longer
// than its timeout, and so a shutdown no longer than its deadline: the lookup is left to its
// thread, the next connection waits on that lookup rather than starting another, and once it
// answers the export goes through.
TEST(Tracing, a_name_lookup_that_hangs_holds_an_export_no_longer_than_its_timeout) {
  OtlpReceiver receiver;
  const telemetry::HttpTarget target = telemetry::parse_http_target(
      fmt::format("http://collector.test:{}/v1/traces", receiver.port()));
  ASSERT_TRUE(target.valid);
  const std::string body = R"({"resourceSpans":[]})";
  const std::string head = telemetry::post_head(target.host_header, target.path, {},
                                                "application/json", body.size(), "test");
  HeldLookup held;
  {
    telemetry::HttpPoster poster(target, held.lookup());
    auto out = poster.post(head, {body, {}}, 200ms);
    EXPECT_EQ(out.status, 0);
    EXPECT_NE(out.error.find("within 200 ms"), std::string::npos) << out.error;
    out = poster.post(head, {body, {}}, 200ms);
    EXPECT_EQ(out.status, 0);
    EXPECT_EQ(held.started(), 1);   // the same lookup waited on
    EXPECT_EQ(held.finished(), 0);  // both posts returned while it hung
    held.release();
    out = poster.post(head, {body, {}}, 10s);
    EXPECT_EQ(out.status, 200) << out.error;
    EXPECT_EQ(held.started(), 1);
  }
  EXPECT_EQ(receiver.requests().size(), 1u);

  // A poster destroyed while its lookup hangs: the lookup's thread finishes on its own.
  HeldLookup abandoned;
  {
    telemetry::HttpPoster poster(target, abandoned.lookup());
    EXPECT_EQ(poster.post(head, {body, {}}, 100ms).status, 0);
  }
  EXPECT_EQ(abandoned.finished(), 0);
  abandoned.release();
  abandoned.wait_until_finished(1);
  EXPECT_EQ(abandoned.finished(), 1);

  // The system's lookup (localhost, from /etc/hosts): the export goes through.
  telemetry::HttpPoster system(
      telemetry::parse_http_target(fmt::format("http://localhost:{}/v1/traces", receiver.port())));
  const auto sent = system.post(head, {body, {}}, 10s);
  EXPECT_EQ(sent.status, 200) << sent.error;
  EXPECT_EQ(receiver.requests().size(), 2u);

  // A name that has no address is a clear error.
  telemetry::HttpPoster nowhere(target, [](const std::string&, std::string& error) {
    error = "Host not found";
    return std::vector<std::string>{};
  });
  const auto out = nowhere.post(head, {body, {}}, 10s);
  EXPECT_EQ(out.status, 0);
  EXPECT_EQ(out.error, "cannot resolve collector.test: Host not found");
}

// A library user's span held by a thread_local made before the tracer's per-thread lists (its
// memory and its data) ends as the thread exits, after those lists are gone: it is exported
// all the same, and nothing touches a list that no longer is (the ASan run would say).
TEST(Tracing, a_span_that_ends_as_its_thread_exits_is_exported) {
  OtlpReceiver receiver;
  const std::string endpoint = receiver.endpoint();
  const auto config = telemetry::OtlpConfig::from_env([&](const char* name) {
    return std::string_view(name) == "OTEL_EXPORTER_OTLP_ENDPOINT"
               ? std::optional<std::string>(endpoint)
               : std::nullopt;
  });
  const auto tracer = telemetry::make_otlp_tracer(config);
  ASSERT_NE(tracer, nullptr);
  std::thread([&tracer] {
    thread_local std::unique_ptr<telemetry::Span> held;  // made first, destroyed last
    held = tracer->start_span("held_to_thread_exit", telemetry::SpanKind::internal, nullptr).span;
    // A span started and ended before: the lists are made and in use when the thread exits.
    (void)tracer->start_span("ended_in_the_thread", telemetry::SpanKind::internal, nullptr);
  }).join();
  tracer->shutdown(10s);
  std::vector<std::string> names;
  for (const auto& span : receiver.spans()) names.push_back(text_of(span.at("name")));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ended_in_the_thread", "held_to_thread_exit"}));
}

TEST(Tracing, a_shutdown_flushes_what_is_queued) {
  OtlpReceiver receiver;
  TempDir dir;
  // No export by the schedule before the shutdown: only the flush can send these.
  ServeProcess server =
      traced_serve(dir, receiver.endpoint(), {{"OTEL_BSP_SCHEDULE_DELAY", "600000"}});
  HttpClient c(server.port());
  for (int i = 0; i < 7; ++i) ASSERT_EQ(c.request("GET", "/healthz").status, 200u);
  EXPECT_TRUE(receiver.requests().empty());
  EXPECT_EQ(after_shutdown(server, receiver).size(), 7u);
}

TEST(Tracing, no_secret_reaches_an_exported_attribute_or_a_log_line) {
  OtlpReceiver receiver;
  TempDir dir;
  const std::string api_key = "api-key-5ecret-value";
  const std::string header_secret = "otlp-header-5ecret";
  ServeProcess server = ServeProcess(
      {"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + dir.path + "/db.sqlite"},
      {{"OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()},
       {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + header_secret},
       {"OTEL_BSP_SCHEDULE_DELAY", "50"},
       {"PROMPTCACHE_API_KEY", api_key}});
  HttpClient c(server.port());
  EXPECT_EQ(c.request("GET", "/v1/stats", {}, {{"Authorization", "Bearer " + api_key}}).status,
            200u);
  EXPECT_EQ(c.request("GET", "/v1/stats", {}, {{"Authorization", "Bearer wrong"}}).status, 401u);
  const Spans spans = after_shutdown(server, receiver);
  ASSERT_FALSE(spans.empty());
  for (const auto& request : receiver.requests()) {
    const std::string text = json::serialize(request);
    EXPECT_EQ(text.find(api_key), std::string::npos);
    EXPECT_EQ(text.find(header_secret), std::string::npos);
  }
  const std::string log = server.stderr_text() + server.stdout_text();
  EXPECT_EQ(log.find(api_key), std::string::npos);
  EXPECT_EQ(log.find(header_secret), std::string::npos);
  EXPECT_NE(log.find("headers=[authorization]"), std::string::npos) << log;
}

TEST(Tracing, json_logs_are_one_object_per_line_and_a_requests_line_carries_its_trace) {
  OtlpReceiver receiver;
  TempDir dir;
  ServeProcess server =
      traced_serve(dir, receiver.endpoint(), {{"PROMPTCACHE_LOG_FORMAT", "json"}});
  HttpClient c(server.port());
  const HttpResponse r =
      c.request("GET", fmt::format("/v1/analyses/{}?user_id=alice", hash), {},
                {{"traceparent", fmt::format("00-{}-{}-01", caller_trace, caller_span)}});
  const auto answered = telemetry::parse_traceparent(r.header("traceparent"));
  ASSERT_TRUE(answered);
  (void)after_shutdown(server, receiver);  // flushes the buffered access log
  std::istringstream lines(server.stderr_text());
  std::string line;
  int parsed = 0;
  int access_lines_in_trace = 0;
  while (std::getline(lines, line)) {
    json::object o;
    ASSERT_NO_THROW(o = json::parse(line).as_object()) << line;
    ++parsed;
    for (const char* key : {"time", "level", "logger", "message", "fields"}) {
      EXPECT_TRUE(o.contains(key)) << key << " in " << line;
    }
    if (o.at("logger") == "access" && o.contains("trace_id")) {
      ++access_lines_in_trace;
      EXPECT_EQ(text_of(o.at("trace_id")), caller_trace);
      EXPECT_EQ(text_of(o.at("span_id")), telemetry::to_hex(answered->span_id));
      EXPECT_EQ(o.at("fields").at("status"), "404");
      EXPECT_EQ(o.at("fields").at("method"), "GET");
    }
  }
  EXPECT_GE(parsed, 3);  // start-up lines, the access line, the stop
  EXPECT_EQ(access_lines_in_trace, 1);
  const auto bad = run_promptcache({"serve", "--listen", "127.0.0.1:0"},
                                   {{"PROMPTCACHE_LOG_FORMAT", "yaml"}}, 15s);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("PROMPTCACHE_LOG_FORMAT"), std::string::npos) << bad.err;
}

TEST(Tracing, a_bad_otel_value_stops_serve_with_a_message_naming_the_variable) {
  TempDir dir;
  const auto r = run_promptcache(
      {"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + dir.path + "/db.sqlite"},
      {{"OTEL_TRACES_SAMPLER", "sometimes"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}},
      15s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("OTEL_TRACES_SAMPLER"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace promptcache::testing
