// RedisSentinelGroup (see redis_sentinel.hpp): the group's start-up, views and failovers.
#include "support/redis_sentinel.hpp"

#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace promptcache::testing {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStartLimit{30000};
constexpr milliseconds kPoll{100};
// Polls must not hang on a frozen node for the default 10 s of cli().
constexpr milliseconds kPollCliTimeout{2000};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// redis-cli prints a reply of field/value pairs (SENTINEL MASTER, or SENTINEL REPLICAS with one
// replica) one element a line: the line after the one equal to `key`, "" if there is none.
std::string field(const std::string& flat_reply, const std::string& key) {
  const std::vector<std::string> lines = lines_of(flat_reply);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i] == key) return lines[i + 1];
  }
  return {};
}

// The value of `key:value` in INFO output, "" if absent.
std::string info_field(const std::string& info, const std::string& key) {
  for (std::string line : lines_of(info)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  }
  return {};
}

// A replication offset from INFO replication output, -1 if absent.
long long repl_offset(const std::string& info, const std::string& key) {
  const std::string value = info_field(info, key);
  return value.empty() ? -1 : std::stoll(value);
}

// cli() that reports failure (a stopped, frozen or still starting node) as "".
std::string try_cli(const RedisServer& s, const std::vector<std::string>& args) {
  try {
    return s.cli(args, kPollCliTimeout);
  } catch (const std::exception&) {
    return {};
  }
}

bool answers_as_master(const RedisServer& s) {
  if (!s.running()) return false;
  const std::vector<std::string> role = lines_of(try_cli(s, {"ROLE"}));
  return !role.empty() && role.front() == "master";
}

// Sentinel's fixed periods suit production, not tests:
// - peers are learnt from hellos published every 2 s, replicas polled with INFO every 10 s, and
//   a master that should be a replica is reconfigured only after 4 hello periods: slow start-up
//   and slow convergence after a failover;
// - after switching to a new master a sentinel counts the new master as unanswered from the switch
//   on, but reconnects at most once a ping period (1 s, as long as our down-after-milliseconds),
//   so the new master could itself be taken for down at once and failed over again (the other
//   sentinels' "down" votes on the old master still count for 5 ask periods);
// - a timer hiccup over 2 s (a loaded CI machine, a frozen sentinel) stops failovers for 30 s.
// SENTINEL DEBUG (Redis 7) changes them, in memory only: hence a startup command, which start()
// runs again. Pings not below 500 ms: replicas whose INFO is older than 5 ping periods are not
// promoted, and a down master's replicas get INFO once a second.
std::vector<std::string> test_timings() {
  return {"SENTINEL",    "DEBUG", "info-period", "1000", "publish-period", "500",
          "ping-period", "500",   "ask-period",  "500",  "tilt-period",    "5000"};
}

}  // namespace

RedisSentinelGroup::RedisSentinelGroup(std::string master_name)
    : master_name_(std::move(master_name)) {
  const auto deadline = Clock::now() + kStartLimit;
  // Diskless sync would wait 5 s for more replicas before the first full sync (on either node:
  // both are master some time).
  data_nodes_.push_back(std::make_unique<RedisServer>(RedisServerOptions{
      .extra_config = {"repl-diskless-sync-delay 0"},
      .keep_config = true,
      .hold_port_while_stopped = true,
  }));
  RedisServer& master = *data_nodes_.front();
  // In the config file rather than sent with REPLICAOF, so that it is there for CONFIG REWRITE
  // and a restart, as in a deployment.
  data_nodes_.push_back(std::make_unique<RedisServer>(RedisServerOptions{
      .extra_config = {"repl-diskless-sync-delay 0",
                       "replicaof 127.0.0.1 " + std::to_string(master.port())},
      .keep_config = true,
      .hold_port_while_stopped = true,
  }));
  RedisServer& replica = *data_nodes_.back();
  // In sync before the sentinels start: their first INFO of the master then lists the replica,
  // and their first INFO of the replica shows its link up, so they learn both at once.
  while (info_field(try_cli(replica, {"INFO", "replication"}), "master_link_status") != "up") {
    if (Clock::now() > deadline) {
      throw std::runtime_error("RedisSentinelGroup: the replica did not sync with the master\n" +
                               log_tails());
    }
    std::this_thread::sleep_for(kPoll);
  }

  for (int i = 0; i < 3; ++i) {
    sentinels_.push_back(std::make_unique<RedisServer>(RedisServerOptions{
        .extra_config =
            {
                "sentinel monitor " + master_name_ + " 127.0.0.1 " + std::to_string(master.port()) +
                    " 2",
                "sentinel down-after-milliseconds " + master_name_ + " 1000",
                "sentinel failover-timeout " + master_name_ + " 5000",
            },
        .sentinel = true,
        .hold_port_while_stopped = true,
        .startup_commands = {test_timings()},
    }));
  }
  // Peers are learnt from the hello messages each sentinel publishes (every 500 ms here).
  for (auto& sentinel : sentinels_) {
    for (;;) {
      const std::string master_view = try_cli(*sentinel, {"SENTINEL", "MASTER", master_name_});
      const std::string replica_view = try_cli(*sentinel, {"SENTINEL", "REPLICAS", master_name_});
      if (field(master_view, "flags") == "master" && field(master_view, "num-slaves") == "1" &&
          field(master_view, "num-other-sentinels") == "2" &&
          field(replica_view, "flags") == "slave" &&
          field(replica_view, "master-link-status") == "ok") {
        break;
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error("RedisSentinelGroup: sentinel " + sentinel->address() +
                                 " did not learn the replica and its peers. Its view:\n" +
                                 master_view + "\n" + replica_view + "\n" + log_tails());
      }
      std::this_thread::sleep_for(kPoll);
    }
  }

  // After its full sync a replica gets the command stream only once the master has its first
  // REPLCONF ACK (up to 1 s later); a test that wrote and failed over before that would lose the
  // write. So wait until a write made now (PUBLISH is replicated and creates no key) arrived.
  (void)try_cli(master, {"PUBLISH", "promptcache-testing-sync", "1"});
  const long long written =
      repl_offset(try_cli(master, {"INFO", "replication"}), "master_repl_offset");
  while (repl_offset(try_cli(replica, {"INFO", "replication"}), "slave_repl_offset") < written ||
         written < 0) {
    if (Clock::now() > deadline) {
      throw std::runtime_error("RedisSentinelGroup: no write reached the replica\n" + log_tails());
    }
    std::this_thread::sleep_for(kPoll);
  }
}

