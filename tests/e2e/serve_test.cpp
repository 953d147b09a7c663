// End-to-end tests of `promptcache serve`: the real binary (tests/support/serve_process.hpp),
// started per test on a free port, driven over HTTP (tests/support/http_client.hpp), over three
// setups: SQLite with the in-process cache, SQLite with a real redis-server, and PostgreSQL with a
// real redis-server. One PostgreSQL server is shared by every test of this process (initdb costs
// seconds); each test starts from an empty table. Redis servers and SQLite files are per test.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/http_client.hpp"
#include "support/pg_server.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"

// GoogleTest would print a json::object element by element, as bytes: print it as JSON.
namespace boost::json {
inline void PrintTo(const object& o, std::ostream* os) {
  *os << serialize(o);
}
}  // namespace boost::json

namespace promptcache {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using testing::EnvVars;
using testing::HttpClient;
using testing::HttpError;
using testing::HttpHeaders;
using testing::HttpResponse;
using testing::PgServer;
using testing::RedisServer;
using testing::ServeProcess;
using testing::url_encode;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- small helpers ----------------------------------------------------------------------------

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// `s` repeated n times.
std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// The body as a JSON object; an empty object (and a test failure) if it is not one.
json::object object_of(const HttpResponse& res) {
  boost::system::error_code ec;
  json::value v = json::parse(res.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object (status " << res.status << "): " << res.body;
    return {};
  }
  return std::move(v.as_object());
}

std::string describe(const HttpResponse& res) {
  std::string body = res.body.size() > 400 ? res.body.substr(0, 400) + "..." : res.body;
  return fmt::format("status {} X-Cache {:?} body {}", res.status, res.header("X-Cache"), body);
}

// Words an error message must not contain: they would show the client how the service is built.
// clang-format off
constexpr std::string_view kInternalWords[] = {
    "sqlite", "redis", "postgres", "libpq", "select ", "insert ", "update ", "delete ",
    "prompt_analysis_results", "constraint", "syntax error at", "exception", "std::", "boost",
    "what()", "pc-test-pw", "terminate", "stack", "segfault", "0x", "errno", "/tmp/", ".cpp"};
// clang-format on

void expect_no_internals(std::string_view text, std::string_view context) {
  const std::string l = lower(std::string(text));
  for (auto word : kInternalWords) {
    EXPECT_EQ(l.find(word), std::string::npos)
        << context << ": the error leaks \"" << word << "\": " << text;
  }
}

// A JSON error {"error": "..."} with `status`, naming `field` (if given), leaking nothing.
void expect_error(const HttpResponse& res, unsigned status, std::string_view field,
                  std::string_view context) {
  EXPECT_EQ(res.status, status) << context << ": " << describe(res);
  EXPECT_EQ(res.header("Content-Type"), "application/json") << context;
  boost::system::error_code ec;
  json::value v = json::parse(res.body, ec);
  ASSERT_FALSE(ec) << context << ": the error body is not JSON: " << res.body;
  ASSERT_TRUE(v.is_object()) << context << ": " << res.body;
  const auto& o = v.as_object();
  EXPECT_EQ(o.size(), 1u) << context << ": only \"error\" expected: " << res.body;
  ASSERT_TRUE(o.contains("error") && o.at("error").is_string()) << context << ": " << res.body;
  const std::string message(o.at("error").as_string());
  EXPECT_FALSE(message.empty()) << context;
  if (!field.empty()) {
    EXPECT_NE(message.find(field), std::string::npos)
        << context << ": the message does not name " << field << ": " << message;
  }
  expect_no_internals(res.body, context);
}

// ---- the API, as a client sees it -------------------------------------------------------------

struct Analysis {
  std::string prompt{};
  std::string user_id{};
  std::optional<std::string> analysis_type{};  // absent: the server's "default"
  json::object quality_scores{{"clarity", 0.5}, {"specificity", 7}};
  json::array improvement_suggestions{"be specific", "add context"};
  std::optional<json::object> metadata{};
  std::optional<std::int64_t> processing_time_ms{};
  std::optional<std::string> model_version{};

  [[nodiscard]] std::string type() const { return analysis_type.value_or("default"); }
  [[nodiscard]] std::string hash() const { return sha256_hex(prompt); }

  [[nodiscard]] json::object body() const {
    json::object o;
    o["prompt"] = prompt;
    o["user_id"] = user_id;
    if (analysis_type) o["analysis_type"] = *analysis_type;
    o["quality_scores"] = quality_scores;
    o["improvement_suggestions"] = improvement_suggestions;
    if (metadata) o["metadata"] = *metadata;
    if (processing_time_ms) o["processing_time_ms"] = *processing_time_ms;
    if (model_version) o["model_version"] = *model_version;
    return o;
  }
};

std::string analysis_target(std::string_view hash, std::string_view user,
                            const std::optional<std::string>& type = std::nullopt) {
  std::string t = fmt::format("/v1/analyses/{}?user_id={}", hash, url_encode(user));
  if (type) t += "&analysis_type=" + url_encode(*type);
  return t;
}

std::string user_cache_target(std::string_view user) {
  return fmt::format("/v1/users/{}/analyses/cache", url_encode(user));
}

HttpResponse post_json(HttpClient& c, std::string_view target, const json::value& body,
                       const HttpHeaders& headers = {}) {
  HttpHeaders h{{"Content-Type", "application/json"}};
  h.insert(h.end(), headers.begin(), headers.end());
  return c.request("POST", target, json::serialize(body), h);
}

HttpResponse post_analysis(HttpClient& c, const Analysis& a, const HttpHeaders& headers = {}) {
  return post_json(c, "/v1/analyses", a.body(), headers);
}

HttpResponse get_analysis(HttpClient& c, const Analysis& a, const HttpHeaders& headers = {}) {
  return c.request("GET", analysis_target(a.hash(), a.user_id, a.analysis_type), {}, headers);
}

HttpResponse lookup(HttpClient& c, const Analysis& a) {
  json::object o;
  o["prompt"] = a.prompt;
  o["user_id"] = a.user_id;
  if (a.analysis_type) o["analysis_type"] = *a.analysis_type;
  return post_json(c, "/v1/analyses/lookup", o);
}

// POSTs `a`, expects 201 and the stored row as it was sent; returns the row.
json::object create(HttpClient& c, const Analysis& a) {
  const HttpResponse res = post_analysis(c, a);
  EXPECT_EQ(res.status, 201u) << describe(res);
  EXPECT_EQ(res.header("Content-Type"), "application/json");
  return object_of(res);
}

// The row as the server must have stored `a`: every field the client sent, as sent.
void expect_row_matches(const json::object& row, const Analysis& a, std::string_view context) {
  const std::set<std::string> expected_keys{"id",
                                            "user_id",
                                            "prompt_text",
                                            "prompt_hash",
                                            "analysis_type",
                                            "quality_scores",
                                            "improvement_suggestions",
                                            "metadata",
                                            "processing_time_ms",
                                            "model_version",
                                            "created_at",
                                            "updated_at",
                                            "version"};
  std::set<std::string> keys;
  for (const auto& kv : row) keys.insert(std::string(kv.key()));
  EXPECT_EQ(keys, expected_keys) << context;
  if (keys != expected_keys) return;
  EXPECT_TRUE(row.at("id").is_int64() && row.at("id").as_int64() > 0) << context;
  EXPECT_TRUE(row.at("version").is_int64() && row.at("version").as_int64() > 0) << context;
  EXPECT_EQ(row.at("user_id"), json::value(a.user_id)) << context;
  EXPECT_EQ(row.at("prompt_text"), json::value(a.prompt)) << context;
  EXPECT_EQ(row.at("prompt_hash"), json::value(a.hash())) << context;
  EXPECT_EQ(row.at("analysis_type"), json::value(a.type())) << context;
  EXPECT_EQ(row.at("quality_scores"), json::value(a.quality_scores))
      << context << ": " << json::serialize(row.at("quality_scores"));
  EXPECT_EQ(row.at("improvement_suggestions"), json::value(a.improvement_suggestions)) << context;
  EXPECT_EQ(row.at("metadata"), json::value(a.metadata.value_or(json::object{}))) << context;
  EXPECT_EQ(row.at("processing_time_ms"),
            a.processing_time_ms ? json::value(*a.processing_time_ms) : json::value(nullptr))
      << context;
  EXPECT_EQ(row.at("model_version"),
            a.model_version ? json::value(*a.model_version) : json::value(nullptr))
      << context;
  for (const char* t : {"created_at", "updated_at"}) {
    ASSERT_TRUE(row.at(t).is_string()) << context;
    const std::string s(row.at(t).as_string());
    // 2026-11-23T23:51:43.123Z
    EXPECT_EQ(s.size(), 24u) << context << ": " << t << " " << s;
    EXPECT_TRUE(s.size() == 24 && s[10] == 'T' && s[19] == '.' && s.back() == 'Z')
        << context << ": " << t << " " << s;
  }
}

// The value of one Prometheus sample (`name{labels}`), or nullopt when absent.
std::optional<double> metric(const std::string& text, std::string_view sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  return std::nullopt;
}

std::string requests_sample(std::string_view route, unsigned status) {
  return fmt::format("promptcache_http_requests_total{{route=\"{}\",status=\"{}\"}}", route,
                     status);
}

// The sum of every sample whose line starts with `prefix` and contains `needle`.
double sum_of_samples(const std::string& text, std::string_view prefix, std::string_view needle) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0 && line.find(needle) != std::string::npos) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

