// The connection and client against real redis-server processes: pipelining, failures,
// TLS, authentication, unix sockets.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <sstream>
#include <thread>

#include "promptcache/error.hpp"
#include "promptcache/log.hpp"
#include "promptcache/net/client.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using net::Client;
using net::ClientConfig;
using net::Connection;
using resp::Reply;
using resp::ReplyCollector;
using resp::Request;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;

ClientConfig config_for(const RedisServer& server) {
  ClientConfig cfg = ClientConfig::from_url(server.url());
  cfg.command_timeout = 5s;
  cfg.connect_timeout = 2s;
  cfg.reconnect_min_delay = 20ms;
  cfg.reconnect_max_delay = 200ms;
  return cfg;
}

// Waits until a GET succeeds (the client reconnected) or gives up after `attempts`.
asio::awaitable<bool> wait_until_serving(Client& client, int attempts = 100) {
  for (int i = 0; i < attempts; ++i) {
    if (auto r = co_await client.get("probe"); r) co_return true;
    co_await sleep_for(50ms);
  }
  co_return false;
}

// Caller 0 sends DEBUG SLEEP `seconds`, holding the server; callers 1..n-1 queue GETs behind
// it. Runs `meanwhile` alongside and returns each caller's result once all have finished.
std::vector<error_code> callers_behind_a_sleep(asio::io_context& io, Client& client, int n,
                                               std::string seconds,
                                               std::function<asio::awaitable<void>()> meanwhile) {
  std::vector<error_code> results(n);
  int done = 0;
  for (int i = 0; i < n; ++i) {
    auto task = [&, i]() -> asio::awaitable<void> {
      Request req;
      if (i == 0) {
        req.push("DEBUG", "SLEEP", seconds);
      } else {
        req.push("GET", "key");
      }
      ReplyCollector out;
      results[i] = co_await client.execute(req, out);
      ++done;
    };
    asio::co_spawn(io, task, asio::detached);
  }
  run_until_done(io, [&]() -> asio::awaitable<void> {
    co_await meanwhile();
    while (done < n) co_await sleep_for(5ms);
  }());
  return results;
}

int count(const std::vector<error_code>& results, error_code wanted) {
  return static_cast<int>(std::count(results.begin(), results.end(), wanted));
}

TEST(Connection, thousand_coroutines_with_ten_thousand_commands_in_flight_get_their_own_replies) {
  RedisServer server;
  asio::io_context io;
  Client client(io.get_executor(), config_for(server));
  constexpr int coroutines = 1000;
  constexpr int per_request = 10;
  constexpr int rounds = 3;
  int finished = 0;
  int mismatches = 0;
  int errors = 0;
  for (int c = 0; c < coroutines; ++c) {
    auto task = [&, c]() -> asio::awaitable<void> {
      for (int round = 0; round < rounds; ++round) {
        Request req;
        for (int j = 0; j < per_request; ++j)
          req.push("ECHO", fmt::format("{}:{}:{}", c, round, j));
        ReplyCollector out;
        if (co_await client.execute(req, out)) {
          ++errors;
          continue;
        }
        if (out.replies().size() != per_request) ++mismatches;
        for (int j = 0; j < per_request && j < static_cast<int>(out.replies().size()); ++j) {
          if (out.replies()[j].value != fmt::format("{}:{}:{}", c, round, j)) ++mismatches;
        }
      }
      ++finished;
    };
    asio::co_spawn(io, task, asio::detached);
  }
  run_until_done(io, [&]() -> asio::awaitable<void> {
    while (finished < coroutines) co_await sleep_for(5ms);
  }());
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(mismatches, 0);
  const auto stats = client.stats();
  EXPECT_EQ(stats.commands_sent, static_cast<std::uint64_t>(coroutines * per_request * rounds));
  // Automatic pipelining: many requests share each write.
  EXPECT_LT(stats.writes * 10, stats.commands_sent);
}

