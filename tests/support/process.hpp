// Test support internals: the child-process, temp-dir, file and port plumbing that RedisServer,
// PgServer, ServeProcess and HttpClient share. Not part of their interface.
//
// spawn() is the one place that forks: the child dies with the thread that forked it
// (PR_SET_PDEATHSIG), so a test process that crashes never leaves a server behind.
//
// This library does not depend on GoogleTest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace promptcache::testing::detail {

using Clock = std::chrono::steady_clock;

// "what: <strerror(errno)>", for exceptions.
std::string errno_text(const std::string& what);

// ---------------------------------------------------------------------------------------------
// Files and text
// ---------------------------------------------------------------------------------------------

std::string read_file(const std::string& path);  // the whole file; "" if unreadable
void write_text(const std::string& path, const std::string& text);  // truncates; throws
std::uintmax_t file_size_or_zero(const std::string& path);
// The last `lines` lines of the file at `path` (a server log), without the trailing newlines;
// "" if unreadable.
std::string file_tail(const std::string& path, std::size_t lines);
std::string strip_trailing_newlines(std::string s);
// Percent-encodes every byte but the RFC 3986 unreserved characters.
std::string percent_encode(std::string_view s);
bool is_executable(const std::string& path);  // a regular file we may execute

// ---------------------------------------------------------------------------------------------
// Temp dirs and ports
// ---------------------------------------------------------------------------------------------

// mkdtemp("/tmp/<prefix>XXXXXX"): a dir only we can read. Throws on failure.
std::string make_temp_dir(const std::string& prefix);
// Removes `dir` and everything below it; ignores errors and an empty `dir`.
void remove_dir(const std::string& dir) noexcept;

// Binds 127.0.0.1:0, reads the kernel-assigned port, closes the socket. Throws on failure. The
// port may be taken again before the caller binds it: see launch_on_free_port().
std::uint16_t free_loopback_port();

// ---------------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------------

// Owns one file descriptor (or none: -1) and closes it when destroyed or reset.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// Both close-on-exec (so that only the child we hand them to gets them); throw on failure.
Fd open_dev_null();
Fd open_append(const std::string& path, mode_t mode);  // created with `mode` if missing

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

// The user a child switches to before exec (we must be root then).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
};

// What to run and how. All members have default initializers, so designated initializers
// compile cleanly with -Wextra -Werror (g++ 12).
struct ChildSpec {
  std::vector<std::string> argv{};                // argv[0] is the binary's absolute path
  std::optional<std::vector<std::string>> env{};  // "NAME=value"s; none: ours
  std::string cwd{};                              // empty: ours
  std::optional<RunAs> run_as{};
  // The child's descriptor limit (RLIMIT_NOFILE, soft and hard), if set: `ulimit -n N`.
  std::optional<unsigned> max_open_files{};
  // Prefix of the line a child writes to its stderr when setuid, chdir or execve fails.
  std::string label = "promptcache::testing";
};

// Descriptors the child gets as stdin/stdout/stderr (-1: ours). The caller keeps owning them
// and may close them once spawn() returned.
struct ChildStdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Forks and execs `spec`. Everything the child needs is prepared before fork(), so the child
// only calls async-signal-safe functions (the test process may be multi-threaded); it also
// resets the signal mask and dispositions it inherits and closes every other descriptor.
// Returns the child's pid; throws if fork() fails.
pid_t spawn(const ChildSpec& spec, ChildStdio stdio);

struct RunResult {
  int exit_code = -1;  // -1 if killed by a signal / timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// spawn()s `spec` with stdin=/dev/null and captures stdout/stderr; kills the child and sets
// timed_out if it does not finish within `timeout`.
RunResult run_captured(const ChildSpec& spec, std::chrono::milliseconds timeout);

// Non-blocking waitpid(): true (and the status) once `pid` exited and is reaped now, or is no
// child of ours any more (ECHILD; status 0): either way it is gone.
bool reap_if_exited(pid_t pid, int* status = nullptr);
// Waits for `pid` to exit, up to `timeout`. True (and the status, as reap_if_exited()) once gone.
bool wait_for_exit(pid_t pid, std::chrono::milliseconds timeout, int* status = nullptr);
// SIGKILL and reap; returns the wait status (0 if `pid` was no child of ours).
int kill_and_reap(pid_t pid);
// Asks `pid` to exit with `sig` and waits up to `timeout`; true once it is reaped. Sends SIGCONT
// first: a process a test stopped would not act on `sig` and only SIGKILL would end it.
bool terminate_and_wait(pid_t pid, int sig, std::chrono::milliseconds timeout);
// "exit code N" or "signal N", for error messages.
std::string describe_status(int status);

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

// State letter and parent pid from /proc/PID/stat; state '\0' if unreadable (process gone).
struct ProcStat {
  char state = '\0';
  pid_t ppid = -1;
};
ProcStat proc_stat(pid_t pid);
std::vector<pid_t> child_pids(pid_t parent);  // all live processes whose parent is `parent`
// True if no live process `pid` exists: gone, or a zombie not yet reaped by its (new) parent,
// which for a process of ours reparented to init is as good as gone.
bool process_gone(pid_t pid);
// Waits until every one of `pids` is gone, up to `timeout` in all. True if they all are.
bool wait_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

// ---------------------------------------------------------------------------------------------
// Starting servers
// ---------------------------------------------------------------------------------------------

enum class StartupState { kReady, kExited, kTimedOut };
struct StartupResult {
  StartupState state = StartupState::kTimedOut;
  int status = 0;  // the wait status when kExited
};

// Polls a freshly spawned server every `interval` until `ready()` says it serves, the process
// exits (it is reaped then), or `timeout` passes (it is left running). The exit is checked
// before ready(), so that a server that died (say, on "Address already in use") is not taken for
// ready because some other process answers on its port.
template <class Ready>
StartupResult await_startup(pid_t pid, std::chrono::milliseconds timeout,
                            std::chrono::milliseconds interval, Ready&& ready) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    StartupResult result;
    if (reap_if_exited(pid, &result.status)) {
      result.state = StartupState::kExited;
      return result;
    }
    if (ready()) {
      result.state = StartupState::kReady;
      return result;
    }
    if (Clock::now() >= deadline) return result;
    std::this_thread::sleep_for(interval);
  }
}

// First start: `launch()` returns true once the server is ready and false if its port turned
// out to be taken ("Address already in use": another process got it between
// free_loopback_port() and the server's bind()). Tries up to `attempts` fresh ports, stored in
// `port` before each launch(). False if every one was taken.
template <class Launch>
bool launch_on_free_port(std::uint16_t& port, int attempts, Launch&& launch) {
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    port = free_loopback_port();
    if (launch()) return true;
  }
  return false;
}

// Restart after a stop(): the server must come back on the SAME port (clients hold its URL), so
// wait for whoever took the port meanwhile to let go. `launch()` as above; false if the port is
// still taken after `timeout`.
template <class Launch>
bool relaunch_on_same_port(std::chrono::milliseconds timeout, Launch&& launch) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (launch()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace promptcache::testing::detail
