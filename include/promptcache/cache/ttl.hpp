// TTL policy of the seed: a TTL per kind of data, and an explicit per-call override that is
// honoured even when it is 0 (seed defect 4: `if custom_ttl:` dropped it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace promptcache::cache {

struct CacheTTLConfig {
  static constexpr std::int64_t PROMPT_ANALYSIS = 3600;    // 1 hour: moderate volatility
  static constexpr std::int64_t ML_PREDICTIONS = 7200;     // 2 hours: stable predictions
  static constexpr std::int64_t USER_PREFERENCES = 86400;  // 24 hours: user settings
  static constexpr std::int64_t SYSTEM_CONFIG = 300;       // 5 minutes
  static constexpr std::int64_t RATE_LIMIT = 60;           // 1 minute

  // The TTL of `cache_type` (matched case-insensitively: "prompt_analysis",
  // "ML_PREDICTIONS"; unknown types get PROMPT_ANALYSIS), or `custom_ttl` when given — 0
  // included, which means "no expiry". Throws std::invalid_argument for a negative override.
  [[nodiscard]] static std::chrono::seconds get_ttl(std::string_view cache_type,
                                                    std::optional<std::int64_t> custom_ttl = {});
};

}  // namespace promptcache::cache
