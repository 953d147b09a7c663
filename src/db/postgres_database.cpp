// PostgreSQL through libpq: prepared statements on pooled connections, text parameters, times
// formatted by the server. A connection that broke is reset once before a call gives up.
#include <libpq-fe.h>

#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "db/backends.hpp"
#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/redact.hpp"

namespace promptcache::db {
namespace {

namespace json = boost::json;

constexpr const char* columns =
    "id, user_id, prompt_text, prompt_hash, analysis_type, quality_scores::text, "
    "improvement_suggestions::text, metadata::text, processing_time_ms, model_version, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), version";
// The same columns of the row `r` joined to its key's version row `v` (lookup).
constexpr const char* joined_columns =
    "r.id, r.user_id, r.prompt_text, r.prompt_hash, r.analysis_type, r.quality_scores::text, "
    "r.improvement_suggestions::text, r.metadata::text, r.processing_time_ms, r.model_version, "
    "to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), v.version";

constexpr const char* version_sql = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

// The first line of libpq's message (the rest repeats the query or points into it), without
// any secret: libpq quotes the parts of a connection URI it could not parse.
std::string first_line(const char* message) {
  std::string_view m = message != nullptr ? message : "";
  return redact(m.substr(0, m.find('\n')));
}

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { PQclear(r_); }
  [[nodiscard]] PGresult* get() const noexcept { return r_; }
  [[nodiscard]] int rows() const { return PQntuples(r_); }
  [[nodiscard]] std::string_view text(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  [[nodiscard]] bool is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  [[nodiscard]] std::int64_t integer(int row, int col) const {
    return std::stoll(std::string(text(row, col)));
  }

 private:
  PGresult* r_;
};

AnalysisRecord read_row(const Result& r, int row) {
  AnalysisRecord a;
  a.id = r.integer(row, 0);
  a.user_id = r.text(row, 1);
  a.prompt_text = r.text(row, 2);
  a.prompt_hash = r.text(row, 3);
  a.analysis_type = r.text(row, 4);
  decode_columns(a, r.text(row, 5), r.text(row, 6), r.text(row, 7));
  if (!r.is_null(row, 8)) a.processing_time_ms = r.integer(row, 8);
  if (!r.is_null(row, 9)) a.model_version = std::string(r.text(row, 9));
  a.created_at = r.text(row, 10);
  a.updated_at = r.text(row, 11);
  a.version = r.integer(row, 12);
  return a;
}

struct Prepared {
  const char* name;
  std::string sql;
};

const std::vector<Prepared>& statements() {
  static const std::vector<Prepared> all{
      // The key's version row is locked (and moved on) first, as by every change of the key:
      // the row's insert needs the version, so the CTE runs before it.
      {"upsert",
       fmt::format("WITH v AS (INSERT INTO prompt_analysis_versions (prompt_hash, user_id, "
                   "analysis_type, version) VALUES ($3, $1, $4, 1) "
                   "ON CONFLICT (prompt_hash, user_id, analysis_type) DO UPDATE SET "
                   "version = prompt_analysis_versions.version + 1 RETURNING version) "
                   "INSERT INTO prompt_analysis_results (user_id, prompt_text, prompt_hash, "
                   "analysis_type, quality_scores, improvement_suggestions, metadata, "
                   "processing_time_ms, model_version, created_at, updated_at, version) VALUES "
                   "($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::bigint, $9, now(), "
                   "now(), (SELECT version FROM v)) "
                   "ON CONFLICT (prompt_hash, user_id, analysis_type) DO UPDATE SET "
                   "prompt_text = excluded.prompt_text, quality_scores = excluded.quality_scores, "
                   "improvement_suggestions = excluded.improvement_suggestions, "
                   "metadata = excluded.metadata, "
                   "processing_time_ms = excluded.processing_time_ms, "
                   "model_version = excluded.model_version, updated_at = excluded.updated_at, "
                   "version = excluded.version "
                   "RETURNING {}",
                   columns)},
      // One statement, one snapshot: the row and the version agree.
      {"lookup", fmt::format("SELECT {} FROM prompt_analysis_versions v "
                             "LEFT JOIN prompt_analysis_results r ON "
                             "r.prompt_hash = v.prompt_hash AND r.user_id = v.user_id AND "
                             "r.analysis_type = v.analysis_type "
                             "WHERE v.prompt_hash = $1 AND v.user_id = $2 AND "
                             "v.analysis_type = $3",
                             joined_columns)},
      {"remove", "SELECT removed, new_version FROM promptcache_remove_analysis($1, $2, $3)"},
      {"page_all", fmt::format("SELECT {} FROM prompt_analysis_results WHERE id > $1::bigint "
                               "ORDER BY id LIMIT $2::bigint",
                               columns)},
      {"count_all", "SELECT COUNT(*) FROM prompt_analysis_results"},
      {"count_user", "SELECT COUNT(*) FROM prompt_analysis_results WHERE user_id = $1"},
      {"page_user", fmt::format("SELECT {} FROM prompt_analysis_results WHERE user_id = $3 AND "
                                "id > $1::bigint ORDER BY id LIMIT $2::bigint",
                                columns)},
  };
  return all;
}

class Connection {
 public:
  explicit Connection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = first_line(PQerrorMessage(conn_));
      PQfinish(conn_);
      throw DbError(fmt::format("postgresql: cannot connect to {}: {}", redact_url(url), why));
    }
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { PQfinish(conn_); }

  [[nodiscard]] bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

  // Unprepared SQL; several statements may be separated by semicolons (the last one's rows
  // come back).
  Result query(const std::string& sql) {
    Result r(PQexec(conn_, sql.c_str()));
    check(r, PGRES_COMMAND_OK, PGRES_TUPLES_OK);
    return r;
  }

