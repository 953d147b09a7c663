#include "cache/service_operation.hpp"

#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cache/service_text.hpp"
#include "promptcache/error.hpp"
#include "promptcache/log.hpp"

namespace promptcache::cache {

using boost::system::error_code;

namespace {

struct SubjectNames {
  const char* field;      // in log lines and messages
  const char* attribute;  // on the span
};
constexpr SubjectNames subject_names[] = {
    {"key", "cache.key"},         {"keys", "cache.keys"}, {"entries", "cache.entries"},
    {"pattern", "cache.pattern"}, {"user", "cache.user"},
};

}  // namespace

const std::array<ServiceCore::OpText, ServiceCore::op_count> ServiceCore::op_text = {{
    {"get", "cache_get", "cache get failed", false},
    {"set", "cache_set", "cache set failed", false},
    {"delete", "cache_delete", "cache delete failed", false},
    {"get_multiple", "cache_get_multiple", "cache get_multiple failed", false},
    {"set_multiple", "cache_set_multiple", "batch cache set failed", true},
    {"invalidate", "cache_invalidate", "cache invalidation failed", true},
    {"fallback", "cache_fallback", "cache fallback failed", false},
}};

ServiceCore::Operation::Operation(ServiceCore& core, Op op, Subject subject, std::string_view name,
                                  std::size_t count, Parent parent)
    : core_(core),
      op_(op),
      subject_(subject),
      name_(name),
      count_(count),
      parent_(parent),
      start_(Clock::now()) {}

ServiceCore::Operation::Operation(ServiceCore& core, Op op, Subject subject, std::string_view name,
                                  Parent parent, SpanStart when)
    : Operation(core, op, subject, name, 0, parent) {
  if (when == SpanStart::now) start_span();
}

ServiceCore::Operation::Operation(ServiceCore& core, Op op, Subject subject, std::size_t count,
                                  Parent parent)
    : Operation(core, op, subject, {}, count, parent) {
  start_span();
}

void ServiceCore::Operation::start_span() {
  if (span_started_) return;
  span_started_ = true;
  span_ = telemetry::ScopedSpan(core_.tracer_.get(), op_text[op_].span,
                                telemetry::SpanKind::internal, parent_);
  if (!span_.recording()) return;
  const char* attribute = subject_names[static_cast<int>(subject_)].attribute;
  switch (subject_) {
    case Subject::keys:
    case Subject::entries:
      span_.set(attribute, static_cast<std::int64_t>(count_));
      break;
    default:
      span_.set(attribute, name_);
  }
  span_.set("cache.tier", core_.store_->tier());
}

ServiceCore::Operation::~Operation() {
  if (timed_) core_.record(op_, start_);
}

bool ServiceCore::Operation::admitted() {
  timed_ = core_.breaker_.allow(start_);
  if (!timed_) span_.set("cache.skipped", true);
  return timed_;
}

void ServiceCore::Operation::refuse_write(std::size_t writes) {
  core_.counters_.dropped_writes.fetch_add(writes, std::memory_order_relaxed);
  raise(error::circuit_open, "circuit breaker open");
}

bool ServiceCore::Operation::failed(const error_code& ec) {
  if (!core_.note_result(ec)) return false;
  report(ec.message());
  return true;
}

void ServiceCore::Operation::report(std::string_view why) {
  span_.record_exception(why);
  log(why);
}

void ServiceCore::Operation::raise(error_code ec, std::string_view why) const {
  const std::string message = why.empty() ? ec.message() : std::string(why);
  throw CacheError(
      ec, fmt::format("{} for {} {}: {}", op_text[op_].failure,
                      subject_names[static_cast<int>(subject_)].field, subject_text(), message));
}

void ServiceCore::Operation::log(std::string_view why) const {
  const OpText& text = op_text[op_];
  // The line carries the operation's trace (JSON logs): around the call only, no co_await.
  std::optional<LogTraceScope> in_trace;
  if (const auto* context = span_.parent_for_children()) {
    in_trace.emplace(context->trace_id, context->span_id);
  }
  logger()->log(text.severe ? spdlog::level::err : spdlog::level::warn,
                "{} op={} {}={} error=\"{}\"", text.failure, text.name,
                subject_names[static_cast<int>(subject_)].field, subject_text(), why);
}

std::string ServiceCore::Operation::subject_text() const {
  switch (subject_) {
    case Subject::keys:
    case Subject::entries:
      return std::to_string(count_);
    default:
      return detail::loggable(name_);  // anything a user sent: quoted and escaped
  }
}

}  // namespace promptcache::cache