std::size_t count_lines_containing(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// Polls `done` every 20 ms until it returns true or `timeout` passes; whether it did.
bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/promptcache-e2e-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Rows in a SQLite database file (read by the test itself, not through the service).
std::int64_t sqlite_row_count(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  sqlite3_stmt* stmt = nullptr;
  std::int64_t n = -1;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM prompt_analysis_results", -1, &stmt, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    n = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

// ---- one PostgreSQL server for the whole process ------------------------------------------------

class SharedPostgres : public ::testing::Environment {
 public:
  // Started on first use, from the GoogleTest main thread (PR_SET_PDEATHSIG is per thread).
  static PgServer& get() {
    if (!server_) server_ = std::make_unique<PgServer>();
    if (!server_->running()) server_->start();
    return *server_;
  }
  // Empty tables (and a fresh id sequence) for the next test; the schema stays.
  static void reset() {
    get().psql(
        "DO $$ BEGIN IF to_regclass('public.prompt_analysis_results') IS NOT NULL THEN "
        "TRUNCATE prompt_analysis_results RESTART IDENTITY; END IF; "
        "IF to_regclass('public.prompt_analysis_versions') IS NOT NULL THEN "
        "TRUNCATE prompt_analysis_versions; END IF; END $$");
  }
  void TearDown() override { server_.reset(); }

 private:
  static inline std::unique_ptr<PgServer> server_;
};

[[maybe_unused]] ::testing::Environment* const shared_postgres_env =
    ::testing::AddGlobalTestEnvironment(new SharedPostgres);

// ---- the setups ---------------------------------------------------------------------------------

enum class Setup { sqlite_local, sqlite_redis, postgres_redis };

std::string setup_name(Setup s) {
  switch (s) {
    case Setup::sqlite_local:
      return "SqliteInProcessCache";
    case Setup::sqlite_redis:
      return "SqliteRedis";
    case Setup::postgres_redis:
      return "PostgresRedis";
  }
  return "unknown";
}

void PrintTo(Setup s, std::ostream* os) {
  *os << setup_name(s);
}

// A service under test: its database, its cache, the process, and a client.
class ServeFixture {
 protected:
  // Makes the database and cache `setup` needs (skips when PostgreSQL is not installed).
  void prepare(Setup setup) {
    setup_ = setup;
    if (setup == Setup::postgres_redis) {
      if (!testing::pg_available()) GTEST_SKIP() << "PostgreSQL is not installed";
      SharedPostgres::reset();
    }
    if (setup != Setup::sqlite_local) redis_ = std::make_unique<RedisServer>();
  }

  [[nodiscard]] bool uses_redis() const { return setup_ != Setup::sqlite_local; }
  [[nodiscard]] bool uses_postgres() const { return setup_ == Setup::postgres_redis; }

  [[nodiscard]] std::string sqlite_path() const { return dir_.path() + "/data/promptcache.db"; }
  [[nodiscard]] std::string db_url() const {
    if (uses_postgres()) return SharedPostgres::get().url();
    return "sqlite://" + sqlite_path();
  }
  [[nodiscard]] EnvVars env() const {
    EnvVars e;
    if (redis_) e.emplace_back("REDIS_URL", redis_->url());
    return e;
  }

  // Starts the service (stopping one that runs) with the setup's database and cache, plus
  // `extra` arguments (which may replace the defaults --listen 127.0.0.1:0, --db and
  // --threads 2) and variables, and a client for it.
  ServeProcess& start(const std::vector<std::string>& extra = {}, const EnvVars& extra_env = {}) {
    server_.reset();
    std::vector<std::string> args{"serve"};
    auto given = [&](std::string_view option) {
      return std::find(extra.begin(), extra.end(), option) != extra.end();
    };
    if (!given("--listen")) args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    if (!given("--db")) args.insert(args.end(), {"--db", db_url()});
    if (!given("--threads")) args.insert(args.end(), {"--threads", "2"});
    args.insert(args.end(), extra.begin(), extra.end());
    EnvVars e = env();
    e.insert(e.end(), extra_env.begin(), extra_env.end());
    server_ = std::make_unique<ServeProcess>(args, e);
    client_ = std::make_unique<HttpClient>(server_->port());
    return *server_;
  }

  [[nodiscard]] HttpClient& client() { return *client_; }
  [[nodiscard]] ServeProcess& server() { return *server_; }

  // Rows in the database, read directly.
  std::int64_t row_count() {
    if (uses_postgres()) {
      return std::stoll(SharedPostgres::get().psql("SELECT count(*) FROM prompt_analysis_results"));
    }
    return sqlite_row_count(sqlite_path());
  }

  // After a failure, what the service logged helps most.
  void report(bool failed) {
    if (failed && server_) {
      const std::string err = server_->stderr_text();
      const std::size_t keep = 6000;
      std::cerr << "---- promptcache stderr (tail) ----\n"
                << (err.size() > keep ? err.substr(err.size() - keep) : err) << "\n";
    }
    client_.reset();
    server_.reset();
    redis_.reset();
  }

  Setup setup_ = Setup::sqlite_local;
  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<ServeProcess> server_;
  std::unique_ptr<HttpClient> client_;
};

class ServeApiTest : public ::testing::TestWithParam<Setup>, protected ServeFixture {
 protected:
  void SetUp() override {
    prepare(GetParam());
    if (IsSkipped()) return;
    start();
  }
  void TearDown() override { report(HasFailure()); }
};

INSTANTIATE_TEST_SUITE_P(Setups, ServeApiTest,
                         ::testing::Values(Setup::sqlite_local, Setup::sqlite_redis,
                                           Setup::postgres_redis),
                         [](const ::testing::TestParamInfo<Setup>& info) {
                           return setup_name(info.param);
                         });

// ---- routes and their happy paths ---------------------------------------------------------------

// /healthz, /readyz, /v1/stats and /metrics answer; /metrics counts every request by route and
// status; keep-alive holds (one connection for all); one access-log line per request.
TEST_P(ServeApiTest, HealthReadyStatsAndMetricsCountEveryRoute) {
  HttpClient& c = client();
  const HttpResponse health = c.request("GET", "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(object_of(health), (json::object{{"status", "ok"}}));
  const HttpResponse ready = c.request("GET", "/readyz");
  EXPECT_EQ(ready.status, 200u) << describe(ready);
  const json::object r = object_of(ready);
  EXPECT_EQ(r.if_contains("status") ? *r.if_contains("status") : json::value(), "ready");
  EXPECT_EQ(r.if_contains("database") ? *r.if_contains("database") : json::value(), "ok");
  EXPECT_EQ(r.if_contains("cache") ? *r.if_contains("cache") : json::value(), "ok");

  Analysis a{.prompt = "Summarize the quarterly report", .user_id = "metrics-user"};
  create(c, a);
  EXPECT_EQ(get_analysis(c, a).status, 200u);
  EXPECT_EQ(get_analysis(c, a).status, 200u);
  EXPECT_EQ(lookup(c, a).status, 200u);
  EXPECT_EQ(c.request("GET", analysis_target(sha256_hex("absent"), "metrics-user")).status, 404u);
  EXPECT_EQ(c.request("DELETE", analysis_target(a.hash(), a.user_id)).status, 200u);
  EXPECT_EQ(c.request("DELETE", user_cache_target("metrics-user")).status, 200u);
  EXPECT_EQ(c.request("GET", "/nowhere").status, 404u);

  const HttpResponse stats = c.request("GET", "/v1/stats");
  EXPECT_EQ(stats.status, 200u) << describe(stats);
  const json::object s = object_of(stats);
  EXPECT_FALSE(s.contains("error")) << stats.body;
  ASSERT_TRUE(s.contains("pending_invalidations")) << stats.body;
  EXPECT_EQ(s.at("pending_invalidations"), json::value(0)) << stats.body;

  const HttpResponse m = c.request("GET", "/metrics");
  ASSERT_EQ(m.status, 200u);
  EXPECT_EQ(m.header("Content-Type").rfind("text/plain", 0), 0u) << m.header("Content-Type");
  const std::string& text = m.body;
  EXPECT_NE(text.find("# TYPE promptcache_http_requests_total counter"), std::string::npos);
  const std::pair<std::string_view, std::pair<unsigned, double>> expected[] = {
      {"GET /healthz", {200, 1}},
      {"GET /readyz", {200, 1}},
      {"POST /v1/analyses", {201, 1}},
      {"GET /v1/analyses/{prompt_hash}", {200, 2}},
      {"GET /v1/analyses/{prompt_hash}", {404, 1}},
      {"POST /v1/analyses/lookup", {200, 1}},
      {"DELETE /v1/analyses/{prompt_hash}", {200, 1}},
      {"DELETE /v1/users/{user_id}/analyses/cache", {200, 1}},
      {"GET /v1/stats", {200, 1}},
      {"other", {404, 1}},
  };
  for (const auto& [route, want] : expected) {
    const auto got = metric(text, requests_sample(route, want.first));
    EXPECT_EQ(got, std::optional<double>(want.second)) << route << " " << want.first << " in\n"
                                                       << text;
  }
  EXPECT_EQ(metric(text,
                   "promptcache_http_request_duration_seconds_count{route=\"POST "
                   "/v1/analyses\"}"),
            std::optional<double>(1))
      << text;
  EXPECT_EQ(metric(text, "promptcache_db_calls_total{op=\"upsert\",outcome=\"ok\"}"),
            std::optional<double>(1))
      << text;
  const std::string tier = uses_redis() ? "redis" : "local";
  const auto hits = metric(
      text, fmt::format("promptcache_cache_requests_total{{tier=\"{}\",outcome=\"hit\"}}", tier));
  ASSERT_TRUE(hits.has_value()) << text;
  EXPECT_GE(*hits, 2) << text;  // the second GET and the lookup
  EXPECT_EQ(metric(text, fmt::format("promptcache_cache_breaker_state{{tier=\"{}\"}}", tier)),
            std::optional<double>(0))
      << text;
  // The /metrics request itself is counted once it is answered.
  const HttpResponse m2 = c.request("GET", "/metrics");
  EXPECT_EQ(metric(m2.body, requests_sample("GET /metrics", 200)), std::optional<double>(1));

  EXPECT_EQ(c.connections_opened(), 1u) << "keep-alive: every request on one connection";

  // One access-log line per request (13 so far), each with its method, path and status.
  const std::size_t requests = 13;
  EXPECT_TRUE(eventually(
      5s, [&] { return count_lines_containing(server().stderr_text(), "method=") >= requests; }));
  const std::string log = server().stderr_text();
  EXPECT_EQ(count_lines_containing(log, "method="), requests) << log;
  EXPECT_EQ(count_lines_containing(log, "method=POST path=\"/v1/analyses\" status=201"), 1u) << log;
  EXPECT_EQ(count_lines_containing(log, "method=GET path=\"/nowhere\" status=404"), 1u) << log;
}

// POST stores the row (hash computed by the server as SHA-256 of the prompt's UTF-8 bytes);
// GET answers a miss, then a hit, with the same row; lookup hashes server-side and finds it.
TEST_P(ServeApiTest, CreateThenReadMissThenHitAndLookup) {
  HttpClient& c = client();
  Analysis a{.prompt = "Write a haiku about the sea — in Français, with ünïcödé ✨",
             .user_id = "user-1",
             .analysis_type = "style",
             .metadata = json::object{{"source", "e2e"}, {"nested", {{"k", json::array{1, 2}}}}},
             .processing_time_ms = 1234,
             .model_version = "gpt-x-2026-01"};
  const json::object row = create(c, a);
  expect_row_matches(row, a, "POST");
  EXPECT_EQ(row.at("created_at"), row.at("updated_at"));
  // Independently: the digest of the UTF-8 bytes, lower-case hex.
  EXPECT_EQ(row.at("prompt_hash"), json::value(sha256_hex(a.prompt)));

  const HttpResponse miss = get_analysis(c, a);
  ASSERT_EQ(miss.status, 200u) << describe(miss);
  // The POST wrote the row to the cache already: this first read may be either.
  EXPECT_TRUE(miss.header("X-Cache") == "hit" || miss.header("X-Cache") == "miss")
      << describe(miss);
  const HttpResponse hit = get_analysis(c, a);
  ASSERT_EQ(hit.status, 200u) << describe(hit);
  EXPECT_EQ(hit.header("X-Cache"), "hit");
  EXPECT_EQ(object_of(miss), row);
  EXPECT_EQ(object_of(hit), row);

  // The POST filled the cache, so the first GET may already be a hit; a row read from the
  // database is a miss: seen on a key the POST did not cache (after a user-cache flush).
  ASSERT_EQ(c.request("DELETE", user_cache_target(a.user_id)).status, 200u);
  const HttpResponse cold = get_analysis(c, a);
  EXPECT_EQ(cold.status, 200u);
  EXPECT_EQ(cold.header("X-Cache"), "miss") << describe(cold);
  EXPECT_EQ(object_of(cold), row);
  const HttpResponse warm = get_analysis(c, a);
  EXPECT_EQ(warm.header("X-Cache"), "hit") << describe(warm);
  EXPECT_EQ(object_of(warm), row);

  // Upper-case hex is the same hash.
  std::string upper = a.hash();
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  const HttpResponse up = c.request("GET", analysis_target(upper, a.user_id, a.analysis_type));
  EXPECT_EQ(up.status, 200u) << describe(up);
  EXPECT_EQ(object_of(up), row);

  const HttpResponse found = lookup(c, a);
  ASSERT_EQ(found.status, 200u) << describe(found);
  EXPECT_EQ(found.header("X-Cache"), "hit");
  EXPECT_EQ(object_of(found), row);

  // The other analysis type, user, or prompt: not found.
  Analysis other_type = a;
  other_type.analysis_type = std::nullopt;
  expect_error(get_analysis(c, other_type), 404, "", "GET another analysis_type");
  expect_error(lookup(c, other_type), 404, "", "lookup another analysis_type");
  Analysis other_user = a;
  other_user.user_id = "user-2";
  expect_error(get_analysis(c, other_user), 404, "", "GET another user");
  Analysis other_prompt = a;
  other_prompt.prompt += " ";
  expect_error(lookup(c, other_prompt), 404, "", "lookup another prompt");

  // Defaults: no analysis_type means "default", and GET without one reads that.
  Analysis plain{.prompt = "Plain prompt", .user_id = "user-1"};
  const json::object plain_row = create(c, plain);
  expect_row_matches(plain_row, plain, "POST default type");
  EXPECT_EQ(plain_row.at("analysis_type"), "default");
  const HttpResponse by_default =
      c.request("GET", analysis_target(plain.hash(), plain.user_id, std::string("default")));
  EXPECT_EQ(by_default.status, 200u);
  EXPECT_EQ(object_of(by_default), plain_row);
  EXPECT_NE(plain_row.at("id"), row.at("id"));
}

// Upsert of the same (prompt_hash, user_id, analysis_type) keeps id and created_at, moves
// updated_at, and the very next read returns the new value: no stale cache entry.
TEST_P(ServeApiTest, UpsertKeepsIdentityAndIsReadBackAtOnce) {
  HttpClient& c = client();
  Analysis a{.prompt = "Explain recursion", .user_id = "u-upsert", .analysis_type = "clarity"};
  const json::object first = create(c, a);
  ASSERT_EQ(get_analysis(c, a).status, 200u);  // cached now
  ASSERT_EQ(get_analysis(c, a).header("X-Cache"), "hit");

  json::object previous = first;
  for (int round = 1; round <= 4; ++round) {
    std::this_thread::sleep_for(3ms);  // timestamps have millisecond resolution
    // Never a whole number: PostgreSQL's jsonb would give 1.0 back as 1.
    a.quality_scores = json::object{{"clarity", round * 0.25 + 0.125}, {"round", round}};
    a.improvement_suggestions = json::array{fmt::format("suggestion {}", round)};
    a.metadata = json::object{{"round", round}};
    a.processing_time_ms = round * 100;
    a.model_version = fmt::format("v{}", round);
    const json::object updated = create(c, a);
    const std::string ctx = fmt::format("round {}", round);
    expect_row_matches(updated, a, ctx);
    EXPECT_EQ(updated.at("id"), first.at("id")) << ctx;
    EXPECT_EQ(updated.at("created_at"), first.at("created_at")) << ctx;
    EXPECT_GT(std::string(updated.at("updated_at").as_string()),
              std::string(previous.at("updated_at").as_string()))
        << ctx;

    const HttpResponse read = get_analysis(c, a);
    ASSERT_EQ(read.status, 200u) << ctx;
    EXPECT_EQ(object_of(read), updated) << ctx << ": stale read " << describe(read);
    const HttpResponse looked = lookup(c, a);
    EXPECT_EQ(object_of(looked), updated) << ctx << ": stale lookup " << describe(looked);
    previous = updated;
  }

  // The same prompt for another type or user is another row.
  Analysis other_type = a;
  other_type.analysis_type = "depth";
  const json::object t = create(c, other_type);
  EXPECT_NE(t.at("id"), first.at("id"));
  Analysis other_user = a;
  other_user.user_id = "u-upsert-2";
  const json::object u = create(c, other_user);
  EXPECT_NE(u.at("id"), first.at("id"));
  EXPECT_NE(u.at("id"), t.at("id"));
  EXPECT_EQ(object_of(get_analysis(c, a)), previous);
  EXPECT_EQ(row_count(), 3);
}

// DELETE removes the row and its cache entry (a read right after is 404, not a cached hit);
// a second DELETE is 404; the same prompt's other type stays.
TEST_P(ServeApiTest, DeleteRemovesRowAndCacheEntry) {
  HttpClient& c = client();
  Analysis a{.prompt = "Delete me", .user_id = "u-del"};
  Analysis b = a;
  b.analysis_type = "summary";
  create(c, a);
  create(c, b);
  ASSERT_EQ(get_analysis(c, a).header("X-Cache"), "hit");
  ASSERT_EQ(get_analysis(c, b).header("X-Cache"), "hit");

  const HttpResponse del = c.request("DELETE", analysis_target(a.hash(), a.user_id));
  ASSERT_EQ(del.status, 200u) << describe(del);
  const json::object d = object_of(del);
  EXPECT_EQ(d.if_contains("deleted") ? *d.if_contains("deleted") : json::value(), true) << del.body;
  EXPECT_EQ(d.if_contains("prompt_hash") ? *d.if_contains("prompt_hash") : json::value(),
            json::value(a.hash()))
      << del.body;

  expect_error(get_analysis(c, a), 404, "", "GET after DELETE");
  expect_error(lookup(c, a), 404, "", "lookup after DELETE");
  expect_error(c.request("DELETE", analysis_target(a.hash(), a.user_id)), 404, "", "second DELETE");
  expect_error(c.request("DELETE", analysis_target(sha256_hex("never stored"), a.user_id)), 404, "",
               "DELETE of nothing");
  const HttpResponse still = get_analysis(c, b);
  EXPECT_EQ(still.status, 200u) << "the other analysis_type must stay";
  EXPECT_EQ(row_count(), 1);

  // Created again after the delete: a new row, found again.
  const json::object again = create(c, a);
  expect_row_matches(again, a, "re-created");
  EXPECT_EQ(object_of(get_analysis(c, a)), again);
}

// DELETE /v1/users/{id}/analyses/cache drops that user's entries and no other's, and says how
// many, for ids that are glob patterns or key separators elsewhere.
TEST_P(ServeApiTest, UserCacheInvalidationTouchesOnlyThatUser) {
  HttpClient& c = client();
  const std::vector<std::string> users{"alice", "a:b", "a", "b",   "a_b", "*",     "[x]",
                                       "x",     "a*",  "?", "a/b", "%",   "a%3Ab", "ü ser"};
  std::vector<std::vector<Analysis>> entries(users.size());
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::size_t n = 1 + i % 3;  // different counts: a leak across users changes the sum
    for (std::size_t k = 0; k < n; ++k) {
      Analysis a{.prompt = fmt::format("prompt {} for {}", k, users[i]), .user_id = users[i]};
      if (k == 2) a.analysis_type = "t:" + users[i];
      create(c, a);
      entries[i].push_back(a);
    }
  }
  auto expect_cached = [&](std::size_t i, const char* want, const std::string& context) {
    for (const auto& a : entries[i]) {
      const HttpResponse r = get_analysis(c, a);
      EXPECT_EQ(r.status, 200u) << context;
      EXPECT_EQ(r.header("X-Cache"), want)
          << context << ": user " << fmt::format("{:?}", users[i]) << " prompt " << a.prompt;
    }
  };
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string ctx = fmt::format("invalidate {:?}", users[i]);
    const HttpResponse res = c.request("DELETE", user_cache_target(users[i]));
    ASSERT_EQ(res.status, 200u) << ctx << ": " << describe(res);
    const json::object o = object_of(res);
    EXPECT_EQ(o.if_contains("invalidated") ? *o.if_contains("invalidated") : json::value(),
              json::value(entries[i].size()))
        << ctx << ": " << res.body;
    for (std::size_t j = 0; j < users.size(); ++j) {
      // This user's entries are gone (a miss, which caches them again); the others' stay.
      expect_cached(j, j == i ? "miss" : "hit", ctx);
    }
    const HttpResponse twice = c.request("DELETE", user_cache_target(users[i]));
    // The reads above cached this user's entries again.
    EXPECT_EQ(object_of(twice).at("invalidated"), json::value(entries[i].size())) << ctx;
    expect_cached(i, "miss", ctx + " (twice)");
  }
  // A user with no entries: zero. The rows themselves are untouched.
  EXPECT_EQ(object_of(c.request("DELETE", user_cache_target("nobody"))).at("invalidated"),
            json::value(0));
  std::int64_t total = 0;
  for (const auto& e : entries) total += static_cast<std::int64_t>(e.size());
  EXPECT_EQ(row_count(), total);
}

// ---- bad input ----------------------------------------------------------------------------------

TEST_P(ServeApiTest, RejectsBadInputNamingTheField) {
  HttpClient& c = client();
  const Analysis good{.prompt = "A valid prompt", .user_id = "u-bad"};
  auto post_raw = [&](std::string_view target, std::string body) {
    return c.request("POST", target, std::move(body), {{"Content-Type", "application/json"}});
  };
  auto with = [&](std::string_view field, json::value v) {
    json::object o = good.body();
    o[field] = std::move(v);
    return o;
  };
  auto without = [&](std::string_view field) {
    json::object o = good.body();
    o.erase(field);
    return o;
  };

  // Malformed JSON: 400.
  for (const std::string& body :
       {std::string("{"), std::string("not json"), std::string(""), std::string("{\"prompt\":}"),
        std::string("{\"prompt\": \"x\",}"), std::string("{\"a\":1} trailing"),
        std::string("\xff\xfe{}"), std::string("{\"prompt\": \"\xc3\x28\"}")}) {
    expect_error(post_raw("/v1/analyses", body), 400, "", fmt::format("POST body {:?}", body));
    expect_error(post_raw("/v1/analyses/lookup", body), 400, "",
                 fmt::format("lookup body {:?}", body));
  }
  // Valid JSON that is not an object: 422.
  for (const std::string& body :
       {std::string("[]"), std::string("\"text\""), std::string("42"), std::string("null")}) {
    expect_error(post_raw("/v1/analyses", body), 422, "", fmt::format("POST body {}", body));
  }

  // Each field, missing or wrong: 422 naming it.
  struct Case {
    std::string field;
    json::object body;
  };
  std::vector<Case> cases;
  for (const char* f : {"prompt", "user_id", "quality_scores", "improvement_suggestions"}) {
    cases.push_back({f, without(f)});
    cases.push_back({f, with(f, nullptr)});
  }
  for (const json::value& v : {json::value(5), json::value(true), json::value(json::array{"x"}),
                               json::value(json::object{{"x", 1}}), json::value("")}) {
    cases.push_back({"prompt", with("prompt", v)});
    cases.push_back({"user_id", with("user_id", v)});
    cases.push_back({"analysis_type", with("analysis_type", v)});
    cases.push_back({"model_version", with("model_version", v)});
  }
  cases.push_back({"user_id", with("user_id", json::value(repeat("u", 257)))});
  cases.push_back({"analysis_type", with("analysis_type", json::value(repeat("t", 51)))});
  cases.push_back({"analysis_type", with("analysis_type", json::value(repeat("é", 51)))});
  cases.push_back({"model_version", with("model_version", json::value(repeat("m", 201)))});
  for (const json::value& v : {json::value(json::array{}), json::value("scores"), json::value(1)}) {
    cases.push_back({"quality_scores", with("quality_scores", v)});
  }
  for (const json::value& v : {json::value(json::object{}), json::value("x"), json::value(1)}) {
    cases.push_back({"improvement_suggestions", with("improvement_suggestions", v)});
  }
  for (const json::value& v : {json::value(json::array{}), json::value("meta"), json::value(5)}) {
    cases.push_back({"metadata", with("metadata", v)});
  }
  for (const json::value& v :
       {json::value(-1), json::value(1.5), json::value("5"), json::value(true),
        json::value(json::array{1}), json::value(std::uint64_t{18446744073709551615ull}),
        json::value(-9223372036854775807ll - 1)}) {
    cases.push_back({"processing_time_ms", with("processing_time_ms", v)});
  }
  for (const auto& k : cases) {
    expect_error(post_json(c, "/v1/analyses", k.body), 422, k.field,
                 fmt::format("POST {}", json::serialize(k.body)));
  }
  // Lookup's own fields.
  json::object lk{{"prompt", "p"}, {"user_id", "u"}};
  for (const char* f : {"prompt", "user_id"}) {
    json::object o = lk;
    o.erase(f);
    expect_error(post_json(c, "/v1/analyses/lookup", o), 422, f, fmt::format("lookup no {}", f));
    o[f] = 5;
    expect_error(post_json(c, "/v1/analyses/lookup", o), 422, f, fmt::format("lookup {} 5", f));
  }
  json::object lk_type = lk;
  lk_type["analysis_type"] = "";
  expect_error(post_json(c, "/v1/analyses/lookup", lk_type), 422, "analysis_type",
               "lookup empty type");

  // Too long a prompt: 413, counted in characters (10 000 é is 20 000 bytes and fine).
  for (const std::string& unit : {std::string("a"), std::string("é"), std::string("😀")}) {
    Analysis too_long = good;
    too_long.prompt = repeat(unit, 10001);
    expect_error(post_analysis(c, too_long), 413, "prompt", fmt::format("POST 10001 x {:?}", unit));
    expect_error(lookup(c, too_long), 413, "prompt", fmt::format("lookup 10001 x {:?}", unit));
    Analysis longest = good;
    longest.prompt = repeat(unit, 10000);
    const json::object row = create(c, longest);
    expect_row_matches(row, longest, fmt::format("POST 10000 x {:?}", unit));
    EXPECT_EQ(object_of(lookup(c, longest)), row);
  }
  // The other limits, exactly reached: accepted.
  Analysis edges = good;
  edges.user_id = repeat("u", 256);
  edges.analysis_type = repeat("é", 50);
  edges.model_version = repeat("m", 200);
  edges.processing_time_ms = 9223372036854775807ll;
  expect_row_matches(create(c, edges), edges, "limits reached");
  Analysis zero = good;
  zero.processing_time_ms = 0;
  expect_row_matches(create(c, zero), zero, "processing_time_ms 0");

  // GET and DELETE by hash: bad hash, user_id or analysis_type.
  const std::string h = good.hash();
  for (const std::string& method : {std::string("GET"), std::string("DELETE")}) {
    for (const std::string& bad_hash :
         {std::string("abc"), repeat("g", 64), h + "0", h.substr(1), std::string("%20") + h}) {
      expect_error(c.request(method, fmt::format("/v1/analyses/{}?user_id=u", bad_hash)), 422,
                   "prompt_hash", method + " hash " + bad_hash);
    }
    expect_error(c.request(method, fmt::format("/v1/analyses/{}", h)), 422, "user_id",
                 method + " without user_id");
    expect_error(c.request(method, fmt::format("/v1/analyses/{}?user_id=", h)), 422, "user_id",
                 method + " empty user_id");
    expect_error(c.request(method, fmt::format("/v1/analyses/{}?user_id={}", h, repeat("u", 257))),
                 422, "user_id", method + " long user_id");
    expect_error(c.request(method, fmt::format("/v1/analyses/{}?user_id=u&analysis_type=", h)), 422,
                 "analysis_type", method + " empty analysis_type");
    expect_error(c.request(method, fmt::format("/v1/analyses/{}?user_id=u&analysis_type={}", h,
                                               repeat("t", 51))),
                 422, "analysis_type", method + " long analysis_type");
  }
  expect_error(c.request("DELETE", "/v1/users//analyses/cache"), 422, "user_id",
               "invalidate empty user");
  expect_error(c.request("DELETE", user_cache_target(repeat("u", 257))), 422, "user_id",
               "invalidate long user");

  // Unknown routes: 404.
  for (const std::string& target :
       {std::string("/"), std::string("/v1"), std::string("/v1/analysis"),
        std::string("/v1/analyses/") + h + "/x", std::string("/v2/stats"),
        std::string("/v1/users/u/analyses"), std::string("/v1/users/u/analyses/cache/x"),
        std::string("/healthz/x"), std::string("/metricsx")}) {
    expect_error(c.request("GET", target), 404, "", "GET " + target);
  }
  // Known paths, wrong method: 405.
  const std::pair<std::string, std::string> wrong_method[] = {
      {"GET", "/v1/analyses"},
      {"PUT", "/v1/analyses"},
      {"DELETE", "/v1/analyses"},
      {"GET", "/v1/analyses/lookup"},
      {"PUT", "/v1/analyses/" + h + "?user_id=u"},
      {"POST", "/v1/analyses/" + h + "?user_id=u"},
      {"PATCH", "/v1/analyses/" + h + "?user_id=u"},
      {"GET", "/v1/users/u/analyses/cache"},
      {"POST", "/v1/users/u/analyses/cache"},
      {"POST", "/v1/stats"},
      {"DELETE", "/metrics"},
      {"POST", "/healthz"},
      {"PUT", "/readyz"},
  };
  for (const auto& [method, target] : wrong_method) {
    expect_error(c.request(method, target, method == "GET" ? "" : "{}"), 405, "",
                 method + " " + target);
  }

  // Nothing rejected was stored: only the accepted rows above (three 10 000-character prompts,
  // the limits reached, processing_time_ms 0).
  EXPECT_EQ(row_count(), 5);
  EXPECT_EQ(c.request("GET", "/healthz").status, 200u);
}

// Hostile and Unicode values in every field come back byte for byte, through the database and
// through the cache, whatever the encoding they need in a URL.
TEST_P(ServeApiTest, HostileAndUnicodeValuesRoundTrip) {
  HttpClient& c = client();
  const std::vector<std::string> prompts{
      "日本語のプロンプト 🚀 с кириллицей и العربية",
      "line1\nline2\r\n\ttab \"quoted\" \\backslash\\ /slash/",
      "'; DROP TABLE prompt_analysis_results; --",
      "<script>alert('x')</script> &amp; %s %n {} {{}} ${HOME} $(id)",
      "\u202eRTL override\u200b zero width \ufeff BOM",
      "family 👩‍👩‍👧 flags 🇫🇷 combining e\u0301",
      "a:b:c*?[]{}^$|()+.\\",
      "%_%' OR '1'='1",
      "\x7f"
      " control \x01\x02\x1f chars",
  };
  const std::vector<std::string> users{"a:b",
                                       "*",
                                       "[x]",
                                       "ユーザー",
                                       "user with spaces",
                                       "a/b?c=d&e#f",
                                       "a+b",
                                       "%",
                                       "Robert'); DROP TABLE students;--"};
  const std::vector<std::optional<std::string>> types{
      std::string("type:1"), std::string("*"),   std::string("分析"),
      std::string("a b"),    std::nullopt,       std::string("?&="),
      std::string("[]"),     std::string("%25"), std::string("'")};
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Analysis a{
        .prompt = prompts[i],
        .user_id = users[i % users.size()],
        .analysis_type = types[i % types.size()],
        .quality_scores =
            json::object{
                {"clarté", 0.75}, {"🔥", -3}, {"", 1}, {"k:*", json::array{"x", nullptr, true}}},
        .improvement_suggestions =
            json::array{prompts[(i + 1) % prompts.size()], "", json::object{{"nested", "ü"}}},
        .metadata = json::object{{"ключ", "значение"},
                                 {"quote\"key", "back\\slash"},
                                 {"deep", {{"a", {{"b", json::array{1, 2.5, "三"}}}}}}},
        .processing_time_ms = 42,
        .model_version = "模型-v1 '\""};
    const std::string ctx = fmt::format("case {} user {:?}", i, a.user_id);
    const json::object row = create(c, a);
    expect_row_matches(row, a, ctx + " POST");
    const HttpResponse first = get_analysis(c, a);
    ASSERT_EQ(first.status, 200u) << ctx << ": " << describe(first);
    EXPECT_EQ(object_of(first), row) << ctx;
    // Read from the database, then from the cache.
    ASSERT_EQ(c.request("DELETE", user_cache_target(a.user_id)).status, 200u) << ctx;
    const HttpResponse miss = get_analysis(c, a);
    EXPECT_EQ(miss.header("X-Cache"), "miss") << ctx;
    EXPECT_EQ(object_of(miss), row) << ctx;
    const HttpResponse hit = get_analysis(c, a);
    EXPECT_EQ(hit.header("X-Cache"), "hit") << ctx;
    EXPECT_EQ(object_of(hit), row) << ctx;
    EXPECT_EQ(object_of(lookup(c, a)), row) << ctx;
  }
}

