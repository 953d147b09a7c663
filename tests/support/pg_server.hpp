// Test support: start real PostgreSQL servers on free loopback ports for integration tests, and
// always stop them again.
//
// Every PgServer owns a private temp dir (mkdtemp under /tmp) holding the cluster made by `initdb`
// (dir()/data), the server log (dir()/postgres.log) and the server's unix socket. The server is
// the `postgres` binary itself (not pg_ctl, which would daemonize it), started with fork +
// prctl(PR_SET_PDEATHSIG, SIGKILL) + exec, so even a test process that crashes never leaves a
// server behind (the server's own child processes exit when they notice the postmaster is gone).
// The destructor shuts the server down ("fast" shutdown, then SIGKILL) and removes the temp dir.
//
// Authentication: connections over the unix socket are trusted (psql() uses them as the
// superuser `postgres`); TCP connections to 127.0.0.1 need a password (scram-sha-256), so url()
// really exercises the login of the role options().user.
//
// PostgreSQL refuses to run as root. When the test process runs as root, the temp dir is chowned
// to the `postgres` OS user (created by the Debian `postgresql` package) and initdb, postgres, psql
// and pg_isready run as that user (the forked child switches its groups and user ids before
// exec). Otherwise everything runs as the current user.
//
// Not thread-safe: use one PgServer object from one thread at a time (clients in other threads may
// of course talk to the server). PR_SET_PDEATHSIG fires when the *thread* that created/started the
// server exits, so create and start() servers from a long-lived thread (e.g. the GoogleTest main
// thread).
//
// This library does not depend on GoogleTest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace promptcache::testing {

namespace detail {  // support/process.hpp
struct ChildSpec;
struct RunResult;
}  // namespace detail

// All members have default initializers, so designated initializers such as
// PgServerOptions{.database = "x"} compile cleanly with -Wextra -Werror (g++ 12).
// Neither `user` nor `database` may be "postgres" (the superuser and the maintenance database
// exist already).
struct PgServerOptions {
  std::string database = "promptcache";  // created, owned by `user`
  std::string user = "promptcache";      // role with LOGIN PASSWORD `password`
  std::string password = "pc-test-pw";
};

class PgServer {
 public:
  // Runs initdb in a private temp dir, starts `postgres` on 127.0.0.1 on a free port (unix socket
  // in the temp dir), waits until it accepts connections (max 20 s), then creates the role and
  // the database. Throws std::runtime_error (including the server's log tail) on failure. If the
  // chosen free port turns out to be taken ("Address already in use"), retries with a new port a
  // few times.
  explicit PgServer(PgServerOptions opts = {});
  // SIGINT ("fast" shutdown), wait up to 5 s, then SIGKILL; removes the temp dir. Never throws.
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  std::uint16_t port() const;
  // "postgresql://user:password@127.0.0.1:PORT/database" (user, password and database
  // percent-encoded).
  std::string url() const;
  const PgServerOptions& options() const;
  const std::string& dir() const;  // the server's temp dir
  pid_t pid() const;               // pid of the running postmaster, -1 if not running

  // SIGKILL the postmaster and all its child processes now (simulates a crash) and reap; also
  // releases the SysV shared memory segment the crash left behind. Idempotent.
  void stop();
  // Starts the server again on the SAME port and data dir after stop() (crash recovery runs);
  // waits until it accepts connections. If the port is busy, retries for up to 5 s. No-op if
  // already running.
  void start();
  bool running() const;  // false once stop()ped or if the postmaster died on its own

  // Runs `psql -X -w -At -v ON_ERROR_STOP=1 -c sql` as the superuser `postgres` over the unix
  // socket against options().database and returns its stdout with trailing newlines stripped
  // (query rows, or the command tag such as "INSERT 0 1"). Throws std::runtime_error on non-zero
  // exit or if psql does not finish within 10 s.
  std::string psql(const std::string& sql) const;

  // Last `lines` lines of the server log (the postgres process's stdout/stderr).
  std::string log_tail(std::size_t lines = 30) const;

 private:
  enum class LaunchResult { kReady, kAddressInUse };

  // How to run args (argv[0] absolute): as the server's OS user, in dir(), with a clean
  // environment.
  detail::ChildSpec child_spec(std::vector<std::string> args) const;
  // Runs child_spec(args) with stdin=/dev/null and captures stdout/stderr; kills the process and
  // sets timed_out if it does not finish within `timeout`.
  detail::RunResult run(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout) const;
  std::string run_psql(const std::string& database, const std::string& sql) const;
  void init_cluster();
  LaunchResult launch_once();
  bool postmaster_ready() const;
  void reap_if_exited() const;
  void kill_server() noexcept;
  void terminate_gracefully() noexcept;
  void cleanup() noexcept;

  PgServerOptions opts_;
  std::string bin_dir_;
  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  bool switch_user_ = false;  // running as root: children run as run_uid_/run_gid_ (`postgres`)
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
  std::vector<std::string> child_env_;
  std::uint16_t port_ = 0;
  mutable pid_t pid_ = -1;
};

// The bin dir of the highest PostgreSQL version under /usr/lib/postgresql/*/bin that has both
// `initdb` and `postgres`, or "" if there is none.
std::string pg_bin_dir();
// True when the PostgreSQL server binaries (initdb, postgres) are installed (pg_bin_dir() != "").
bool pg_available();

}  // namespace promptcache::testing
