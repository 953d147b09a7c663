// SQLite: the embedded default. WAL lets readers run beside the one writer; synchronous=FULL
// makes a committed upsert survive a power cut, which is what a 201 promises.
#include <sqlite3.h>

#include <filesystem>

#include <fmt/format.h>

#include "db/backends.hpp"
#include "db/migrations.hpp"
#include "db/pool.hpp"
#include "promptcache/json_text.hpp"

namespace promptcache::db {
namespace {

namespace json = boost::json;

constexpr const char* columns =
    "id, user_id, prompt_text, prompt_hash, analysis_type, quality_scores, "
    "improvement_suggestions, metadata, processing_time_ms, model_version, created_at, "
    "updated_at, version";
// The same columns of the row `r` joined to its key's version row `v` (lookup).
constexpr const char* joined_columns =
    "r.id, r.user_id, r.prompt_text, r.prompt_hash, r.analysis_type, r.quality_scores, "
    "r.improvement_suggestions, r.metadata, r.processing_time_ms, r.model_version, "
    "r.created_at, r.updated_at, v.version";

// One prepared statement, reset after each use.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK) {
      throw DbError(fmt::format("sqlite: cannot prepare a statement: {}", sqlite3_errmsg(db)));
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int i, std::string_view text) {
    check(
        sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  template <class T>
  Statement& bind(int i, const std::optional<T>& v) {
    if (v) return bind(i, *v);
    check(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // Whether a row came; throws on an error.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw DbError(fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  [[nodiscard]] std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p == nullptr
               ? std::string_view()
               : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] bool is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  void check(int rc) const {
    if (rc != SQLITE_OK) throw DbError(fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement however the use of it ends.
struct Use {
  explicit Use(Statement& s) : s(s) {}
  ~Use() { s.reset(); }
  Statement& s;
};

AnalysisRecord read_row(const Statement& s) {
  AnalysisRecord r;
  r.id = s.integer(0);
  r.user_id = s.text(1);
  r.prompt_text = s.text(2);
  r.prompt_hash = s.text(3);
  r.analysis_type = s.text(4);
  decode_columns(r, s.text(5), s.text(6), s.text(7));
  if (!s.is_null(8)) r.processing_time_ms = s.integer(8);
  if (!s.is_null(9)) r.model_version = std::string(s.text(9));
  r.created_at = s.text(10);
  r.updated_at = s.text(11);
  r.version = s.integer(12);
  return r;
}

class Connection {
 public:
  explicit Connection(const std::string& path) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw DbError(fmt::format("sqlite: cannot open {:?}: {}", path, why));
    }
    sqlite3_busy_timeout(db_, 5000);  // a writer waits for another instead of failing
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    statements_.clear();  // finalized before the close
    sqlite3_close(db_);
  }

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string why = error != nullptr ? error : sqlite3_errmsg(db_);
      sqlite3_free(error);
      throw DbError(fmt::format("sqlite: {}", why));
    }
  }

  // The statements, prepared on first use and kept.
  Statement& upsert() {
    return prepared(
        0, fmt::format("INSERT INTO prompt_analysis_results (user_id, prompt_text, "
                       "prompt_hash, analysis_type, quality_scores, improvement_suggestions, "
                       "metadata, processing_time_ms, model_version, created_at, updated_at, "
                       "version) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11) "
                       "ON CONFLICT (prompt_hash, user_id, analysis_type) DO UPDATE SET "
                       "prompt_text = excluded.prompt_text, "
                       "quality_scores = excluded.quality_scores, "
                       "improvement_suggestions = excluded.improvement_suggestions, "
                       "metadata = excluded.metadata, "
                       "processing_time_ms = excluded.processing_time_ms, "
                       "model_version = excluded.model_version, "
                       "updated_at = excluded.updated_at, version = excluded.version "
                       "RETURNING {}",
                       columns));
  }
  // A key with no version row was never written: no row, version 0.
  Statement& lookup() {
    return prepared(1, fmt::format("SELECT {} FROM prompt_analysis_versions v "
                                   "LEFT JOIN prompt_analysis_results r ON "
                                   "r.prompt_hash = v.prompt_hash AND r.user_id = v.user_id AND "
                                   "r.analysis_type = v.analysis_type "
                                   "WHERE v.prompt_hash = ?1 AND v.user_id = ?2 AND "
                                   "v.analysis_type = ?3",
                                   joined_columns));
  }
  Statement& bump_version() {
    return prepared(8,
                    "INSERT INTO prompt_analysis_versions (prompt_hash, user_id, analysis_type, "
                    "version) VALUES (?1, ?2, ?3, 1) "
                    "ON CONFLICT (prompt_hash, user_id, analysis_type) DO UPDATE SET "
                    "version = version + 1 RETURNING version");
  }
  Statement& current_version() {
    return prepared(9,
                    "SELECT version FROM prompt_analysis_versions WHERE prompt_hash = ?1 AND "
                    "user_id = ?2 AND analysis_type = ?3");
  }
  Statement& remove() {
    return prepared(2,
                    "DELETE FROM prompt_analysis_results WHERE prompt_hash = ?1 AND user_id = ?2 "
                    "AND analysis_type = ?3");
  }
  Statement& page_all() {
    return prepared(3, fmt::format("SELECT {} FROM prompt_analysis_results WHERE id > ?1 "
                                   "ORDER BY id LIMIT ?2",
                                   columns));
  }
  Statement& page_user() {
    return prepared(4, fmt::format("SELECT {} FROM prompt_analysis_results WHERE user_id = ?3 "
                                   "AND id > ?1 ORDER BY id LIMIT ?2",
                                   columns));
  }
  Statement& count_all() { return prepared(6, "SELECT COUNT(*) FROM prompt_analysis_results"); }
  Statement& count_user() {
    return prepared(7, "SELECT COUNT(*) FROM prompt_analysis_results WHERE user_id = ?1");
  }
  Statement& version() {
    return prepared(5, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  }
  [[nodiscard]] sqlite3* handle() const noexcept { return db_; }

 private:
  Statement& prepared(std::size_t i, const std::string& sql) {
    if (statements_.size() <= i) statements_.resize(i + 1);
    if (!statements_[i]) statements_[i] = std::make_unique<Statement>(db_, sql);
    return *statements_[i];
  }

  sqlite3* db_ = nullptr;
  std::vector<std::unique_ptr<Statement>> statements_;
};

// Runs `f` in a write transaction: BEGIN IMMEDIATE takes the database's one write lock at
// once, so every change (and its version) is ordered.
template <class F>
auto in_transaction(Connection& c, F&& f) {
  c.exec("BEGIN IMMEDIATE");
  try {
    auto result = f();
    c.exec("COMMIT");
    return result;
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::int64_t next_version(Connection& c, std::string_view hash, std::string_view user,
                          std::string_view type) {
  Use use(c.bump_version());
  use.s.bind(1, hash).bind(2, user).bind(3, type);
  if (!use.s.step()) throw DbError("sqlite: the version update returned no row");
  return use.s.integer(0);
}

void migrate(Connection& c) {
  c.exec("BEGIN IMMEDIATE");  // one migrator at a time, even across processes
  try {
    c.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "applied_at TEXT NOT NULL)");
    std::int64_t have = 0;
    {
      Use use(c.version());
      if (use.s.step()) have = use.s.integer(0);
    }
    for (const Migration& m : migrations()) {
      if (m.version <= have) continue;
      c.exec(m.sqlite);
      Statement record(c.handle(),
                       "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      record.bind(1, std::int64_t{m.version}).bind(2, utc_now_iso());
      record.step();
    }
    c.exec("COMMIT");
  } catch (...) {
    sqlite3_exec(c.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::string path, std::size_t connections)
      : path_(std::move(path)),
        pool_(connections, [this] { return std::make_unique<Connection>(path_); }) {
    auto c = pool_.acquire();
    migrate(*c);
  }

  [[nodiscard]] std::string_view kind() const noexcept override { return "sqlite"; }

  AnalysisRecord upsert(const AnalysisInput& in) override {
    auto c = pool_.acquire();
    return in_transaction(*c, [&] {
      const std::int64_t version = next_version(*c, in.prompt_hash, in.user_id, in.analysis_type);
      Use use(c->upsert());
      use.s.bind(1, in.user_id)
          .bind(2, in.prompt_text)
          .bind(3, in.prompt_hash)
          .bind(4, in.analysis_type)
          .bind(5, json_text(in.quality_scores))
          .bind(6, json_text(in.improvement_suggestions))
          .bind(7, json_text(in.metadata))
          .bind(8, in.processing_time_ms)
          .bind(9, in.model_version)
          .bind(10, utc_now_iso())
          .bind(11, version);
      if (!use.s.step()) throw DbError("sqlite: the upsert returned no row");
      AnalysisRecord r = read_row(use.s);
      use.s.step();  // runs the statement to its end
      return r;
    });
  }

  Lookup lookup(std::string_view hash, std::string_view user, std::string_view type) override {
    auto c = pool_.acquire();
    Use use(c->lookup());
    use.s.bind(1, hash).bind(2, user).bind(3, type);
    Lookup found;
    if (!use.s.step()) return found;
    found.version = use.s.integer(12);
    if (!use.s.is_null(0)) found.row = read_row(use.s);
    return found;
  }

  Removal remove(std::string_view hash, std::string_view user, std::string_view type) override {
    auto c = pool_.acquire();
    return in_transaction(*c, [&] {
      Removal out;
      {
        Use use(c->remove());
        use.s.bind(1, hash).bind(2, user).bind(3, type);
        use.s.step();
        out.removed = sqlite3_changes(c->handle()) > 0;
      }
      if (out.removed) {
        out.version = next_version(*c, hash, user, type);
      } else {
        Use use(c->current_version());
        use.s.bind(1, hash).bind(2, user).bind(3, type);
        if (use.s.step()) out.version = use.s.integer(0);
      }
      return out;
    });
  }

  std::vector<AnalysisRecord> page(std::int64_t after_id, std::size_t limit,
                                   const std::optional<std::string>& user) override {
    auto c = pool_.acquire();
    Use use(user ? c->page_user() : c->page_all());
    use.s.bind(1, after_id).bind(2, static_cast<std::int64_t>(limit));
    if (user) use.s.bind(3, *user);
    std::vector<AnalysisRecord> rows;
    while (use.s.step()) rows.push_back(read_row(use.s));
    return rows;
  }

  std::uint64_t count(const std::optional<std::string>& user) override {
    auto c = pool_.acquire();
    Use use(user ? c->count_user() : c->count_all());
    if (user) use.s.bind(1, *user);
    return use.s.step() ? static_cast<std::uint64_t>(use.s.integer(0)) : 0;
  }

  void ping() override {
    auto c = pool_.acquire();
    c->exec("SELECT 1 FROM prompt_analysis_results LIMIT 1");
  }

  int schema_version() override {
    auto c = pool_.acquire();
    Use use(c->version());
    return use.s.step() ? static_cast<int>(use.s.integer(0)) : 0;
  }

 private:
  std::string path_;
  Pool<Connection> pool_;
};

}  // namespace

std::unique_ptr<Database> open_sqlite(const std::string& path, std::size_t connections) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      throw DbError(
          fmt::format("sqlite: cannot create the directory {:?}: {}", dir.string(), ec.message()));
    }
  }
  return std::make_unique<SqliteDatabase>(path, connections);
}

}  // namespace promptcache::db
