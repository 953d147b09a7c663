#include "promptcache/cluster/slot_map.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "promptcache/error.hpp"

namespace promptcache::cluster {

using boost::system::error_code;

namespace {

error_code bad_map() {
  return make_error_code(error::unexpected_reply);
}

std::optional<std::uint16_t> slot_number(const resp::Reply* r) {
  if (r == nullptr) return std::nullopt;
  auto v = r->as_int();
  if (!v || *v < 0 || *v >= slot_count) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

std::optional<std::uint16_t> port_number(const resp::Reply* r) {
  if (r == nullptr) return std::nullopt;
  auto v = r->as_int();
  if (!v || *v <= 0 || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

// A node of CLUSTER SHARDS: its announced endpoint, or its IP when the endpoint is unknown.
std::optional<NodeAddress> shard_node_address(const resp::Reply& node) {
  const resp::Reply* endpoint = node.find("endpoint");
  const resp::Reply* ip = node.find("ip");
  auto port = port_number(node.find("port"));
  if (!port) port = port_number(node.find("tls-port"));
  std::string host;
  if (endpoint != nullptr && !endpoint->value.empty() && endpoint->value != "?") {
    host = endpoint->value;
  } else if (ip != nullptr && !ip->value.empty()) {
    host = ip->value;
  }
  if (host.empty() || !port) return std::nullopt;
  return NodeAddress{host, *port};
}

bool field_is(const resp::Reply& node, std::string_view key, std::string_view value) {
  const resp::Reply* r = node.find(key);
  return r != nullptr && r->value == value;
}

}  // namespace

boost::system::result<SlotMap> SlotMap::from_shards(const resp::Reply& reply) {
  if (reply.is_error() || (reply.type != resp::Type::array && reply.type != resp::Type::set)) {
    return bad_map();
  }
  SlotMap map;
  for (const resp::Reply& shard : reply.elements) {
    const resp::Reply* slots = shard.find("slots");
    const resp::Reply* nodes = shard.find("nodes");
    if (slots == nullptr || nodes == nullptr || slots->elements.size() % 2 != 0) {
      return bad_map();
    }
    if (slots->elements.empty()) continue;  // a shard without slots serves nothing
    std::optional<NodeAddress> master;
    std::vector<NodeAddress> replicas;
    for (const resp::Reply& node : nodes->elements) {
      auto address = shard_node_address(node);
      if (!address || !field_is(node, "health", "online")) continue;
      if (field_is(node, "role", "master")) {
        master = std::move(address);
      } else {
        replicas.push_back(std::move(*address));
      }
    }
    if (!master) return bad_map();
    const std::size_t index = map.shard_index(*master);
    for (const auto& r : replicas) map.shards_[index].replicas.push_back(r);
    for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
      auto first = slot_number(&slots->elements[i]);
      auto last = slot_number(&slots->elements[i + 1]);
      if (!first || !last || *first > *last || !map.assign(*first, *last, index)) {
        return bad_map();
      }
    }
  }
  return map;
}

boost::system::result<SlotMap> SlotMap::from_slots(const resp::Reply& reply) {
  if (reply.is_error() || reply.type != resp::Type::array) return bad_map();
  SlotMap map;
  for (const resp::Reply& range : reply.elements) {
    if (range.elements.size() < 3) return bad_map();
    auto first = slot_number(&range.elements[0]);
    auto last = slot_number(&range.elements[1]);
    std::vector<NodeAddress> nodes;
    for (std::size_t i = 2; i < range.elements.size(); ++i) {
      const auto& node = range.elements[i].elements;
      if (node.size() < 2) return bad_map();
      auto port = port_number(&node[1]);
      if (!port || node[0].value.empty() || node[0].value == "?") {
        if (i == 2) return bad_map();  // the master must be reachable
        continue;
      }
      nodes.push_back(NodeAddress{node[0].value, *port});
    }
    const std::size_t index = map.shard_index(nodes.front());
    for (std::size_t i = 1; i < nodes.size(); ++i) {
      auto& replicas = map.shards_[index].replicas;
      if (std::find(replicas.begin(), replicas.end(), nodes[i]) == replicas.end()) {
        replicas.push_back(nodes[i]);
      }
    }
    if (!first || !last || *first > *last || !map.assign(*first, *last, index)) {
      return bad_map();
    }
  }
  return map;
}

const Shard* SlotMap::shard_for(std::uint16_t slot) const noexcept {
  if (slot >= slot_count || owner_[slot] == none) return nullptr;
  return &shards_[owner_[slot]];
}

std::size_t SlotMap::covered() const noexcept {
  std::size_t n = 0;
  for (auto o : owner_) n += o != none ? 1 : 0;
  return n;
}

void SlotMap::move_slot(std::uint16_t slot, const NodeAddress& master) {
  if (slot >= slot_count) return;
  owner_[slot] = static_cast<std::uint16_t>(shard_index(master));
}

bool SlotMap::assign(std::uint16_t first, std::uint16_t last, std::size_t index) {
  for (std::uint32_t s = first; s <= last; ++s) {
    if (owner_[s] != none) return false;
    owner_[s] = static_cast<std::uint16_t>(index);
  }
  return true;
}

std::size_t SlotMap::shard_index(const NodeAddress& master) {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (shards_[i].master == master) return i;
  }
  shards_.push_back(Shard{master, {}});
  return shards_.size() - 1;
}

}  // namespace promptcache::cluster
