// The source-of-truth database: the same contract on SQLite (a file in a temp dir) and on a
// real PostgreSQL server started for the suite.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "promptcache/db/database.hpp"
#include "support/pg_server.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using db::AnalysisInput;
using db::Database;
using db::DbError;
using testing::PgServer;

enum class Kind { sqlite, postgresql };

std::string kind_name(const ::testing::TestParamInfo<Kind>& info) {
  return info.param == Kind::sqlite ? "sqlite" : "postgresql";
}

AnalysisInput input(std::string hash, std::string user, std::string type = "default") {
  AnalysisInput in;
  in.prompt_hash = std::move(hash);
  in.user_id = std::move(user);
  in.analysis_type = std::move(type);
  in.prompt_text = "Explain: " + in.prompt_hash;
  in.quality_scores = json::parse(R"({"clarity":0.5,"specificity":0.25})").as_object();
  in.improvement_suggestions = json::parse(R"(["add context","name the format"])").as_array();
  in.metadata = json::parse(R"({"source":"test","nested":{"k":[1,2]}})").as_object();
  in.processing_time_ms = 42;
  in.model_version = "m-1";
  return in;
}

std::string hash_of(int i) {
  return fmt::format("{:064x}", i);
}

class DatabaseContract : public ::testing::TestWithParam<Kind> {
 protected:
  // One server for the suite, started by its first PostgreSQL test (ctest runs each test in a
  // process of its own: SQLite tests start none).
  static void TearDownTestSuite() { pg_.reset(); }

  void SetUp() override {
    if (GetParam() == Kind::postgresql) {
      if (!testing::pg_available()) GTEST_SKIP() << "PostgreSQL server binaries are not installed";
      if (!pg_) pg_ = std::make_unique<PgServer>();
      pg_->psql(
          "DROP TABLE IF EXISTS prompt_analysis_results, prompt_analysis_versions, "
          "schema_migrations; DROP FUNCTION IF EXISTS promptcache_remove_analysis");
      url_ = pg_->url();
    } else {
      dir_ = std::filesystem::temp_directory_path() /
             fmt::format("promptcache-db-{}-{}", ::getpid(), counter_++);
      url_ = "sqlite://" + (dir_ / "nested" / "cache.db").string();
    }
    db_ = db::open_database(url_, 4);
  }
  void TearDown() override {
    db_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  Database& db() { return *db_; }

  static inline std::unique_ptr<PgServer> pg_;
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<Database> db_;
};

TEST_P(DatabaseContract, open_applies_every_migration_and_reopening_applies_none_again) {
  EXPECT_EQ(db().schema_version(), 2);
  (void)db().upsert(input(hash_of(1), "u"));
  auto again = db::open_database(url_, 2);
  EXPECT_EQ(again->schema_version(), 2);
  EXPECT_EQ(again->count(std::nullopt), 1u);
}

TEST_P(DatabaseContract, upsert_returns_the_stored_row_and_find_reads_it_back_equal) {
  const AnalysisInput in = input(hash_of(7), "user-7", "quality");
  const auto stored = db().upsert(in);
  EXPECT_GT(stored.id, 0);
  EXPECT_EQ(stored.created_at, stored.updated_at);
  EXPECT_EQ(stored.created_at.size(), 24u) << stored.created_at;  // 2026-11-23T23:51:43.123Z
  EXPECT_EQ(stored.created_at.back(), 'Z');
  auto found = db().find(in.prompt_hash, in.user_id, in.analysis_type);
  ASSERT_TRUE(found);
  EXPECT_EQ(db::to_json(*found), db::to_json(stored));
  EXPECT_EQ(found->quality_scores, in.quality_scores);
  EXPECT_EQ(found->improvement_suggestions, in.improvement_suggestions);
  EXPECT_EQ(found->metadata, in.metadata);
  EXPECT_EQ(found->processing_time_ms, std::optional<std::int64_t>(42));
  EXPECT_EQ(found->model_version, std::optional<std::string>("m-1"));
  EXPECT_EQ(found->prompt_text, in.prompt_text);
}

TEST_P(DatabaseContract, upsert_of_the_same_key_updates_in_place_keeping_id_and_created_at) {
  AnalysisInput in = input(hash_of(3), "u");
  const auto first = db().upsert(in);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  in.improvement_suggestions = json::parse(R"(["changed"])").as_array();
  in.processing_time_ms.reset();
  in.model_version.reset();
  const auto second = db().upsert(in);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.created_at, first.created_at);
  EXPECT_GT(second.updated_at, first.updated_at);
  EXPECT_EQ(db().count(std::nullopt), 1u);
  auto found = db().find(in.prompt_hash, "u", "default");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->improvement_suggestions, json::parse(R"(["changed"])").as_array());
  EXPECT_FALSE(found->processing_time_ms);
  EXPECT_FALSE(found->model_version);
}