// A NUL character is valid JSON text (\u0000). The service may refuse it (422) or store it; it
// must never store or look up something else: "victim\u0000x" cut at the NUL is another user's id,
// whose rows it would read and overwrite. Nor is a client's NUL a server error (5xx).
TEST_P(ServeApiTest, NulCharactersAreStoredExactlyOrRefused) {
  HttpClient& c = client();
  const Analysis victim{.prompt = "the victim's prompt", .user_id = "victim"};
  const json::object victim_row = create(c, victim);

  // Reading with the victim's id and a NUL suffix must not find the victim's row.
  Analysis reader = victim;
  reader.user_id = std::string("victim\0x", 8);
  const HttpResponse read = get_analysis(c, reader);
  EXPECT_TRUE(read.status == 404 || read.status == 422)
      << "GET ?user_id=victim%00x answered another user's row: " << describe(read);
  const HttpResponse looked = lookup(c, reader);
  EXPECT_TRUE(looked.status == 404 || looked.status == 422)
      << "lookup as \"victim\\u0000x\" answered another user's row: " << describe(looked);

  // Writing as "victim\0x" must not change the victim's row.
  Analysis writer = reader;
  writer.quality_scores = json::object{{"written_by", "someone else"}};
  const HttpResponse written = post_analysis(c, writer);
  if (written.status == 201) {
    expect_row_matches(object_of(written), writer, "POST as victim\\0x: 201 with another row");
  } else {
    expect_error(written, 422, "user_id", "POST as victim\\0x");
  }
  const HttpResponse after = get_analysis(c, victim);
  EXPECT_EQ(after.status, 200u);
  EXPECT_EQ(object_of(after), victim_row)
      << "the victim's row was overwritten by a POST as \"victim\\u0000x\"";
  ASSERT_EQ(c.request("DELETE", user_cache_target("victim")).status, 200u);
  EXPECT_EQ(object_of(get_analysis(c, victim)), victim_row)
      << "the victim's row, read from the database";

  // Every field: stored exactly (and found again), or refused with 422.
  const Analysis cases[] = {
      {.prompt = std::string("before\0after", 12), .user_id = "nul-prompt"},
      {.prompt = "nul type", .user_id = "nul-type", .analysis_type = std::string("t\0x", 3)},
      {.prompt = "nul metadata",
       .user_id = "nul-meta",
       .metadata = json::object{{"k", std::string("v\0w", 3)}}},
      {.prompt = "nul scores",
       .user_id = "nul-scores",
       .quality_scores = json::object{{std::string("s\0", 2), 1}}},
      {.prompt = "nul suggestions",
       .user_id = "nul-suggestions",
       .improvement_suggestions = json::array{std::string("a\0b", 3)}},
      {.prompt = "nul model", .user_id = "nul-model", .model_version = std::string("m\0n", 3)},
  };
  for (const auto& a : cases) {
    const std::string ctx = json::serialize(a.body());
    const HttpResponse res = post_analysis(c, a);
    if (res.status == 201) {
      expect_row_matches(object_of(res), a, ctx + ": 201 with another value than sent");
      ASSERT_EQ(c.request("DELETE", user_cache_target(a.user_id)).status, 200u);
      const HttpResponse got = get_analysis(c, a);
      EXPECT_EQ(got.status, 200u) << ctx << ": " << describe(got);
      if (got.status == 200) expect_row_matches(object_of(got), a, ctx + ": GET");
    } else {
      expect_error(res, 422, "", ctx);
    }
  }
}

