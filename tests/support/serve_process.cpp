#include "support/serve_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef PROMPTCACHE_BIN
#error "PROMPTCACHE_BIN must name the promptcache binary (see tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace promptcache::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string make_temp_dir() {
  std::string templ = "/tmp/promptcache-serve-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp"));
  return templ;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Ours without REDIS_* and PROMPTCACHE_* (they would change what the binary does), plus `extra`.
std::vector<std::string> child_environment(const EnvVars& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var(*e);
    if (var.rfind("REDIS_", 0) == 0 || var.rfind("PROMPTCACHE_", 0) == 0) continue;
    env.push_back(std::move(var));
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Everything the child needs, prepared before fork() so that the child only calls
// async-signal-safe functions (the test process may be multi-threaded).
struct ChildSetup {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  pid_t parent_pid = 0;
  int max_fd = 1024;

  ChildSetup(const std::vector<std::string>& args, const EnvVars& env)
      : env_storage(child_environment(env)) {
    argv_storage.push_back(promptcache_binary());
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
    parent_pid = ::getpid();
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      max_fd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 65536));
    } else {
      max_fd = 65536;
    }
  }
};

// Runs in the forked child. Never returns.
[[noreturn]] void exec_child(const ChildSetup& s) {
  // Die with the parent (thread) so that a crashed test never leaves a server behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != s.parent_pid) ::_exit(127);  // the parent is gone already

  // Reset the signal state inherited from the test process.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);
  }

  if (::dup2(s.stdin_fd, 0) < 0 || ::dup2(s.stdout_fd, 1) < 0 || ::dup2(s.stderr_fd, 2) < 0) {
    ::_exit(127);
  }
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < s.max_fd; ++fd) ::close(fd);
  }
  ::execve(s.argv[0], s.argv.data(), s.envp.data());
  ::_exit(127);
}

// Forks and execs the binary with stdin /dev/null and stdout/stderr appended to the two files.
pid_t spawn(const std::vector<std::string>& args, const EnvVars& env, const std::string& out_path,
            const std::string& err_path) {
  ChildSetup setup(args, env);
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  auto close_all = [&] {
    for (int fd : {in, out, err}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (in < 0 || out < 0 || err < 0) {
    const std::string why = errno_text("open the child's stdio");
    close_all();
    throw std::runtime_error(why);
  }
  setup.stdin_fd = in;
  setup.stdout_fd = out;
  setup.stderr_fd = err;
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(setup);
  const int saved = errno;
  close_all();
  if (pid < 0) {
    errno = saved;
    throw std::runtime_error(errno_text("fork"));
  }
  return pid;
}

// waitpid with a deadline; true (and the status) once reaped.
bool wait_for(pid_t pid, milliseconds timeout, int& status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      status = 0;
      return true;  // not our child any more: treat as gone
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void kill_and_reap(pid_t pid, int& status) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void remove_dir(const std::string& dir) noexcept {
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace

std::string promptcache_binary() {
  return PROMPTCACHE_BIN;
}

ServeProcess::ServeProcess(std::vector<std::string> args, EnvVars env,
                           std::chrono::milliseconds ready_timeout)
    : args_(std::move(args)) {
  dir_ = make_temp_dir();
  stdout_path_ = dir_ + "/stdout.log";
  stderr_path_ = dir_ + "/stderr.log";
  try {
    pid_ = spawn(args_, env, stdout_path_, stderr_path_);
  } catch (...) {
    remove_dir(dir_);
    throw;
  }

  constexpr std::string_view prefix = "listening on http://";
  const auto deadline = Clock::now() + ready_timeout;
  for (;;) {
    const std::string out = stdout_text();
    const auto at = out.find(prefix);
    const auto eol = at == std::string::npos ? std::string::npos : out.find('\n', at);
    if (eol != std::string::npos) {
      const std::string address = out.substr(at + prefix.size(), eol - at - prefix.size());
      const auto colon = address.rfind(':');
      int port = 0;
      if (colon != std::string::npos) port = std::atoi(address.c_str() + colon + 1);
      if (port <= 0 || port > 65535) {
        kill_now();
        const std::string err = stderr_text();
        remove_dir(dir_);
        throw std::runtime_error("ServeProcess: cannot parse the port in " + out + "\nstderr:\n" +
                                 err);
      }
      host_ = address.substr(0, colon);
      port_ = static_cast<std::uint16_t>(port);
      return;
    }
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || Clock::now() >= deadline) {
      std::string why;
      if (r == pid_) {
        pid_ = -1;
        why = "exited with code " + std::to_string(exit_code_of(status)) + " before listening";
      } else {
        kill_now();
        why = "printed no \"listening on\" line within " + std::to_string(ready_timeout.count()) +
              " ms";
      }
      const std::string err = stderr_text();
      const std::string out_now = stdout_text();
      remove_dir(dir_);
      std::string command;
      for (const auto& a : args_) command += " " + a;
      throw std::runtime_error("ServeProcess: `promptcache" + command + "` " + why + "\nstdout:\n" +
                               out_now + "\nstderr:\n" + err);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

ServeProcess::~ServeProcess() {
  kill_now();
  remove_dir(dir_);
}

void ServeProcess::kill_now() noexcept {
  if (pid_ <= 0) return;
  int status = 0;
  kill_and_reap(pid_, status);
  reap(status);
}

void ServeProcess::reap(int status) {
  pid_ = -1;
  exit_code_ = exit_code_of(status);
}

void ServeProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

int ServeProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  int status = 0;
  if (!wait_for(pid_, timeout, status)) return -1;
  reap(status);
  return exit_code_;
}

bool ServeProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) reap(status);
  return pid_ > 0;
}

std::string ServeProcess::stdout_text() const {
  return read_file(stdout_path_);
}

std::string ServeProcess::stderr_text() const {
  return read_file(stderr_path_);
}

ProcessResult run_promptcache(const std::vector<std::string>& args, const EnvVars& env,
                              std::chrono::milliseconds timeout) {
  const std::string dir = make_temp_dir();
  ProcessResult result;
  try {
    const pid_t pid = spawn(args, env, dir + "/stdout.log", dir + "/stderr.log");
    int status = 0;
    if (wait_for(pid, timeout, status)) {
      result.exit_code = exit_code_of(status);
    } else {
      result.timed_out = true;
      kill_and_reap(pid, status);
    }
    result.out = read_file(dir + "/stdout.log");
    result.err = read_file(dir + "/stderr.log");
  } catch (...) {
    remove_dir(dir);
    throw;
  }
  remove_dir(dir);
  return result;
}

}  // namespace promptcache::testing