TEST(Connection, get_and_set_round_trip_binary_values_and_missing_keys) {
  RedisServer server;
  asio::io_context io;
  Client client(io.get_executor(), config_for(server));
  run_until_done(io, [&]() -> asio::awaitable<void> {
    const std::string binary("a\r\nb\0c$*-", 10);
    EXPECT_FALSE(co_await client.set("k", binary));
    auto got = co_await client.get("k");
    EXPECT_TRUE(got && got->has_value() && **got == binary);
    auto missing = co_await client.get("absent");
    EXPECT_TRUE(missing && !missing->has_value());
    EXPECT_FALSE(co_await client.set("ttl", "v", 100));
  }());
  EXPECT_EQ(server.cli({"TTL", "ttl"}), "100");
}

TEST(Connection, server_error_reply_reaches_only_its_caller) {
  RedisServer server;
  asio::io_context io;
  Client client(io.get_executor(), config_for(server));
  run_until_done(io, [&]() -> asio::awaitable<void> {
    Request req;
    req.push("SET", "s", "x").push("INCR", "s").push("GET", "s");
    auto r = co_await client.command(Request().push("NO_SUCH_COMMAND"));
    EXPECT_TRUE(r && r->is_error());
    ReplyCollector out;
    EXPECT_FALSE(co_await client.execute(req, out));
    CO_ASSERT(out.replies().size() == 3u);
    EXPECT_FALSE(out.replies()[0].is_error());
    EXPECT_TRUE(out.replies()[1].is_error());
    EXPECT_EQ(out.replies()[2].value, "x");
  }());
}

TEST(Connection, server_killed_mid_pipeline_fails_every_pending_caller_then_recovers) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.command_timeout = 20s;  // failures must come from the lost connection, not a deadline
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));

  // DEBUG SLEEP holds the server so that every GET behind it is pending when it dies.
  const auto results =
      callers_behind_a_sleep(io, client, 200, "10", [&]() -> asio::awaitable<void> {
        co_await sleep_for(200ms);
        server.stop();
      });
  EXPECT_EQ(count(results, error::connection_lost), 200);

  server.start();
  EXPECT_TRUE(run_until_done(io, wait_until_serving(client)));
  EXPECT_GE(client.stats().reconnects, 1u);
}

TEST(Connection,
     commands_issued_while_the_server_is_down_fail_at_once_then_succeed_after_it_returns) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.command_timeout = 30s;  // a command that waited for its deadline would hang the test
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));
  server.stop();
  run_until_done(io, [&]() -> asio::awaitable<void> {
    // Once a reconnect attempt has failed, every command gets that attempt's error at once.
    int refused = 0;
    for (int i = 0; i < 200 && refused < 20; ++i) {
      auto r = co_await client.set("during", "outage");
      EXPECT_TRUE(r) << "a write succeeded with the server down";
      if (r && r != error::timeout && r != error::connection_lost) ++refused;
    }
    EXPECT_EQ(refused, 20);
  }());
  EXPECT_EQ(client.stats().timeouts, 0u);
  EXPECT_GE(client.stats().rejected_down, 1u);
  server.start();
  // The background reconnect finds it again: the same client serves without being rebuilt.
  EXPECT_TRUE(run_until_done(io, wait_until_serving(client)));
  EXPECT_FALSE(run_until_done(io, client.set("after", "restart")));
  EXPECT_EQ(server.cli({"GET", "after"}), "restart");
}

TEST(Connection, frozen_server_times_out_callers_at_their_deadline_and_recovers_after_thaw) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.command_timeout = 300ms;
  cfg.retry_on_timeout = false;
  cfg.health_check_interval = 0ms;  // the next test covers the health check
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));
  server.freeze();
  int timeouts = 0;
  run_until_done(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      auto r = co_await client.get("k");
      if (!r && r.error() == error::timeout) ++timeouts;
    }
  }());
  EXPECT_EQ(timeouts, 5);
  EXPECT_EQ(client.stats().timeouts, 5u);
  server.thaw();
  EXPECT_TRUE(run_until_done(io, wait_until_serving(client)));
}

