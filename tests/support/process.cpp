#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace promptcache::testing::detail {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Everything the child needs, prepared before fork() so that the child only calls
// async-signal-safe functions (the parent may be multi-threaded).
struct ChildSetup {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;  // empty: keep ours (`environ`)
  std::string cwd;
  std::optional<RunAs> run_as;
  std::optional<unsigned> max_open_files;
  std::string label;
  ChildStdio stdio;
  pid_t parent_pid = 0;
  int max_fd = 1024;

  ChildSetup(const ChildSpec& spec, ChildStdio child_stdio)
      : argv_storage(spec.argv),
        cwd(spec.cwd),
        run_as(spec.run_as),
        max_open_files(spec.max_open_files),
        label(spec.label),
        stdio(child_stdio) {
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (spec.env) {
      env_storage = *spec.env;
      for (auto& e : env_storage) envp.push_back(e.data());
      envp.push_back(nullptr);
    }
    parent_pid = ::getpid();
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      max_fd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 65536));
    } else {
      max_fd = 65536;
    }
  }
};

// Writes "<label>: <what>\n" to the child's stderr and exits (async-signal-safe).
[[noreturn]] void child_fail(const ChildSetup& s, const char* what) {
  (void)!::write(2, s.label.data(), s.label.size());
  (void)!::write(2, ": ", 2);
  (void)!::write(2, what, std::strlen(what));
  (void)!::write(2, "\n", 1);
  ::_exit(127);
}

// Runs in the forked child. Never returns.
[[noreturn]] void exec_child(const ChildSetup& s) {
  // stdio first, so that child_fail() below writes to where the caller looks (a log or a pipe).
  if (s.stdio.in >= 0 && ::dup2(s.stdio.in, 0) < 0) ::_exit(127);
  if (s.stdio.out >= 0 && ::dup2(s.stdio.out, 1) < 0) ::_exit(127);
  if (s.stdio.err >= 0 && ::dup2(s.stdio.err, 2) < 0) ::_exit(127);

  // Groups first, then the group id, then the user id (after setuid we could no longer change
  // the others).
  if (s.run_as) {
    if (::setgroups(1, &s.run_as->gid) != 0) child_fail(s, "setgroups failed");
    if (::setgid(s.run_as->gid) != 0) child_fail(s, "setgid failed");
    if (::setuid(s.run_as->uid) != 0) child_fail(s, "setuid failed");
  }
  // Die with the parent (thread) so that a crashed test never leaves processes behind. This must
  // come after setuid(): changing the effective user id clears the parent-death signal.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != s.parent_pid) ::_exit(127);  // parent already gone

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

  // The test's working dir may not be accessible to another user (initdb and postgres fail if
  // they cannot resolve the current directory).
  if (!s.cwd.empty() && ::chdir(s.cwd.c_str()) != 0) child_fail(s, "chdir failed");
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < s.max_fd; ++fd) ::close(fd);
  }
  if (s.max_open_files) {
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = *s.max_open_files;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) child_fail(s, "setrlimit failed");
  }
  ::execve(s.argv[0], s.argv.data(), s.envp.empty() ? environ : s.envp.data());
  child_fail(s, "execve failed");
}

// A pipe with both ends close-on-exec: the child gets its end through dup2() only, so no other
// child spawned meanwhile (by another thread) holds it open and delays the EOF.
void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2] = {-1, -1};
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
}

std::string tail_lines(const std::string& text, std::size_t lines) {
  if (lines == 0 || text.empty()) return {};
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  std::size_t pos = end;
  std::size_t count = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n') {
      if (++count == lines) break;
    }
    --pos;
  }
  return text.substr(pos, end - pos);
}

}  // namespace

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// ---------------------------------------------------------------------------------------------
// Files and text
// ---------------------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("promptcache::testing: cannot write " + path);
}

std::uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string file_tail(const std::string& path, std::size_t lines) {
  return tail_lines(read_file(path), lines);
}

std::string strip_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// ---------------------------------------------------------------------------------------------
// Temp dirs and ports
// ---------------------------------------------------------------------------------------------

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = "/tmp/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp " + templ));
  return std::string(buf.data());
}

