// Single-flight: concurrent misses of one key in one process share one load. The first caller
// leads (runs the load); the others wait for its outcome, from any thread, and get a copy of
// its value or its error. Waiters park on a thread-safe channel each, so a leader on another
// thread wakes them without a poll.
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace promptcache::cache {

class Flight {
 public:
  using Value = std::optional<std::string>;  // JSON text; nullopt: the source said "not found"
  using Channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

  // The leader's outcome: a copy of its value, or its error rethrown.
  boost::asio::awaitable<Value> wait() {
    // Made before the lock: nothing suspends or allocates an executor's work under it.
    auto channel = std::make_shared<Channel>(co_await boost::asio::this_coro::executor, 1);
    bool parked = false;
    {
      std::lock_guard lock(mutex_);
      if (!done_) {
        waiters_.push_back(channel);
        parked = true;
      }
    }
    if (parked) co_await channel->async_receive(boost::asio::use_awaitable);
    co_return outcome();
  }

  void publish(const Value& value) {
    finish([&] { value_ = value; });
  }
  void fail(std::exception_ptr error) {
    finish([&] { error_ = std::move(error); });
  }
  [[nodiscard]] bool done() const {
    std::lock_guard lock(mutex_);
    return done_;
  }

 private:
  template <class Set>
  void finish(Set set) {
    std::vector<std::shared_ptr<Channel>> waiters;
    {
      std::lock_guard lock(mutex_);
      if (done_) return;
      set();
      done_ = true;
      waiters.swap(waiters_);
    }
    // Capacity 1: the send lands even if the waiter has not begun to receive.
    for (auto& w : waiters) w->try_send(boost::system::error_code{});
  }
  Value outcome() const {
    // done_ is set and value_ / error_ never change after it: read without the lock.
    if (error_) std::rethrow_exception(error_);
    return value_;
  }

  mutable std::mutex mutex_;
  bool done_ = false;
  Value value_;
  std::exception_ptr error_;
  std::vector<std::shared_ptr<Channel>> waiters_;
};

class SingleFlight {
 public:
  // The flight of `key`, and whether the caller leads it (it was not in flight).
  std::pair<std::shared_ptr<Flight>, bool> join(std::string_view key) {
    std::lock_guard lock(mutex_);
    auto [it, fresh] = flights_.try_emplace(std::string(key));
    if (fresh) it->second = std::make_shared<Flight>();
    return {it->second, fresh};
  }
  // Ends `flight` (the leader's, once published or failed): later misses start a new one.
  void leave(std::string_view key, const std::shared_ptr<Flight>& flight) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(std::string(key));
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
  }
  [[nodiscard]] bool in_flight(std::string_view key) const {
    std::lock_guard lock(mutex_);
    return flights_.contains(std::string(key));
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

// The leader's end of a flight: whatever happens to the leader (its error, its coroutine
// destroyed mid-load), the waiters are answered and the flight is left.
class FlightLead {
 public:
  FlightLead(std::shared_ptr<SingleFlight> table, std::string key, std::shared_ptr<Flight> flight)
      : table_(std::move(table)), key_(std::move(key)), flight_(std::move(flight)) {}
  FlightLead(const FlightLead&) = delete;
  FlightLead& operator=(const FlightLead&) = delete;
  ~FlightLead() {
    if (!flight_->done()) {
      flight_->fail(std::make_exception_ptr(std::runtime_error("the load was abandoned")));
    }
    table_->leave(key_, flight_);
  }
  Flight& flight() { return *flight_; }

 private:
  std::shared_ptr<SingleFlight> table_;
  std::string key_;
  std::shared_ptr<Flight> flight_;
};

}  // namespace promptcache::cache
