#include "promptcache/resp/parser.hpp"

#include <algorithm>
#include <charconv>

#include "promptcache/error.hpp"

namespace promptcache::resp {

std::string_view to_string(Type t) noexcept {
  switch (t) {
    case Type::simple_string:
      return "simple_string";
    case Type::simple_error:
      return "simple_error";
    case Type::number:
      return "number";
    case Type::double_type:
      return "double";
    case Type::boolean:
      return "boolean";
    case Type::big_number:
      return "big_number";
    case Type::blob_string:
      return "blob_string";
    case Type::blob_error:
      return "blob_error";
    case Type::verbatim_string:
      return "verbatim_string";
    case Type::null:
      return "null";
    case Type::array:
      return "array";
    case Type::map:
      return "map";
    case Type::set:
      return "set";
    case Type::attribute:
      return "attribute";
    case Type::push:
      return "push";
  }
  return "unknown";
}

std::optional<std::int64_t> to_int64(std::string_view text) noexcept {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view text) noexcept {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

namespace {

// A length or count: decimal digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_length(std::string_view text) noexcept {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool is_big_number(std::string_view text) noexcept {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Type aggregate_type(char c) noexcept {
  switch (c) {
    case '%':
      return Type::map;
    case '~':
      return Type::set;
    case '|':
      return Type::attribute;
    case '>':
      return Type::push;
    default:
      return Type::array;
  }
}

Type blob_type(char c) noexcept {
  switch (c) {
    case '!':
      return Type::blob_error;
    case '=':
      return Type::verbatim_string;
    default:
      return Type::blob_string;
  }
}

}  // namespace

Parser::Parser(ParserLimits limits) noexcept : limits_(limits) {
  limits_.max_depth = std::min(limits_.max_depth, hard_max_depth);
  // Keeps 2 * count (the elements of a map) far from overflow.
  limits_.max_aggregate = std::min<std::uint64_t>(limits_.max_aggregate, 1ull << 40);
}

void Parser::reset() noexcept {
  depth_ = 0;
  failed_ = false;
  after_root_attribute_ = false;
}

void Parser::element_done() noexcept {
  while (depth_ > 0) {
    if (--remaining_[depth_ - 1] > 0) return;
    --depth_;
    // An attribute annotates the element after it: it is not an element of its parent.
    if (attribute_[depth_]) {
      if (depth_ == 0) after_root_attribute_ = true;
      return;
    }
  }
}

std::optional<Node> Parser::next(std::string_view data, std::size_t& consumed,
                                 boost::system::error_code& ec) noexcept {
  consumed = 0;
  auto fail = [&](error e) -> std::optional<Node> {
    failed_ = true;
    ec = e;
    return std::nullopt;
  };
  if (failed_) return fail(error::protocol_error);
  if (data.empty()) return std::nullopt;

  // Every element starts with a type byte and a line ending in CRLF; the line holds at most
  // max_line bytes, so its CR is at index max_line + 1 at the latest.
  const std::size_t last_cr = limits_.max_line + 1;
  const std::size_t cr = data.substr(0, last_cr + 1).find('\r', 1);
  if (cr == std::string_view::npos) {
    if (data.size() > last_cr) return fail(error::limit_exceeded);
    return std::nullopt;
  }
  if (cr + 1 == data.size()) return std::nullopt;
  if (data[cr + 1] != '\n') return fail(error::protocol_error);
  const char type = data[0];
  const std::string_view line = data.substr(1, cr - 1);
  if (line.find('\n') != std::string_view::npos) return fail(error::protocol_error);
  const std::size_t header = cr + 2;

  Node node;
  node.depth = depth_;
  if (depth_ == 0 && type != '|') after_root_attribute_ = false;
  switch (type) {
    case '+':
      node.type = Type::simple_string;
      node.value = line;
      break;
    case '-':
      node.type = Type::simple_error;
      node.value = line;
      break;
    case ':':
      if (!to_int64(line)) return fail(error::protocol_error);
      node.type = Type::number;
      node.value = line;
      break;
    case ',':
      if (!to_double(line)) return fail(error::protocol_error);
      node.type = Type::double_type;
      node.value = line;
      break;
    case '#':
      if (line != "t" && line != "f") return fail(error::protocol_error);
      node.type = Type::boolean;
      node.value = line;
      break;
    case '(':
      if (!is_big_number(line)) return fail(error::protocol_error);
      node.type = Type::big_number;
      node.value = line;
      break;
    case '_':
      if (!line.empty()) return fail(error::protocol_error);
      node.type = Type::null;
      break;
    case '$':
    case '!':
    case '=': {
      if (type == '$' && line == "-1") {  // RESP2 null bulk string
        node.type = Type::null;
        break;
      }
      const auto len = parse_length(line);  // streamed strings ("$?") are not supported
      if (!len) return fail(error::protocol_error);
      if (*len > limits_.max_bulk) return fail(error::limit_exceeded);
      if (data.size() - header < *len + 2) return std::nullopt;
      if (data[header + *len] != '\r' || data[header + *len + 1] != '\n') {
        return fail(error::protocol_error);
      }
      node.type = blob_type(type);
      node.value = data.substr(header, *len);
      if (node.type == Type::verbatim_string) {
        if (node.value.size() < 4 || node.value[3] != ':') return fail(error::protocol_error);
        node.format = node.value.substr(0, 3);
        node.value.remove_prefix(4);
      }
      consumed = header + *len + 2;
      element_done();
      return node;
    }
    case '*':
    case '%':
    case '~':
    case '|':
    case '>': {
      if (type == '*' && line == "-1") {  // RESP2 null array
        node.type = Type::null;
        break;
      }
      const auto count = parse_length(line);
      if (!count) return fail(error::protocol_error);
      if (*count > limits_.max_aggregate) return fail(error::limit_exceeded);
      node.type = aggregate_type(type);
      node.aggregate_size = *count;
      const bool pairs = node.type == Type::map || node.type == Type::attribute;
      const std::uint64_t elements = pairs ? *count * 2 : *count;
      if (elements == 0) {
        if (node.type != Type::attribute) {
          element_done();
        } else if (depth_ == 0) {
          after_root_attribute_ = true;
        }
        consumed = header;
        return node;
      }
      if (depth_ + 1 > limits_.max_depth) return fail(error::limit_exceeded);
      attribute_[depth_] = node.type == Type::attribute;
      remaining_[depth_++] = elements;
      consumed = header;
      return node;
    }
    default:
      return fail(error::protocol_error);
  }
  consumed = header;
  element_done();
  return node;
}

}  // namespace promptcache::resp
