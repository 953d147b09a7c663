#include "promptcache/log.hpp"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include <spdlog/sinks/stdout_sinks.h>

namespace promptcache {

namespace {

std::shared_ptr<spdlog::logger> make_default() {
  auto made = std::make_shared<spdlog::logger>("promptcache",
                                               std::make_shared<spdlog::sinks::stderr_sink_mt>());
  spdlog::level::level_enum level = spdlog::level::warn;
  if (const char* text = std::getenv("PROMPTCACHE_LOG_LEVEL"); text != nullptr && *text) {
    const auto parsed = spdlog::level::from_str(text);
    // An unknown name (from_str's "off") keeps the default rather than silencing everything.
    if (parsed != spdlog::level::off || std::string_view(text) == "off") level = parsed;
  }
  made->set_level(level);
  return made;
}

std::atomic<std::shared_ptr<spdlog::logger>>& current() {
  static std::atomic<std::shared_ptr<spdlog::logger>> held{make_default()};
  return held;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  return current().load();
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  current().store(logger ? std::move(logger) : make_default());
}

}  // namespace promptcache
