// What an exporter does after one OTLP/HTTP export attempt, without I/O: done, try the same
// batch again after a pause, or give the batch up. Retried, as the OTLP specification says:
// 429, 502, 503 and 504, and no answer at all (a refused connection, a timeout); a Retry-After
// header sets the pause (capped), otherwise an exponential back-off with jitter does.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace promptcache::telemetry {

struct RetryLimits {
  int max_attempts = 5;
  std::chrono::milliseconds first_pause{1000};
  std::chrono::milliseconds max_pause{5000};
  std::chrono::milliseconds max_retry_after{30000};  // a longer Retry-After is cut to this
};

// An attempt's result: the HTTP status (0 when no answer came) and its Retry-After header.
struct AttemptResult {
  int status = 0;
  std::string_view retry_after;
};

struct RetryDecision {
  enum class Kind { exported, retry, give_up } kind = Kind::exported;
  std::chrono::milliseconds pause{0};  // before the retry
};

// Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3), relative to `now`; nullopt if
// it is neither. A date in the past is a pause of zero.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// After attempt number `attempt` (1 for the first) of a batch. `jitter` in [0, 1) scales the
// back-off between 80 % and 120 % of its step (the caller draws it).
[[nodiscard]] RetryDecision after_attempt(const RetryLimits& limits, int attempt,
                                          const AttemptResult& result, double jitter,
                                          std::chrono::system_clock::time_point now);

}  // namespace promptcache::telemetry
