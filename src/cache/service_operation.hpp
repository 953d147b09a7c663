// The scaffolding every cache operation shares, in one place: its span (named for the
// operation, with its subject and the store's tier), the breaker's admission, its latency
// (recorded when the store was asked), the note of a failure (breaker, error counter, the
// span's exception event, one log line) and the CacheError a write throws. An operation in
// service_core.cpp is then only what it does:
//
//   Operation op(*this, op_delete, Subject::key, key);
//   if (!op.admitted()) op.refuse_write();               // throws circuit_open
//   auto removed = co_await store_->del(keys);
//   if (op.failed(removed)) op.raise(removed.error());  // logged once, thrown
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "cache/service_core.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::cache {

class ServiceCore::Operation {
 public:
  using Clock = std::chrono::steady_clock;

  // When the operation's span starts: with the operation, or when start_span() is called (a
  // load's span, started only when a load runs: a hit is its read's span alone).
  enum class SpanStart : std::uint8_t { now, later };

  // `parent`: the span the operation's is a child of (nullptr: a root).
  Operation(ServiceCore& core, Op op, Subject subject, std::string_view name, Parent parent,
            SpanStart when = SpanStart::now);
  Operation(ServiceCore& core, Op op, Subject subject, std::size_t count, Parent parent);
  ~Operation();
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  [[nodiscard]] telemetry::ScopedSpan& span() noexcept { return span_; }
  // Starts the span of an operation made with SpanStart::later (once; no-op after).
  void start_span();
  [[nodiscard]] Clock::time_point start() const noexcept { return start_; }

  // Whether the breaker lets the operation reach the store; a refusal is on the span
  // (cache.skipped). The latency is recorded from here on.
  [[nodiscard]] bool admitted();
  // The latency is recorded though the breaker was not asked (an operation made of others).
  void time_it() noexcept { timed_ = true; }
  // A write the breaker refused: `writes` dropped writes counted, CacheError(circuit_open).
  [[noreturn]] void refuse_write(std::size_t writes = 1);

  // The store's answer: false if it succeeded (the breaker hears that the tier is up).
  // Otherwise the failure is noted (breaker, error counter), recorded on the span and logged,
  // and the result is true.
  [[nodiscard]] bool failed(const boost::system::error_code& ec);
  template <class T>
  [[nodiscard]] bool failed(const boost::system::result<T>& r) {
    return failed(r.has_error() ? r.error() : boost::system::error_code{});
  }
  // A failure the store did not report as an error (some writes of a batch refused): recorded
  // on the span and logged.
  void report(std::string_view why);
  // The span of one call to Redis under this operation's (ServiceCore::command_span).
  [[nodiscard]] telemetry::ScopedSpan command(std::string_view name) const {
    return core_.command_span(name, span_.parent_for_children());
  }
  // CacheError(ec, "<operation> failed for <subject>: <why>"); `why` defaults to ec's message.
  [[noreturn]] void raise(boost::system::error_code ec, std::string_view why = {}) const;

 private:
  void log(std::string_view why) const;
  [[nodiscard]] std::string subject_text() const;

  Operation(ServiceCore& core, Op op, Subject subject, std::string_view name, std::size_t count,
            Parent parent);

  ServiceCore& core_;
  Op op_;
  Subject subject_;
  std::string_view name_;  // key, pattern, user
  std::size_t count_ = 0;  // keys, entries
  Parent parent_;
  Clock::time_point start_;
  telemetry::ScopedSpan span_;
  bool timed_ = false;  // record the latency at the end
  bool span_started_ = false;
};

}  // namespace promptcache::cache
