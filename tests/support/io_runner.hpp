// Test support: run a coroutine to completion on an io_context whose other tasks (connection
// loops) never finish on their own. Fails loudly instead of hanging.
#pragma once

#include <chrono>
#include <future>
#include <stdexcept>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

namespace promptcache::testing {

template <class T>
T run_until_done(boost::asio::io_context& io, boost::asio::awaitable<T> task,
                 std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("test coroutine did not finish: something hangs");
    }
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return future.get();
}

inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

}  // namespace promptcache::testing