TEST_P(DatabaseContract, the_key_is_hash_user_and_type_together) {
  (void)db().upsert(input(hash_of(1), "a", "default"));
  (void)db().upsert(input(hash_of(1), "a", "other"));
  (void)db().upsert(input(hash_of(1), "b", "default"));
  (void)db().upsert(input(hash_of(2), "a", "default"));
  EXPECT_EQ(db().count(std::nullopt), 4u);
  EXPECT_EQ(db().count(std::string("a")), 3u);
  EXPECT_FALSE(db().find(hash_of(2), "b", "default"));
}

TEST_P(DatabaseContract, hostile_and_unicode_values_round_trip_and_bind_as_data_not_sql) {
  const std::vector<std::string> users{"a:b",
                                       "a_b",
                                       "*",
                                       "[x]",
                                       "%",
                                       "' OR '1'='1",
                                       "Robert'); DROP TABLE prompt_analysis_results;--",
                                       "ユーザー",
                                       std::string(1024, 'z')};
  for (std::size_t i = 0; i < users.size(); ++i) {
    AnalysisInput in = input(hash_of(static_cast<int>(i)), users[i]);
    in.prompt_text = "Prompt with \"quotes\", \\ backslash, \t tab and ünïcödé 🚀";
    (void)db().upsert(in);
  }
  EXPECT_EQ(db().count(std::nullopt), users.size());
  for (std::size_t i = 0; i < users.size(); ++i) {
    auto found = db().find(hash_of(static_cast<int>(i)), users[i], "default");
    ASSERT_TRUE(found) << "user #" << i;
    EXPECT_EQ(found->user_id, users[i]);
    EXPECT_EQ(found->prompt_text, "Prompt with \"quotes\", \\ backslash, \t tab and ünïcödé 🚀");
  }
}

TEST_P(DatabaseContract, remove_deletes_one_row_and_says_whether_it_existed) {
  (void)db().upsert(input(hash_of(1), "u"));
  (void)db().upsert(input(hash_of(2), "u"));
  EXPECT_TRUE(db().remove(hash_of(1), "u", "default").removed);
  EXPECT_FALSE(db().remove(hash_of(1), "u", "default").removed);
  EXPECT_FALSE(db().find(hash_of(1), "u", "default"));
  EXPECT_TRUE(db().find(hash_of(2), "u", "default"));
}

TEST_P(DatabaseContract, page_walks_every_row_once_in_id_order_with_or_without_a_user) {
  for (int i = 0; i < 25; ++i) (void)db().upsert(input(hash_of(i), i % 3 == 0 ? "x" : "y"));
  std::vector<std::int64_t> ids;
  std::int64_t after = 0;
  for (;;) {
    auto rows = db().page(after, 7, std::nullopt);
    if (rows.empty()) break;
    EXPECT_LE(rows.size(), 7u);
    for (const auto& r : rows) ids.push_back(r.id);
    after = rows.back().id;
  }
  ASSERT_EQ(ids.size(), 25u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 25u);
  std::size_t xs = 0;
  after = 0;
  for (;;) {
    auto rows = db().page(after, 4, std::string("x"));
    if (rows.empty()) break;
    for (const auto& r : rows) EXPECT_EQ(r.user_id, "x");
    xs += rows.size();
    after = rows.back().id;
  }
  EXPECT_EQ(xs, 9u);
}

TEST_P(DatabaseContract, concurrent_upserts_from_several_threads_all_land) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        try {
          (void)db().upsert(input(hash_of(t * 1000 + i), fmt::format("t{}", t)));
          (void)db().find(hash_of(t * 1000 + i), fmt::format("t{}", t), "default");
        } catch (const DbError&) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(db().count(std::nullopt), 240u);
}

TEST_P(DatabaseContract, ping_succeeds_on_a_live_database) {
  EXPECT_NO_THROW(db().ping());
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseContract,
                         ::testing::Values(Kind::sqlite, Kind::postgresql), kind_name);

