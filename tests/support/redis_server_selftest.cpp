// Self-test of the RedisServer test fixture (tests/support/redis_server.hpp).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/selftest_helpers.hpp"

namespace promptcache::testing {
namespace {

using namespace std::chrono_literals;

// Sends raw bytes over a connected socket and returns the first reply chunk (empty on error).
std::string send_raw(int fd, const std::string& request) {
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    ::close(fd);
    return {};
  }
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string raw_tcp(std::uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {};
  }
  return send_raw(fd, request);
}

std::string raw_unix(const std::string& path, const std::string& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {};
  }
  return send_raw(fd, request);
}

TEST(RedisServerSelfTest, FreePortIsNonZero) {
  EXPECT_NE(free_port(), 0);
}

TEST(RedisServerSelfTest, PlainServer) {
  RedisServer server;
  EXPECT_TRUE(server.running());
  EXPECT_GT(server.pid(), 0);
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(server.unix_path().empty());
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"SET", "k", "v"}), "OK");
  EXPECT_EQ(server.cli({"GET", "k"}), "v");
  EXPECT_EQ(server.cli({"CONFIG", "GET", "save"}), "save");  // value "" + stripped newline
  EXPECT_EQ(raw_tcp(server.port(), "PING\r\n"), "+PONG\r\n");
  EXPECT_NE(server.log_tail().find("Ready to accept connections"), std::string::npos)
      << server.log_tail();
}

TEST(RedisServerSelfTest, TlsServer) {
  RedisServer server(RedisServerOptions{.tls = true});
  EXPECT_EQ(server.url(), "rediss://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"CONFIG", "GET", "port"}), "port\n0");
  EXPECT_EQ(server.cli({"CONFIG", "GET", "tls-port"}),
            "tls-port\n" + std::to_string(server.port()));
  // A plaintext PING on the TLS port does not get +PONG.
  EXPECT_EQ(raw_tcp(server.port(), "PING\r\n").find("+PONG"), std::string::npos);
}

TEST(RedisServerSelfTest, TlsMaterialVerifies) {
  const auto& tls = TlsMaterial::get();
  EXPECT_EQ(&tls, &TlsMaterial::get());  // cached
  for (const auto* f : {&tls.ca_file, &tls.server_cert, &tls.server_key, &tls.client_cert,
                        &tls.client_key, &tls.other_ca_file, &tls.other_client_cert}) {
    EXPECT_TRUE(std::filesystem::exists(*f)) << *f;
  }
  auto verify = [](const std::string& ca, const std::string& cert, const std::string& extra) {
    std::string cmd =
        "openssl verify " + extra + " -CAfile '" + ca + "' '" + cert + "' >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  };
  EXPECT_TRUE(verify(tls.ca_file, tls.server_cert, "-purpose sslserver -verify_ip 127.0.0.1"));
  EXPECT_TRUE(
      verify(tls.ca_file, tls.server_cert, "-purpose sslserver -verify_hostname localhost"));
  EXPECT_TRUE(verify(tls.ca_file, tls.client_cert, "-purpose sslclient"));
  EXPECT_TRUE(verify(tls.other_ca_file, tls.other_client_cert, "-purpose sslclient"));
  EXPECT_FALSE(verify(tls.other_ca_file, tls.server_cert, ""));
  EXPECT_FALSE(verify(tls.ca_file, tls.other_client_cert, ""));
}

TEST(RedisServerSelfTest, PasswordServer) {
  RedisServer server(RedisServerOptions{.password = "s3cret \"quoted\""});
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"ACL", "WHOAMI"}), "default");
  EXPECT_EQ(raw_tcp(server.port(), "PING\r\n").rfind("-NOAUTH", 0), 0u);
  EXPECT_EQ(raw_tcp(server.port(), "AUTH wrong\r\n").rfind("-WRONGPASS", 0), 0u);
}