  // Runs a prepared statement (preparing the set on first use); null params are SQL NULL.
  Result run(const char* name, const std::vector<std::optional<std::string>>& params) {
    if (!prepared_) prepare();
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Result r(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr,
                            nullptr, 0));
    check(r, PGRES_TUPLES_OK, PGRES_COMMAND_OK);
    return r;
  }

 private:
  void prepare() {
    for (const auto& s : statements()) {
      Result r(PQprepare(conn_, s.name, s.sql.c_str(), 0, nullptr));
      check(r, PGRES_COMMAND_OK, PGRES_COMMAND_OK);
    }
    prepared_ = true;
  }

  void check(const Result& r, ExecStatusType a, ExecStatusType b) const {
    const ExecStatusType s = PQresultStatus(r.get());
    if (s == a || s == b) return;
    const char* message =
        r.get() != nullptr ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_);
    throw DbError(fmt::format("postgresql: {}", first_line(message)));
  }

  PGconn* conn_;
  bool prepared_ = false;
};

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(std::string url, std::size_t connections)
      : url_(std::move(url)),
        pool_(connections, [this] { return std::make_unique<Connection>(url_); }) {
    auto c = pool_.acquire();
    migrate(*c);
  }

  [[nodiscard]] std::string_view kind() const noexcept override { return "postgresql"; }

  AnalysisRecord upsert(const AnalysisInput& in) override {
    auto params = std::vector<std::optional<std::string>>{
        in.user_id,
        in.prompt_text,
        in.prompt_hash,
        in.analysis_type,
        json_text(in.quality_scores),
        json_text(in.improvement_suggestions),
        json_text(in.metadata),
        in.processing_time_ms ? std::optional<std::string>(std::to_string(*in.processing_time_ms))
                              : std::nullopt,
        in.model_version};
    return call([&](Connection& c) {
      Result r = c.run("upsert", params);
      if (r.rows() != 1) throw DbError("postgresql: the upsert returned no row");
      return read_row(r, 0);
    });
  }

  Lookup lookup(std::string_view hash, std::string_view user, std::string_view type) override {
    const auto params = key_params(hash, user, type);
    return call([&](Connection& c) {
      Result r = c.run("lookup", params);
      Lookup found;
      if (r.rows() == 0) return found;
      found.version = r.integer(0, 12);
      if (!r.is_null(0, 0)) found.row = read_row(r, 0);
      return found;
    });
  }

  Removal remove(std::string_view hash, std::string_view user, std::string_view type) override {
    const auto params = key_params(hash, user, type);
    return call([&](Connection& c) {
      Result r = c.run("remove", params);
      if (r.rows() != 1) throw DbError("postgresql: the delete returned no row");
      return Removal{r.text(0, 0) == "t", r.integer(0, 1)};
    });
  }

  std::vector<AnalysisRecord> page(std::int64_t after_id, std::size_t limit,
                                   const std::optional<std::string>& user) override {
    std::vector<std::optional<std::string>> params{std::to_string(after_id), std::to_string(limit)};
    if (user) params.emplace_back(*user);
    return call([&](Connection& c) {
      Result r = c.run(user ? "page_user" : "page_all", params);
      std::vector<AnalysisRecord> rows;
      rows.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) rows.push_back(read_row(r, i));
      return rows;
    });
  }

  std::uint64_t count(const std::optional<std::string>& user) override {
    std::vector<std::optional<std::string>> params;
    if (user) params.emplace_back(*user);
    return call([&](Connection& c) {
      return static_cast<std::uint64_t>(
          c.run(user ? "count_user" : "count_all", params).integer(0, 0));
    });
  }

  void ping() override {
    call([](Connection& c) { return c.query("SELECT 1").rows(); });
  }

  int schema_version() override {
    return call([](Connection& c) { return static_cast<int>(c.query(version_sql).integer(0, 0)); });
  }

 private:
  static std::vector<std::optional<std::string>> key_params(std::string_view hash,
                                                            std::string_view user,
                                                            std::string_view type) {
    return {std::string(hash), std::string(user), std::string(type)};
  }

  // Runs `f` on a pooled connection. A connection found broken (the server restarted, say) is
  // dropped, and `f` tried once more on a fresh one: every statement here is safe to repeat.
  template <class F>
  std::invoke_result_t<F&, Connection&> call(F&& f) {
    for (int attempt = 0;; ++attempt) {
      auto c = pool_.acquire();
      try {
        return f(*c);
      } catch (const DbError&) {
        if (c->ok()) throw;  // the server answered: a real error
        c.discard();
        if (attempt > 0) throw;
      }
    }
  }

  static void migrate(Connection& c) {
    // An advisory lock serializes servers starting at once against one database.
    c.query("BEGIN; SELECT pg_advisory_xact_lock(7234001)");
    try {
      c.query(
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
          "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      const std::int64_t have = c.query(version_sql).integer(0, 0);
      for (const Migration& m : migrations()) {
        if (m.version <= have) continue;
        c.query(m.postgres);
        c.query(fmt::format("INSERT INTO schema_migrations (version) VALUES ({})", m.version));
      }
      c.query("COMMIT");
    } catch (...) {
      if (c.ok()) c.query("ROLLBACK");
      throw;
    }
  }

  std::string url_;
  Pool<Connection> pool_;
};

}  // namespace

std::unique_ptr<Database> open_postgres(const std::string& url, std::size_t connections) {
  return std::make_unique<PostgresDatabase>(url, connections);
}

}  // namespace promptcache::db
