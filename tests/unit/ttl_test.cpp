// Unit tests for promptcache::cache::CacheTTLConfig (docs/cache.md: TTLs, seed defect 4): the seed's
// TTL per kind of data, case-insensitive type names, PROMPT_ANALYSIS for unknown types, and an
// explicit override that is honoured even when it is 0.
#include "promptcache/cache/ttl.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace {

using namespace std::chrono_literals;
using promptcache::cache::CacheTTLConfig;

TEST(Ttl, constants_equal_the_seeds_values) {
  static_assert(CacheTTLConfig::PROMPT_ANALYSIS == 3600);
  static_assert(CacheTTLConfig::ML_PREDICTIONS == 7200);
  static_assert(CacheTTLConfig::USER_PREFERENCES == 86400);
  static_assert(CacheTTLConfig::SYSTEM_CONFIG == 300);
  static_assert(CacheTTLConfig::RATE_LIMIT == 60);
  SUCCEED();
}

TEST(Ttl, each_upper_case_type_gets_the_seeds_ttl) {
  EXPECT_EQ(CacheTTLConfig::get_ttl("PROMPT_ANALYSIS"), 3600s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("ML_PREDICTIONS"), 7200s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("USER_PREFERENCES"), 86400s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("SYSTEM_CONFIG"), 300s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("RATE_LIMIT"), 60s);
}

TEST(Ttl, type_names_are_matched_case_insensitively) {
  EXPECT_EQ(CacheTTLConfig::get_ttl("prompt_analysis"), 3600s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("ml_predictions"), 7200s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("Ml_Predictions"), 7200s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("user_preferences"), 86400s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("uSeR_pReFeReNcEs"), 86400s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("system_config"), 300s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("System_Config"), 300s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("rate_limit"), 60s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("Rate_Limit"), 60s);
}

TEST(Ttl, unknown_type_gets_prompt_analysis_ttl) {
  for (std::string_view type : {"", "unknown", "analysis", "ML-PREDICTIONS", "ml_predictions ",
                                " rate_limit", "RATE_LIMITS", "get_ttl"}) {
    EXPECT_EQ(CacheTTLConfig::get_ttl(type), 3600s) << "type '" << type << "'";
  }
  EXPECT_EQ(CacheTTLConfig::get_ttl(std::string_view("RATE_LIMIT\0", 11)), 3600s);
}

TEST(Ttl, absent_override_gives_the_types_ttl) {
  EXPECT_EQ(CacheTTLConfig::get_ttl("RATE_LIMIT", std::nullopt), 60s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("SYSTEM_CONFIG", {}), 300s);
}

TEST(Ttl, explicit_override_replaces_the_types_ttl) {
  EXPECT_EQ(CacheTTLConfig::get_ttl("RATE_LIMIT", 5), 5s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("ML_PREDICTIONS", 1), 1s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("unknown", 42), 42s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("PROMPT_ANALYSIS", 3600), 3600s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("USER_PREFERENCES", 10'000'000'000), 10'000'000'000s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("RATE_LIMIT", std::numeric_limits<std::int64_t>::max()),
            std::chrono::seconds(std::numeric_limits<std::int64_t>::max()));
}

TEST(Ttl, explicit_zero_override_is_honoured_not_treated_as_absent) {
  // Seed defect 4: `if custom_ttl:` dropped 0 and returned the type's TTL.
  EXPECT_EQ(CacheTTLConfig::get_ttl("PROMPT_ANALYSIS", 0), 0s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("RATE_LIMIT", 0), 0s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("USER_PREFERENCES", std::optional<std::int64_t>(0)), 0s);
  EXPECT_EQ(CacheTTLConfig::get_ttl("unknown", 0), 0s);
}

TEST(Ttl, negative_override_throws_invalid_argument) {
  EXPECT_THROW((void)CacheTTLConfig::get_ttl("PROMPT_ANALYSIS", -1), std::invalid_argument);
  EXPECT_THROW((void)CacheTTLConfig::get_ttl("RATE_LIMIT", -3600), std::invalid_argument);
  EXPECT_THROW((void)CacheTTLConfig::get_ttl("unknown", std::numeric_limits<std::int64_t>::min()),
               std::invalid_argument);
}

}  // namespace