TEST(Connection, health_check_drops_a_connection_to_a_frozen_server_and_reconnects_after_thaw) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.command_timeout = 300ms;
  cfg.connect_timeout = 300ms;
  cfg.retry_on_timeout = false;
  cfg.health_check_interval = 100ms;
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));
  server.freeze();
  run_until_done(io, [&]() -> asio::awaitable<void> {
    // Long enough for the idle check's PING to go unanswered.
    for (int i = 0; i < 100 && client.stats().reconnects == 0; ++i) co_await sleep_for(20ms);
    // While the server stays frozen, callers get an error at their deadline, never a hang.
    auto r = co_await client.get("k");
    EXPECT_FALSE(r);
  }());
  EXPECT_GE(client.stats().reconnects, 1u);
  server.thaw();
  EXPECT_TRUE(run_until_done(io, wait_until_serving(client)));
}

TEST(Connection, idempotent_command_is_retried_once_after_a_timeout) {
  RedisServer server;
  server.cli({"SET", "k", "v"});
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.command_timeout = 400ms;
  cfg.retry_on_timeout = true;
  cfg.health_check_interval = 0ms;
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));
  server.freeze();
  run_until_done(io, [&]() -> asio::awaitable<void> {
    auto thaw = [&]() -> asio::awaitable<void> {
      co_await sleep_for(600ms);  // after the first deadline, before the retry's
      server.thaw();
    };
    asio::co_spawn(io, thaw, asio::detached);
    auto r = co_await client.get("k");
    CO_ASSERT(r);
    EXPECT_EQ(r->value_or(""), "v");
  }());
  EXPECT_EQ(client.stats().timeouts, 1u);
}

TEST(Connection, past_the_in_flight_bound_callers_get_overloaded_at_once) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.max_in_flight = 10;
  cfg.command_timeout = 2s;
  Client client(io.get_executor(), cfg);
  ASSERT_FALSE(run_until_done(io, client.connect()));
  const auto results =
      callers_behind_a_sleep(io, client, 30, "0.3", []() -> asio::awaitable<void> { co_return; });
  EXPECT_EQ(count(results, error::overloaded), 20);
  EXPECT_EQ(count(results, error_code{}), 10);
}

TEST(Connection, push_messages_go_to_the_push_handler_never_to_a_caller) {
  RedisServer server;
  asio::io_context io;
  auto conn = Connection::create(io.get_executor(), config_for(server));
  std::vector<Reply> pushes;
  conn->set_push_handler([&](const Reply& r) { pushes.push_back(r); });
  run_until_done(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await conn->connect());
    EXPECT_TRUE(conn->resp3());
    ReplyCollector out;
    Request req;
    req.push("CLIENT", "TRACKING", "on").push("SET", "tracked", "1").push("GET", "tracked");
    EXPECT_FALSE(co_await conn->execute(req, out));
    CO_ASSERT(out.replies().size() == 3u);
    EXPECT_EQ(out.replies()[2].value, "1");
    server.cli({"SET", "tracked", "2"});  // another client: the server pushes an invalidation
    for (int i = 0; i < 100 && pushes.empty(); ++i) {
      ReplyCollector ping;
      EXPECT_FALSE(co_await conn->execute(Request().push("PING"), ping));
      CO_ASSERT(ping.replies().size() == 1u);
      EXPECT_EQ(ping.replies()[0].value, "PONG");
      co_await sleep_for(10ms);
    }
    conn->close();
  }());
  ASSERT_FALSE(pushes.empty());
  ASSERT_GE(pushes[0].elements.size(), 2u);
  EXPECT_EQ(pushes[0].elements[0].value, "invalidate");
  ASSERT_FALSE(pushes[0].elements[1].elements.empty());
  EXPECT_EQ(pushes[0].elements[1].elements[0].value, "tracked");
}

TEST(Connection, database_from_the_url_is_selected) {
  RedisServer server;
  asio::io_context io;
  ClientConfig cfg = ClientConfig::from_url(server.url() + "/3");
  Client client(io.get_executor(), cfg);
  run_until_done(
      io, [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await client.set("in3", "yes")); }());
  EXPECT_EQ(server.cli({"-n", "3", "GET", "in3"}), "yes");
  EXPECT_EQ(server.cli({"GET", "in3"}), "");
}