// ---- graceful shutdown
// ----------------------------------------------------------------------------

// SIGTERM while requests are in flight: those the server had begun (it answered
// `100 Continue` to their header) are all answered completely, with their rows stored; clients
// hammering the service at the same time never get a truncated response; new connections are
// refused; the process exits 0.
TEST_P(ServeApiTest, SigtermFinishesRequestsInFlightAndExitsZero) {
  start({"--threads", "4", "--shutdown-grace", "10"});
  const std::uint16_t port = server().port();
  constexpr int kInFlight = 20;
  constexpr int kHammers = 6;

  struct Outcome {
    std::vector<std::string> created;  // prompts answered 201
    int refused = 0;                   // no response at all (connection refused or closed)
    std::vector<std::string> problems;
  };
  std::vector<Outcome> outcomes(kInFlight + kHammers);
  std::barrier headers_sent(kInFlight + 1);
  std::barrier signal_sent(kInFlight + 1);
  std::atomic<bool> stop_hammering{false};
  std::atomic<int> hammered{0};

  auto body_for = [](const std::string& prompt, int i) {
    Analysis a{.prompt = prompt, .user_id = fmt::format("shutdown-{}", i)};
    a.metadata = json::object{{"pad", repeat("p", 2000)}};
    return json::serialize(a.body());
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kInFlight; ++i) {
    threads.emplace_back([&, i] {
      Outcome& out = outcomes[static_cast<std::size_t>(i)];
      bool arrived = false;
      try {
        HttpClient client(port, 15s);
        client.set_retry(false);
        for (int k = 0; k < 2; ++k) {  // a warm-up on the same connection
          const std::string prompt = fmt::format("warm {} {}", i, k);
          const HttpResponse r = client.request("POST", "/v1/analyses", body_for(prompt, i),
                                                {{"Content-Type", "application/json"}});
          if (r.status == 201) {
            out.created.push_back(prompt);
          } else {
            out.problems.push_back("warm-up: " + describe(r));
          }
        }
        const std::string prompt = fmt::format("in flight {}", i);
        auto early = client.begin("POST", "/v1/analyses", body_for(prompt, i),
                                  {{"Content-Type", "application/json"}});
        if (early) out.problems.push_back("no 100 Continue: " + describe(*early));
        headers_sent.arrive_and_wait();
        arrived = true;
        signal_sent.arrive_and_wait();
        if (early) return;
        const HttpResponse r = client.finish();
        if (r.status == 201) {
          out.created.push_back(prompt);
          if (r.keep_alive) out.problems.push_back("keep-alive offered while stopping");
          const json::object row = object_of(r);
          if (!row.contains("prompt_text") || row.at("prompt_text") != json::value(prompt)) {
            out.problems.push_back("wrong row: " + r.body.substr(0, 200));
          }
        } else {
          out.problems.push_back("in flight: " + describe(r));
        }
      } catch (const std::exception& e) {
        out.problems.push_back(std::string("in flight: ") + e.what());
      }
      if (!arrived) {
        headers_sent.arrive_and_wait();
        signal_sent.arrive_and_wait();
      }
    });
  }
  for (int h = 0; h < kHammers; ++h) {
    threads.emplace_back([&, h] {
      Outcome& out = outcomes[static_cast<std::size_t>(kInFlight + h)];
      HttpClient client(port, 15s);
      client.set_retry(false);
      for (int k = 0; !stop_hammering.load(); ++k) {
        const std::string prompt = fmt::format("hammer {} {}", h, k);
        try {
          const HttpResponse r = client.request("POST", "/v1/analyses", body_for(prompt, 100 + h),
                                                {{"Content-Type", "application/json"}});
          ++hammered;
          if (r.status == 201) {
            out.created.push_back(prompt);
          } else {
            out.problems.push_back("hammer: " + describe(r));
          }
        } catch (const HttpError& e) {
          if (e.response_started || e.timed_out) {
            out.problems.push_back(std::string("hammer: truncated or hung: ") + e.what());
          } else {
            ++out.refused;  // the server closed or refused the connection: it is stopping
          }
          if (e.stage == HttpError::Stage::connect) return;
        }
      }
    });
  }

  headers_sent.arrive_and_wait();  // every in-flight request's header was read by the server
  EXPECT_TRUE(eventually(10s, [&] { return hammered.load() >= 3 * kHammers; }));
  server().signal(SIGTERM);
  // Once the stop closed the acceptor, a new connection gets no answer (refused, or closed
  // before any byte of a response).
  const bool turned_away = eventually(5s, [&] {
    try {
      HttpClient late(port, 2s);
      late.set_retry(false);
      (void)late.request("GET", "/healthz");
      return false;
    } catch (const HttpError& e) {
      EXPECT_FALSE(e.response_started) << e.what();
      return true;
    }
  });
  EXPECT_TRUE(turned_away) << "new connections were still served 5 s after SIGTERM";
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(server().running()) << "exited with requests in flight";
  signal_sent.arrive_and_wait();  // the in-flight requests send their bodies now
  const int code = server().wait_exit(20s);
  stop_hammering = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(code, 0) << server().stderr_text();

  std::size_t created = 0;
  int refused = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    for (const auto& p : outcomes[i].problems) ADD_FAILURE() << "client " << i << ": " << p;
    created += outcomes[i].created.size();
    refused += outcomes[i].refused;
    if (i < static_cast<std::size_t>(kInFlight)) {
      EXPECT_EQ(outcomes[i].created.size(), 3u) << "client " << i;
    }
  }
  // Every 201 is a stored row. A request whose connection was closed under it may have been
  // stored without an answer only if the server had read it: at most one per refusal.
  const std::int64_t rows = row_count();
  EXPECT_GE(rows, static_cast<std::int64_t>(created));
  EXPECT_LE(rows, static_cast<std::int64_t>(created) + refused);
  const std::string out = server().stdout_text();
  EXPECT_EQ(out, fmt::format("listening on http://127.0.0.1:{}\n", port))
      << "exactly one line on stdout";
}

