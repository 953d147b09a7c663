// The operator commands, run as the real binary against a real redis-server (and, for warm, a
// SQLite database filled through `promptcache serve`): what they print, their exit codes, and
// one clear line when they cannot go on.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
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
using testing::ProcessResult;
using testing::RedisServer;
using testing::run_promptcache;

std::string sha256_hex(std::string_view s) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += fmt::format("{:02x}", d[i]);
  return out;
}

// One line: what a script or a person reads when the command cannot go on.
std::size_t lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

class Ops : public ::testing::Test {
 protected:
  ProcessResult run(std::vector<std::string> args) {
    return run_promptcache(args, EnvVars{{"REDIS_URL", redis_.url()}});
  }
  RedisServer redis_;
};

TEST_F(Ops, set_then_get_prints_the_json_and_a_miss_exits_1_with_nothing_on_stdout) {
  auto set = run({"set", "ops:k", R"({"a":[1,2],"b":"x"})", "--ttl", "120"});
  EXPECT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out, "OK\n");
  EXPECT_GT(std::stoi(redis_.cli({"TTL", "ops:k"})), 100);
  auto get = run({"get", "ops:k"});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(json::parse(get.out), json::parse(R"({"a":[1,2],"b":"x"})"));
  auto miss = run({"get", "ops:absent"});
  EXPECT_EQ(miss.exit_code, 1);
  EXPECT_EQ(miss.out, "");
}

TEST_F(Ops, set_of_text_that_is_not_json_is_refused_and_writes_nothing) {
  auto r = run({"set", "ops:bad", "{not json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
  EXPECT_EQ(redis_.cli({"EXISTS", "ops:bad"}), "0");
}

TEST_F(Ops, get_analysis_reads_what_serve_stored_and_invalidate_removes_only_that_user) {
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("promptcache-ops-{}", ::getpid());
  std::filesystem::create_directories(dir);
  {
    testing::ServeProcess serve(
        {"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + (dir / "ops.db").string()},
        EnvVars{{"REDIS_URL", redis_.url()}});
    testing::HttpClient http(serve.port());
    const std::vector<std::string> users{"a:b", "a_b", "a_b", "*"};
    for (std::size_t i = 0; i < users.size(); ++i) {
      const std::string body = fmt::format(
          R"({{"prompt":"p{}","user_id":"{}","quality_scores":{{}},"improvement_suggestions":[]}})",
          i, users[i]);
      ASSERT_EQ(http.request("POST", "/v1/analyses", body).status, 201);
    }
  }
  auto hit = run({"get-analysis", "--prompt-hash", sha256_hex("p0"), "--user", "a:b"});
  EXPECT_EQ(hit.exit_code, 0) << hit.err;
  EXPECT_EQ(json::parse(hit.out).at("user_id"), "a:b");
  auto miss = run({"get-analysis", "--prompt-hash", sha256_hex("p0"), "--user", "a_b"});
  EXPECT_EQ(miss.exit_code, 1);

  auto inv = run({"invalidate", "--user", "a_b"});
  EXPECT_EQ(inv.exit_code, 0) << inv.err;
  EXPECT_EQ(inv.out, "2\n");  // the two entries of a_b, not a:b's, not *'s
  EXPECT_EQ(run({"get-analysis", "--prompt-hash", sha256_hex("p0"), "--user", "a:b"}).exit_code, 0);
  EXPECT_EQ(run({"get-analysis", "--prompt-hash", sha256_hex("p3"), "--user", "*"}).exit_code, 0);

  // warm puts the database's rows back into the cache.
  auto warm = run({"warm", "--from-db", "--db", "sqlite://" + (dir / "ops.db").string()});
  EXPECT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_EQ(warm.out, "4\n");
  EXPECT_EQ(run({"get-analysis", "--prompt-hash", sha256_hex("p1"), "--user", "a_b"}).exit_code, 0);
  auto pattern = run({"invalidate", "--pattern", "prompt:analysis:*"});
  EXPECT_EQ(pattern.out, "4\n") << pattern.err;
  std::filesystem::remove_all(dir);
}

TEST_F(Ops, stats_prints_json_for_scripts_with_the_seeds_fields) {
  ASSERT_EQ(run({"set", "ops:s", "1"}).exit_code, 0);
  auto r = run({"stats", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json::object s = json::parse(r.out).as_object();
  for (const char* field : {"keyspace_hits", "keyspace_misses", "hit_rate", "connected_clients",
                            "used_memory", "total_commands_processed"}) {
    EXPECT_TRUE(s.contains(field)) << field << " missing from " << r.out;
  }
}

TEST_F(Ops, an_unreachable_redis_is_one_clear_line_and_exit_1) {
  redis_.stop();
  for (auto args : std::vector<std::vector<std::string>>{
           {"get", "k"}, {"set", "k", "1"}, {"invalidate", "--user", "u"}, {"stats"}}) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 1) << args[0];
    EXPECT_EQ(lines(r.err), 1u) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("cannot reach Redis"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(OpsWithoutRedis, no_redis_configured_and_bad_flags_exit_non_zero_with_a_message) {
  auto none = run_promptcache({"get", "k"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no Redis configured"), std::string::npos) << none.err;
  auto bad_url = run_promptcache({"get", "k", "--redis", "http://nope"});
  EXPECT_EQ(bad_url.exit_code, 2);
  EXPECT_EQ(lines(bad_url.err), 1u) << bad_url.err;
  auto flag = run_promptcache({"get", "k", "--no-such-flag"});
  EXPECT_NE(flag.exit_code, 0);
  EXPECT_NE(flag.err.find("--no-such-flag"), std::string::npos) << flag.err;
  auto both = run_promptcache({"invalidate", "--user", "u", "--pattern", "p"});
  EXPECT_NE(both.exit_code, 0);
  auto help = run_promptcache({"warm", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--from-db"), std::string::npos);
}

}  // namespace
}  // namespace promptcache