// ---- authentication, TLS, unix sockets -------------------------------------------------

TEST(Connection, password_in_url_authenticates) {
  RedisServer server(RedisServerOptions{.password = "s3cret"});
  asio::io_context io;
  ClientConfig cfg =
      ClientConfig::from_url(fmt::format("redis://:s3cret@127.0.0.1:{}", server.port()));
  Client client(io.get_executor(), cfg);
  EXPECT_FALSE(run_until_done(io, client.connect()));
}

TEST(Connection, acl_user_and_password_authenticate) {
  RedisServer server(RedisServerOptions{.acl_user = "app", .acl_password = "pw-app"});
  asio::io_context io;
  ClientConfig cfg =
      ClientConfig::from_url(fmt::format("redis://app:pw-app@127.0.0.1:{}", server.port()));
  Client client(io.get_executor(), cfg);
  run_until_done(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await client.connect());
    auto who = co_await client.command(Request().push("ACL", "WHOAMI"));
    EXPECT_TRUE(who && who->value == "app");
  }());
}

TEST(Connection, wrong_password_is_one_clear_auth_error_without_the_password) {
  RedisServer server(RedisServerOptions{.acl_user = "app", .acl_password = "right"});
  asio::io_context io;
  ClientConfig cfg =
      ClientConfig::from_url(fmt::format("redis://app:wrong-pw-xyz@127.0.0.1:{}", server.port()));
  Client client(io.get_executor(), cfg);
  const error_code ec = run_until_done(io, client.connect());
  EXPECT_EQ(ec, error::auth_failed);
  const std::string message = client.last_error_message();
  EXPECT_NE(message.find("authentication failed"), std::string::npos) << message;
  EXPECT_EQ(message.find("wrong-pw-xyz"), std::string::npos) << message;
  // A command waiting for this connection reports the same cause, not a bare timeout.
  ClientConfig quick = cfg;
  quick.command_timeout = 300ms;
  Client client2(io.get_executor(), quick);
  auto r = run_until_done(io, client2.get("k"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), error::auth_failed);
}

TEST(Connection, missing_password_says_the_server_needs_one) {
  RedisServer server(RedisServerOptions{.password = "needed"});
  asio::io_context io;
  Client client(io.get_executor(), config_for(server));
  EXPECT_EQ(run_until_done(io, client.connect()), error::auth_failed);
  EXPECT_NE(client.last_error_message().find("requires a password"), std::string::npos)
      << client.last_error_message();
}

TEST(Connection, unreachable_port_is_one_clear_connect_error) {
  const auto port = testing::free_port();
  asio::io_context io;
  ClientConfig cfg = ClientConfig::from_url(fmt::format("redis://127.0.0.1:{}", port));
  Client client(io.get_executor(), cfg);
  EXPECT_EQ(run_until_done(io, client.connect()), asio::error::connection_refused);
  EXPECT_NE(client.last_error_message().find(fmt::format("127.0.0.1:{}", port)), std::string::npos)
      << client.last_error_message();
}

TEST(Connection, tls_with_the_right_ca_and_client_certificate_works) {
  RedisServer server(RedisServerOptions{.tls = true});
  const auto& tls = testing::TlsMaterial::get();
  asio::io_context io;
  ClientConfig cfg = ClientConfig::from_url(server.url());
  cfg.tls.ca_file = tls.ca_file;
  cfg.tls.cert_file = tls.client_cert;
  cfg.tls.key_file = tls.client_key;
  Client client(io.get_executor(), cfg);
  run_until_done(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await client.connect()) << client.last_error_message();
    EXPECT_FALSE(co_await client.set("secure", "yes"));
    auto r = co_await client.get("secure");
    EXPECT_TRUE(r && r->value_or("") == "yes");
  }());
}

