// Which traces are recorded, as OTEL_TRACES_SAMPLER names it: always_on, always_off,
// traceidratio, and the parent-based three (the caller's sampled flag decides when there is a
// caller; otherwise the root sampler does).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "promptcache/telemetry/span_context.hpp"

namespace promptcache::telemetry {

class Sampler {
 public:
  enum class Root { always_on, always_off, ratio };

  Sampler() = default;  // parentbased_always_on, the standard's default
  Sampler(Root root, double ratio, bool parent_based) noexcept
      : root_(root), ratio_(ratio), parent_based_(parent_based) {}

  // OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (the ratio, 0 to 1, of the two ratio
  // samplers; 1 when unset). nullopt with `error` set for a name or argument it cannot use.
  [[nodiscard]] static std::optional<Sampler> parse(std::string_view name,
                                                    std::optional<std::string_view> arg,
                                                    std::string& error);

  // Whether a new span in trace `trace_id` is recorded and exported; `parent` is the span it
  // continues (remote or local), if any.
  [[nodiscard]] bool sample(const SpanContext* parent, const TraceId& trace_id) const noexcept;

  // "parentbased_traceidratio{0.25}" and the like, for logs.
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] bool never() const noexcept { return root_ == Root::always_off && !parent_based_; }

 private:
  [[nodiscard]] bool root_decision(const TraceId& trace_id) const noexcept;

  Root root_ = Root::always_on;
  double ratio_ = 1.0;
  bool parent_based_ = true;
};

}  // namespace promptcache::telemetry
