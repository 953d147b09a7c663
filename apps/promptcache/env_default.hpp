// Options whose default an environment variable may give, and how --help shows that default:
// where it comes from, and never a secret (a URL is shown redacted, promptcache/redact.hpp).
#pragma once

#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "promptcache/redact.hpp"

namespace promptcache::app {

// The variable's value, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::move(fallback);
}

enum class Shown { plain, url };

// "--db TEXT [sqlite://data/promptcache.db]" or, with the variable set,
// "[postgresql://app:***@h/db (from PROMPTCACHE_DATABASE_URL)]".
inline std::string default_text(const std::string& builtin, const char* variable, Shown shown) {
  const std::string value = env_or(variable, "");
  if (value.empty()) return builtin;
  return fmt::format("{} (from {})", shown == Shown::url ? redact_url(value) : value, variable);
}

}  // namespace promptcache::app
