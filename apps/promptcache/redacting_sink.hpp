// A log sink in front of another that replaces every registered secret (promptcache/redact.hpp)
// in each line's message before the line is formatted: whatever a log call quotes — an error
// from libpq, a URL, a value — no credential the program holds reaches a log, at any level.
// A line without a secret costs one search per registered secret and no copy.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <spdlog/sinks/sink.h>

#include "promptcache/redact.hpp"

namespace promptcache::app {

class RedactingSink final : public spdlog::sinks::sink {
 public:
  explicit RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!holds_secret(payload)) {
      inner_->log(msg);
      return;
    }
    const std::string clean = redact(payload);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(clean.data(), clean.size());
    inner_->log(copy);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace promptcache::app
