#include "promptcache/telemetry/sampler.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace promptcache::telemetry {

std::optional<Sampler> Sampler::parse(std::string_view name, std::optional<std::string_view> arg,
                                      std::string& error) {
  const bool parent_based = name.starts_with("parentbased_");
  const std::string_view root = parent_based ? name.substr(12) : name;
  if (root == "always_on") return Sampler(Root::always_on, 1.0, parent_based);
  if (root == "always_off") return Sampler(Root::always_off, 0.0, parent_based);
  if (root != "traceidratio") {
    error = fmt::format(
        "OTEL_TRACES_SAMPLER: expected always_on, always_off, traceidratio, "
        "parentbased_always_on, parentbased_always_off or parentbased_traceidratio, got \"{}\"",
        name);
    return std::nullopt;
  }
  double ratio = 1.0;
  if (arg) {
    const auto [end, ec] = std::from_chars(arg->data(), arg->data() + arg->size(), ratio);
    if (arg->empty() || ec != std::errc{} || end != arg->data() + arg->size() ||
        !std::isfinite(ratio) || ratio < 0 || ratio > 1) {
      error =
          fmt::format("OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got \"{}\"", *arg);
      return std::nullopt;
    }
  }
  return Sampler(Root::ratio, ratio, parent_based);
}

bool Sampler::root_decision(const TraceId& trace_id) const noexcept {
  switch (root_) {
    case Root::always_on:
      return true;
    case Root::always_off:
      return false;
    case Root::ratio:
      break;
  }
  if (ratio_ >= 1) return true;
  if (ratio_ <= 0) return false;
  // The trace id's last eight bytes as a number below a bound (the W3C random part of the id,
  // as other SDKs read it): every process that sees the trace decides the same way.
  std::uint64_t x = 0;
  for (std::size_t i = 8; i < 16; ++i) x = (x << 8) | trace_id[i];
  const auto bound = static_cast<std::uint64_t>(
      ratio_ * static_cast<double>(std::numeric_limits<std::uint64_t>::max()));
  return x < bound;
}

bool Sampler::sample(const SpanContext* parent, const TraceId& trace_id) const noexcept {
  if (parent_based_ && parent != nullptr && parent->valid()) return parent->sampled;
  return root_decision(trace_id);
}

std::string Sampler::describe() const {
  const char* root = root_ == Root::always_on    ? "always_on"
                     : root_ == Root::always_off ? "always_off"
                                                 : "traceidratio";
  std::string out = fmt::format("{}{}", parent_based_ ? "parentbased_" : "", root);
  if (root_ == Root::ratio) out += fmt::format("{{{}}}", ratio_);
  return out;
}

}  // namespace promptcache::telemetry
