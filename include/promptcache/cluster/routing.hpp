// How a batch of commands finds its way through a Redis Cluster, as plain functions and one
// plain class (no sockets, no clock of its own): ClusterStore::run only executes the groups a
// round plans and hands back what came of them.
//
//   plan      pending commands + the slot map → one group per node (an ASK target, the slot's
//             master, or a replica for a first-try read), and those no shard covers;
//   classify  a reply → done / moved / ask / try again / refresh;
//   BatchRouter  the rounds: which commands go again, where an ASK sends one, when the batch
//             gives up (8 rounds, or the caller's deadline), the pause before the next round
//             (10 ms doubling, only after a busy cluster, a failed node or an uncovered slot) and
//             whether the map must be reloaded first (uncovered slots) or soon (MOVED, failures).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>

#include "promptcache/cluster/redirect.hpp"
#include "promptcache/cluster/slot_map.hpp"

namespace promptcache::cluster {

// A command of a batch, as routing sees it.
struct Routed {
  std::uint16_t slot = 0;
  bool read = false;  // may go to a replica (read_from_replicas) on its first try
};

// One node's share of a round: indices into the batch, in the batch's order.
struct NodeGroup {
  NodeAddress node;
  std::vector<std::size_t> commands;
};

struct RoutePlan {
  std::vector<NodeGroup> groups;       // one per node, in the order the nodes first appear
  std::vector<std::size_t> uncovered;  // no shard serves their slot (an empty or stale map)
};

// Where each of `pending` goes: `ask[i]` when an ASK sent it there, otherwise its slot's master
// — or, when `replicas` and `first_try` and the command is a read, one of the shard's online
// replicas, `turn` counting round robin (advanced once per replica chosen).
[[nodiscard]] RoutePlan plan(const std::vector<std::size_t>& pending,
                             const std::vector<Routed>& commands,
                             const std::vector<std::optional<NodeAddress>>& ask, const SlotMap& map,
                             bool first_try, bool replicas, std::uint64_t& turn);

// What one reply asks for.
enum class Verdict : std::uint8_t {
  done,       // the command's own answer (an ordinary error reply included)
  moved,      // MOVED: the slot lives elsewhere now (update the map), go again
  ask,        // ASK: this once at another node, after ASKING
  try_again,  // TRYAGAIN, CLUSTERDOWN, LOADING: wait, then go again
  refresh,    // READONLY: the node became a replica; reload the map, go again
};
struct Classified {
  Verdict verdict = Verdict::done;
  std::uint16_t slot = 0;  // moved, ask
  NodeAddress target;      // moved, ask

  operator Verdict() const noexcept { return verdict; }  // NOLINT: read as its verdict
  friend bool operator==(const Classified& c, Verdict v) noexcept { return c.verdict == v; }
};
[[nodiscard]] Classified classify(bool is_error, std::string_view text);

// The rounds of one batch.
class BatchRouter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int max_rounds = 8;

  // `deadline` (default: none) is the caller's: past it, no further round starts.
  BatchRouter(std::vector<Routed> commands, bool replicas, Clock::time_point deadline = {});

  // Whether another round is to run at `now`: commands are pending and neither the rounds nor
  // (after the first) the deadline are used up. When it says no with commands still pending,
  // they have failed with error::timeout.
  [[nodiscard]] bool next_round(Clock::time_point now);
  // This round's groups. Uncovered commands go again (or, in the last round, fail with
  // error::cluster_down).
  [[nodiscard]] RoutePlan plan_round(const SlotMap& map, std::uint64_t& turn);
  // Whether command i is sent after ASKING this round.
  [[nodiscard]] bool asking(std::size_t i) const { return ask_[i].has_value(); }

  // A group the node could not answer (`ec`: refused, lost, timed out): its commands go again
  // to their masters, or fail with `ec` in the last round.
  void on_failed(const NodeGroup& group, boost::system::error_code ec);
  // Command i's reply. Verdict done: it is the command's answer (also what a redirect ends as
  // in the last round); otherwise the command goes again and the verdict says what the caller
  // does besides (moved: update its map with the slot and target given).
  [[nodiscard]] Classified on_reply(std::size_t i, bool is_error, std::string_view text);

  struct RoundEnd {
    std::chrono::milliseconds pause{0};  // before the next round
    bool refresh_now = false;            // some slot had no shard: reload the map first
    bool refresh_soon = false;           // MOVED, READONLY, a failed node: reload when allowed
  };
  [[nodiscard]] RoundEnd end_round();

  // Why command i failed (none: its reply, from on_reply's done, is the answer).
  [[nodiscard]] boost::system::error_code error(std::size_t i) const { return errors_[i]; }
  [[nodiscard]] int rounds() const noexcept { return round_; }

 private:
  [[nodiscard]] bool last_round() const noexcept { return round_ == max_rounds; }
  void again(std::size_t i, boost::system::error_code if_last);

  std::vector<Routed> commands_;
  std::vector<std::optional<NodeAddress>> ask_;
  std::vector<boost::system::error_code> errors_;
  std::vector<std::size_t> pending_;  // this round's
  std::vector<std::size_t> retry_;    // the next round's
  bool replicas_;
  Clock::time_point deadline_;
  int round_ = 0;  // rounds started
  bool busy_ = false;
  bool uncovered_ = false;
  bool stale_ = false;
};

}  // namespace promptcache::cluster
