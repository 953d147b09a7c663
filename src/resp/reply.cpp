#include "promptcache/resp/reply.hpp"

#include <algorithm>

#include "promptcache/resp/parser.hpp"

namespace promptcache::resp {

std::optional<std::int64_t> Reply::as_int() const noexcept {
  if (type != Type::number && type != Type::blob_string && type != Type::simple_string) {
    return std::nullopt;
  }
  return to_int64(value);
}

const Reply* Reply::find(std::string_view key) const noexcept {
  if (type != Type::map && type != Type::array) return nullptr;
  for (std::size_t i = 0; i + 1 < elements.size(); i += 2) {
    if (elements[i].value == key) return &elements[i + 1];
  }
  return nullptr;
}

namespace {
std::uint64_t element_count(const Node& n) noexcept {
  const bool pairs = n.type == Type::map || n.type == Type::attribute;
  return pairs ? n.aggregate_size * 2 : n.aggregate_size;
}
}  // namespace

void StatusTally::on_node(const Node& node) {
  if (node.depth != 0) return;
  if (is_error(node.type)) {
    ++errors;
  } else if (node.type == Type::number) {
    sum += static_cast<std::uint64_t>(to_int64(node.value).value_or(0));
  }
}

void ReplyCollector::element_done() noexcept {
  while (!stack_.empty()) {
    if (--stack_.back().remaining > 0) return;
    const bool attribute = stack_.back().attribute;
    stack_.pop_back();
    if (attribute) return;  // an attribute is not an element of its parent
  }
}

void ReplyCollector::on_node(const Node& node) {
  const bool skipping = !stack_.empty() && stack_.back().reply == nullptr;
  if (node.type == Type::attribute || skipping) {
    if (is_aggregate(node.type) && node.aggregate_size > 0) {
      stack_.push_back({nullptr, element_count(node), node.type == Type::attribute});
    } else if (node.type != Type::attribute) {
      element_done();
    }
    return;
  }
  std::vector<Reply>& siblings = stack_.empty() ? replies_ : stack_.back().reply->elements;
  Reply& r = siblings.emplace_back();
  r.type = node.type;
  r.value.assign(node.value);
  if (is_aggregate(node.type) && node.aggregate_size > 0) {
    const std::uint64_t n = element_count(node);
    r.elements.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, 64)));
    stack_.push_back({&r, n, false});
    return;
  }
  element_done();
}

}  // namespace promptcache::resp
