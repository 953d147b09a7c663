#include "telemetry/sansio/export_retry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace promptcache::telemetry {
namespace {

bool retryable(int status) {
  return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

// IMF-fixdate, the form RFC 9110 requires senders to use: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  std::tm tm{};
  const std::string copy(text);
  const char* end = ::strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long long seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size()) {
      return std::chrono::milliseconds::max();  // too many digits to hold: "a very long time"
    }
    if (seconds > 86400LL * 365) return std::chrono::milliseconds::max();
    return std::chrono::seconds(seconds);
  }
  const auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  if (*at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(*at - now);
}

RetryDecision after_attempt(const RetryLimits& limits, int attempt, const AttemptResult& result,
                            double jitter, std::chrono::system_clock::time_point now) {
  using Kind = RetryDecision::Kind;
  if (result.status >= 200 && result.status < 300) return {Kind::exported, {}};
  if (!retryable(result.status) || attempt >= limits.max_attempts) return {Kind::give_up, {}};
  if (!result.retry_after.empty()) {
    if (auto pause = parse_retry_after(result.retry_after, now)) {
      return {Kind::retry, std::min(*pause, limits.max_retry_after)};
    }
  }
  // first_pause · 1.5^(attempt-1), at most max_pause, times 0.8 to 1.2.
  const double step = std::min(
      static_cast<double>(limits.first_pause.count()) * std::pow(1.5, std::max(attempt - 1, 0)),
      static_cast<double>(limits.max_pause.count()));
  const double scaled = step * (0.8 + 0.4 * std::clamp(jitter, 0.0, 1.0));
  return {Kind::retry, std::chrono::milliseconds(static_cast<long long>(scaled))};
}

}  // namespace promptcache::telemetry
