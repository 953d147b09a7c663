#include "promptcache/telemetry/span_context.hpp"

#include <algorithm>
#include <cstring>
#include <random>

namespace promptcache::telemetry {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& id) {
  std::string out(2 * N, '0');
  write_hex(out.data(), id);
  return out;
}

// Lowercase hex only: the standard does not allow upper case.
int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <std::size_t N>
bool read_hex(std::string_view text, std::array<std::uint8_t, N>& into) {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    into[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& id) {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

template <std::size_t N>
std::array<std::uint8_t, N> random_id() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  std::array<std::uint8_t, N> id{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      std::uint64_t word = rng();
      for (std::size_t j = i; j < std::min(N, i + 8); ++j, word >>= 8) {
        id[j] = static_cast<std::uint8_t>(word);
      }
    }
  } while (all_zero(id));
  return id;
}

}  // namespace

bool SpanContext::valid() const noexcept {
  return !all_zero(trace_id) && !all_zero(span_id);
}

std::string to_hex(const TraceId& id) {
  return hex(id);
}

std::string to_hex(const SpanId& id) {
  return hex(id);
}

void write_hex(char* out, std::span<const std::uint8_t> bytes) noexcept {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = hex_digits[bytes[i] >> 4];
    out[2 * i + 1] = hex_digits[bytes[i] & 15];
  }
}

TraceparentText traceparent_text(const SpanContext& context) noexcept {
  TraceparentText out;
  std::memcpy(out.text, "00-", 3);
  write_hex(out.text + 3, context.trace_id);
  out.text[35] = '-';
  write_hex(out.text + 36, context.span_id);
  std::memcpy(out.text + 52, context.sampled ? "-01" : "-00", 3);
  return out;
}

std::string format_traceparent(const SpanContext& context) {
  return std::string(traceparent_text(context).view());
}

std::optional<SpanContext> parse_traceparent(std::string_view header,
                                             std::string_view trace_state) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  constexpr std::size_t level1_size = 55;
  constexpr std::size_t max_trace_state = 512;
  if (header.size() < level1_size) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  std::array<std::uint8_t, 1> flags{};
  SpanContext context;
  if (!read_hex(header.substr(0, 2), version) || version[0] == 0xff || header[2] != '-' ||
      !read_hex(header.substr(3, 32), context.trace_id) || header[35] != '-' ||
      !read_hex(header.substr(36, 16), context.span_id) || header[52] != '-' ||
      !read_hex(header.substr(53, 2), flags)) {
    return std::nullopt;
  }
  // Version 00 is exactly these fields; a later version may add fields after a dash.
  if (version[0] == 0 ? header.size() != level1_size
                      : header.size() > level1_size && header[level1_size] != '-') {
    return std::nullopt;
  }
  if (!context.valid()) return std::nullopt;
  context.sampled = (flags[0] & 1) != 0;
  context.remote = true;
  if (trace_state.size() <= max_trace_state) context.trace_state = std::string(trace_state);
  return context;
}

TraceId new_trace_id() {
  return random_id<16>();
}

SpanId new_span_id() {
  return random_id<8>();
}

}  // namespace promptcache::telemetry
