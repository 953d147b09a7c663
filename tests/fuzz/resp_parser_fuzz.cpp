// libFuzzer target for the sans-IO RESP parser (promptcache::resp::Parser).
//
// Input layout: byte 0 is a control byte, the rest is fed to the parser.
//   bits 0-1  chunking: 0 whole, 1 byte by byte, 2 fixed-size chunks, 3 pseudo-random chunks
//   bits 2-4  chunk size for mode 2 (1..8) / PRNG seed for mode 3
//   bits 5-6  limits: 0 defaults, 1 small, 2 tiny, 3 large depth (clamped) with small others
//   bit  7    max_depth variant for the small profiles
//
// Every input is parsed twice, chunked as the control byte says and whole; both runs must
// yield the same nodes and the same error. Any broken invariant calls __builtin_trap().
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/error.hpp"
#include "promptcache/resp/parser.hpp"

namespace {

using promptcache::resp::is_aggregate;
using promptcache::resp::Node;
using promptcache::resp::Parser;
using promptcache::resp::ParserLimits;
using promptcache::resp::Type;

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

struct Rec {
  Type type;
  std::uint32_t depth;
  std::uint64_t aggregate_size;
  std::string value;
  std::string format;
  bool done;

  bool operator==(const Rec&) const = default;
};

struct Result {
  std::vector<Rec> nodes;
  boost::system::error_code ec;
  std::size_t unconsumed = 0;
};

ParserLimits pick_limits(std::uint8_t ctl) {
  ParserLimits limits;
  const bool alt = (ctl & 0x80) != 0;
  switch ((ctl >> 5) & 3) {
    case 0:
      break;
    case 1:
      limits.max_depth = alt ? 3 : 1;
      limits.max_bulk = 16;
      limits.max_aggregate = 4;
      limits.max_line = 16;
      break;
    case 2:
      limits.max_depth = alt ? 1 : 0;
      limits.max_bulk = 1;
      limits.max_aggregate = 1;
      limits.max_line = 2;
      break;
    default:
      limits.max_depth = alt ? 1000 : Parser::hard_max_depth;  // clamped to hard_max_depth
      limits.max_bulk = 64;
      limits.max_aggregate = 8;
      limits.max_line = 32;
      break;
  }
  return limits;
}

class Chunker {
 public:
  static Chunker from_control(std::uint8_t ctl) {
    return Chunker(ctl & 3, (ctl >> 2) & 7,
                   0x9e3779b9u ^ (static_cast<std::uint32_t>(ctl) * 2654435761u));
  }
  static Chunker whole() { return Chunker(0, 0, 1); }

  std::size_t next(std::size_t left) {
    std::size_t n = left;
    switch (mode_) {
      case 0:
        break;
      case 1:
        n = 1;
        break;
      case 2:
        n = param_ + 1u;
        break;
      default:
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        n = 1 + state_ % 24;
        break;
    }
    return n < left ? n : left;
  }

 private:
  Chunker(int mode, unsigned param, std::uint32_t seed)
      : mode_(mode), param_(param), state_(seed == 0 ? 1 : seed) {}

  int mode_;
  unsigned param_;
  std::uint32_t state_;
};

bool within(std::string_view inner, std::string_view outer) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

Result run(std::string_view input, const ParserLimits& limits, Chunker chunker) {
  const std::uint32_t max_depth =
      limits.max_depth < Parser::hard_max_depth ? limits.max_depth : Parser::hard_max_depth;
  Parser parser(limits);
  Result result;
  std::string buffer;
  std::size_t pos = 0;
  while (pos < input.size()) {
    const std::size_t n = chunker.next(input.size() - pos);
    buffer.append(input.substr(pos, n));
    pos += n;
    for (;;) {
      const std::string_view view(buffer);
      std::size_t used = static_cast<std::size_t>(-1);
      const std::optional<Node> node = parser.next(view, used, result.ec);
      FUZZ_CHECK(used <= view.size());
      if (!node) {
        if (result.ec) {
          FUZZ_CHECK(parser.failed());
          FUZZ_CHECK(!parser.done());
        } else {
          FUZZ_CHECK(used == 0);
          FUZZ_CHECK(!parser.failed());
        }
        break;
      }
      FUZZ_CHECK(!result.ec);
      FUZZ_CHECK(used > 0);
      const std::string_view taken = view.substr(0, used);
      FUZZ_CHECK(within(node->value, taken));
      FUZZ_CHECK(within(node->format, taken));
      FUZZ_CHECK(node->depth <= max_depth);
      if (node->type == Type::verbatim_string) {
        FUZZ_CHECK(node->format.size() == 3);
      } else {
        FUZZ_CHECK(node->format.empty());
      }
      if (is_aggregate(node->type)) {
        FUZZ_CHECK(node->aggregate_size <= limits.max_aggregate);
        FUZZ_CHECK(node->value.empty());
      } else {
        FUZZ_CHECK(node->aggregate_size == 0);
      }
      switch (node->type) {
        case Type::blob_string:
        case Type::blob_error:
        case Type::verbatim_string:
          FUZZ_CHECK(node->value.size() <= limits.max_bulk);
          break;
        case Type::null:
          FUZZ_CHECK(node->value.empty());
          break;
        case Type::number:
          FUZZ_CHECK(promptcache::resp::to_int64(node->value));
          break;
        case Type::double_type:
          FUZZ_CHECK(promptcache::resp::to_double(node->value));
          break;
        case Type::boolean:
          FUZZ_CHECK(node->value == "t" || node->value == "f");
          break;
        default:
          break;
      }
      result.nodes.push_back(Rec{node->type, node->depth, node->aggregate_size,
                                 std::string(node->value), std::string(node->format),
                                 parser.done()});
      buffer.erase(0, used);
    }
    if (result.ec) {
      // A failed parser keeps failing, whatever it is fed, until reset().
      boost::system::error_code again;
      std::size_t used = 1;
      FUZZ_CHECK(!parser.next("+OK\r\n", used, again));
      FUZZ_CHECK(again);
      FUZZ_CHECK(used == 0);
      FUZZ_CHECK(parser.failed());
      parser.reset();
      FUZZ_CHECK(!parser.failed() && parser.done());
      FUZZ_CHECK(parser.next("+OK\r\n", used, again));
      break;
    }
  }
  result.unconsumed = buffer.size();
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t ctl = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const ParserLimits limits = pick_limits(ctl);

  const Result chunked = run(input, limits, Chunker::from_control(ctl));
  const Result whole = run(input, limits, Chunker::whole());
  // Chunking must not change what the parser sees.
  FUZZ_CHECK(chunked.nodes == whole.nodes);
  FUZZ_CHECK(chunked.ec == whole.ec);
  if (!whole.ec) FUZZ_CHECK(chunked.unconsumed == whole.unconsumed);
  return 0;
}
