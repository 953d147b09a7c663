#include "support/pg_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
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
#include <thread>
#include <utility>

#include "support/redis_server.hpp"  // free_port()

extern char** environ;

namespace promptcache::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kInitdbTimeout{60000};
constexpr milliseconds kReadyTimeout{20000};
constexpr milliseconds kPollInterval{20};
constexpr milliseconds kProbeTimeout{3000};
constexpr milliseconds kTermTimeout{5000};
constexpr milliseconds kKillTimeout{5000};
constexpr milliseconds kRestartBusyTimeout{5000};
constexpr milliseconds kPsqlTimeout{10000};
constexpr int kMaxPortAttempts = 5;
constexpr const char* kSuperuser = "postgres";  // initdb -U; also the OS user when we are root
constexpr const char* kPgRoot = "/usr/lib/postgresql";

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// "15" -> {15}, "9.6" -> {9, 6}; empty if `name` is not a version number.
std::vector<long> parse_version(const std::string& name) {
  std::vector<long> parts;
  std::stringstream ss(name);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.empty() ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return {};
    }
    parts.push_back(std::stol(part));
  }
  return parts;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = "/tmp/" + prefix + "XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp " + templ));
  return std::string(buf.data());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  return lines;
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

std::string strip_trailing_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Percent-encodes everything but RFC 3986 unreserved characters (for the userinfo and path of
// url()).
std::string url_encode(const std::string& s) {
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

// SQL quoting: "identifier" and 'literal' (standard_conforming_strings is on by default).
std::string quote_ident(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string quote_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void sleep_for(milliseconds d) {
  std::this_thread::sleep_for(d);
}

// The environment of every child: ours without PG* variables (PGHOST, PGPORT, PGPASSWORD,
// PGOPTIONS, ... would redirect or alter psql and the server), with HOME set to the temp dir (no
// ~/.pgpass or ~/.psqlrc of the invoking user) and the C locale (English log messages, which
// launch_once() greps for "Address already in use").
std::vector<std::string> child_environment(const std::string& home) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var(*e);
    if (var.rfind("PG", 0) == 0 || var.rfind("HOME=", 0) == 0 || var.rfind("LC_ALL=", 0) == 0) {
      continue;
    }
    env.push_back(std::move(var));
  }
  env.push_back("HOME=" + home);
  env.push_back("LC_ALL=C");
  return env;
}

// Everything the child needs, prepared before fork() so that the child only calls
// async-signal-safe functions (the parent may be multi-threaded).
struct ChildSetup {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  std::string cwd;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  pid_t parent_pid = 0;
  int max_fd = 1024;

  ChildSetup(std::vector<std::string> args, std::vector<std::string> env)
      : argv_storage(std::move(args)), env_storage(std::move(env)) {
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

// Writes `msg` to the child's stderr and exits (async-signal-safe).
[[noreturn]] void child_fail(const char* msg) {
  (void)!::write(2, msg, std::strlen(msg));
  ::_exit(127);
}

// Runs in the forked child. Never returns.
[[noreturn]] void exec_child(const ChildSetup& s) {
  if (s.stdin_fd >= 0 && ::dup2(s.stdin_fd, 0) < 0) ::_exit(127);
  if (s.stdout_fd >= 0 && ::dup2(s.stdout_fd, 1) < 0) ::_exit(127);
  if (s.stderr_fd >= 0 && ::dup2(s.stderr_fd, 2) < 0) ::_exit(127);

  // Drop root: PostgreSQL refuses to run as root. Groups first, then the group id, then the user
  // id (after setuid we could no longer change the others).
  if (s.switch_user) {
    if (::setgroups(1, &s.gid) != 0)
      child_fail("promptcache::testing::PgServer: setgroups failed\n");
    if (::setgid(s.gid) != 0) child_fail("promptcache::testing::PgServer: setgid failed\n");
    if (::setuid(s.uid) != 0) child_fail("promptcache::testing::PgServer: setuid failed\n");
  }
  // Die with the parent (thread) so that a crashed test never leaves processes behind. This must
  // come after setuid(): changing the effective user id clears the parent-death signal.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != s.parent_pid) ::_exit(127);  // parent already gone

  // Reset signal state inherited from the test process.
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);
  }

  // The test's working dir may not be accessible to the `postgres` user (initdb and postgres
  // fail if they cannot resolve the current directory).
  if (::chdir(s.cwd.c_str()) != 0) child_fail("promptcache::testing::PgServer: chdir failed\n");
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < s.max_fd; ++fd) ::close(fd);
  }
  ::execve(s.argv[0], s.argv.data(), s.envp.data());
  child_fail("promptcache::testing::PgServer: execve failed\n");
}