TEST(Connection, tls_with_a_foreign_ca_is_one_clear_certificate_error) {
  RedisServer server(RedisServerOptions{.tls = true});
  const auto& tls = testing::TlsMaterial::get();
  asio::io_context io;
  ClientConfig cfg = ClientConfig::from_url(server.url());
  cfg.tls.ca_file = tls.other_ca_file;
  Client client(io.get_executor(), cfg);
  EXPECT_TRUE(run_until_done(io, client.connect()));
  EXPECT_NE(client.last_error_message().find("certificate is not trusted"), std::string::npos)
      << client.last_error_message();
}

TEST(Connection, tls_checks_the_host_name_in_the_certificate) {
  // The certificate names 127.0.0.1 and localhost; the server also listens on 127.0.0.2,
  // where the same certificate is presented for an address it does not name.
  RedisServer server(RedisServerOptions{.tls = true, .extra_config = {"bind 127.0.0.1 127.0.0.2"}});
  const auto& tls = testing::TlsMaterial::get();
  asio::io_context io;
  ClientConfig good = ClientConfig::from_url(server.url());
  good.tls.ca_file = tls.ca_file;
  Client trusted(io.get_executor(), good);
  EXPECT_FALSE(run_until_done(io, trusted.connect())) << trusted.last_error_message();

  ClientConfig cfg = ClientConfig::from_url(fmt::format("rediss://127.0.0.2:{}", server.port()));
  cfg.tls.ca_file = tls.ca_file;
  Client client(io.get_executor(), cfg);
  EXPECT_TRUE(run_until_done(io, client.connect()));
  EXPECT_NE(client.last_error_message().find("TLS handshake failed"), std::string::npos)
      << client.last_error_message();
}

TEST(Connection, server_without_hello_is_spoken_to_in_resp2_with_auth) {
  // HELLO renamed away: the server answers it as an unknown command, as Redis 5 would.
  RedisServer server(
      RedisServerOptions{.password = "pw2", .extra_config = {"rename-command HELLO \"\""}});
  asio::io_context io;
  ClientConfig cfg =
      ClientConfig::from_url(fmt::format("redis://:pw2@127.0.0.1:{}/2", server.port()));
  auto conn = Connection::create(io.get_executor(), cfg);
  run_until_done(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await conn->connect()) << conn->last_error_message();
    EXPECT_FALSE(conn->resp3());
    ReplyCollector out;
    Request req;
    req.push("SET", "resp2", "yes").push("CLIENT", "GETNAME").push("HGETALL", "none");
    EXPECT_FALSE(co_await conn->execute(req, out));
    CO_ASSERT(out.replies().size() == 3u);
    EXPECT_EQ(out.replies()[1].value, "promptcache");
    EXPECT_EQ(out.replies()[2].type, resp::Type::array);  // RESP2 has no map type
    conn->close();
  }());
  EXPECT_EQ(server.cli({"-n", "2", "GET", "resp2"}), "yes");
}

TEST(Connection, connect_to_a_frozen_server_fails_with_connect_timeout) {
  RedisServer server;
  server.freeze();  // the kernel still accepts the TCP connection; HELLO gets no answer
  asio::io_context io;
  ClientConfig cfg = config_for(server);
  cfg.connect_timeout = 300ms;
  Client client(io.get_executor(), cfg);
  EXPECT_EQ(run_until_done(io, client.connect()), error::connect_timeout);
  EXPECT_NE(client.last_error_message().find("timed out"), std::string::npos);
  server.thaw();
}

TEST(Connection, no_log_line_or_error_holds_the_password) {
  RedisServer server(RedisServerOptions{.acl_user = "app", .acl_password = "right"});
  auto captured = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*captured);
  auto capture = std::make_shared<spdlog::logger>("capture", sink);
  capture->set_level(spdlog::level::trace);
  promptcache::set_logger(capture);  // the library's lines, every level
  std::string message;
  {
    asio::io_context io;
    ClientConfig cfg = ClientConfig::from_url(
        fmt::format("redis://app:Sup3rSecretPw@127.0.0.1:{}", server.port()));
    cfg.command_timeout = 200ms;
    Client client(io.get_executor(), cfg);
    auto r = run_until_done(io, client.get("k"));
    EXPECT_FALSE(r);
    message = client.last_error_message() + r.error().message();
  }
  promptcache::set_logger(nullptr);
  const std::string logs = captured->str();
  EXPECT_NE(logs.find("authentication failed"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("Sup3rSecretPw"), std::string::npos) << logs;
  EXPECT_EQ(message.find("Sup3rSecretPw"), std::string::npos) << message;
}