// ---- PostgreSQL down
// ------------------------------------------------------------------------------

// With the database gone, reads that need it and writes answer 503 without a word about SQL or
// the server; /readyz says unavailable, /healthz stays 200; once PostgreSQL is back, all works.
TEST(ServePostgresTest, DatabaseDownAnswers503WithoutLeakingAndRecovers) {
  if (!testing::pg_available()) GTEST_SKIP() << "PostgreSQL is not installed";
  SharedPostgres::reset();
  PgServer& pg = SharedPostgres::get();
  ServeProcess server({"serve", "--listen", "127.0.0.1:0", "--db", pg.url(), "--threads", "2"});
  HttpClient c(server.port());
  const Analysis a{.prompt = "stored before the outage", .user_id = "pg-user"};
  create(c, a);

  pg.stop();
  const Analysis b{.prompt = "written during the outage", .user_id = "pg-user"};
  expect_error(post_analysis(c, b), 503, "", "POST with the database down");
  expect_error(lookup(c, b), 503, "", "lookup with the database down");
  expect_error(c.request("DELETE", analysis_target(a.hash(), a.user_id)), 503, "",
               "DELETE with the database down");
  const HttpResponse ready = c.request("GET", "/readyz");
  EXPECT_EQ(ready.status, 503u) << describe(ready);
  expect_no_internals(ready.body, "/readyz");
  EXPECT_EQ(c.request("GET", "/healthz").status, 200u);

  pg.start();
  EXPECT_TRUE(eventually(20s, [&] { return c.request("GET", "/readyz").status == 200; }));
  const json::object row = create(c, b);
  expect_row_matches(row, b, "POST after the outage");
  EXPECT_EQ(get_analysis(c, a).status, 200u);
  EXPECT_EQ(object_of(get_analysis(c, b)), row);
  const std::string log = server.stderr_text();
  EXPECT_EQ(log.find(pg.options().password), std::string::npos) << "the password is logged";
}

