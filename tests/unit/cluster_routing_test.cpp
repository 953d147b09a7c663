// Unit tests of cluster routing as plain functions (cluster/routing.hpp): planning a round over
// a slot map, classifying replies, and the rounds of a batch over MOVED, ASK, TRYAGAIN,
// CLUSTERDOWN, READONLY, failed nodes, uncovered slots, deadlines and mixed sequences. No
// sockets: what ClusterStore::run executes is what these decide.
#include "promptcache/cluster/routing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "promptcache/error.hpp"
#include "promptcache/resp/reply.hpp"
#include "support/resp_builders.hpp"

namespace promptcache::cluster {
namespace {

using namespace std::chrono_literals;
using resp::Reply;
using namespace testing::resp_builders;
using resp::Type;
using Clock = BatchRouter::Clock;

Reply node(const std::string& ip, int port) {
  return arr({str(ip), num(port), str(ip + "-id")});
}

const NodeAddress a{"10.0.0.1", 7000};   // slots 0–8191
const NodeAddress ar{"10.0.0.3", 7000};  // a's replica
const NodeAddress ar2{"10.0.0.4", 7000};
const NodeAddress b{"10.0.0.2", 7000};  // slots 8192–16383
const NodeAddress c{"10.0.0.9", 7000};  // a node the map does not know

SlotMap two_shards() {
  auto map = SlotMap::from_slots(arr({arr({num(0), num(8191), node("10.0.0.1", 7000),
                                           node("10.0.0.3", 7000), node("10.0.0.4", 7000)}),
                                      arr({num(8192), num(16383), node("10.0.0.2", 7000)})}));
  EXPECT_TRUE(map) << map.error().message();
  return *map;
}

std::vector<std::size_t> all(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// --- plan --------------------------------------------------------------------------------

TEST(RoutingPlan, groups_commands_by_master_in_the_batchs_order) {
  const SlotMap map = two_shards();
  const std::vector<Routed> commands{{10}, {9000}, {20}, {16000}, {30}};
  const std::vector<std::optional<NodeAddress>> ask(commands.size());
  std::uint64_t turn = 0;
  const RoutePlan p = plan(all(5), commands, ask, map, true, false, turn);
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(p.groups[0].node, a);
  EXPECT_EQ(p.groups[0].commands, (std::vector<std::size_t>{0, 2, 4}));
  EXPECT_EQ(p.groups[1].node, b);
  EXPECT_EQ(p.groups[1].commands, (std::vector<std::size_t>{1, 3}));
  EXPECT_TRUE(p.uncovered.empty());
  EXPECT_EQ(turn, 0u);  // no replica chosen
}

TEST(RoutingPlan, first_try_reads_go_to_replicas_round_robin_writes_and_retries_to_the_master) {
  const SlotMap map = two_shards();
  const std::vector<Routed> commands{{1, true}, {2, true}, {3, false}, {9000, true}};
  const std::vector<std::optional<NodeAddress>> ask(commands.size());
  std::uint64_t turn = 0;
  const RoutePlan first = plan(all(4), commands, ask, map, true, true, turn);
  ASSERT_EQ(first.groups.size(), 4u);
  EXPECT_EQ(first.groups[0].node, ar);   // read 0
  EXPECT_EQ(first.groups[1].node, ar2);  // read 1: the next replica
  EXPECT_EQ(first.groups[2].node, a);    // a write
  EXPECT_EQ(first.groups[3].node, b);    // a read on a shard without replicas
  EXPECT_EQ(turn, 2u);
  const RoutePlan retry = plan(all(4), commands, ask, map, false, true, turn);
  ASSERT_EQ(retry.groups.size(), 2u);
  EXPECT_EQ(retry.groups[0].node, a);
  EXPECT_EQ(retry.groups[0].commands, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(RoutingPlan, an_ask_target_wins_over_the_map_and_uncovered_slots_are_listed) {
  SlotMap half;
  half.move_slot(5, a);  // only slot 5 has an owner
  const std::vector<Routed> commands{{5}, {6}, {7}};
  std::vector<std::optional<NodeAddress>> ask(commands.size());
  ask[2] = c;
  std::uint64_t turn = 0;
  const RoutePlan p = plan(all(3), commands, ask, half, true, false, turn);
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(p.groups[0].node, a);
  EXPECT_EQ(p.groups[1].node, c);
  EXPECT_EQ(p.groups[1].commands, (std::vector<std::size_t>{2}));
  EXPECT_EQ(p.uncovered, (std::vector<std::size_t>{1}));
}

// --- classify ----------------------------------------------------------------------------

TEST(RoutingClassify, each_cluster_error_has_its_verdict_and_others_are_answers) {
  EXPECT_EQ(classify(false, "MOVED 1 10.0.0.2:7000").verdict, Verdict::done);  // a value
  EXPECT_EQ(classify(true, "ERR wrong number of arguments").verdict, Verdict::done);
  const auto moved = classify(true, "MOVED 3999 10.0.0.2:7000");
  EXPECT_EQ(moved.verdict, Verdict::moved);
  EXPECT_EQ(moved.slot, 3999);
  EXPECT_EQ(moved.target, b);
  const auto ask = classify(true, "ASK 12 10.0.0.9:7000");
  EXPECT_EQ(ask.verdict, Verdict::ask);
  EXPECT_EQ(ask.target, c);
  EXPECT_EQ(classify(true, "TRYAGAIN Multiple keys request during rehashing").verdict,
            Verdict::try_again);
  EXPECT_EQ(classify(true, "CLUSTERDOWN The cluster is down").verdict, Verdict::try_again);
  EXPECT_EQ(classify(true, "LOADING Redis is loading").verdict, Verdict::try_again);
  EXPECT_EQ(classify(true, "READONLY You can't write against a read only replica.").verdict,
            Verdict::refresh);
  EXPECT_EQ(classify(true, "MOVED notaslot 10.0.0.2:7000").verdict, Verdict::done);  // malformed
}

// --- rounds ------------------------------------------------------------------------------

TEST(BatchRouter, moved_updates_and_goes_again_at_once_then_the_answer_is_kept) {
  SlotMap map = two_shards();
  BatchRouter r({{100}}, false);
  std::uint64_t turn = 0;
  ASSERT_TRUE(r.next_round(Clock::now()));
  auto p = r.plan_round(map, turn);
  ASSERT_EQ(p.groups.size(), 1u);
  EXPECT_EQ(p.groups[0].node, a);
  EXPECT_EQ(r.on_reply(0, true, "MOVED 100 10.0.0.2:7000"), Verdict::moved);
  map.move_slot(100, b);  // what the caller does on moved
  auto end = r.end_round();
  EXPECT_EQ(end.pause, 0ms);  // a redirect is no reason to wait
  EXPECT_TRUE(end.refresh_soon);
  EXPECT_FALSE(end.refresh_now);
  ASSERT_TRUE(r.next_round(Clock::now()));
  p = r.plan_round(map, turn);
  EXPECT_EQ(p.groups[0].node, b);
  EXPECT_EQ(r.on_reply(0, false, "v"), Verdict::done);
  (void)r.end_round();
  EXPECT_FALSE(r.next_round(Clock::now()));
  EXPECT_FALSE(r.error(0));
  EXPECT_EQ(r.rounds(), 2);
}

TEST(BatchRouter, ask_sends_the_command_once_to_its_target_after_asking) {
  const SlotMap map = two_shards();
  BatchRouter r({{100}, {101}}, false);
  std::uint64_t turn = 0;
  ASSERT_TRUE(r.next_round(Clock::now()));
  (void)r.plan_round(map, turn);
  EXPECT_EQ(r.on_reply(0, true, "ASK 100 10.0.0.9:7000"), Verdict::ask);
  EXPECT_EQ(r.on_reply(1, false, "ok"), Verdict::done);
  EXPECT_EQ(r.end_round().pause, 0ms);
  ASSERT_TRUE(r.next_round(Clock::now()));
  EXPECT_TRUE(r.asking(0));
  const auto p = r.plan_round(map, turn);
  ASSERT_EQ(p.groups.size(), 1u);
  EXPECT_EQ(p.groups[0].node, c);
  EXPECT_EQ(p.groups[0].commands, (std::vector<std::size_t>{0}));
  EXPECT_EQ(r.on_reply(0, false, "v"), Verdict::done);
  EXPECT_FALSE(r.asking(0));  // once only
  (void)r.end_round();
  EXPECT_FALSE(r.next_round(Clock::now()));
}

TEST(BatchRouter, a_busy_cluster_is_waited_for_with_doubling_pauses_and_its_error_ends_the_batch) {
  const SlotMap map = two_shards();
  BatchRouter r({{1}}, false);
  std::uint64_t turn = 0;
  std::vector<std::chrono::milliseconds> pauses;
  while (r.next_round(Clock::now())) {
    (void)r.plan_round(map, turn);
    const Verdict v = r.on_reply(0, true, "CLUSTERDOWN The cluster is down");
    // The last round keeps the reply as the command's answer.
    EXPECT_EQ(v, r.rounds() < BatchRouter::max_rounds ? Verdict::try_again : Verdict::done);
    pauses.push_back(r.end_round().pause);
  }
  EXPECT_EQ(r.rounds(), BatchRouter::max_rounds);
  EXPECT_FALSE(r.error(0));  // the CLUSTERDOWN reply itself is the command's answer
  EXPECT_EQ(pauses.front(), 10ms);
  EXPECT_EQ(pauses[1], 20ms);
  EXPECT_EQ(pauses[6], 640ms);
  EXPECT_EQ(pauses.back(), 0ms);  // nothing left to retry
}

TEST(BatchRouter, a_mixed_round_retries_only_the_redirected_and_waits_because_one_was_busy) {
  SlotMap map = two_shards();
  BatchRouter r({{1}, {2}, {3}, {4}, {5}}, false);
  std::uint64_t turn = 0;
  ASSERT_TRUE(r.next_round(Clock::now()));
  (void)r.plan_round(map, turn);
  EXPECT_EQ(r.on_reply(0, false, "a"), Verdict::done);
  EXPECT_EQ(r.on_reply(1, true, "MOVED 2 10.0.0.2:7000"), Verdict::moved);
  map.move_slot(2, b);
  EXPECT_EQ(r.on_reply(2, true, "ASK 3 10.0.0.9:7000"), Verdict::ask);
  EXPECT_EQ(r.on_reply(3, true, "TRYAGAIN rehashing"), Verdict::try_again);
  EXPECT_EQ(r.on_reply(4, true, "READONLY replica"), Verdict::refresh);
  const auto end = r.end_round();
  EXPECT_EQ(end.pause, 10ms);
  EXPECT_TRUE(end.refresh_soon);
  ASSERT_TRUE(r.next_round(Clock::now()));
  const auto p = r.plan_round(map, turn);
  ASSERT_EQ(p.groups.size(), 3u);  // b (moved), c (asked), a (try again, readonly)
  EXPECT_EQ(p.groups[0].node, b);
  EXPECT_EQ(p.groups[0].commands, (std::vector<std::size_t>{1}));
  EXPECT_EQ(p.groups[1].node, c);
  EXPECT_EQ(p.groups[2].node, a);
  EXPECT_EQ(p.groups[2].commands, (std::vector<std::size_t>{3, 4}));  // the batch's order
  for (std::size_t i : {1, 2, 3, 4}) EXPECT_EQ(r.on_reply(i, false, "ok"), Verdict::done);
  EXPECT_EQ(r.end_round().pause, 0ms);
  EXPECT_FALSE(r.next_round(Clock::now()));
}

TEST(BatchRouter, a_failed_node_sends_its_commands_to_the_master_again_then_fails_them) {
  const SlotMap map = two_shards();
  BatchRouter r({{1, true}, {9000}}, true);
  std::uint64_t turn = 0;
  const auto refused = make_error_code(boost::system::errc::connection_refused);
  ASSERT_TRUE(r.next_round(Clock::now()));
  auto p = r.plan_round(map, turn);
  ASSERT_EQ(p.groups[0].node, ar);  // the read went to a replica
  r.on_failed(p.groups[0], refused);
  EXPECT_EQ(r.on_reply(1, false, "v"), Verdict::done);
  auto end = r.end_round();
  EXPECT_EQ(end.pause, 10ms);
  EXPECT_TRUE(end.refresh_soon);
  ASSERT_TRUE(r.next_round(Clock::now()));
  p = r.plan_round(map, turn);
  ASSERT_EQ(p.groups.size(), 1u);
  EXPECT_EQ(p.groups[0].node, a);  // the master this time
  while (true) {
    r.on_failed(p.groups[0], refused);
    (void)r.end_round();
    if (!r.next_round(Clock::now())) break;
    p = r.plan_round(map, turn);
  }
  EXPECT_EQ(r.error(0), refused);  // the node's own error, after the last round
  EXPECT_FALSE(r.error(1));
}

TEST(BatchRouter, past_the_callers_deadline_no_round_starts_and_the_pending_time_out) {
  const SlotMap map = two_shards();
  const auto start = Clock::now();
  BatchRouter r({{1}}, false, start + 50ms);
  std::uint64_t turn = 0;
  ASSERT_TRUE(r.next_round(start + 60ms));  // the first round always runs
  (void)r.plan_round(map, turn);
  EXPECT_EQ(r.on_reply(0, true, "TRYAGAIN"), Verdict::try_again);
  (void)r.end_round();
  EXPECT_FALSE(r.next_round(start + 60ms));
  EXPECT_EQ(r.error(0), make_error_code(error::timeout));
}

TEST(BatchRouter, an_uncovered_slot_reloads_the_map_first_and_is_cluster_down_in_the_end) {
  const SlotMap empty;
  BatchRouter r({{1}}, false);
  std::uint64_t turn = 0;
  ASSERT_TRUE(r.next_round(Clock::now()));
  const auto p = r.plan_round(empty, turn);
  EXPECT_TRUE(p.groups.empty());
  const auto end = r.end_round();
  EXPECT_TRUE(end.refresh_now);
  EXPECT_EQ(end.pause, 10ms);
  while (r.next_round(Clock::now())) {
    (void)r.plan_round(empty, turn);
    (void)r.end_round();
  }
  EXPECT_EQ(r.rounds(), BatchRouter::max_rounds);
  EXPECT_EQ(r.error(0), make_error_code(error::cluster_down));
}

}  // namespace
}  // namespace promptcache::cluster
