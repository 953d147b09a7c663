// A small tracing interface (OpenTelemetry C++ is not packaged for Debian): spans with
// attributes and recorded exceptions. The default tracer does nothing and allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace promptcache::telemetry {

using AttributeValue = std::variant<bool, std::int64_t, double, std::string>;

class Span {
 public:
  virtual ~Span() = default;  // ends the span
  virtual void set_attribute(std::string_view key, AttributeValue value) = 0;
  virtual void record_exception(std::string_view message) = 0;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  // nullptr means "not recorded"; ScopedSpan makes that free.
  [[nodiscard]] virtual std::unique_ptr<Span> start_span(std::string_view name) = 0;
};

// A span that may be absent: every call is a no-op then.
class ScopedSpan {
 public:
  ScopedSpan(Tracer* tracer, std::string_view name)
      : span_(tracer != nullptr ? tracer->start_span(name) : nullptr) {}
  // Values are converted only when the span is recorded: free with the no-op tracer.
  void set(std::string_view key, std::string_view value) {
    if (span_) span_->set_attribute(key, std::string(value));
  }
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, bool value) {
    if (span_) span_->set_attribute(key, value);
  }
  void set(std::string_view key, std::int64_t value) {
    if (span_) span_->set_attribute(key, value);
  }
  void record_exception(std::string_view message) {
    if (span_) span_->record_exception(message);
  }
  // Whether anything is recorded: attributes that cost something to compute are skipped
  // without it.
  [[nodiscard]] bool recording() const noexcept { return span_ != nullptr; }

 private:
  std::unique_ptr<Span> span_;
};

}  // namespace promptcache::telemetry