// ---- Redis outages
// --------------------------------------------------------------------------------

class ServeRedisOutageTest : public ::testing::TestWithParam<Setup>, protected ServeFixture {
 protected:
  void SetUp() override { prepare(GetParam()); }
  void TearDown() override { report(HasFailure()); }

  // Reads `a` until the cache serves it again; every answer must be `want` (never a stale row).
  void expect_fresh_until_cached(const Analysis& a, const json::object& want,
                                 std::string_view context) {
    HttpClient& c = client();
    bool cached = false;
    int reads = 0;
    const bool done = eventually(20s, [&] {
      const HttpResponse r = get_analysis(c, a);
      ++reads;
      EXPECT_EQ(r.status, 200u) << context << ": " << describe(r);
      EXPECT_EQ(object_of(r), want)
          << context << ": stale value after " << reads << " reads, " << describe(r);
      cached = r.header("X-Cache") == "hit";
      return cached || ::testing::Test::HasFailure();
    });
    EXPECT_TRUE(done && cached) << context << ": the cache never served again";
  }
  void expect_gone_until_pending_cleared(const Analysis& d, std::string_view context) {
    HttpClient& c = client();
    const bool cleared = eventually(20s, [&] {
      expect_error(get_analysis(c, d), 404, "", std::string(context) + ": deleted row");
      const HttpResponse s = c.request("GET", "/v1/stats");
      const json::object o = object_of(s);
      return (o.contains("pending_invalidations") &&
              o.at("pending_invalidations") == json::value(0)) ||
             ::testing::Test::HasFailure();
    });
    EXPECT_TRUE(cleared) << context << ": pending invalidations never cleared";
    expect_error(get_analysis(c, d), 404, "", std::string(context) + ": deleted row, at the end");
  }
};

INSTANTIATE_TEST_SUITE_P(Setups, ServeRedisOutageTest,
                         ::testing::Values(Setup::sqlite_redis, Setup::postgres_redis),
                         [](const ::testing::TestParamInfo<Setup>& info) {
                           return setup_name(info.param);
                         });

