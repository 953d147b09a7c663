#include "promptcache/log.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

#include <spdlog/sinks/stdout_sinks.h>

#include "promptcache/json_text.hpp"

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

namespace promptcache {

namespace {

thread_local const LogTraceScope* current_trace = nullptr;

std::string_view trim_quotes(std::string_view v, std::string& unescaped) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return v;
  unescaped.clear();
  for (std::size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    unescaped += v[i];
  }
  return unescaped;
}

// The key=value pairs of a message ("method=GET path=\"/a b\" status=200"): keys are words of
// letters, digits, '_' and '.', values run to the next space unless quoted.
void append_fields(std::string& out, std::string_view text) {
  out += R"(,"fields":{)";
  bool first = true;
  std::size_t i = 0;
  std::string unescaped;
  while (i < text.size()) {
    std::size_t key_start = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) ||
                               text[i] == '_' || text[i] == '.')) {
      ++i;
    }
    if (i == key_start || i >= text.size() || text[i] != '=' ||
        (key_start > 0 && text[key_start - 1] != ' ')) {
      while (i < text.size() && text[i] != ' ') ++i;  // not a pair: skip the word
      while (i < text.size() && text[i] == ' ') ++i;
      continue;
    }
    const std::string_view key = text.substr(key_start, i - key_start);
    const std::size_t value_start = ++i;
    if (i < text.size() && text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      i = std::min(i + 1, text.size());
    } else {
      while (i < text.size() && text[i] != ' ') ++i;
    }
    const std::string_view value =
        trim_quotes(text.substr(value_start, i - value_start), unescaped);
    if (!first) out += ',';
    first = false;
    json_string_append(out, key);
    out += ':';
    json_string_append(out, valid_utf8(value) ? std::string(value) : repaired_utf8(value));
    while (i < text.size() && text[i] == ' ') ++i;
  }
  out += '}';
}

}  // namespace

LogTraceScope::LogTraceScope(std::string_view trace_id, std::string_view span_id) noexcept
    : trace_len_(std::min(trace_id.size(), sizeof trace_id_)),
      span_len_(std::min(span_id.size(), sizeof span_id_)),
      outer_(current_trace) {
  std::memcpy(trace_id_, trace_id.data(), trace_len_);
  std::memcpy(span_id_, span_id.data(), span_len_);
  current_trace = this;
}

LogTraceScope::LogTraceScope(std::span<const std::uint8_t, 16> trace_id,
                             std::span<const std::uint8_t, 8> span_id) noexcept
    : trace_len_(trace_id.size()), span_len_(span_id.size()), bytes_(true), outer_(current_trace) {
  std::memcpy(trace_id_, trace_id.data(), trace_len_);
  std::memcpy(span_id_, span_id.data(), span_len_);
  current_trace = this;
}

namespace {

// Lowercase hex, as the ids are written everywhere else (telemetry::write_hex, a layer up).
std::string_view hex(const char* bytes, std::size_t size, char* out) noexcept {
  static constexpr char digits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = digits[byte >> 4];
    out[2 * i + 1] = digits[byte & 0xf];
  }
  return {out, 2 * size};
}

}  // namespace

std::string_view LogTraceScope::trace_id(char (&buffer)[32]) const noexcept {
  return bytes_ ? hex(trace_id_, trace_len_, buffer) : std::string_view(trace_id_, trace_len_);
}

std::string_view LogTraceScope::span_id(char (&buffer)[16]) const noexcept {
  return bytes_ ? hex(span_id_, span_len_, buffer) : std::string_view(span_id_, span_len_);
}

LogTraceScope::~LogTraceScope() {
  current_trace = outer_;
}

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string out;
    out.reserve(160 + msg.payload.size() * 2);
    const auto since = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - seconds);
    const std::time_t t = seconds.count();
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char stamp[40];
    const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    out += R"({"time":")";
    out.append(stamp, n);
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(micros.count()));
    out += frac;
    out += R"(","level":)";
    const auto level = spdlog::level::to_string_view(msg.level);
    json_string_append(out, std::string_view(level.data(), level.size()));
    out += R"(,"logger":)";
    json_string_append(out, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    const std::string_view text(msg.payload.data(), msg.payload.size());
    out += R"(,"message":)";
    json_string_append(out, valid_utf8(text) ? std::string(text) : repaired_utf8(text));
    append_fields(out, text);
    if (current_trace != nullptr) {
      char trace_hex[32];
      char span_hex[16];
      out += R"(,"trace_id":)";
      json_string_append(out, current_trace->trace_id(trace_hex));
      out += R"(,"span_id":)";
      json_string_append(out, current_trace->span_id(span_hex));
    }
    out += "}\n";
    dest.append(out.data(), out.data() + out.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLogFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> json_log_formatter() {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace promptcache