TEST(RedisServerSelfTest, AclUserServer) {
  RedisServer server(RedisServerOptions{.acl_user = "alice", .acl_password = "alicepw"});
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"ACL", "WHOAMI"}), "alice");
  EXPECT_EQ(server.cli({"SET", "k", "v"}), "OK");
  // Default user is disabled when no password is given: auth is required.
  EXPECT_EQ(raw_tcp(server.port(), "PING\r\n").rfind("-NOAUTH", 0), 0u);
  EXPECT_EQ(raw_tcp(server.port(), "AUTH alice alicepw\r\nPING\r\n").rfind("+OK", 0), 0u);
}

TEST(RedisServerSelfTest, AclUserWithDefaultPasswordOverTls) {
  RedisServer server(RedisServerOptions{
      .tls = true, .password = "defpw", .acl_user = "bob", .acl_password = "bobpw"});
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"ACL", "WHOAMI"}), "bob");
}

TEST(RedisServerSelfTest, UnixSocketServer) {
  RedisServer server(RedisServerOptions{.unix_socket = true});
  ASSERT_FALSE(server.unix_path().empty());
  struct stat st {};
  ASSERT_EQ(::stat(server.unix_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(raw_unix(server.unix_path(), "PING\r\n"), "+PONG\r\n");
}

TEST(RedisServerSelfTest, ExtraConfig) {
  RedisServer server(RedisServerOptions{.extra_config = {"maxmemory 10mb", "databases 4"}});
  EXPECT_EQ(server.cli({"CONFIG", "GET", "maxmemory"}), "maxmemory\n10485760");
  EXPECT_EQ(server.cli({"CONFIG", "GET", "databases"}), "databases\n4");
}

TEST(RedisServerSelfTest, BadConfigThrowsWithLog) {
  try {
    RedisServer server(RedisServerOptions{.extra_config = {"no-such-directive 42"}});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("no-such-directive"), std::string::npos) << what;
  }
}

TEST(RedisServerSelfTest, StopAndStartOnSamePort) {
  RedisServer server(RedisServerOptions{.unix_socket = true});
  const auto port = server.port();
  const auto path = server.unix_path();
  const pid_t old_pid = server.pid();
  EXPECT_EQ(server.cli({"SET", "k", "v"}), "OK");

  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.pid(), -1);
  EXPECT_TRUE(detail::wait_gone({old_pid}, 2s));
  EXPECT_THROW(server.cli({"PING"}), std::runtime_error);
  server.stop();  // idempotent

  server.start();
  EXPECT_TRUE(server.running());
  EXPECT_NE(server.pid(), old_pid);
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.unix_path(), path);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"EXISTS", "k"}), "0");  // crash lost the (unsaved) data
  EXPECT_EQ(raw_unix(path, "PING\r\n"), "+PONG\r\n");
  server.start();  // no-op while running
  EXPECT_EQ(server.cli({"PING"}), "PONG");
}

TEST(RedisServerSelfTest, RestartWritesTheConfigAfreshByDefault) {
  RedisServer server(RedisServerOptions{.extra_config = {"maxmemory 10mb"}});
  ASSERT_EQ(server.cli({"CONFIG", "SET", "maxmemory", "20mb"}), "OK");
  ASSERT_EQ(server.cli({"CONFIG", "REWRITE"}), "OK");
  server.stop();
  server.start();
  EXPECT_EQ(server.cli({"CONFIG", "GET", "maxmemory"}), "maxmemory\n10485760");
}

TEST(RedisServerSelfTest, RestartWithKeepConfigUsesTheConfigTheServerRewrote) {
  RedisServer server(RedisServerOptions{.extra_config = {"maxmemory 10mb"}, .keep_config = true});
  ASSERT_EQ(server.cli({"CONFIG", "SET", "maxmemory", "20mb"}), "OK");
  ASSERT_EQ(server.cli({"CONFIG", "REWRITE"}), "OK");
  server.stop();
  server.start();
  EXPECT_EQ(server.cli({"CONFIG", "GET", "maxmemory"}), "maxmemory\n20971520");
}

