// Numbers are exact (issue 11): what is stored is what is served. A number no double can keep
// as written is refused with 422 naming its field; numbers come back in their shortest form
// (0.8, not 8E-1) in responses, /v1/stats and CLI output; a row the database cannot decode is
// a clear error naming the key, counted, and skipped by `warm` — never a 503 for ever.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using testing::EnvVars;
using testing::HttpClient;
using testing::RedisServer;
using testing::ServeProcess;

class Numbers : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("promptcache-numbers-{}-{}", ::getpid(), test_counter_++);
    std::filesystem::create_directories(dir_);
    serve_ = std::make_unique<ServeProcess>(
        std::vector<std::string>{"serve", "--listen", "127.0.0.1:0", "--db", db_url()},
        EnvVars{{"REDIS_URL", redis_.url()}});
    http_ = std::make_unique<HttpClient>(serve_->port());
  }
  void TearDown() override {
    http_.reset();
    serve_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string db_path() const { return (dir_ / "n.db").string(); }
  std::string db_url() const { return "sqlite://" + db_path(); }

  testing::HttpResponse post(const std::string& fields) {
    return http_->request("POST", "/v1/analyses",
                          fmt::format(R"({{"prompt":"numbers","user_id":"u",{}}})", fields));
  }
  static std::string hash_of(const testing::HttpResponse& res) {
    return std::string(json::parse(res.body).at("prompt_hash").as_string());
  }

  static inline int test_counter_ = 0;
  std::filesystem::path dir_;
  RedisServer redis_;
  std::unique_ptr<ServeProcess> serve_;
  std::unique_ptr<HttpClient> http_;
};

// No number in Boost.JSON's exponent form (8E-1, 9.99E1, 1E0).
bool has_boost_exponent_form(const std::string& text) {
  static const std::regex boost_form("[0-9]E[-0-9]");
  return std::regex_search(text, boost_form);
}