int open_dev_null() {
  int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(errno_text("open /dev/null"));
  return fd;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Waits for `pid` to exit, up to `timeout`. Returns true (and stores the status) if it was reaped.
bool wait_for_exit(pid_t pid, milliseconds timeout, int* status_out = nullptr) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (status_out) *status_out = status;
      return true;
    }
    if (r < 0 && errno != EINTR) return true;  // not our child any more (ECHILD): treat as gone
    if (Clock::now() >= deadline) return false;
    sleep_for(milliseconds(5));
  }
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// State letter and parent pid from /proc/PID/stat; state '\0' if unreadable (process gone).
struct ProcStat {
  char state = '\0';
  pid_t ppid = -1;
};

ProcStat proc_stat(pid_t pid) {
  ProcStat st;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return st;
  std::istringstream rest(stat.substr(close_paren + 2));
  rest >> st.state >> st.ppid;
  return st;
}

// All live processes whose parent is `parent`.
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

// True if no live process `pid` exists (gone, or a zombie not yet reaped by its new parent).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  return proc_stat(pid).state == 'Z';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// pg_bin_dir / pg_available
// ---------------------------------------------------------------------------------------------

std::string pg_bin_dir() {
  std::string best;
  std::vector<long> best_version;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kPgRoot, ec)) {
    const std::vector<long> version = parse_version(entry.path().filename().string());
    const std::string bin = entry.path().string() + "/bin";
    if (version.empty() || !is_executable(bin + "/initdb") || !is_executable(bin + "/postgres")) {
      continue;
    }
    if (best.empty() || version > best_version) {
      best = bin;
      best_version = version;
    }
  }
  return best;
}

bool pg_available() {
  return !pg_bin_dir().empty();
}

// ---------------------------------------------------------------------------------------------
// PgServer
// ---------------------------------------------------------------------------------------------

PgServer::PgServer(PgServerOptions opts) : opts_(std::move(opts)) {
  bin_dir_ = pg_bin_dir();
  if (bin_dir_.empty()) {
    throw std::runtime_error(std::string("promptcache::testing::PgServer: no PostgreSQL server "
                                         "binaries (initdb, postgres) under ") +
                             kPgRoot + "/*/bin; install the `postgresql` package");
  }
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root: run everything as the `postgres` OS user.
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(kSuperuser, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
      throw std::runtime_error(
          "promptcache::testing::PgServer: running as root, but there is no `postgres` OS user "
          "to run PostgreSQL as (the `postgresql` package creates it)");
    }
    switch_user_ = true;
    run_uid_ = pw.pw_uid;
    run_gid_ = pw.pw_gid;
  }

  dir_ = make_temp_dir("promptcache-pg-");
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/postgres.log";
  child_env_ = child_environment(dir_);

  try {
    if (switch_user_ && ::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
      throw std::runtime_error(errno_text("promptcache::testing::PgServer: chown " + dir_));
    }
    init_cluster();
    for (int attempt = 1; attempt <= kMaxPortAttempts; ++attempt) {
      port_ = free_port();
      if (launch_once() == LaunchResult::kReady) {
        run_psql(kSuperuser, "CREATE ROLE " + quote_ident(opts_.user) + " LOGIN PASSWORD " +
                                 quote_literal(opts_.password));
        run_psql(kSuperuser, "CREATE DATABASE " + quote_ident(opts_.database) + " OWNER " +
                                 quote_ident(opts_.user));
        return;
      }
    }
    throw std::runtime_error("promptcache::testing::PgServer: could not bind a free port after " +
                             std::to_string(kMaxPortAttempts) +
                             " attempts (Address already in use). Log tail:\n" + log_tail());
  } catch (...) {
    cleanup();
    throw;
  }
}

PgServer::~PgServer() {
  cleanup();
}

void PgServer::cleanup() noexcept {
  terminate_gracefully();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void PgServer::terminate_gracefully() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);  // in case a test stopped it
  ::kill(pid_, SIGINT);   // "fast" shutdown: disconnect clients, checkpoint, exit
  if (wait_for_exit(pid_, kTermTimeout)) {
    pid_ = -1;
    return;
  }
  kill_server();
}

