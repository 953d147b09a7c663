// Test support: start real `redis-server` processes on free loopback ports for integration tests,
// and always stop them again.
//
// Every RedisServer owns a private temp dir (mkdtemp under /tmp) holding its redis.conf, log files,
// working dir and (optionally) its unix socket. The child is started with fork + prctl(
// PR_SET_PDEATHSIG, SIGKILL) + exec, so even a test process that crashes never leaves a server
// behind. The destructor terminates the server (SIGCONT, SIGTERM, up to 5 s, then SIGKILL) and
// removes the temp dir.
//
// Not thread-safe: use one RedisServer object from one thread at a time (clients in other threads
// may of course talk to the server). Note that PR_SET_PDEATHSIG fires when the *thread* that
// created/started the server exits, so create and start() servers from a long-lived thread (e.g.
// the GoogleTest main thread), not from a short-lived helper thread.
//
// This library does not depend on GoogleTest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace promptcache::testing {

// All members have default initializers, so designated initializers such as
// RedisServerOptions{.tls = true} compile cleanly with -Wextra -Werror (g++ 12).
struct RedisServerOptions {
  bool tls = false;          // TLS on the port (tls-port), plain port disabled (port 0)
  bool unix_socket = false;  // also listen on a unix socket in the temp dir
  std::string password{};    // requirepass for the default user, if non-empty
  // If non-empty: an ACL user `acl_user` with `acl_password`, full rights (on ~* &* +@all).
  // If acl_user is set and `password` is empty, the default user is disabled ("user default off"),
  // so unauthenticated connections get NOAUTH (auth is required in every ACL setup).
  std::string acl_user{};
  std::string acl_password{};
  std::vector<std::string> extra_config{};  // extra redis.conf lines (appended last, so they win)
  // Run as a Redis Sentinel (`redis-server <conf> --sentinel`); the `sentinel monitor …` lines go
  // in extra_config. Implies keep_config: a sentinel rewrites its config with its id, the known
  // replicas and sentinels and the current master, and must find them again after a restart.
  bool sentinel = false;
  // start() after stop() reuses the config file as the server left it instead of writing it
  // afresh, as a restarted production server would. Sentinel sends CONFIG REWRITE with every
  // REPLICAOF, so a data node restarted this way comes back in the role it was last given.
  bool keep_config = false;
  // While stop()ped, keep the port bound (not listening): connections are refused as before, but
  // free_port() in any test process skips it, so no other server gets it meanwhile. For servers
  // that others keep addressing while they are down (Sentinel, replicas), which would otherwise
  // reconfigure or replicate from whatever server took the port.
  bool hold_port_while_stopped = false;
  // Commands run with cli() after every start (the first and each start()), for settings a config
  // file cannot hold, such as SENTINEL DEBUG. A reply other than OK throws.
  std::vector<std::vector<std::string>> startup_commands{};
};

// TLS test material, made once per process with the openssl CLI in a temp dir (EC P-256 keys,
// certificates valid for 1 day). The temp dir is removed at process exit (only by the process
// that created it, so forked children exiting do not delete it).
class TlsMaterial {
 public:
  // Thread-safe; generated on first call. Throws std::runtime_error if openssl fails (a later call
  // retries).
  static const TlsMaterial& get();

  std::string dir;          // the temp dir holding everything below
  std::string ca_file;      // CA certificate (PEM), self-signed
  std::string ca_key;       // CA private key
  std::string server_cert;  // signed by ca_file; SAN IP:127.0.0.1, DNS:localhost; serverAuth
  std::string server_key;
  std::string client_cert;  // signed by ca_file; CN=promptcache-test-client; clientAuth
  std::string client_key;
  std::string other_ca_file;  // a second, unrelated CA (for "wrong CA" tests)
  std::string other_ca_key;
  std::string other_client_cert;  // client cert signed by other_ca_file (untrusted by servers)
  std::string other_client_key;

  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;
  ~TlsMaterial();

 private:
  TlsMaterial();
  pid_t owner_pid_ = -1;
};

class RedisServer {
 public:
  // Starts the server and waits until it answers PING (max 10 s). Throws std::runtime_error
  // (including the server's log tail) on failure. If the chosen free port turns out to be taken
  // ("Address already in use"), retries with a new port a few times.
  explicit RedisServer(RedisServerOptions opts = {});
  // SIGCONT, then SIGTERM, wait up to 5 s, then SIGKILL; removes the temp dir. Never throws.
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const;
  std::string unix_path() const;  // empty unless opts.unix_socket
  // "redis://127.0.0.1:PORT", or "rediss://127.0.0.1:PORT" for TLS (no credentials).
  std::string url() const;
  std::string address() const;     // "127.0.0.1:PORT"
  const std::string& dir() const;  // the server's temp dir
  const RedisServerOptions& options() const;
  pid_t pid() const;  // pid of the running redis-server, -1 if not running

  void stop();    // SIGKILL now (simulates a crash) and reap; idempotent
  void start();   // start again on the SAME port (and unix path) after stop(); waits for PING.
                  // If the port is busy, retries for up to 5 s. No-op if already running.
                  // The config is written afresh unless opts.keep_config or opts.sentinel.
  void freeze();  // SIGSTOP; returns once the process is in state 'T'
  void thaw();    // SIGCONT; returns once the process left state 'T'
  bool running() const;  // false once stop()ped or if the process died on its own

  // Runs redis-cli against this server over TCP (adds -h/-p, --tls --cacert/--cert/--key,
  // --user/-a, --no-auth-warning as needed) and returns its stdout with trailing newlines
  // stripped. Note that redis-cli 7.0 exits 0 for error replies (the "ERR ..." text is returned).
  // Throws std::runtime_error on non-zero exit or if redis-cli does not finish within 10 s
  // (e.g. because the server is frozen).
  std::string cli(const std::vector<std::string>& args) const;
  std::string cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const;
  // The full redis-cli command line cli(args) would run (binary first), e.g. for custom use.
  std::vector<std::string> cli_command(const std::vector<std::string>& args) const;

  // Last `lines` lines of the server log (plus redis-server's stdout/stderr, if any).
  std::string log_tail(std::size_t lines = 30) const;

 private:
  enum class LaunchResult { kReady, kAddressInUse };
  struct Probe {
    bool up = false;       // answered PING with PONG (or NOAUTH)
    long server_pid = -1;  // process_id from INFO server, -1 if unknown
    std::string reply;     // PING reply, for error messages
  };
  Probe probe_server() const;
  LaunchResult launch_once();
  void run_startup_commands() const;
  void write_config() const;
  void reap_if_exited() const;
  void terminate_gracefully() noexcept;
  void release_port() noexcept;
  void cleanup() noexcept;

  RedisServerOptions opts_;
  std::string server_bin_;
  std::string cli_bin_;
  std::string dir_;
  std::string conf_path_;
  std::string log_path_;
  std::string stdio_path_;
  std::string unix_path_;
  std::uint16_t port_ = 0;
  mutable pid_t pid_ = -1;
  int port_hold_fd_ = -1;  // while stopped, with opts.hold_port_while_stopped
  bool started_ = false;   // a launch reached kReady once, so the config file is the server's now
};

// Binds 127.0.0.1:0, reads the kernel-assigned port, closes the socket. Throws on failure.
std::uint16_t free_port();

// "127.0.0.1:P1,127.0.0.1:P2,…": the servers' addresses as a client's list of nodes.
std::string address_list(const std::vector<std::unique_ptr<RedisServer>>& servers);

}  // namespace promptcache::testing