TEST(Sqlite, a_row_with_corrupt_json_is_reported_with_the_column_not_thrown) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("promptcache-db-corrupt-{}", ::getpid());
  const std::string path = (dir / "c.db").string();
  {
    auto db = db::open_database("sqlite://" + path, 1);
    (void)db->upsert(input(hash_of(1), "u"));
  }
  // Damage the row behind the service's back, as a bad manual edit would.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(raw, "UPDATE prompt_analysis_results SET quality_scores = '{oops'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto db = db::open_database("sqlite://" + path, 1);
  const auto found = db->lookup(hash_of(1), "u", "default");
  ASSERT_TRUE(found.row);
  EXPECT_NE(found.row->corrupt.find("quality_scores"), std::string::npos) << found.row->corrupt;
  // The rest of the row is there: the key, to say which row it is.
  EXPECT_EQ(found.row->user_id, "u");
  const auto page = db->page(0, 10, std::nullopt);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_FALSE(page[0].corrupt.empty()) << "a page reports it too, for warm to skip";
  std::filesystem::remove_all(dir);
}

TEST(Sqlite, an_unwritable_location_is_a_clear_error) {
  try {
    (void)db::open_database("sqlite:///proc/promptcache/x.db", 1);
    ADD_FAILURE() << "opened a database under /proc";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/promptcache"), std::string::npos) << e.what();
  }
}

// Before: anything without a scheme became a SQLite file of that name — a libpq connection
// string "host=h password=pw" was created on disk and logged; a sqlite URL's "?password=X" became
// part of the file's name.
TEST(Database, a_value_that_is_not_a_database_url_is_refused_and_creates_no_file) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("promptcache-db-url-{}", ::getpid());
  std::filesystem::create_directories(dir);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  for (const std::string& url :
       {std::string("host=h password=pw-canary-1"), std::string("plain.db"),
        std::string("sqlite://s.db?password=pw-canary-2"), std::string("sqlite://")}) {
    try {
      (void)db::open_database(url, 1);
      ADD_FAILURE() << "opened " << url;
    } catch (const DbError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find("pw-canary"), std::string::npos) << what;
      EXPECT_FALSE(what.empty());
    }
  }
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "a file was created";
  std::filesystem::remove_all(dir);
}

TEST(Database, unknown_url_schemes_are_refused_with_the_password_redacted) {
  try {
    (void)db::open_database("mysql://root:hunter2@localhost/db", 1);
    ADD_FAILURE() << "opened a mysql URL";
  } catch (const DbError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    EXPECT_NE(what.find("\"mysql\""), std::string::npos) << "names the scheme: " << what;
  }
  EXPECT_EQ(db::redact_url("postgresql://u:secret@h:5432/d"), "postgresql://u:***@h:5432/d");
  EXPECT_EQ(db::redact_url("postgresql://u@h/d"), "postgresql://u@h/d");
  EXPECT_EQ(db::redact_url("sqlite:///data/x.db"), "sqlite:///data/x.db");
  EXPECT_EQ(db::redact_url("host=h password=pw"), "(not a database URL)");
  EXPECT_EQ(db::redact_url("postgresql://u@h/d?password=pw&sslmode=require"),
            "postgresql://u@h/d?***");
}

TEST(Postgres, a_wrong_password_is_a_clear_error_without_the_password) {
  if (!testing::pg_available()) GTEST_SKIP() << "PostgreSQL server binaries are not installed";
  PgServer pg;
  const std::string url = fmt::format("postgresql://{}:not-the-password@127.0.0.1:{}/{}",
                                      pg.options().user, pg.port(), pg.options().database);
  try {
    (void)db::open_database(url, 1);
    ADD_FAILURE() << "connected with a wrong password";
  } catch (const DbError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("not-the-password"), std::string::npos) << what;
    EXPECT_NE(what.find("password authentication failed"), std::string::npos) << what;
  }
}

TEST(Postgres, calls_recover_after_the_server_restarts) {
  if (!testing::pg_available()) GTEST_SKIP() << "PostgreSQL server binaries are not installed";
  PgServer pg;
  auto db = db::open_database(pg.url(), 2);
  (void)db->upsert(input(hash_of(1), "u"));
  // A restart between two calls: the pooled connection is dead, the call replaces it unseen.
  pg.stop();
  pg.start();
  auto found = db->find(hash_of(1), "u", "default");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->user_id, "u");
  // During an outage a call fails with a DbError; once the server is back, calls go through.
  pg.stop();
  EXPECT_THROW((void)db->find(hash_of(1), "u", "default"), DbError);
  pg.start();
  EXPECT_TRUE(db->find(hash_of(1), "u", "default"));
}

}  // namespace
}  // namespace promptcache