void PgServer::kill_server() noexcept {
  if (pid_ <= 0) return;
  // Stop the postmaster first so that it cannot fork new children while we collect them.
  ::kill(pid_, SIGSTOP);
  const auto stop_deadline = Clock::now() + milliseconds(1000);
  while (proc_stat(pid_).state != 'T' && Clock::now() < stop_deadline) sleep_for(milliseconds(1));
  const std::vector<pid_t> children = child_pids(pid_);
  for (pid_t child : children) ::kill(child, SIGKILL);
  kill_and_reap(pid_);
  pid_ = -1;
  // The children are reparented to init; wait until they are gone, so that a restart does not
  // find them still attached to the old shared memory ("pre-existing shared memory block is still
  // in use").
  const auto deadline = Clock::now() + kKillTimeout;
  for (pid_t child : children) {
    while (!process_gone(child) && Clock::now() < deadline) sleep_for(milliseconds(5));
  }
  // Release the SysV shared memory segment a crashed server leaves behind; postmaster.pid line 7
  // is "KEY ID". A restart would clean it up itself, but the last stop() of a test would leak it.
  const std::vector<std::string> lines = split_lines(read_file(data_dir_ + "/postmaster.pid"));
  if (lines.size() >= 7) {
    std::istringstream shm_line(lines[6]);
    unsigned long key = 0;
    unsigned long id = 0;
    shmid_ds ds{};
    if (shm_line >> key >> id && ::shmctl(static_cast<int>(id), IPC_STAT, &ds) == 0 &&
        static_cast<unsigned long>(ds.shm_perm.__key) == key && ds.shm_nattch == 0) {
      ::shmctl(static_cast<int>(id), IPC_RMID, nullptr);
    }
  }
}

pid_t PgServer::spawn(const std::vector<std::string>& args, int stdin_fd, int stdout_fd,
                      int stderr_fd) const {
  ChildSetup setup(args, child_env_);
  setup.cwd = dir_;
  setup.switch_user = switch_user_;
  setup.uid = run_uid_;
  setup.gid = run_gid_;
  setup.stdin_fd = stdin_fd;
  setup.stdout_fd = stdout_fd;
  setup.stderr_fd = stderr_fd;
  pid_t pid = ::fork();
  if (pid == 0) exec_child(setup);
  if (pid < 0) throw std::runtime_error(errno_text("fork " + args.front()));
  return pid;
}

PgServer::RunResult PgServer::run(const std::vector<std::string>& args,
                                  milliseconds timeout) const {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error(errno_text("pipe2"));
  }
  int dev_null = -1;
  pid_t pid = -1;
  try {
    dev_null = open_dev_null();
    pid = spawn(args, dev_null, out_pipe[1], err_pipe[1]);
  } catch (...) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], dev_null}) {
      if (fd >= 0) ::close(fd);
    }
    throw;
  }
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  close_fd(dev_null);

  RunResult result;
  auto deadline = Clock::now() + timeout;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  while (fds[0] >= 0 || fds[1] >= 0) {
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
      if (fds[i] >= 0) {
        pfds[n] = pollfd{fds[i], POLLIN, 0};
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
      ssize_t r = ::read(fds[i], buf, sizeof(buf));
      if (r > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_fd(fds[i]);
      }
    }
  }
  close_fd(fds[0]);
  close_fd(fds[1]);

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

void PgServer::init_cluster() {
  // -A trust makes initdb accept a superuser without password; pg_hba.conf is replaced below.
  // --no-sync: nothing is flushed to disk (test data is throwaway).
  const std::vector<std::string> args{
      bin_dir_ + "/initdb", "-D", data_dir_,  "-U", kSuperuser, "-A", "trust", "-E", "UTF8",
      "--locale",           "C",  "--no-sync"};
  const RunResult r = run(args, kInitdbTimeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error(
        "promptcache::testing::PgServer: initdb failed (" +
        (r.timed_out ? "timeout" : "exit code " + std::to_string(r.exit_code)) + "): " + r.err +
        r.out);
  }
  // Trust only the unix socket (in our private dir); TCP needs the role's password. Truncating
  // the existing file keeps its owner (the server's OS user) and mode.
  write_text(data_dir_ + "/pg_hba.conf",
             "# generated by promptcache::testing::PgServer\n"
             "local all all trust\n"
             "host all all 127.0.0.1/32 scram-sha-256\n");
}

bool PgServer::postmaster_ready() const {
  // postmaster.pid: line 1 is the postmaster's pid, line 8 its status ("starting", "ready", ...).
  // "ready" is written once the listen sockets are open and the startup process has finished.
  const std::vector<std::string> lines = split_lines(read_file(data_dir_ + "/postmaster.pid"));
  return lines.size() >= 8 && lines[0] == std::to_string(pid_) && lines[7].rfind("ready", 0) == 0;
}