void remove_dir(const std::string& dir) noexcept {
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::uint16_t free_loopback_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_text("free_port: socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error(errno_text("free_port: bind 127.0.0.1:0"));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(errno_text("free_port: getsockname"));
  }
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------------

void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Fd open_dev_null() {
  Fd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw std::runtime_error(errno_text("open /dev/null"));
  return fd;
}

Fd open_append(const std::string& path, mode_t mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode));
  if (fd.get() < 0) throw std::runtime_error(errno_text("open " + path));
  return fd;
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

pid_t spawn(const ChildSpec& spec, ChildStdio stdio) {
  const ChildSetup setup(spec, stdio);
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(setup);
  if (pid < 0) throw std::runtime_error(errno_text("fork " + spec.argv.front()));
  return pid;
}

RunResult run_captured(const ChildSpec& spec, milliseconds timeout) {
  Fd out_read, out_write, err_read, err_write;
  make_pipe(out_read, out_write);
  make_pipe(err_read, err_write);
  pid_t pid = -1;
  {
    const Fd dev_null = open_dev_null();
    pid = spawn(spec, {.in = dev_null.get(), .out = out_write.get(), .err = err_write.get()});
  }
  // Only the child may hold the write ends now, so that EOF comes once it exits.
  out_write.reset();
  err_write.reset();

  RunResult result;
  auto deadline = Clock::now() + timeout;
  Fd* fds[2] = {&out_read, &err_read};
  std::string* sinks[2] = {&result.out, &result.err};
  while (out_read.get() >= 0 || err_read.get() >= 0) {
    auto now = Clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      break;
    }
    int wait_ms =
        static_cast<int>(std::chrono::duration_cast<milliseconds>(deadline - now).count() + 1);
    pollfd pfds[2];
    nfds_t n = 0;
    int idx[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i]->get() >= 0) {
        pfds[n] = pollfd{fds[i]->get(), POLLIN, 0};
        idx[n] = i;
        ++n;
      }
    }
    int pr = ::poll(pfds, n, wait_ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (nfds_t k = 0; k < n; ++k) {
      if (pfds[k].revents == 0) continue;
      int i = idx[k];
      char buf[4096];
      ssize_t r = ::read(fds[i]->get(), buf, sizeof(buf));
      if (r > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        fds[i]->reset();
      }
    }
  }
  // Before waiting: a child still writing into a pipe nobody reads gets EPIPE instead of
  // blocking until the timeout.
  out_read.reset();
  err_read.reset();

  if (result.timed_out) {
    kill_and_reap(pid);
    return result;
  }
  int status = 0;
  if (!wait_for_exit(pid,
                     std::chrono::duration_cast<milliseconds>(
                         std::max(deadline - Clock::now(), Clock::duration(0))) +
                         milliseconds(100),
                     &status)) {
    result.timed_out = true;
    kill_and_reap(pid);
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool reap_if_exited(pid_t pid, int* status) {
  int st = 0;
  const pid_t r = ::waitpid(pid, &st, WNOHANG);
  if (r != pid && !(r < 0 && errno == ECHILD)) return false;
  if (status != nullptr) *status = r == pid ? st : 0;
  return true;
}

bool wait_for_exit(pid_t pid, milliseconds timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status != nullptr) *status = st;
      return true;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more (ECHILD): treat as gone
      if (status != nullptr) *status = 0;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

int kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool terminate_and_wait(pid_t pid, int sig, milliseconds timeout) {
  ::kill(pid, SIGCONT);
  ::kill(pid, sig);
  return wait_for_exit(pid, timeout);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

ProcStat proc_stat(pid_t pid) {
  ProcStat st;
  // The command name in parentheses may itself contain ") ", so split at the last one.
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return st;
  std::istringstream rest(stat.substr(close_paren + 2));
  rest >> st.state >> st.ppid;
  return st;
}

std::vector<pid_t> child_pids(pid_t parent) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (proc_stat(pid).ppid == parent) pids.push_back(pid);
  }
  return pids;
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  return proc_stat(pid).state == 'Z';
}

bool wait_gone(const std::vector<pid_t>& pids, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (pid_t pid : pids) {
    while (!process_gone(pid)) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  return true;
}

}  // namespace promptcache::testing::detail
