// Parsing of configuration values from the environment: strict, and every error names the
// variable (and never echoes anything but the bad value itself).
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "promptcache/net/config.hpp"

namespace promptcache::net {

template <class Int>
inline Int parse_int(std::string_view name, std::string_view text, long long min, long long max) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v < min || v > max) {
    throw ConfigError(
        fmt::format("{}: expected an integer from {} to {}, got \"{}\"", name, min, max, text));
  }
  return static_cast<Int>(v);
}

// Seconds, possibly fractional ("0.25"), as milliseconds.
inline std::chrono::milliseconds parse_seconds(std::string_view name, std::string_view text,
                                               bool allow_zero) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v) ||
      v < 0 || (!allow_zero && v == 0) || v > 86400.0 * 365) {
    throw ConfigError(fmt::format("{}: expected {} number of seconds, got \"{}\"", name,
                                  allow_zero ? "a non-negative" : "a positive", text));
  }
  const std::chrono::milliseconds ms(static_cast<std::int64_t>(std::llround(v * 1000)));
  if (!allow_zero && ms.count() == 0) {
    throw ConfigError(fmt::format("{}: must be at least 0.001 seconds, got \"{}\"", name, text));
  }
  return ms;
}

inline bool parse_bool(std::string_view name, std::string_view text) {
  std::string t(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off") return false;
  throw ConfigError(fmt::format("{}: expected true or false, got \"{}\"", name, text));
}

// Reads the variables a configuration is made of. Each reader leaves its target alone when the
// variable is unset and throws ConfigError naming the variable when it is set to something that
// cannot be used.
class EnvReader {
 public:
  explicit EnvReader(const ClientConfig::Getenv& getenv) : getenv_(getenv) {}

  [[nodiscard]] std::optional<std::string> text(const char* name) const { return getenv_(name); }
  template <class Int>
  void integer(const char* name, Int& into, long long min, long long max) const {
    if (auto v = getenv_(name)) into = parse_int<Int>(name, *v, min, max);
  }
  // A whole number of the duration's unit ("60" for 60 s into std::chrono::seconds).
  template <class Rep, class Period>
  void count(const char* name, std::chrono::duration<Rep, Period>& into, long long min,
             long long max) const {
    if (auto v = getenv_(name))
      into = std::chrono::duration<Rep, Period>(parse_int<Rep>(name, *v, min, max));
  }
  // Seconds, possibly fractional ("0.25").
  void seconds(const char* name, std::chrono::milliseconds& into, bool allow_zero) const {
    if (auto v = getenv_(name)) into = parse_seconds(name, *v, allow_zero);
  }
  void flag(const char* name, bool& into) const {
    if (auto v = getenv_(name)) into = parse_bool(name, *v);
  }
  // A whole percentage from 0 to `max`, as a fraction.
  void percent(const char* name, double& into, int max) const {
    if (auto v = getenv_(name)) into = parse_int<int>(name, *v, 0, max) / 100.0;
  }

 private:
  const ClientConfig::Getenv& getenv_;
};

}  // namespace promptcache::net
