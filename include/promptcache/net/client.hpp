// A Redis client for callers on one or several threads: a set of auto-pipelined connections,
// one per executor (up to REDIS_MAX_CONNECTIONS).
//
// Threading: each connection belongs to one executor (an io_context thread or a strand).
// A caller running on a connection's executor uses it directly, with no hop; a caller on any
// other executor is carried to a connection's executor (round robin) and back, which costs
// two handoffs. Run one io_context per thread and give the Client their executors for the
// fast path everywhere. Every member may be called from any thread except close() and the
// destructor, which must not race with calls in progress.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "promptcache/net/config.hpp"
#include "promptcache/net/connection.hpp"
#include "promptcache/resp/reply.hpp"
#include "promptcache/resp/request.hpp"

namespace promptcache::net {

template <class T>
using Result = boost::system::result<T>;

class Client {
 public:
  Client(const std::vector<boost::asio::any_io_executor>& executors, ClientConfig cfg);
  Client(boost::asio::any_io_executor ex, ClientConfig cfg);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects every connection; the first error, if any (auth_failed, connect_timeout, …).
  // Optional: commands connect on first use. last_error_message() says more.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> connect();

  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> execute(const resp::Request& req,
                                                                          resp::ReplySink& sink);

  // One command, its reply as an owned tree (a server error is a Reply with is_error()).
  [[nodiscard]] boost::asio::awaitable<Result<resp::Reply>> command(resp::Request req);

  // GET: the value, or nullopt when the key does not exist. `deadline` (if set): see
  // resp::Request::deadline.
  [[nodiscard]] boost::asio::awaitable<Result<std::optional<std::string>>> get(
      std::string_view key, std::chrono::steady_clock::time_point deadline = {});
  // The GET request get() sends (idempotent, with `deadline`): for a caller with a sink of its
  // own (RedisStore::get_into).
  [[nodiscard]] static resp::Request get_request(std::string_view key,
                                                 std::chrono::steady_clock::time_point deadline);
  // SET with an optional expiry in seconds (0 or none: no expiry).
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> set(
      std::string_view key, std::string_view value, std::optional<std::uint64_t> ttl_seconds = {});

  void close();

  [[nodiscard]] const ClientConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] std::string last_error_message() const;
  [[nodiscard]] ConnectionStats stats() const;  // summed over connections (not thread-safe)

 private:
  [[nodiscard]] Connection& pick(const boost::asio::any_io_executor& ex);
  // execute() with several connections: the one on the caller's executor, or the next.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> execute_pooled(
      const resp::Request& req, resp::ReplySink& sink);

  ClientConfig cfg_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace promptcache::net