TEST(Connection, unix_socket_url_connects) {
  RedisServer server(RedisServerOptions{.unix_socket = true});
  asio::io_context io;
  Client client(io.get_executor(), ClientConfig::from_url("unix://" + server.unix_path()));
  run_until_done(
      io, [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await client.set("via", "unix")); }());
  EXPECT_EQ(server.cli({"GET", "via"}), "unix");
}

TEST(Connection, several_threads_share_a_client_with_one_connection_per_executor) {
  RedisServer server;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<asio::any_io_executor> executors;
  for (int i = 0; i < 3; ++i) {
    ios.push_back(std::make_unique<asio::io_context>(1));
    executors.push_back(ios.back()->get_executor());
  }
  ClientConfig cfg = config_for(server);
  cfg.max_connections = 2;  // the third executor's callers hop to another's connection
  Client client(executors, cfg);
  std::atomic<int> ok{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      run_until_done(*ios[t], [&, t]() -> asio::awaitable<void> {
        for (int i = 0; i < 200; ++i) {
          const std::string key = fmt::format("t{}:{}", t, i);
          if (co_await client.set(key, key)) continue;
          auto r = co_await client.get(key);
          if (r && r->value_or("") == key) ++ok;
        }
        ++finished;
        // Keep this thread's connection served until every thread is done with it.
        while (finished.load() < 3) co_await sleep_for(5ms);
      }());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 600);
  // Close each connection on its own thread-less executor: nothing runs any more.
  client.close();
  for (auto& io : ios) io->poll();
}

TEST(Connection, callers_on_other_executors_are_moved_to_the_one_connection) {
  RedisServer server;
  asio::io_context home(1);
  asio::io_context away(1);
  Client client(home.get_executor(), config_for(server));  // one connection, on `home`
  auto guard = asio::make_work_guard(home);
  std::thread home_thread([&] { home.run(); });
  std::atomic<int> ok{0};
  std::atomic<int> finished{0};
  auto round = [&](std::string prefix) -> asio::awaitable<void> {
    for (int i = 0; i < 100; ++i) {
      const std::string key = fmt::format("{}:{}", prefix, i);
      if (co_await client.set(key, key)) continue;
      auto r = co_await client.get(key);
      if (r && r->value_or("") == key) ++ok;
    }
    ++finished;
  };
  // Another io_context on another thread, and a strand of the connection's own context.
  asio::co_spawn(away, round("away"), asio::detached);
  asio::co_spawn(asio::make_strand(home), round("strand"), asio::detached);
  away.run();
  for (int i = 0; i < 3000 && finished.load() < 2; ++i) std::this_thread::sleep_for(10ms);
  asio::post(home, [&] { client.close(); });  // on the connection's own thread
  guard.reset();
  home_thread.join();
  EXPECT_EQ(finished.load(), 2);
  EXPECT_EQ(ok.load(), 200);
}