PgServer::LaunchResult PgServer::launch_once() {
  const std::uintmax_t log_offset = file_size_or_zero(log_path_);
  int dev_null = open_dev_null();
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    close_fd(dev_null);
    throw std::runtime_error(errno_text("open " + log_path_));
  }
  // Fast and throwaway: nothing is ever fsync()ed. synchronous_commit stays on, so that a commit
  // has written its WAL (into the page cache) before it returns and survives stop() (a SIGKILL);
  // with it off, the last ~600 ms of commits would be lost in a crash.
  const std::vector<std::string> args{bin_dir_ + "/postgres",
                                      "-D",
                                      data_dir_,
                                      "-p",
                                      std::to_string(port_),
                                      "-k",
                                      dir_,
                                      "-c",
                                      "listen_addresses=127.0.0.1",
                                      "-c",
                                      "fsync=off",
                                      "-c",
                                      "synchronous_commit=on",
                                      "-c",
                                      "full_page_writes=off",
                                      "-c",
                                      "max_connections=50",
                                      "-c",
                                      "shared_buffers=16MB",
                                      "-c",
                                      "password_encryption=scram-sha-256"};
  try {
    pid_ = spawn(args, dev_null, log_fd, log_fd);
  } catch (...) {
    close_fd(dev_null);
    close_fd(log_fd);
    throw;
  }
  close_fd(dev_null);
  close_fd(log_fd);

  const auto deadline = Clock::now() + kReadyTimeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      const std::string log = read_file(log_path_);
      if (log_offset < log.size() &&
          log.find("Address already in use", log_offset) != std::string::npos) {
        return LaunchResult::kAddressInUse;
      }
      throw std::runtime_error("promptcache::testing::PgServer: postgres (port " +
                               std::to_string(port_) + ") exited during startup with " +
                               describe_status(status) + ". Log tail:\n" + log_tail());
    }

    // postmaster.pid names *our* process (not some other server that grabbed the port), and the
    // TCP port really accepts connections.
    if (postmaster_ready()) {
      const RunResult probe = run({bin_dir_ + "/pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                   std::to_string(port_), "-U", kSuperuser, "-d", kSuperuser},
                                  kProbeTimeout);
      if (!probe.timed_out && probe.exit_code == 0) return LaunchResult::kReady;
    }

    if (Clock::now() >= deadline) {
      kill_server();
      throw std::runtime_error("promptcache::testing::PgServer: postgres (port " +
                               std::to_string(port_) + ") did not accept connections within " +
                               std::to_string(kReadyTimeout.count()) + " ms. Log tail:\n" +
                               log_tail());
    }
    sleep_for(kPollInterval);
  }
}

std::uint16_t PgServer::port() const {
  return port_;
}
std::string PgServer::url() const {
  return "postgresql://" + url_encode(opts_.user) + ":" + url_encode(opts_.password) +
         "@127.0.0.1:" + std::to_string(port_) + "/" + url_encode(opts_.database);
}
const PgServerOptions& PgServer::options() const {
  return opts_;
}
const std::string& PgServer::dir() const {
  return dir_;
}

pid_t PgServer::pid() const {
  reap_if_exited();
  return pid_;
}

void PgServer::reap_if_exited() const {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) pid_ = -1;
}

bool PgServer::running() const {
  reap_if_exited();
  return pid_ > 0;
}

void PgServer::stop() {
  kill_server();
}

void PgServer::start() {
  if (running()) return;
  const auto deadline = Clock::now() + kRestartBusyTimeout;
  for (;;) {
    if (launch_once() == LaunchResult::kReady) return;
    if (Clock::now() >= deadline) {
      throw std::runtime_error("promptcache::testing::PgServer::start: port " +
                               std::to_string(port_) + " still busy after " +
                               std::to_string(kRestartBusyTimeout.count()) + " ms. Log tail:\n" +
                               log_tail());
    }
    sleep_for(milliseconds(100));
  }
}

std::string PgServer::run_psql(const std::string& database, const std::string& sql) const {
  const RunResult r =
      run({bin_dir_ + "/psql", "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-h", dir_, "-p",
           std::to_string(port_), "-U", kSuperuser, "-d", database, "-c", sql},
          kPsqlTimeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error(
        "promptcache::testing::PgServer::psql(" + sql + ") on port " + std::to_string(port_) +
        " failed: " +
        (r.timed_out ? "timed out after " + std::to_string(kPsqlTimeout.count()) + " ms"
                     : "exit code " + std::to_string(r.exit_code)) +
        "; stdout: " + r.out + "; stderr: " + r.err);
  }
  return strip_trailing_newlines(r.out);
}

std::string PgServer::psql(const std::string& sql) const {
  return run_psql(opts_.database, sql);
}

std::string PgServer::log_tail(std::size_t lines) const {
  return tail_lines(read_file(log_path_), lines);
}

}  // namespace promptcache::testing
