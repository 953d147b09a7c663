#include "promptcache/cluster/routing.hpp"

#include <algorithm>
#include <utility>

#include "promptcache/error.hpp"

namespace promptcache::cluster {

using boost::system::error_code;

RoutePlan plan(const std::vector<std::size_t>& pending, const std::vector<Routed>& commands,
               const std::vector<std::optional<NodeAddress>>& ask, const SlotMap& map,
               bool first_try, bool replicas, std::uint64_t& turn) {
  RoutePlan out;
  for (std::size_t i : pending) {
    const NodeAddress* target = nullptr;
    if (ask[i]) {
      target = &*ask[i];
    } else if (const Shard* shard = map.shard_for(commands[i].slot)) {
      const bool replica = replicas && first_try && commands[i].read && !shard->replicas.empty();
      target = replica ? &shard->replicas[turn++ % shard->replicas.size()] : &shard->master;
    }
    if (target == nullptr) {
      out.uncovered.push_back(i);
      continue;
    }
    auto group = std::find_if(out.groups.begin(), out.groups.end(),
                              [&](const NodeGroup& g) { return g.node == *target; });
    if (group == out.groups.end()) {
      out.groups.push_back(NodeGroup{*target, {}});
      group = std::prev(out.groups.end());
    }
    group->commands.push_back(i);
  }
  return out;
}

Classified classify(bool is_error, std::string_view text) {
  Classified out;
  if (!is_error) return out;
  const auto redirect = parse_redirect(text);
  if (!redirect) return out;
  switch (redirect->kind) {
    case Redirect::Kind::moved:
      out.verdict = Verdict::moved;
      break;
    case Redirect::Kind::ask:
      out.verdict = Verdict::ask;
      break;
    case Redirect::Kind::try_again:
      out.verdict = Verdict::try_again;
      break;
    case Redirect::Kind::readonly:
      out.verdict = Verdict::refresh;
      break;
  }
  out.slot = redirect->slot;
  out.target = redirect->target;
  return out;
}

BatchRouter::BatchRouter(std::vector<Routed> commands, bool replicas, Clock::time_point deadline)
    : commands_(std::move(commands)),
      ask_(commands_.size()),
      errors_(commands_.size()),
      retry_(commands_.size()),
      replicas_(replicas),
      deadline_(deadline) {
  for (std::size_t i = 0; i < retry_.size(); ++i) retry_[i] = i;
}

bool BatchRouter::next_round(Clock::time_point now) {
  pending_ = std::move(retry_);
  retry_.clear();
  std::sort(pending_.begin(), pending_.end());  // each node's commands in the batch's order
  if (pending_.empty()) return false;
  const bool expired = round_ > 0 && deadline_ != Clock::time_point{} && now >= deadline_;
  if (round_ == max_rounds || expired) {
    for (std::size_t i : pending_) errors_[i] = make_error_code(error::timeout);
    pending_.clear();
    return false;
  }
  ++round_;
  busy_ = uncovered_ = stale_ = false;
  return true;
}

RoutePlan BatchRouter::plan_round(const SlotMap& map, std::uint64_t& turn) {
  RoutePlan p = plan(pending_, commands_, ask_, map, round_ == 1, replicas_, turn);
  for (std::size_t i : p.uncovered) {
    uncovered_ = true;
    again(i, make_error_code(error::cluster_down));
  }
  return p;
}

void BatchRouter::again(std::size_t i, error_code if_last) {
  if (last_round()) {
    errors_[i] = if_last;
  } else {
    retry_.push_back(i);
  }
}

void BatchRouter::on_failed(const NodeGroup& group, error_code ec) {
  busy_ = stale_ = true;  // the node may be gone: a failover, a resharding
  for (std::size_t i : group.commands) {
    ask_[i].reset();
    again(i, ec);
  }
}

Classified BatchRouter::on_reply(std::size_t i, bool is_error, std::string_view text) {
  ask_[i].reset();
  const Classified c = classify(is_error, text);
  if (c.verdict == Verdict::done || last_round()) return Classified{};
  switch (c.verdict) {
    case Verdict::ask:
      ask_[i] = c.target;
      break;
    case Verdict::moved:
      stale_ = true;
      break;
    case Verdict::try_again:
      busy_ = stale_ = true;  // CLUSTERDOWN may be a failover under way
      break;
    case Verdict::refresh:
      busy_ = stale_ = true;
      break;
    case Verdict::done:
      break;
  }
  retry_.push_back(i);
  return c;
}

BatchRouter::RoundEnd BatchRouter::end_round() {
  RoundEnd end;
  end.refresh_now = uncovered_;
  end.refresh_soon = stale_;
  if (!retry_.empty() && (busy_ || uncovered_)) {
    end.pause = std::chrono::milliseconds(10 << (round_ - 1));
  }
  return end;
}

}  // namespace promptcache::cluster
