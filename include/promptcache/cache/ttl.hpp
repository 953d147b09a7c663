// TTL policy of the seed: a TTL per kind of data, and an explicit per-call override that is
// honoured even when it is 0 (seed defect 4: `if custom_ttl:` dropped it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace promptcache::cache {

// How long an entry lives, as the cache's operations take it: nothing given (Ttl{}, what a
// call without a TTL passes) is the operation's default — ServiceOptions::default_ttl, or the
// seed's PROMPT_ANALYSIS for analysis results; a duration (30s, 5min, 2h: whole seconds —
// milliseconds do not convert); or `no_expiry`. A duration of 0 s also means no expiry (the
// seed's explicit 0); a negative one is refused with std::invalid_argument when it is used.
class Ttl {
 public:
  constexpr Ttl() noexcept = default;
  // Any duration that converts to whole seconds without loss: seconds, minutes, hours, days.
  template <class Rep, class Period>
  requires std::is_convertible_v<std::chrono::duration<Rep, Period>, std::chrono::seconds>
  constexpr Ttl(std::chrono::duration<Rep, Period> duration) noexcept  // NOLINT: implicit
      : given_(true), seconds_(duration) {}

  // Given or not; when given, the seconds (0: no expiry).
  [[nodiscard]] constexpr bool given() const noexcept { return given_; }
  // The TTL a write applies: `fallback` unless given; 0 s for no expiry. Throws
  // std::invalid_argument for a negative duration.
  [[nodiscard]] std::chrono::seconds or_default(std::chrono::seconds fallback) const;
  // This TTL, or `fallback` when none was given (still a Ttl: checked when it is used).
  [[nodiscard]] constexpr Ttl or_else(Ttl fallback) const noexcept {
    return given_ ? *this : fallback;
  }

  friend constexpr bool operator==(Ttl, Ttl) noexcept = default;

 private:
  bool given_ = false;
  std::chrono::seconds seconds_{0};
};

// The entry never expires (kept until deleted, invalidated or evicted by Redis's maxmemory).
inline constexpr Ttl no_expiry{std::chrono::seconds(0)};

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

// What an analysis result lives unless its call says otherwise: the seed's PROMPT_ANALYSIS.
inline constexpr Ttl analysis_ttl{std::chrono::seconds(CacheTTLConfig::PROMPT_ANALYSIS)};

}  // namespace promptcache::cache