// Callers finished by one read are resumed by one posted run: one whose coroutine throws out
// of run() must not strand the others finished with it.
TEST(Connection, a_caller_that_throws_does_not_strand_the_callers_finished_with_it) {
  RedisServer server;
  asio::io_context io;
  Client client(io.get_executor(), config_for(server));
  run_until_done(io, [&]() -> asio::awaitable<void> { EXPECT_FALSE(co_await client.connect()); }());
  int finished = 0;
  auto thrower = [&]() -> asio::awaitable<void> {
    (void)co_await client.get("a");
    throw std::runtime_error("the caller's own failure");
  };
  auto caller = [&]() -> asio::awaitable<void> {
    auto r = co_await client.get("b");
    if (r) ++finished;
  };
  // Spawned together: their GETs go out in one write and their replies come in one read.
  asio::co_spawn(io, thrower(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  for (int i = 0; i < 5; ++i) asio::co_spawn(io, caller(), asio::detached);
  EXPECT_THROW(io.run(), std::runtime_error);
  io.restart();
  for (int i = 0; i < 200 && finished < 5; ++i) io.run_one_for(50ms);
  EXPECT_EQ(finished, 5);
  client.close();
  io.poll();
}

// ---- a misbehaving server ----------------------------------------------------------------

// Answers HELLO properly, then sends `garbage` as the reply to the next command.
class FakeServer {
 public:
  FakeServer(asio::io_context& io, std::string garbage)
      : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), garbage_(std::move(garbage)) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections = 0;

 private:
  asio::awaitable<void> serve() {
    for (;;) {
      error_code ec;
      auto sock = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++connections;
      asio::streambuf in;
      // HELLO arrives as one array: answer with a small RESP3 map.
      co_await asio::async_read_until(sock, in, "SETNAME\r\n",
                                      asio::redirect_error(asio::use_awaitable, ec));
      co_await asio::async_read_until(sock, in, "promptcache\r\n",
                                      asio::redirect_error(asio::use_awaitable, ec));
      in.consume(in.size());
      co_await asio::async_write(sock, asio::buffer(std::string("%1\r\n+proto\r\n:3\r\n")),
                                 asio::redirect_error(asio::use_awaitable, ec));
      co_await asio::async_read_until(sock, in, "\r\n",
                                      asio::redirect_error(asio::use_awaitable, ec));
      co_await asio::async_write(sock, asio::buffer(garbage_),
                                 asio::redirect_error(asio::use_awaitable, ec));
      sockets_.push_back(std::move(sock));
    }
  }
  asio::ip::tcp::acceptor acceptor_;
  std::string garbage_;
  std::vector<asio::ip::tcp::socket> sockets_;
};

void expect_protocol_failure(const std::string& garbage, error code) {
  asio::io_context io;
  FakeServer fake(io, garbage);
  ClientConfig cfg = ClientConfig::from_url(fmt::format("redis://127.0.0.1:{}", fake.port()));
  cfg.command_timeout = 5s;
  cfg.reconnect_min_delay = 10ms;
  cfg.limits.max_bulk = 1024;
  cfg.limits.max_depth = 4;
  Client client(io.get_executor(), cfg);
  auto r = run_until_done(io, client.get("k"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), code) << r.error().message();
  // The client drops that connection and makes a new one.
  run_until_done(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 200 && fake.connections < 2; ++i) co_await sleep_for(10ms);
  }());
  EXPECT_GE(fake.connections, 2);
}

TEST(Connection, malformed_reply_fails_the_caller_with_protocol_error_and_reconnects) {
  expect_protocol_failure("$-5\r\nxx\r\n", error::protocol_error);
  expect_protocol_failure("?what\r\n", error::protocol_error);
  expect_protocol_failure("$3\r\nabcXY", error::protocol_error);
}

TEST(Connection, reply_over_a_limit_fails_with_limit_exceeded_without_buffering_it) {
  expect_protocol_failure("$1000000000\r\n", error::limit_exceeded);
  expect_protocol_failure("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", error::limit_exceeded);
}

TEST(Connection, unsolicited_reply_is_a_protocol_error) {
  asio::io_context io;
  // Two replies for one command: the second has no caller.
  FakeServer fake(io, "+OK\r\n+EXTRA\r\n");
  ClientConfig cfg = ClientConfig::from_url(fmt::format("redis://127.0.0.1:{}", fake.port()));
  cfg.reconnect_min_delay = 10ms;
  Client client(io.get_executor(), cfg);
  auto r = run_until_done(io, client.get("k"));
  EXPECT_TRUE(r && r->value_or("") == "OK");
  run_until_done(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 200 && fake.connections < 2; ++i) co_await sleep_for(10ms);
  }());
  EXPECT_GE(fake.connections, 2);
}

}  // namespace
}  // namespace promptcache
