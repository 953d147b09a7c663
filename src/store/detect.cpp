#include "promptcache/store/detect.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "promptcache/error.hpp"
#include "promptcache/net/connection.hpp"

namespace promptcache::store {

namespace asio = boost::asio;

namespace {

asio::awaitable<Result<bool>> probe_cluster_enabled(net::ClientConfig cfg, std::string& detail) {
  cfg.health_check_interval = std::chrono::milliseconds(0);
  auto connection = net::Connection::create(co_await asio::this_coro::executor, cfg);
  boost::system::error_code ec = co_await connection->connect();
  resp::ReplyCollector out;
  if (!ec) {
    resp::Request info;
    info.push("INFO", "cluster");
    ec = co_await connection->execute(info, out);
  }
  detail = ec ? connection->last_error_message() : std::string();
  if (ec && detail.empty()) detail = ec.message();
  connection->close();
  if (ec) co_return Result<bool>(boost::system::in_place_error, ec);
  const resp::Reply& reply = out.replies().front();
  if (reply.is_error()) {
    detail = "INFO cluster failed: " + reply.value;
    co_return Result<bool>(boost::system::in_place_error, make_error_code(error::server_error));
  }
  co_return Result<bool>(boost::system::in_place_value,
                         reply.value.find("cluster_enabled:1") != std::string::npos);
}

}  // namespace

Result<bool> probe_cluster_enabled_blocking(const net::ClientConfig& cfg, std::string& detail) {
  asio::io_context io(1);
  // In-place tags: an error_code converts to bool, so a plain one would be ambiguous.
  Result<bool> result(boost::system::in_place_error, make_error_code(error::not_connected));
  asio::co_spawn(io, probe_cluster_enabled(cfg, detail), [&](std::exception_ptr e, Result<bool> r) {
    if (!e) result = std::move(r);
  });
  io.run();
  return result;
}

}  // namespace promptcache::store
