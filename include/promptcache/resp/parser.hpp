// Incremental, sans-IO pull parser for RESP2 and RESP3. Bytes in, Nodes out; no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "promptcache/resp/node.hpp"

namespace promptcache::resp {

struct ParserLimits {
  std::uint32_t max_depth = 16;                       // nesting of aggregates
  std::uint64_t max_bulk = 512ull * 1024 * 1024;      // bytes in one blob/verbatim/error
  std::uint64_t max_aggregate = 64ull * 1024 * 1024;  // elements announced by one aggregate
  std::size_t max_line = 64 * 1024;                   // bytes of a simple/number line
};

// Feed it the unconsumed bytes of the read buffer; it returns one Node at a time.
//
//   std::size_t used = 0;
//   while (auto node = parser.next(buffer.substr(pos), used, ec)) { ...; pos += used; }
//
// `next` returns nullopt with no error when it needs more bytes; call it again once more
// have arrived (the bytes it did not consume must still be at the front of `data`). The
// parser keeps only the stack of open aggregates, so the caller may drop consumed bytes
// at any time. Any malformed or over-limit input sets `ec` (error::protocol_error or
// error::limit_exceeded) and the parser stays failed until reset().
class Parser {
 public:
  static constexpr std::uint32_t hard_max_depth = 64;

  explicit Parser(ParserLimits limits = {}) noexcept;

  [[nodiscard]] std::optional<Node> next(std::string_view data, std::size_t& consumed,
                                         boost::system::error_code& ec) noexcept;

  // True between messages: the last node returned completed a top-level value (an
  // attribute does not count: it annotates the value that follows).
  [[nodiscard]] bool done() const noexcept {
    return depth_ == 0 && !failed_ && !after_root_attribute_;
  }
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  void reset() noexcept;

 private:
  // Called once a complete element has been produced: pops finished aggregates.
  void element_done() noexcept;

  ParserLimits limits_;
  std::uint32_t depth_ = 0;
  // remaining_[i] = elements still expected by the aggregate open at depth i+1.
  std::array<std::uint64_t, hard_max_depth> remaining_{};
  // attribute_[i] = the aggregate open at depth i+1 is an attribute.
  std::array<bool, hard_max_depth> attribute_{};
  bool failed_ = false;
  bool after_root_attribute_ = false;
};

}  // namespace promptcache::resp

namespace promptcache::resp {
// Strict conversions of a number/double node's text; nullopt when it is not one.
[[nodiscard]] std::optional<std::int64_t> to_int64(std::string_view text) noexcept;
[[nodiscard]] std::optional<double> to_double(std::string_view text) noexcept;
}  // namespace promptcache::resp
