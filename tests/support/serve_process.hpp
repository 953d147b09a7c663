// Test support: run the real `promptcache` binary (`promptcache serve ...`) as a child process for
// end-to-end tests, and always stop it again.
//
// Every ServeProcess owns a private temp dir (mkdtemp under /tmp) holding the child's stdout and
// stderr. The child is started with fork + prctl(PR_SET_PDEATHSIG, SIGKILL) + execve, so even a
// test process that crashes never leaves a server behind. Its environment is ours without any
// REDIS_* or PROMPTCACHE_* variable (a developer's REDIS_URL must not leak into a test that wants
// the in-process cache), plus the variables the test passes.
//
// The constructor waits for the one line `listening on http://HOST:PORT` the binary prints on
// stdout once it accepts connections, and parses the port (start it with `--listen 127.0.0.1:0`).
//
// The binary's path comes from the compile definition PROMPTCACHE_BIN (set in tests/CMakeLists.txt
// to $<TARGET_FILE:promptcache_cli>), so this file is compiled into the test executable itself.
//
// Not thread-safe: use one ServeProcess from one thread (clients in other threads may talk to the
// server). PR_SET_PDEATHSIG fires when the *thread* that started the process exits, so start it
// from a long-lived thread (the GoogleTest main thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace promptcache::testing {

// Extra environment variables for the child: NAME, value.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

// The path of the promptcache binary under test.
std::string promptcache_binary();

class ServeProcess {
 public:
  // Starts `promptcache <args...>` (args usually begin with "serve") and waits up to
  // `ready_timeout` for the "listening on" line. Throws std::runtime_error (with the child's
  // stderr) if the child exits first or the line does not come in time; the child is killed then.
  explicit ServeProcess(std::vector<std::string> args, EnvVars env = {},
                        std::chrono::milliseconds ready_timeout = std::chrono::seconds(15),
                        std::optional<unsigned> max_open_files = std::nullopt);
  // SIGKILL if still running, reap, remove the temp dir. Never throws.
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // The host part of the "listening on" line, e.g. "127.0.0.1".
  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::vector<std::string>& args() const noexcept { return args_; }

  // Sends `sig` to the child (no-op once it exited).
  void signal(int sig);
  // Waits for the child to exit. Returns its exit code (0..255), 128 + N if a signal N killed it,
  // or -1 if it is still running after `timeout` (it is left running; the destructor kills it).
  int wait_exit(std::chrono::milliseconds timeout);
  // False once the child exited (it is reaped then).
  [[nodiscard]] bool running();

  // Everything the child wrote so far.
  [[nodiscard]] std::string stdout_text() const;
  [[nodiscard]] std::string stderr_text() const;
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

 private:
  void reap(int status);
  void kill_now() noexcept;

  std::vector<std::string> args_;
  std::string dir_;
  std::string stdout_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;  // once reaped
  std::string host_;
  std::uint16_t port_ = 0;
};

// A run of the binary to its end (for invocations that must fail, e.g. a refused --listen).
struct ProcessResult {
  int exit_code = -1;  // 0..255, 128 + N for a signal N, -1 if it timed out (then it was killed)
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs `promptcache <args...>` with the environment rules of ServeProcess, stdin /dev/null,
// capturing stdout and stderr; kills it if it does not exit within `timeout`.
ProcessResult run_promptcache(const std::vector<std::string>& args, const EnvVars& env = {},
                              std::chrono::milliseconds timeout = std::chrono::seconds(15));
// The same for any program (the examples, say), with the same environment rules.
ProcessResult run_program(const std::string& binary, const std::vector<std::string>& args,
                          const EnvVars& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(15));

}  // namespace promptcache::testing