TEST(RedisServerSelfTest, StartupCommandsRunAfterEveryStart) {
  RedisServer server(
      RedisServerOptions{.startup_commands = {{"CONFIG", "SET", "maxmemory", "20mb"}}});
  EXPECT_EQ(server.cli({"CONFIG", "GET", "maxmemory"}), "maxmemory\n20971520");
  server.stop();
  server.start();
  EXPECT_EQ(server.cli({"CONFIG", "GET", "maxmemory"}), "maxmemory\n20971520");
}

TEST(RedisServerSelfTest, FailingStartupCommandThrowsWithTheReply) {
  try {
    RedisServer server(RedisServerOptions{.startup_commands = {{"CONFIG", "SET", "nope", "1"}}});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CONFIG SET nope 1"), std::string::npos) << e.what();
  }
}

TEST(RedisServerSelfTest, HoldPortWhileStoppedRefusesConnectionsAndKeepsOthersOffThePort) {
  RedisServer server(RedisServerOptions{.hold_port_while_stopped = true});
  const auto port = server.port();
  ASSERT_EQ(server.cli({"SET", "k", "v"}), "OK");  // a connection that lingers in TIME_WAIT
  server.stop();

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_NE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(client);
  // free_port() binds without SO_REUSEADDR: the kernel would never hand it this port.
  const int other = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_NE(::bind(other, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(errno, EADDRINUSE);
  ::close(other);

  server.start();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
}

TEST(RedisServerSelfTest, StartWaitsForBusyPort) {
  RedisServer server;
  const auto port = server.port();
  server.stop();

  // Occupy the port, release it after 700 ms; start() must retry and then succeed.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  ASSERT_EQ(::listen(fd, 1), 0);
  std::thread releaser([fd] {
    std::this_thread::sleep_for(700ms);
    ::close(fd);
  });
  const auto t0 = std::chrono::steady_clock::now();
  server.start();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  releaser.join();
  EXPECT_GE(elapsed, 600ms);
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_NE(server.log_tail(200).find("Address already in use"), std::string::npos);
}

TEST(RedisServerSelfTest, FreezeAndThaw) {
  RedisServer server;
  const pid_t pid = server.pid();
  server.freeze();
  EXPECT_EQ(detail::proc_stat(pid).state, 'T');
  EXPECT_TRUE(server.running());
  // A frozen server accepts TCP connections (kernel backlog) but never replies.
  EXPECT_THROW(server.cli({"PING"}, 300ms), std::runtime_error);
  server.thaw();
  EXPECT_NE(detail::proc_stat(pid).state, 'T');
  EXPECT_EQ(server.cli({"PING"}), "PONG");
}

TEST(RedisServerSelfTest, DestructorLeavesNoProcessAndNoTempDir) {
  pid_t pid = -1;
  std::string dir;
  {
    RedisServer server(RedisServerOptions{.unix_socket = true});
    pid = server.pid();
    dir = server.dir();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, 0), 0);
    ASSERT_TRUE(std::filesystem::exists(dir));
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(RedisServerSelfTest, DestructorStopsFrozenServer) {
  pid_t pid = -1;
  {
    RedisServer server;
    pid = server.pid();
    server.freeze();
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(RedisServerSelfTest, DestructorAfterStop) {
  pid_t pid = -1;
  {
    RedisServer server;
    pid = server.pid();
    server.stop();
  }
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST(RedisServerSelfTest, ServerDiesWithCrashedParent) {
  const detail::Leftovers left = detail::start_server_and_crash<RedisServer>();
  ASSERT_GT(left.server_pid, 0);
  EXPECT_TRUE(detail::wait_gone({left.server_pid}, 5s))
      << "redis-server " << left.server_pid << " survived";
  detail::remove_dir(left.dir);  // the "crashed" process leaked it
}

}  // namespace
}  // namespace promptcache::testing