TEST_F(Numbers, point_eight_round_trips_as_0_8_in_the_answer_and_from_the_cache) {
  const auto created = post(R"("quality_scores":{"clarity":0.8,"tiny":1e-7,"big":1e+22},)"
                            R"("improvement_suggestions":[0.1,2.5,3])");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_NE(created.body.find(R"("clarity":0.8)"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find(R"("tiny":1e-7)"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find(R"("big":1e+22)"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find(R"([0.1,2.5,3])"), std::string::npos) << created.body;
  const std::string target = fmt::format("/v1/analyses/{}?user_id=u", hash_of(created));
  for (int i = 0; i < 2; ++i) {  // a miss (the database), then a hit (the cache)
    const auto read = http_->request("GET", target);
    ASSERT_EQ(read.status, 200u) << read.body;
    EXPECT_NE(read.body.find(R"("clarity":0.8)"), std::string::npos) << read.body;
    EXPECT_FALSE(has_boost_exponent_form(read.body)) << read.body;
  }
  const auto stats = http_->request("GET", "/v1/stats");
  EXPECT_FALSE(has_boost_exponent_form(stats.body)) << stats.body;
}

TEST_F(Numbers, numbers_no_double_keeps_are_refused_with_422_naming_the_field) {
  const std::string huge_integer(400, '9');
  const auto first = post(R"("quality_scores":{"clarity":0.5},"improvement_suggestions":[])");
  ASSERT_EQ(first.status, 201u) << first.body;
  const std::string target = fmt::format("/v1/analyses/{}?user_id=u", hash_of(first));
  for (const std::string& bad :
       std::vector<std::string>{"1e400", "-1e400", "1e-400", huge_integer}) {
    for (const auto& [field, fields] : std::vector<std::pair<std::string, std::string>>{
             {"quality_scores", fmt::format(R"("quality_scores":{{"x":{}}},)"
                                            R"("improvement_suggestions":[])",
                                            bad)},
             {"improvement_suggestions",
              fmt::format(R"("quality_scores":{{}},"improvement_suggestions":[{}])", bad)},
             {"metadata", fmt::format(R"("quality_scores":{{}},"improvement_suggestions":[],)"
                                      R"("metadata":{{"m":[{}]}})",
                                      bad)},
             {"processing_time_ms",
              fmt::format(R"("quality_scores":{{}},"improvement_suggestions":[],)"
                          R"("processing_time_ms":{})",
                          bad)}}) {
      const auto res = post(fields);
      EXPECT_EQ(res.status, 422u) << bad << " in " << field << ": " << res.body;
      EXPECT_NE(res.body.find(field), std::string::npos) << res.body;
    }
  }
  // Nothing was stored: the key still reads as it was.
  const auto read = http_->request("GET", target);
  ASSERT_EQ(read.status, 200u) << read.body;
  EXPECT_NE(read.body.find(R"("clarity":0.5)"), std::string::npos) << read.body;
}

TEST_F(Numbers, a_row_the_database_cannot_decode_is_a_clear_error_counted_and_skipped_by_warm) {
  const auto good = post(R"("quality_scores":{"clarity":0.5},"improvement_suggestions":[])");
  ASSERT_EQ(good.status, 201u) << good.body;
  const auto other = http_->request(
      "POST", "/v1/analyses",
      R"({"prompt":"damaged","user_id":"u","quality_scores":{},"improvement_suggestions":[]})");
  ASSERT_EQ(other.status, 201u) << other.body;
  // Damage the second row behind the service's back (as a bad manual edit, or an older
  // version that stored Infinity, would), and drop its cache entry.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "UPDATE prompt_analysis_results SET quality_scores = '{\"x\":1e99999}' "
                         "WHERE prompt_text = 'damaged'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  ASSERT_EQ(http_->request("DELETE", "/v1/users/u/analyses/cache").status, 200u);
  const std::string target = fmt::format("/v1/analyses/{}?user_id=u", hash_of(other));
  for (int i = 0; i < 2; ++i) {
    const auto res = http_->request("GET", target);
    EXPECT_EQ(res.status, 500u) << res.body;
    EXPECT_NE(res.body.find(hash_of(other)), std::string::npos) << "names the key: " << res.body;
    EXPECT_NE(res.body.find("cannot be decoded"), std::string::npos) << res.body;
  }
  EXPECT_NE(http_->request("GET", "/metrics").body.find("promptcache_db_corrupt_rows_total 2"),
            std::string::npos);
  // The other row still reads.
  EXPECT_EQ(http_->request("GET", fmt::format("/v1/analyses/{}?user_id=u", hash_of(good))).status,
            200u);
  // warm caches the sound row, skips and names the damaged one, and says so in its exit code.
  const auto warm = testing::run_promptcache({"warm", "--from-db", "--db", db_url()},
                                             EnvVars{{"REDIS_URL", redis_.url()}});
  EXPECT_EQ(warm.exit_code, 1) << warm.err;
  EXPECT_NE(warm.out.find("1"), std::string::npos) << warm.out;
  EXPECT_NE(warm.err.find("skipped"), std::string::npos) << warm.err;
  EXPECT_NE(warm.err.find(hash_of(other)), std::string::npos) << warm.err;
}

TEST_F(Numbers, cli_output_writes_numbers_in_their_shortest_form) {
  const auto stats =
      testing::run_promptcache({"stats", "--json"}, EnvVars{{"REDIS_URL", redis_.url()}});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_FALSE(has_boost_exponent_form(stats.out)) << stats.out;
  const auto set = testing::run_promptcache({"set", "cli:k", R"({"v":0.8})"},
                                            EnvVars{{"REDIS_URL", redis_.url()}});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  const auto get = testing::run_promptcache({"get", "cli:k"}, EnvVars{{"REDIS_URL", redis_.url()}});
  EXPECT_EQ(get.out, "{\"v\":0.8}\n") << get.err;
}

}  // namespace
}  // namespace promptcache