// Redis killed: reads come from the database (X-Cache: miss), writes still answer 201, deletes
// 200; once Redis is back (empty), values changed meanwhile are read fresh and the cache serves
// again. Short Redis timeouts (see RedisKilledReadsDoNotWaitForTheCommandTimeout for the
// defaults) keep the time until the breaker opens short.
TEST_P(ServeRedisOutageTest, RedisKilledServesFromDatabaseAndNeverStale) {
  start({}, {{"REDIS_SOCKET_TIMEOUT", "0.5"}, {"REDIS_CONNECT_TIMEOUT", "0.5"}});
  HttpClient& c = client();
  Analysis k{.prompt = "changed during the outage", .user_id = "outage"};
  const Analysis d{.prompt = "deleted during the outage", .user_id = "outage"};
  const Analysis s{.prompt = "untouched", .user_id = "outage"};
  create(c, k);
  create(c, d);
  const json::object s_row = create(c, s);
  ASSERT_EQ(get_analysis(c, k).header("X-Cache"), "hit");

  redis_->stop();
  for (int i = 0; i < 8; ++i) {  // enough to open the breaker, and past it
    const HttpResponse r = get_analysis(c, s);
    EXPECT_EQ(r.status, 200u) << describe(r);
    EXPECT_EQ(r.header("X-Cache"), "miss") << i;
    EXPECT_EQ(object_of(r), s_row);
  }
  k.quality_scores = json::object{{"changed", true}};
  k.model_version = "during-outage";
  const HttpResponse updated = post_analysis(c, k);
  ASSERT_EQ(updated.status, 201u) << describe(updated);
  const json::object k_row = object_of(updated);
  expect_row_matches(k_row, k, "upsert during the outage");
  const HttpResponse during = get_analysis(c, k);
  EXPECT_EQ(during.status, 200u);
  // Its cache write failed: the key is bypassed (the database answers) until it is repaired.
  EXPECT_EQ(during.header("X-Cache"), "bypass");
  EXPECT_EQ(object_of(during), k_row);
  EXPECT_EQ(object_of(lookup(c, k)), k_row);
  const Analysis n{.prompt = "new during the outage", .user_id = "outage"};
  const json::object n_row = create(c, n);
  EXPECT_EQ(object_of(get_analysis(c, n)), n_row);
  EXPECT_EQ(c.request("DELETE", analysis_target(d.hash(), d.user_id)).status, 200u);
  expect_error(get_analysis(c, d), 404, "", "deleted during the outage");
  EXPECT_EQ(c.request("GET", "/readyz").status, 200u) << "the cache is not needed to serve";
  const HttpResponse inval = c.request("DELETE", user_cache_target("outage"));
  expect_error(inval, 503, "", "invalidate with the cache down");
  const HttpResponse stats = c.request("GET", "/v1/stats");
  EXPECT_EQ(stats.status, 503u) << "the cache cannot be asked";
  EXPECT_TRUE(object_of(stats).contains("error")) << stats.body;
  EXPECT_TRUE(object_of(stats).contains("client")) << "this client's figures still come";
  const HttpResponse readiness = c.request("GET", "/readyz");
  EXPECT_EQ(object_of(readiness).at("cache"), json::value("degraded")) << readiness.body;

  redis_->start();
  expect_fresh_until_cached(k, k_row, "changed during the outage");
  expect_fresh_until_cached(s, s_row, "untouched");
  expect_fresh_until_cached(n, n_row, "new during the outage");
  expect_gone_until_pending_cleared(d, "deleted during the outage");
  EXPECT_EQ(object_of(get_analysis(c, k)), k_row);
}

// Redis frozen (SIGSTOP) with the old value still in it: a write during the freeze must not let
// that value be read after the thaw: the entry is bypassed until its deletion went through.
TEST_P(ServeRedisOutageTest, RedisFrozenOldValueNeverServedAfterThaw) {
  start({}, {{"REDIS_SOCKET_TIMEOUT", "0.3"},
             {"REDIS_CONNECT_TIMEOUT", "0.3"},
             {"REDIS_RETRY_ON_TIMEOUT", "false"},
             {"PROMPTCACHE_BREAKER_OPEN_SECONDS", "0.2"}});
  HttpClient& c = client();
  Analysis k{.prompt = "changed while frozen", .user_id = "frozen"};
  const Analysis d{.prompt = "deleted while frozen", .user_id = "frozen"};
  const json::object old_row = create(c, k);
  create(c, d);
  ASSERT_EQ(get_analysis(c, k).header("X-Cache"), "hit");
  ASSERT_EQ(get_analysis(c, d).header("X-Cache"), "hit");

  redis_->freeze();
  k.quality_scores = json::object{{"changed", "while frozen"}};
  const HttpResponse updated = post_analysis(c, k);
  ASSERT_EQ(updated.status, 201u) << describe(updated);
  const json::object new_row = object_of(updated);
  EXPECT_NE(new_row, old_row);
  const HttpResponse during = get_analysis(c, k);
  EXPECT_EQ(during.status, 200u);
  EXPECT_EQ(object_of(during), new_row) << "stale while frozen: " << describe(during);
  EXPECT_EQ(c.request("DELETE", analysis_target(d.hash(), d.user_id)).status, 200u);
  expect_error(get_analysis(c, d), 404, "", "deleted while frozen");

  redis_->thaw();
  expect_fresh_until_cached(k, new_row, "changed while frozen");
  expect_gone_until_pending_cleared(d, "deleted while frozen");
}

// Before: /readyz said "cache":"ok" while Redis was unreachable (it looked at the breaker only,
// which no request had opened yet).
TEST(ServeRedisDefaultsTest, ReadyzSaysTheCacheIsDegradedWhenRedisIsDownOrHungWithoutTraffic) {
  TempDir dir;
  RedisServer redis;
  ServeProcess server({"serve", "--listen", "127.0.0.1:0", "--db",
                       "sqlite://" + dir.path() + "/promptcache.db", "--threads", "2"},
                      {{"REDIS_URL", redis.url()}});
  HttpClient c(server.port(), 30s);
  auto cache_state = [&] {
    const HttpResponse r = c.request("GET", "/readyz");
    EXPECT_EQ(r.status, 200u) << "the database answers: still ready";
    return std::string(object_of(r).at("cache").as_string());
  };
  EXPECT_EQ(cache_state(), "ok");
  redis.freeze();
  EXPECT_EQ(cache_state(), "degraded") << "hung past the read budget";
  redis.thaw();
  EXPECT_TRUE(eventually(10s, [&] { return cache_state() == "ok"; }));
  redis.stop();
  EXPECT_EQ(cache_state(), "degraded") << "unreachable";
  redis.start();
  EXPECT_TRUE(eventually(10s, [&] { return cache_state() == "ok"; }));
}

// With the default settings (REDIS_SOCKET_TIMEOUT 5 s), a read while Redis is down must not wait
// for the command timeout: every reconnect is refused at once, so the cache is known to be down.
TEST(ServeRedisDefaultsTest, RedisKilledReadsDoNotWaitForTheCommandTimeout) {
  TempDir dir;
  RedisServer redis;
  ServeProcess server({"serve", "--listen", "127.0.0.1:0", "--db",
                       "sqlite://" + dir.path() + "/promptcache.db", "--threads", "2"},
                      {{"REDIS_URL", redis.url()}});
  HttpClient c(server.port(), 30s);  // long enough to see how long it takes
  const Analysis a{.prompt = "read during the outage", .user_id = "defaults"};
  const json::object row = create(c, a);
  ASSERT_EQ(get_analysis(c, a).header("X-Cache"), "hit");

  redis.stop();
  const auto start = Clock::now();
  const HttpResponse r = get_analysis(c, a);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_EQ(r.status, 200u) << describe(r);
  EXPECT_EQ(r.header("X-Cache"), "miss");
  EXPECT_EQ(object_of(r), row);
  EXPECT_LT(elapsed, 2000ms) << "a GET with Redis down (connection refused) took "
                             << elapsed.count() << " ms\n"
                             << server.stderr_text();
}

// ---- process-level behaviour (SQLite, in-process cache) ----------------------------------------

class ServeProcessTest : public ::testing::Test, protected ServeFixture {
 protected:
  void SetUp() override { prepare(Setup::sqlite_local); }
  void TearDown() override { report(HasFailure()); }
};

TEST_F(ServeProcessTest, ApiKeyGuardsEveryRouteButHealthChecks) {
  const std::string key = "s3cret-key-Zq9";
  start({"--api-key", key});
  HttpClient& c = client();
  const HttpHeaders good{{"Authorization", "Bearer " + key}};
  EXPECT_EQ(c.request("GET", "/healthz").status, 200u);
  EXPECT_EQ(c.request("GET", "/readyz").status, 200u);

  const Analysis a{.prompt = "guarded", .user_id = "auth-user"};
  const std::vector<HttpHeaders> wrong{
      {},
      {{"Authorization", "Bearer wrong"}},
      {{"Authorization", "Bearer " + key + "x"}},
      {{"Authorization", "Bearer " + key.substr(0, key.size() - 1)}},
      {{"Authorization", "Bearer"}},
      {{"Authorization", "Bearer "}},
      {{"Authorization", key}},
      {{"Authorization", "Basic " + key}},
      {{"Authorization", "Bearer  " + key}},
      {{"X-Api-Key", key}},
  };
  for (const auto& h : wrong) {
    const std::string ctx = h.empty() ? "no header" : h.front().first + ": " + h.front().second;
    const HttpResponse res = post_analysis(c, a, h);
    expect_error(res, 401, "", "POST " + ctx);
    EXPECT_EQ(res.header("WWW-Authenticate"), "Bearer") << ctx;
    expect_error(get_analysis(c, a, h), 401, "", "GET " + ctx);
    expect_error(
        post_json(c, "/v1/analyses/lookup", json::object{{"prompt", "p"}, {"user_id", "u"}}, h),
        401, "", "lookup " + ctx);
    expect_error(c.request("DELETE", analysis_target(a.hash(), a.user_id), {}, h), 401, "",
                 "DELETE " + ctx);
    expect_error(c.request("DELETE", user_cache_target(a.user_id), {}, h), 401, "",
                 "invalidate " + ctx);
    expect_error(c.request("GET", "/v1/stats", {}, h), 401, "", "stats " + ctx);
    expect_error(c.request("GET", "/metrics", {}, h), 401, "", "metrics " + ctx);
  }
  expect_error(get_analysis(c, a, good), 404, "", "nothing was stored by refused requests");

  const HttpResponse created = post_analysis(c, a, good);
  EXPECT_EQ(created.status, 201u) << describe(created);
  EXPECT_EQ(get_analysis(c, a, good).status, 200u);
  EXPECT_EQ(post_json(c, "/v1/analyses/lookup",
                      json::object{{"prompt", a.prompt}, {"user_id", a.user_id}}, good)
                .status,
            200u);
  EXPECT_EQ(c.request("GET", "/v1/stats", {}, good).status, 200u);
  const HttpResponse m = c.request("GET", "/metrics", {}, good);
  EXPECT_EQ(m.status, 200u);
  // Seven refused requests per wrong header, all counted (under whatever route label).
  EXPECT_EQ(sum_of_samples(m.body, "promptcache_http_requests_total{", "status=\"401\""),
            static_cast<double>(7 * wrong.size()))
      << m.body;
  EXPECT_EQ(c.request("DELETE", user_cache_target(a.user_id), {}, good).status, 200u);
  EXPECT_EQ(c.request("DELETE", analysis_target(a.hash(), a.user_id), {}, good).status, 200u);
  EXPECT_EQ(server().stderr_text().find(key), std::string::npos) << "the key is logged";

  // The key may come from the environment too.
  start({}, {{"PROMPTCACHE_API_KEY", key}});
  expect_error(client().request("GET", "/v1/stats"), 401, "", "env key, none sent");
  EXPECT_EQ(client().request("GET", "/v1/stats", {}, good).status, 200u);
}

