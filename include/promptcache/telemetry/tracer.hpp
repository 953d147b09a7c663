// A small tracing interface (OpenTelemetry C++ is not packaged for Debian): spans with a kind,
// a parent, attributes, recorded exceptions and a status. The default tracer (none) does
// nothing and allocates nothing; make_otlp_tracer (otlp.hpp) exports to a collector.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "promptcache/telemetry/attributes.hpp"
#include "promptcache/telemetry/span_context.hpp"

namespace promptcache::telemetry {

// OTLP's Span.SpanKind (the numbers are the protocol's).
enum class SpanKind : std::uint8_t { internal = 1, server = 2, client = 3 };

class Span {
 public:
  virtual ~Span() = default;  // ends the span
  virtual void set_attribute(std::string_view key, AttributeValue value) = 0;
  // A text attribute (the common case): a tracer may build it in place, without the
  // AttributeValue's own copy first.
  virtual void set_text(std::string_view key, std::string_view value) {
    set_attribute(key, std::string(value));
  }
  // A prepared set's attributes, in its order (a recording tracer appends them as they are
  // encoded).
  virtual void set_attributes(const Attributes& prepared) {
    for (Attribute& a : prepared.decoded()) set_attribute(a.key, std::move(a.value));
  }
  // An "exception" event with exception.message, and the span's status set to error.
  virtual void record_exception(std::string_view message) = 0;
  // The span's status set to error without an event (a server's 5xx answer, say).
  virtual void set_error(std::string_view description) { (void)description; }
  // A better name, once it is known (a server span's route, found after the span started).
  virtual void update_name(std::string_view name) { (void)name; }
};

// A span as it starts: the span that records (nullptr when it is not sampled) and its context
// — kept either way, so that an unsampled span's trace and flag still reach its children and
// the next process.
struct StartedSpan {
  std::unique_ptr<Span> span;
  SpanContext context;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  // A span named `name` that continues `parent` (nullptr: a new trace).
  [[nodiscard]] virtual StartedSpan start_span(std::string_view name, SpanKind kind,
                                               const SpanContext* parent) = 0;
};

// A span that may be absent: every call is a no-op then.
class ScopedSpan {
 public:
  ScopedSpan() = default;
  ScopedSpan(Tracer* tracer, std::string_view name, SpanKind kind = SpanKind::internal,
             const SpanContext* parent = nullptr) {
    if (tracer == nullptr) return;
    StartedSpan started = tracer->start_span(name, kind, parent);
    span_ = std::move(started.span);
    context_ = std::move(started.context);
  }
  // Values are converted only when the span is recorded: free with the no-op tracer.
  void set(std::string_view key, std::string_view value) {
    if (span_) span_->set_text(key, value);
  }
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, bool value) {
    if (span_) span_->set_attribute(key, value);
  }
  void set(std::string_view key, std::int64_t value) {
    if (span_) span_->set_attribute(key, value);
  }
  // A set prepared once for many spans (a connection's peer): cheaper than setting each.
  void set(const Attributes& prepared) {
    if (span_) span_->set_attributes(prepared);
  }
  void record_exception(std::string_view message) {
    if (span_) span_->record_exception(message);
  }
  void set_error(std::string_view description) {
    if (span_) span_->set_error(description);
  }
  void update_name(std::string_view name) {
    if (span_) span_->update_name(name);
  }
  // Whether anything is recorded: attributes that cost something to compute are skipped
  // without it.
  [[nodiscard]] bool recording() const noexcept { return span_ != nullptr; }
  // The span's context: valid whenever a tracer started it, sampled or not.
  [[nodiscard]] const SpanContext& context() const noexcept { return context_; }
  // The context's address for a child's parent: nullptr when there is none.
  [[nodiscard]] const SpanContext* parent_for_children() const noexcept {
    return context_.valid() ? &context_ : nullptr;
  }
  // Ends the span now (the destructor does otherwise).
  void end() noexcept { span_.reset(); }

 private:
  std::unique_ptr<Span> span_;
  SpanContext context_;
};

}  // namespace promptcache::telemetry
