// Helpers shared by the self-tests of RedisServer and PgServer (redis_server_selftest.cpp,
// pg_server_selftest.cpp): a test process that crashes right after it started a server.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace promptcache::testing::detail {

// What a crashed test process left behind.
struct Leftovers {
  pid_t server_pid = -1;  // -1 if the child could not start a server (or report it)
  std::string dir;        // the server's temp dir, which nobody removes
};

// Forks a child that starts a Server and then _exit()s without running any destructor, as a
// crashing test process would, waits for it and returns what it reported. The server is expected
// to die with the child (PR_SET_PDEATHSIG); its temp dir is left for the caller to remove.
template <class Server>
Leftovers start_server_and_crash() {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {};
  }
  if (child == 0) {
    ::close(fds[0]);
    pid_t server_pid = -1;
    char dir[256] = {};
    try {
      auto* server = new Server();  // deliberately leaked: simulate a crash
      server_pid = server->pid();
      std::snprintf(dir, sizeof(dir), "%s", server->dir().c_str());
    } catch (...) {
    }
    (void)!::write(fds[1], &server_pid, sizeof(server_pid));
    (void)!::write(fds[1], dir, sizeof(dir));
    ::_exit(0);  // no destructors run
  }
  ::close(fds[1]);
  pid_t server_pid = -1;
  char dir[256] = {};
  const bool reported =
      ::read(fds[0], &server_pid, sizeof(server_pid)) == static_cast<ssize_t>(sizeof(server_pid)) &&
      ::read(fds[0], dir, sizeof(dir)) == static_cast<ssize_t>(sizeof(dir));
  ::close(fds[0]);
  int status = 0;
  const bool crashed = ::waitpid(child, &status, 0) == child;
  if (!reported || !crashed) return {};
  return Leftovers{.server_pid = server_pid, .dir = dir};
}

}  // namespace promptcache::testing::detail
