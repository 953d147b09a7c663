// A Store that forwards every call to another and lets a test hold reads and writes at hooks:
// to make a race happen in the order the test chooses (a fill delayed past a delete, two
// writers' cache writes reordered, a read answered late). Test support only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "promptcache/store/store.hpp"

namespace promptcache::testing {

class HookedStore final : public store::Store {
 public:
  // Called with the operation ("get" or "write") and the key: `before` ahead of the call to the
  // inner store, `after` once it has answered and before the caller sees the answer. A hook
  // may suspend (wait on a timer or a channel) to hold that one call.
  using Hook = std::function<boost::asio::awaitable<void>(std::string_view op, std::string key)>;

  explicit HookedStore(std::shared_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  Hook before;
  Hook after;

  std::string_view tier() const noexcept override { return inner_->tier(); }
  boost::asio::awaitable<store::Result<std::optional<std::string>>> get(
      std::string_view key, store::Deadline deadline = {}) override {
    if (before) co_await before("get", std::string(key));
    auto value = co_await inner_->get(key, deadline);
    if (after) co_await after("get", std::string(key));
    co_return value;
  }
  boost::asio::awaitable<store::Result<bool>> write(const store::Write& w,
                                                    store::Deadline deadline = {}) override {
    if (before) co_await before("write", std::string(w.key));
    auto done = co_await inner_->write(w, deadline);
    if (after) co_await after("write", std::string(w.key));
    co_return done;
  }
  boost::asio::awaitable<store::Result<std::vector<std::optional<std::string>>>> get_multiple(
      const std::vector<std::string>& keys) override {
    return inner_->get_multiple(keys);
  }
  boost::asio::awaitable<store::Result<std::size_t>> set_multiple(
      const std::vector<store::Entry>& entries) override {
    return inner_->set_multiple(entries);
  }
  boost::asio::awaitable<store::Result<std::uint64_t>> del(
      const std::vector<std::string>& keys) override {
    return inner_->del(keys);
  }
  boost::asio::awaitable<store::Result<std::uint64_t>> delete_matching(
      std::string_view pattern, const store::Progress& progress) override {
    return inner_->delete_matching(pattern, progress);
  }
  boost::asio::awaitable<store::Result<std::uint64_t>> delete_indexed(
      std::string_view index, const store::Progress& progress) override {
    return inner_->delete_indexed(index, progress);
  }
  boost::asio::awaitable<store::Result<bool>> acquire_lease(
      std::string_view key, std::string_view token, std::chrono::milliseconds ttl,
      store::Deadline deadline = {}) override {
    return inner_->acquire_lease(key, token, ttl, deadline);
  }
  boost::asio::awaitable<store::Result<bool>> release_lease(
      std::string_view key, std::string_view token, store::Deadline deadline = {}) override {
    return inner_->release_lease(key, token, deadline);
  }
  boost::asio::awaitable<store::Result<store::ServerStats>> server_stats() override {
    return inner_->server_stats();
  }
  void close() override { inner_->close(); }

 private:
  std::shared_ptr<store::Store> inner_;
};

}  // namespace promptcache::testing
