// Where the library's log lines go. They belong to the application: by default they go to
// stderr (never stdout, which is the program's), at the level PROMPTCACHE_LOG_LEVEL names
// (trace, debug, info, warning, error, critical, off), else warning. An application hands in
// its own spdlog logger — its sinks, its format, its level — with set_logger().
#pragma once

#include <memory>

#include <spdlog/logger.h>

namespace promptcache {

// The logger the library writes to now. Thread-safe.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger();
// Makes `logger` the library's (nullptr: back to the default). Thread-safe; lines logged
// meanwhile go to one or the other.
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace promptcache
