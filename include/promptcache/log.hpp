// Where the library's log lines go. They belong to the application: by default they go to
// stderr (never stdout, which is the program's), at the level PROMPTCACHE_LOG_LEVEL names
// (trace, debug, info, warning, error, critical, off), else warning. An application hands in
// its own spdlog logger — its sinks, its format, its level — with set_logger().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

namespace promptcache {

// The logger the library writes to now. Thread-safe.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger();
// Makes `logger` the library's (nullptr: back to the default). Thread-safe; lines logged
// meanwhile go to one or the other.
void set_logger(std::shared_ptr<spdlog::logger> logger);

// One JSON object per line (PROMPTCACHE_LOG_FORMAT=json): time (UTC, RFC 3339 with
// microseconds), level, logger, message, fields (the message's key=value pairs, a quoted value
// unquoted) and, when the line was logged inside a LogTraceScope, trace_id and span_id. Text
// that is not UTF-8 is repaired, so every line is valid JSON.
[[nodiscard]] std::unique_ptr<spdlog::formatter> json_log_formatter();

// The trace a log line belongs to, for the lines this thread logs while the scope lives. Set it
// around the log call only, never across a co_await: a coroutine's thread runs other requests
// while it waits.
// Ids as hex text (at most 32 and 16 characters kept), or as the ids' bytes (a trace id's 16, a
// span id's 8: kept as they are, written as hex only when a line is formatted as JSON).
// Allocates nothing.
class LogTraceScope {
 public:
  LogTraceScope(std::string_view trace_id, std::string_view span_id) noexcept;
  LogTraceScope(std::span<const std::uint8_t, 16> trace_id,
                std::span<const std::uint8_t, 8> span_id) noexcept;
  ~LogTraceScope();
  LogTraceScope(const LogTraceScope&) = delete;
  LogTraceScope& operator=(const LogTraceScope&) = delete;

 private:
  // The ids as text: as given, or the bytes' hex written into `buffer`.
  [[nodiscard]] std::string_view trace_id(char (&buffer)[32]) const noexcept;
  [[nodiscard]] std::string_view span_id(char (&buffer)[16]) const noexcept;

  char trace_id_[32];  // the text, or the 16 bytes
  char span_id_[16];   // the text, or the 8 bytes
  std::size_t trace_len_ = 0;
  std::size_t span_len_ = 0;
  bool bytes_ = false;  // the ids are bytes, not yet hex
  const LogTraceScope* outer_;
  friend class JsonLogFormatter;
};

}  // namespace promptcache