RedisSentinelGroup::~RedisSentinelGroup() = default;

const std::string& RedisSentinelGroup::master_name() const {
  return master_name_;
}

std::vector<RedisServer*> RedisSentinelGroup::data_nodes() {
  std::vector<RedisServer*> out;
  for (auto& n : data_nodes_) out.push_back(n.get());
  return out;
}

std::vector<RedisServer*> RedisSentinelGroup::sentinels() {
  std::vector<RedisServer*> out;
  for (auto& s : sentinels_) out.push_back(s.get());
  return out;
}

std::string RedisSentinelGroup::sentinel_addresses() const {
  return address_list(sentinels_);
}

RedisServer* RedisSentinelGroup::reported_master(const RedisServer& sentinel) {
  if (!sentinel.running()) return nullptr;
  const std::vector<std::string> reply =
      lines_of(try_cli(sentinel, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name_}));
  if (reply.size() != 2) return nullptr;
  for (auto& n : data_nodes_) {
    if (reply[0] == "127.0.0.1" && reply[1] == std::to_string(n->port())) return n.get();
  }
  return nullptr;
}

RedisServer* RedisSentinelGroup::current_master() {
  for (auto& s : sentinels_) {
    if (RedisServer* master = reported_master(*s)) return master;
  }
  return nullptr;
}

bool RedisSentinelGroup::all_report(RedisServer* node) {
  bool any_sentinel = false;
  for (auto& s : sentinels_) {
    if (!s->running()) continue;
    any_sentinel = true;
    if (reported_master(*s) != node) return false;
  }
  return any_sentinel && answers_as_master(*node);
}

RedisServer* RedisSentinelGroup::failover(milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  RedisServer* const before = current_master();
  if (before == nullptr) {
    throw std::runtime_error("RedisSentinelGroup::failover: no sentinel reports a master\n" +
                             log_tails());
  }
  // A sentinel refuses with -NOGOODSLAVE while no replica is usable (the old master of a previous
  // failover is one only once the sentinels have reconfigured it); -INPROG means one is running.
  std::string reply;
  for (;;) {
    for (auto& s : sentinels_) {
      if (!s->running()) continue;
      reply = try_cli(*s, {"SENTINEL", "FAILOVER", master_name_});
      break;
    }
    if (reply == "OK" || reply.find("INPROG") != std::string::npos) break;
    if (Clock::now() > deadline) {
      throw std::runtime_error("RedisSentinelGroup::failover: SENTINEL FAILOVER kept failing: " +
                               reply + "\n" + log_tails());
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  for (;;) {
    for (auto& n : data_nodes_) {
      if (n.get() != before && all_report(n.get())) return n.get();
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error("RedisSentinelGroup::failover: no new master within " +
                               std::to_string(limit.count()) + " ms\n" + log_tails());
    }
    std::this_thread::sleep_for(kPoll);
  }
}

bool RedisSentinelGroup::wait_master(RedisServer* expected, milliseconds limit) {
  if (expected == nullptr) return false;
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (all_report(expected)) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(kPoll);
  }
}

std::string RedisSentinelGroup::log_tails(std::size_t lines) const {
  std::string out;
  for (const auto& n : data_nodes_) {
    out += "--- data node " + n->address() + " ---\n" + n->log_tail(lines) + "\n";
  }
  for (const auto& s : sentinels_) {
    out += "--- sentinel " + s->address() + " ---\n" + s->log_tail(lines) + "\n";
  }
  return out;
}

}  // namespace promptcache::testing
