#include "promptcache/cache/ttl.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>

namespace promptcache::cache {

std::chrono::seconds Ttl::or_default(std::chrono::seconds fallback) const {
  if (!given_) return fallback;
  if (seconds_.count() < 0) throw std::invalid_argument("TTL must not be negative");
  return seconds_;
}

std::chrono::seconds CacheTTLConfig::get_ttl(std::string_view cache_type,
                                             std::optional<std::int64_t> custom_ttl) {
  if (custom_ttl) {
    if (*custom_ttl < 0) throw std::invalid_argument("TTL override must not be negative");
    return std::chrono::seconds(*custom_ttl);
  }
  std::string upper(cache_type);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "ML_PREDICTIONS") return std::chrono::seconds(ML_PREDICTIONS);
  if (upper == "USER_PREFERENCES") return std::chrono::seconds(USER_PREFERENCES);
  if (upper == "SYSTEM_CONFIG") return std::chrono::seconds(SYSTEM_CONFIG);
  if (upper == "RATE_LIMIT") return std::chrono::seconds(RATE_LIMIT);
  return std::chrono::seconds(PROMPT_ANALYSIS);
}

}  // namespace promptcache::cache
