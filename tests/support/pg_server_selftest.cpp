// Self-test of the PgServer test fixture (tests/support/pg_server.hpp).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_server.hpp"
#include "support/process.hpp"
#include "support/selftest_helpers.hpp"

namespace promptcache::testing {
namespace {

using namespace std::chrono_literals;

#define SKIP_WITHOUT_PG()                                                          \
  if (!pg_available())                                                             \
  GTEST_SKIP() << "PostgreSQL server binaries (initdb, postgres) not found under " \
                  "/usr/lib/postgresql/*/bin"

bool tcp_connects(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CmdResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `psql URL -X -w -At -c SQL` as the test process's own user (a plain TCP client of the
// server), with a 10 s limit.
CmdResult psql_over_tcp(const std::string& url, const std::string& sql) {
  const std::string cmd = "timeout 10 " + shell_quote(pg_bin_dir() + "/psql") + " " +
                          shell_quote(url) + " -X -w -At -c " + shell_quote(sql) + " 2>&1";
  CmdResult result;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
  return result;
}

std::string url_with_password(const PgServer& server, const std::string& password) {
  return "postgresql://" + server.options().user + ":" + password +
         "@127.0.0.1:" + std::to_string(server.port()) + "/" + server.options().database;
}

TEST(PgServer, StartsAndAnswersPsql) {
  SKIP_WITHOUT_PG();
  PgServer server;
  EXPECT_TRUE(server.running());
  EXPECT_GT(server.pid(), 0);
  EXPECT_NE(server.port(), 0);
  EXPECT_EQ(server.url(), "postgresql://promptcache:pc-test-pw@127.0.0.1:" +
                              std::to_string(server.port()) + "/promptcache");
  EXPECT_EQ(server.psql("select 1"), "1");
  EXPECT_EQ(server.psql("select current_database()"), "promptcache");
  EXPECT_EQ(server.psql("select current_user"), "postgres");
  EXPECT_EQ(server.psql("select pg_get_userbyid(datdba) from pg_database "
                        "where datname = current_database()"),
            "promptcache");
  EXPECT_EQ(server.psql("show fsync"), "off");
  EXPECT_EQ(server.psql("show max_connections"), "50");
  EXPECT_EQ(server.psql("show listen_addresses"), "127.0.0.1");
  EXPECT_EQ(server.psql("show unix_socket_directories"), server.dir());
  EXPECT_THROW(server.psql("select * from no_such_table"), std::runtime_error);
  EXPECT_NE(server.log_tail().find("database system is ready to accept connections"),
            std::string::npos)
      << server.log_tail();
}

TEST(PgServer, RoleLogsInOverTcpOnlyWithThePassword) {
  SKIP_WITHOUT_PG();
  PgServer server;
  const CmdResult ok = psql_over_tcp(server.url(), "select current_user");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output, "promptcache");

  const CmdResult wrong = psql_over_tcp(url_with_password(server, "wrong-pw"), "select 1");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("password authentication failed"), std::string::npos) << wrong.output;

  const CmdResult none = psql_over_tcp(
      "postgresql://promptcache@127.0.0.1:" + std::to_string(server.port()) + "/promptcache",
      "select 1");
  EXPECT_NE(none.exit_code, 0) << none.output;
}

TEST(PgServer, CustomOptionsAreQuotedAndEncoded) {
  SKIP_WITHOUT_PG();
  PgServer server(PgServerOptions{.database = "db-x", .user = "User y", .password = "p@ss:w/'d"});
  EXPECT_EQ(server.url(), "postgresql://User%20y:p%40ss%3Aw%2F%27d@127.0.0.1:" +
                              std::to_string(server.port()) + "/db-x");
  const CmdResult ok =
      psql_over_tcp(server.url(), "select current_user || '@' || current_database()");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output, "User y@db-x");
}

TEST(PgServer, StopRefusesConnectionsAndStartKeepsData) {
  SKIP_WITHOUT_PG();
  PgServer server;
  const std::uint16_t port = server.port();
  EXPECT_EQ(server.psql("create table t (x int)"), "CREATE TABLE");
  EXPECT_EQ(server.psql("insert into t values (42)"), "INSERT 0 1");
  const pid_t pid = server.pid();
  const std::vector<pid_t> children = detail::child_pids(pid);
  EXPECT_FALSE(children.empty());

  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.pid(), -1);
  EXPECT_EQ(::kill(pid, 0), -1);
  for (pid_t child : children) EXPECT_TRUE(detail::process_gone(child)) << "child " << child;
  EXPECT_FALSE(tcp_connects(port));
  EXPECT_THROW(server.psql("select 1"), std::runtime_error);
  server.stop();  // idempotent

  server.start();
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  EXPECT_TRUE(tcp_connects(port));
  EXPECT_EQ(server.psql("select x from t"), "42");
  const CmdResult ok = psql_over_tcp(server.url(), "select current_user");
  EXPECT_EQ(ok.output, "promptcache");
  server.start();  // no-op while running
  EXPECT_EQ(server.psql("select 1"), "1");
}

TEST(PgServer, DestructorLeavesNoProcessAndNoTempDir) {
  SKIP_WITHOUT_PG();
  pid_t pid = -1;
  std::vector<pid_t> children;
  std::string dir;
  {
    PgServer server;
    pid = server.pid();
    dir = server.dir();
    children = detail::child_pids(pid);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, 0), 0);
    ASSERT_FALSE(children.empty());
    ASSERT_TRUE(std::filesystem::exists(dir + "/data/PG_VERSION"));
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  for (pid_t child : children) EXPECT_TRUE(detail::process_gone(child)) << "child " << child;
  struct stat st {};
  EXPECT_EQ(::stat(dir.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST(PgServer, DestructorAfterStop) {
  SKIP_WITHOUT_PG();
  pid_t pid = -1;
  std::string dir;
  {
    PgServer server;
    pid = server.pid();
    dir = server.dir();
    server.stop();
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(PgServer, ServerDiesWithCrashedParent) {
  SKIP_WITHOUT_PG();
  const detail::Leftovers left = detail::start_server_and_crash<PgServer>();
  ASSERT_GT(left.server_pid, 0);
  EXPECT_TRUE(detail::wait_gone({left.server_pid}, 5s))
      << "postgres " << left.server_pid << " survived";
  // The "crashed" process leaked its temp dir and the server's SysV shared memory segment
  // (postmaster.pid line 7 is "KEY ID"); clean both up once the server's children are gone.
  if (left.dir.empty()) return;
  std::istringstream pidfile(detail::read_file(left.dir + "/data/postmaster.pid"));
  std::string line;
  for (int i = 0; i < 7 && std::getline(pidfile, line); ++i) {
  }
  unsigned long key = 0;
  unsigned long id = 0;
  if (std::istringstream(line) >> key >> id) {
    const int shmid = static_cast<int>(id);
    shmid_ds ds{};
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (::shmctl(shmid, IPC_STAT, &ds) == 0 && ds.shm_nattch > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(ds.shm_nattch, 0u) << "children of postgres " << left.server_pid << " survived";
    ::shmctl(shmid, IPC_RMID, nullptr);
  }
  detail::remove_dir(left.dir);
}

}  // namespace
}  // namespace promptcache::testing
