// Key slots and the slot map, without a server: the CRC16 of the cluster specification, hash
// tags, and the parsing and sanity checks of CLUSTER SHARDS / CLUSTER SLOTS replies.
#include <gtest/gtest.h>

#include <string>

#include "promptcache/cluster/redirect.hpp"
#include "promptcache/cluster/slot.hpp"
#include "promptcache/cluster/slot_map.hpp"
#include "support/resp_builders.hpp"

namespace promptcache::cluster {
namespace {

using resp::Reply;
using namespace testing::resp_builders;
using resp::Type;

TEST(ClusterSlot, crc16_matches_the_check_value_of_the_specification) {
  // The cluster specification: CRC16("123456789") = 0x31C3 (XMODEM).
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlot, key_slots_match_what_redis_cluster_keyslot_answers) {
  // Values from CLUSTER KEYSLOT on redis-server 7.0.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(ClusterSlot, a_hash_tag_is_the_text_between_the_first_braces_when_not_empty) {
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");  // empty first tag: the whole key
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(hash_tag("no-braces"), "no-braces");
  EXPECT_EQ(hash_tag("open{only"), "open{only");
  EXPECT_EQ(hash_tag("}{x}"), "x");
}

TEST(ClusterSlot, parse_address_reads_host_port_and_bracketed_ipv6) {
  EXPECT_EQ(parse_address("127.0.0.1:7000"), (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(parse_address("[::1]:7001"), (NodeAddress{"::1", 7001}));
  EXPECT_EQ(parse_address("redis-3.internal:6380"), (NodeAddress{"redis-3.internal", 6380}));
  EXPECT_FALSE(parse_address("127.0.0.1"));
  EXPECT_FALSE(parse_address("127.0.0.1:0"));
  EXPECT_FALSE(parse_address("127.0.0.1:65536"));
  EXPECT_FALSE(parse_address(":7000"));
  EXPECT_FALSE(parse_address("host:7x"));
  EXPECT_EQ((NodeAddress{"::1", 7001}).to_string(), "[::1]:7001");
}

Reply node(const std::string& ip, int port, const std::string& role,
           const std::string& health = "online", const std::string& endpoint = "") {
  return map({str("id"), str("id-" + std::to_string(port)), str("port"), num(port), str("ip"),
              str(ip), str("endpoint"), str(endpoint.empty() ? ip : endpoint), str("role"),
              str(role), str("replication-offset"), num(100), str("health"), str(health)});
}

Reply shard(std::vector<Reply> slots, std::vector<Reply> nodes) {
  return map({str("slots"), arr(std::move(slots)), str("nodes"), arr(std::move(nodes))});
}

Reply three_shards() {
  return arr({
      shard({num(0), num(5460)},
            {node("127.0.0.1", 7000, "master"), node("127.0.0.1", 7003, "replica")}),
      shard({num(5461), num(10922)},
            {node("127.0.0.1", 7004, "replica"), node("127.0.0.1", 7001, "master")}),
      shard({num(10923), num(16383)},
            {node("127.0.0.1", 7002, "master"), node("127.0.0.1", 7005, "replica", "loading")}),
  });
}

TEST(SlotMap, cluster_shards_reply_maps_every_slot_to_its_master_and_online_replicas) {
  auto map = SlotMap::from_shards(three_shards());
  ASSERT_TRUE(map) << map.error().message();
  EXPECT_EQ(map->covered(), 16384u);
  ASSERT_EQ(map->shards().size(), 3u);
  EXPECT_EQ(map->shard_for(0)->master, (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(map->shard_for(5460)->master, (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(map->shard_for(5461)->master, (NodeAddress{"127.0.0.1", 7001}));
  EXPECT_EQ(map->shard_for(16383)->master, (NodeAddress{"127.0.0.1", 7002}));
  EXPECT_EQ(map->shard_for(0)->replicas, (std::vector<NodeAddress>{{"127.0.0.1", 7003}}));
  EXPECT_TRUE(map->shard_for(16383)->replicas.empty());  // its replica is still loading
  EXPECT_EQ(map->shard_for(16384), nullptr);
}

TEST(SlotMap, the_resp2_flat_form_of_cluster_shards_parses_the_same) {
  Reply flat = three_shards();
  for (auto& s : flat.elements) {
    s.type = Type::array;
    for (auto& n : s.elements[3].elements) n.type = Type::array;
  }
  auto map = SlotMap::from_shards(flat);
  ASSERT_TRUE(map);
  EXPECT_EQ(map->covered(), 16384u);
  EXPECT_EQ(map->shard_for(8000)->master, (NodeAddress{"127.0.0.1", 7001}));
}

TEST(SlotMap, an_unknown_endpoint_falls_back_to_the_ip_and_a_hostname_wins_over_it) {
  auto map = SlotMap::from_shards(arr({
      shard({num(0), num(100)}, {node("10.0.0.1", 7000, "master", "online", "?")}),
      shard({num(101), num(200)}, {node("10.0.0.2", 7001, "master", "online", "redis-b")}),
  }));
  ASSERT_TRUE(map);
  EXPECT_EQ(map->shard_for(0)->master, (NodeAddress{"10.0.0.1", 7000}));
  EXPECT_EQ(map->shard_for(150)->master, (NodeAddress{"redis-b", 7001}));
  EXPECT_EQ(map->covered(), 201u);
  EXPECT_EQ(map->shard_for(201), nullptr);
}

TEST(SlotMap, overlapping_out_of_range_or_reversed_ranges_are_refused) {
  EXPECT_FALSE(SlotMap::from_shards(arr({
      shard({num(0), num(100)}, {node("h", 1, "master")}),
      shard({num(100), num(200)}, {node("h", 2, "master")}),
  })));
  EXPECT_FALSE(SlotMap::from_shards(arr({shard({num(0), num(16384)}, {node("h", 1, "master")})})));
  EXPECT_FALSE(SlotMap::from_shards(arr({shard({num(9), num(3)}, {node("h", 1, "master")})})));
  EXPECT_FALSE(SlotMap::from_shards(arr({shard({num(-1), num(3)}, {node("h", 1, "master")})})));
  EXPECT_FALSE(SlotMap::from_shards(arr({shard({num(1)}, {node("h", 1, "master")})})));
}

TEST(SlotMap, a_shard_with_slots_but_no_online_master_is_refused) {
  EXPECT_FALSE(SlotMap::from_shards(arr(
      {shard({num(0), num(10)}, {node("h", 1, "master", "failed"), node("h", 2, "replica")})})));
  // A shard that serves no slots needs no master.
  auto map = SlotMap::from_shards(arr({
      shard({num(0), num(10)}, {node("h", 1, "master")}),
      shard({}, {node("h", 2, "master", "failed")}),
  }));
  ASSERT_TRUE(map);
  EXPECT_EQ(map->shards().size(), 1u);
}

TEST(SlotMap, replies_of_the_wrong_shape_are_refused_not_crashed_on) {
  EXPECT_FALSE(SlotMap::from_shards(Reply{Type::simple_error, "ERR unknown command", {}}));
  EXPECT_FALSE(SlotMap::from_shards(str("nonsense")));
  EXPECT_FALSE(SlotMap::from_shards(arr({map({str("slots"), arr({})})})));  // no nodes
  EXPECT_FALSE(SlotMap::from_shards(arr({str("x")})));
  EXPECT_FALSE(SlotMap::from_slots(arr({arr({num(0)})})));
  EXPECT_FALSE(SlotMap::from_slots(arr({arr({num(0), num(5), arr({str("h")})})})));
}

TEST(SlotMap, cluster_slots_reply_parses_masters_and_replicas) {
  auto map = SlotMap::from_slots(arr({
      arr({num(0), num(8191), arr({str("127.0.0.1"), num(7000), str("id0")}),
           arr({str("127.0.0.1"), num(7002), str("id2")})}),
      arr({num(8192), num(16383), arr({str("127.0.0.1"), num(7001), str("id1")})}),
  }));
  ASSERT_TRUE(map) << map.error().message();
  EXPECT_EQ(map->covered(), 16384u);
  EXPECT_EQ(map->shard_for(100)->master, (NodeAddress{"127.0.0.1", 7000}));
  EXPECT_EQ(map->shard_for(100)->replicas, (std::vector<NodeAddress>{{"127.0.0.1", 7002}}));
  EXPECT_EQ(map->shard_for(9000)->master, (NodeAddress{"127.0.0.1", 7001}));
}

TEST(SlotMap, moved_patches_one_slot_to_a_known_or_new_master) {
  auto map = SlotMap::from_shards(three_shards());
  ASSERT_TRUE(map);
  map->move_slot(42, NodeAddress{"127.0.0.1", 7001});
  EXPECT_EQ(map->shard_for(42)->master, (NodeAddress{"127.0.0.1", 7001}));
  EXPECT_EQ(map->shard_for(43)->master, (NodeAddress{"127.0.0.1", 7000}));
  map->move_slot(43, NodeAddress{"127.0.0.1", 7010});
  EXPECT_EQ(map->shard_for(43)->master, (NodeAddress{"127.0.0.1", 7010}));
  EXPECT_EQ(map->shards().size(), 4u);
  EXPECT_EQ(map->covered(), 16384u);
}

TEST(Redirect, moved_and_ask_carry_the_slot_and_the_target) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->target, (NodeAddress{"127.0.0.1", 6381}));
  auto ask = parse_redirect("ASK 16383 redis-b.internal:7001");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->target, (NodeAddress{"redis-b.internal", 7001}));
  EXPECT_EQ(parse_redirect("MOVED 1 [::1]:7000")->target, (NodeAddress{"::1", 7000}));
}

TEST(Redirect, busy_states_ask_for_a_retry_and_readonly_for_a_refresh) {
  EXPECT_EQ(parse_redirect("TRYAGAIN Multiple keys request during rehashing of slot")->kind,
            Redirect::Kind::try_again);
  EXPECT_EQ(parse_redirect("CLUSTERDOWN The cluster is down")->kind, Redirect::Kind::try_again);
  EXPECT_EQ(parse_redirect("LOADING Redis is loading the dataset in memory")->kind,
            Redirect::Kind::try_again);
  EXPECT_EQ(parse_redirect("READONLY You can't write against a read only replica.")->kind,
            Redirect::Kind::readonly);
}

TEST(Redirect, ordinary_and_malformed_errors_are_not_redirects) {
  EXPECT_FALSE(parse_redirect("ERR unknown command"));
  EXPECT_FALSE(parse_redirect("WRONGTYPE Operation against a key holding the wrong kind"));
  EXPECT_FALSE(parse_redirect("CROSSSLOT Keys in request don't hash to the same slot"));
  EXPECT_FALSE(parse_redirect("MOVED"));
  EXPECT_FALSE(parse_redirect("MOVED 16384 127.0.0.1:7000"));
  EXPECT_FALSE(parse_redirect("MOVED 12 127.0.0.1"));
  EXPECT_FALSE(parse_redirect("MOVED x 127.0.0.1:7000"));
  EXPECT_FALSE(parse_redirect("ASK 12 :7000"));
  EXPECT_FALSE(parse_redirect("moved 12 127.0.0.1:7000"));
}

}  // namespace
}  // namespace promptcache::cluster
