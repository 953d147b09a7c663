// The Redis store: the Store interface on our pipelined client.
#pragma once

#include <memory>

#include "promptcache/net/client.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {

class RedisStore final : public Store {
 public:
  // Shares the client: several stores (or the service and the operator commands) may use it.
  explicit RedisStore(std::shared_ptr<net::Client> client) : client_(std::move(client)) {}

  [[nodiscard]] std::string_view tier() const noexcept override { return "redis"; }
  [[nodiscard]] net::Client& client() noexcept { return *client_; }

  boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string_view key,
                                                                 Deadline deadline = {}) override;
  boost::asio::awaitable<boost::system::error_code> get_into(std::string_view key,
                                                             Deadline deadline,
                                                             ValueVisitor& visitor) override;
  boost::asio::awaitable<Result<std::vector<std::optional<std::string>>>> get_multiple(
      const std::vector<std::string>& keys) override;
  boost::asio::awaitable<Result<bool>> write(const Write& w, Deadline deadline = {}) override;
  boost::asio::awaitable<Result<std::size_t>> set_multiple(
      const std::vector<Entry>& entries) override;
  boost::asio::awaitable<Result<std::uint64_t>> del(const std::vector<std::string>& keys) override;
  // SCAN MATCH pattern COUNT 1000; each page's keys are unlinked in the same round trip as
  // the request for the next page.
  boost::asio::awaitable<Result<std::uint64_t>> delete_matching(
      std::string_view pattern, const Progress& progress = {}) override;
  // INFO, parsed.
  boost::asio::awaitable<Result<std::uint64_t>> delete_indexed(
      std::string_view index, const Progress& progress = {}) override;
  boost::asio::awaitable<Result<bool>> acquire_lease(std::string_view key, std::string_view token,
                                                     std::chrono::milliseconds ttl,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<bool>> release_lease(std::string_view key, std::string_view token,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<ServerStats>> server_stats() override;
  boost::asio::awaitable<boost::system::error_code> connect() override;
  [[nodiscard]] std::string last_error() const override;
  void close() override { client_->close(); }

 private:
  std::shared_ptr<net::Client> client_;
};

// Parses the text of an INFO reply ("field:value" lines) into the fields the service reports.
[[nodiscard]] ServerStats parse_info(std::string_view info);

}  // namespace promptcache::store
