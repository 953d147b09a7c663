#include "promptcache/telemetry/span_context.hpp"

#include <algorithm>
#include <bit>
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

// xoshiro256** (Blackman and Vigna): 256 bits of state seeded from the system's entropy per
// thread, a few cycles a word — ids need to be unpredictable enough not to collide, not secret
// (W3C Trace Context: random or pseudo-random), and a request makes three of them.
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device device;
    std::uint64_t seed = (std::uint64_t{device()} << 32) ^ device();
    for (auto& word : state_) word = splitmix64(seed);
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = std::rotl(state_[3], 45);
    return result;
  }

 private:
  static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::array<std::uint64_t, 4> state_{};
};

template <std::size_t N>
std::array<std::uint8_t, N> random_id() {
  static_assert(N % 8 == 0);
  thread_local IdGenerator generator;
  std::array<std::uint8_t, N> id{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t word = generator.next();
      std::memcpy(id.data() + i, &word, sizeof word);
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
  // Each byte's two digits at once (every answer of a traced request writes 24 bytes' worth).
  static constexpr auto pairs = [] {
    std::array<char, 512> table{};
    for (std::size_t b = 0; b < 256; ++b) {
      table[2 * b] = hex_digits[b >> 4];
      table[2 * b + 1] = hex_digits[b & 15];
    }
    return table;
  }();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::memcpy(out + 2 * i, pairs.data() + 2 * std::size_t{bytes[i]}, 2);
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
