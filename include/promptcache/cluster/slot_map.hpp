// Which master serves each of the 16 384 slots: built from CLUSTER SHARDS (or CLUSTER SLOTS on
// servers before 7.0), checked for sanity, and patched slot by slot as MOVED replies arrive.
// A plain value: no sockets, tested byte for byte.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/system/result.hpp>

#include "promptcache/cluster/slot.hpp"
#include "promptcache/net/endpoint.hpp"
#include "promptcache/resp/reply.hpp"

namespace promptcache::cluster {

// A node's host and port (the same type as the client's endpoints).
using NodeAddress = net::Endpoint;

// Parses "host:port" (and "[v6]:port"), as MOVED and ASK carry it.
[[nodiscard]] inline std::optional<NodeAddress> parse_address(std::string_view text) {
  return net::parse_endpoint(text);
}

struct Shard {
  NodeAddress master;
  std::vector<NodeAddress> replicas;  // online ones only
};

class SlotMap {
 public:
  // An empty map: no slot has an owner.
  SlotMap() { owner_.fill(none); }

  // From the reply to CLUSTER SHARDS (a map per shard, RESP3 or RESP2). Errors: the reply is
  // not shaped as documented, a slot range is out of bounds or overlaps another, or a shard
  // serving slots has no usable master.
  [[nodiscard]] static boost::system::result<SlotMap> from_shards(const resp::Reply& reply);
  // From the reply to CLUSTER SLOTS: [start, end, master, replica...] per range.
  [[nodiscard]] static boost::system::result<SlotMap> from_slots(const resp::Reply& reply);

  // The shard serving `slot`; nullptr while nobody covers it.
  [[nodiscard]] const Shard* shard_for(std::uint16_t slot) const noexcept;
  // Every shard known (a shard MOVED away from may be left with no slots until a refresh).
  [[nodiscard]] const std::vector<Shard>& shards() const noexcept { return shards_; }
  // How many slots have an owner (16 384 on a healthy cluster).
  [[nodiscard]] std::size_t covered() const noexcept;
  // A MOVED reply: `slot` now lives on `master` (a known shard, or a new one).
  void move_slot(std::uint16_t slot, const NodeAddress& master);

 private:
  static constexpr std::uint16_t none = 0xffff;
  // Adds slots [first, last] to shard `index`; false when out of range or already owned.
  bool assign(std::uint16_t first, std::uint16_t last, std::size_t index);
  std::size_t shard_index(const NodeAddress& master);

  std::vector<Shard> shards_;
  std::array<std::uint16_t, slot_count> owner_{};  // index into shards_, or none
};

}  // namespace promptcache::cluster