TEST_F(ServeProcessTest, RefusesNonLoopbackListenWithoutApiKey) {
  for (const std::string& listen :
       {std::string("0.0.0.0:0"), std::string(":0"), std::string("[::]:0")}) {
    const auto r = testing::run_promptcache(
        {"serve", "--listen", listen, "--db", db_url(), "--threads", "1"}, {}, 15s);
    EXPECT_FALSE(r.timed_out) << listen << ": it started serving";
    EXPECT_NE(r.exit_code, 0) << listen;
    EXPECT_EQ(r.out.find("listening on"), std::string::npos) << listen << ": " << r.out;
    EXPECT_NE(r.err.find("API key"), std::string::npos) << listen << ": " << r.err;
    EXPECT_NE(r.err.find("--api-key"), std::string::npos) << listen << ": " << r.err;
  }
  // With a key, it listens on every interface, loopback included.
  ServeProcess& s = start({"--listen", "0.0.0.0:0", "--api-key", "k-123"});
  EXPECT_EQ(s.host(), "0.0.0.0");
  EXPECT_EQ(client().request("GET", "/healthz").status, 200u);
  EXPECT_EQ(client().request("GET", "/v1/stats").status, 401u);
  // The scheme is case-insensitive (RFC 9110 §11.1); before, "bearer" was refused.
  EXPECT_EQ(client().request("GET", "/v1/stats", {}, {{"Authorization", "bearer k-123"}}).status,
            200u);
  EXPECT_EQ(client().request("GET", "/v1/stats", {}, {{"Authorization", "BEARER k-123"}}).status,
            200u);
  EXPECT_EQ(client().request("GET", "/v1/stats", {}, {{"Authorization", "Bearer k-123"}}).status,
            200u);
}

// Before: a --db value that was not a URL became a SQLite file of that name (created and logged,
// password and all); a sqlite URL's parameters became part of the file's name.
TEST_F(ServeProcessTest, DbValueThatIsNotADatabaseUrlIsAClearStartUpErrorAndCreatesNothing) {
  const auto cwd = std::filesystem::current_path();
  for (const std::string& db :
       {std::string("host=h password=pw-canary-db"), std::string("promptcache.db"),
        std::string("sqlite://s-canary.db?password=pw-canary-db")}) {
    const auto r =
        testing::run_promptcache({"serve", "--listen", "127.0.0.1:0", "--db", db}, {}, 15s);
    EXPECT_NE(r.exit_code, 0) << db;
    EXPECT_EQ(r.out.find("listening on"), std::string::npos) << db << ": " << r.out;
    EXPECT_NE(r.err.find("database"), std::string::npos) << db << ": " << r.err;
    EXPECT_EQ((r.out + r.err).find("pw-canary"), std::string::npos) << db << ": " << r.err;
  }
  for (const char* name : {"host=h password=pw-canary-db", "promptcache.db", "s-canary.db",
                           "s-canary.db?password=pw-canary-db"}) {
    EXPECT_FALSE(std::filesystem::exists(cwd / name)) << name << " was created";
  }
}

TEST_F(ServeProcessTest, BodyOverTheLimitIs413) {
  start({"--body-limit", "4096"});
  auto body_of_size = [](std::size_t size) {
    Analysis a{.prompt = "limit", .user_id = "limit-user"};
    a.metadata = json::object{{"pad", ""}};
    const std::size_t base = json::serialize(a.body()).size();
    a.metadata = json::object{{"pad", repeat("x", size - base)}};
    std::string body = json::serialize(a.body());
    EXPECT_EQ(body.size(), size);
    return body;
  };
  const HttpHeaders json_type{{"Content-Type", "application/json"}};
  const HttpResponse fits = client().request("POST", "/v1/analyses", body_of_size(4096), json_type);
  EXPECT_EQ(fits.status, 201u) << describe(fits);
  expect_error(client().request("POST", "/v1/analyses", body_of_size(4097), json_type), 413, "",
               "4097 bytes over a 4096 limit");
  expect_error(client().request("POST", "/v1/analyses/lookup", body_of_size(8000), json_type), 413,
               "", "lookup over the limit");
  EXPECT_EQ(client().request("GET", "/healthz").status, 200u) << "a new connection serves";

  // The default: 1 MiB.
  start();
  const HttpResponse big =
      client().request("POST", "/v1/analyses", body_of_size(1024 * 1024), json_type);
  EXPECT_EQ(big.status, 201u) << describe(big);
  expect_error(client().request("POST", "/v1/analyses", body_of_size(1024 * 1024 + 1), json_type),
               413, "", "1 MiB + 1");
}

TEST_F(ServeProcessTest, MalformedHttpIsAnsweredWithJson400) {
  start();
  for (const std::string& raw :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
        std::string("POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    HttpClient c(server().port());
    const HttpResponse res = c.send_raw(raw);
    expect_error(res, 400, "", fmt::format("raw {:?}", raw));
  }
  HttpClient c(server().port());
  const HttpResponse big_header =
      c.request("GET", "/healthz", {}, {{"X-Padding", repeat("h", 20000)}});
  EXPECT_EQ(big_header.status, 431u);
  expect_no_internals(big_header.body, "huge header");
  EXPECT_EQ(client().request("GET", "/healthz").status, 200u);
}

// RFC 9110/9112 framing (issue 12, item 4). Before: `Transfer-Encoding: identity` without a
// length read an empty body and parsed the body bytes as a second request; `gzip, chunked` was
// accepted and used undecoded; a missing Host was accepted; oversized headers got 413.
TEST_F(ServeProcessTest, RequestFramingFollowsRfc9112AndNothingIsParsedAsASecondRequest) {
  start();
  const std::string body =
      R"({"prompt":"smuggled","user_id":"rfc","quality_scores":{},"improvement_suggestions":[]})";
  const std::string second = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  struct Case {
    std::string raw;
    unsigned status;
  };
  const std::vector<Case> cases{
      {"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + body +
           second,
       501},
      {"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n",
       501},
      {fmt::format("POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Length: {}\r\n\r\n{}",
                   body.size(), body),
       400},
      {"GET /healthz HTTP/1.1\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    HttpClient http(server().port());
    const HttpResponse res = http.send_raw(c.raw);
    expect_error(res, c.status, "", fmt::format("raw {:?}", c.raw));
    EXPECT_FALSE(res.keep_alive) << "closed: where the body ends is unknown";
  }
  // Chunked (any case) is decoded; HTTP/1.0 needs no Host.
  HttpClient http(server().port());
  const HttpResponse chunked = http.send_raw(
      fmt::format("POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
                  "Connection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                  body.size(), body));
  EXPECT_EQ(chunked.status, 201u) << describe(chunked);
  EXPECT_EQ(HttpClient(server().port()).send_raw("GET /healthz HTTP/1.0\r\n\r\n").status, 200u);
  // Headers too large: 431 (RFC 6585), not 413.
  const HttpResponse big_header =
      HttpClient(server().port())
          .request("GET", "/healthz", {}, {{"X-Padding", repeat("h", 20000)}});
  expect_error(big_header, 431, "", "huge header");
}

// SIGTERM, then a new process on the same SQLite file: every row is there, unchanged, ids go on.
TEST_F(ServeProcessTest, RestartOnTheSameSqliteFileKeepsTheData) {
  start({"--threads", "1"});
  std::vector<Analysis> analyses;
  std::vector<json::object> rows;
  for (int i = 0; i < 5; ++i) {
    Analysis a{.prompt = fmt::format("durable {} ✓", i), .user_id = fmt::format("u{}", i % 2)};
    a.analysis_type = i % 2 == 0 ? std::optional<std::string>("kept") : std::nullopt;
    rows.push_back(create(client(), a));
    analyses.push_back(a);
  }
  server().signal(SIGTERM);
  EXPECT_EQ(server().wait_exit(15s), 0) << server().stderr_text();

  start({"--threads", "1"});
  for (std::size_t i = 0; i < analyses.size(); ++i) {
    const HttpResponse r = get_analysis(client(), analyses[i]);
    ASSERT_EQ(r.status, 200u) << i << ": " << describe(r);
    EXPECT_EQ(r.header("X-Cache"), "miss") << "a new process has an empty in-process cache";
    EXPECT_EQ(object_of(r), rows[i]);
  }
  const Analysis next{.prompt = "after the restart", .user_id = "u0"};
  const json::object next_row = create(client(), next);
  EXPECT_GT(next_row.at("id").as_int64(), rows.back().at("id").as_int64());
  Analysis again = analyses[0];
  again.quality_scores = json::object{{"after", "restart"}};
  const json::object again_row = create(client(), again);
  EXPECT_EQ(again_row.at("id"), rows[0].at("id"));
  EXPECT_EQ(again_row.at("created_at"), rows[0].at("created_at"));

  // SIGINT stops it as well.
  server().signal(SIGINT);
  EXPECT_EQ(server().wait_exit(15s), 0) << server().stderr_text();
  EXPECT_EQ(sqlite_row_count(sqlite_path()), 6);
}

}  // namespace
}  // namespace promptcache
