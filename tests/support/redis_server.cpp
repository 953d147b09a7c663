#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace promptcache::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kReadyTimeout{10000};
constexpr milliseconds kPollInterval{20};
constexpr milliseconds kTermTimeout{5000};
constexpr milliseconds kRestartBusyTimeout{5000};
constexpr milliseconds kCliDefaultTimeout{10000};
constexpr int kMaxPortAttempts = 5;

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

// Finds `name` on PATH, then in the given fallback locations. Throws if not found.
std::string find_executable(const std::string& name, const std::vector<std::string>& fallbacks) {
  if (const char* path_env = std::getenv("PATH")) {
    std::stringstream ss(path_env);
    std::string entry;
    while (std::getline(ss, entry, ':')) {
      if (entry.empty()) entry = ".";
      std::string candidate = entry + "/" + name;
      if (is_executable(candidate)) return candidate;
    }
  }
  for (const auto& f : fallbacks) {
    if (is_executable(f)) return f;
  }
  throw std::runtime_error("promptcache::testing: cannot find executable '" + name +
                           "' on PATH or in fallback locations");
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

// Quotes a value for redis.conf (sdssplitargs double-quote syntax).
std::string conf_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  out += "\"";
  return out;
}

std::string join_args(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

void sleep_for(milliseconds d) {
  std::this_thread::sleep_for(d);
}

// Everything the child needs, prepared before fork() so that the child only calls
// async-signal-safe functions (the parent may be multi-threaded).
struct ChildSetup {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  pid_t parent_pid = 0;
  int max_fd = 1024;

  explicit ChildSetup(std::vector<std::string> args) : argv_storage(std::move(args)) {
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
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
  // Die with the parent (thread) so that a crashed test never leaves processes behind.
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

  if (s.stdin_fd >= 0 && ::dup2(s.stdin_fd, 0) < 0) ::_exit(127);
  if (s.stdout_fd >= 0 && ::dup2(s.stdout_fd, 1) < 0) ::_exit(127);
  if (s.stderr_fd >= 0 && ::dup2(s.stderr_fd, 2) < 0) ::_exit(127);
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < s.max_fd; ++fd) ::close(fd);
  }
  ::execv(s.argv[0], s.argv.data());
  ::_exit(127);
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

struct ProcResult {
  int exit_code = -1;  // -1 if killed by a signal / timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] must be an absolute path) with stdin=/dev/null, capturing stdout/stderr.
// Kills the child and sets timed_out if it does not finish within `timeout`.
ProcResult run_process(const std::vector<std::string>& args, milliseconds timeout) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error(errno_text("pipe2"));
  }
  int dev_null = -1;
  try {
    dev_null = open_dev_null();
  } catch (...) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw;
  }
  ChildSetup setup(args);
  setup.stdin_fd = dev_null;
  setup.stdout_fd = out_pipe[1];
  setup.stderr_fd = err_pipe[1];

  pid_t pid = ::fork();
  if (pid == 0) exec_child(setup);
  int saved_errno = errno;
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  close_fd(dev_null);
  if (pid < 0) {
    close_fd(out_pipe[0]);
    close_fd(err_pipe[0]);
    errno = saved_errno;
    throw std::runtime_error(errno_text("fork"));
  }

  ProcResult result;
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

// ---------------------------------------------------------------------------------------------
// Minimal RESP over TCP (used for fast readiness probes of non-TLS servers)
// ---------------------------------------------------------------------------------------------

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Splits complete top-level replies (simple string, error, integer, bulk string) off `buf`.
// Returns false on a reply type this minimal parser does not handle.
bool parse_replies(std::string& buf, std::vector<std::string>& replies) {
  for (;;) {
    if (buf.empty()) return true;
    auto eol = buf.find("\r\n");
    if (eol == std::string::npos) return true;
    char type = buf[0];
    if (type == '+' || type == '-' || type == ':') {
      replies.push_back(buf.substr(0, eol));
      buf.erase(0, eol + 2);
    } else if (type == '$') {
      long len = std::strtol(buf.c_str() + 1, nullptr, 10);
      if (len < 0) {
        replies.emplace_back();
        buf.erase(0, eol + 2);
        continue;
      }
      std::size_t total = eol + 2 + static_cast<std::size_t>(len) + 2;
      if (buf.size() < total) return true;
      replies.push_back(buf.substr(eol + 2, static_cast<std::size_t>(len)));
      buf.erase(0, total);
    } else {
      return false;
    }
  }
}

// Connects to 127.0.0.1:port, sends `request`, and reads until `expected` replies arrived, the
// connection closed, or ~1 s passed. Returns the replies received (empty if connect failed).
std::vector<std::string> raw_tcp_exchange(std::uint16_t port, const std::string& request,
                                          std::size_t expected) {
  std::vector<std::string> replies;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return replies;
  timeval tv{0, 250 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return replies;
  }
  std::string buf;
  const auto deadline = Clock::now() + milliseconds(1000);
  while (replies.size() < expected && Clock::now() < deadline) {
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      if (!parse_replies(buf, replies)) break;
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      break;
    }
  }
  ::close(fd);
  return replies;
}

// ---------------------------------------------------------------------------------------------
// openssl
// ---------------------------------------------------------------------------------------------

void run_openssl(const std::string& openssl, std::vector<std::string> args) {
  args.insert(args.begin(), openssl);
  ProcResult r = run_process(args, milliseconds(60000));
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error(
        "promptcache::testing::TlsMaterial: `" + join_args(args) + "` failed (" +
        (r.timed_out ? "timeout" : "exit code " + std::to_string(r.exit_code)) + "): " + r.err +
        r.out);
  }
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("promptcache::testing: cannot write " + path);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// free_port
// ---------------------------------------------------------------------------------------------

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errno_text("free_port: socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    throw std::runtime_error(errno_text("free_port: bind 127.0.0.1:0"));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    throw std::runtime_error(errno_text("free_port: getsockname"));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------------------------
// TlsMaterial
// ---------------------------------------------------------------------------------------------

const TlsMaterial& TlsMaterial::get() {
  static TlsMaterial instance;  // thread-safe initialisation; retried if the constructor throws
  return instance;
}

TlsMaterial::TlsMaterial() {
  const std::string openssl = find_executable("openssl", {"/usr/bin/openssl"});
  dir = make_temp_dir("promptcache-tls-");
  owner_pid_ = ::getpid();
  try {
    const std::string cnf = dir + "/openssl.cnf";
    write_text(cnf,
               "[req]\n"
               "distinguished_name = dn\n"
               "prompt = no\n"
               "[dn]\n"
               "CN = promptcache-test\n"
               "[v3_ca]\n"
               "basicConstraints = critical,CA:TRUE\n"
               "keyUsage = critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier = hash\n");
    const std::string server_ext = dir + "/server.ext";
    write_text(server_ext,
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid,issuer\n");
    const std::string client_ext = dir + "/client.ext";
    write_text(client_ext,
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage = clientAuth\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid,issuer\n");

    auto genkey = [&](const std::string& path) {
      run_openssl(openssl, {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-out", path});
    };
    auto make_ca = [&](const std::string& name, const std::string& cn, std::string& crt,
                       std::string& key) {
      key = dir + "/" + name + ".key";
      crt = dir + "/" + name + ".crt";
      genkey(key);
      run_openssl(openssl, {"req", "-config", cnf, "-x509", "-new", "-key", key, "-sha256", "-days",
                            "1", "-subj", "/CN=" + cn, "-extensions", "v3_ca", "-out", crt});
    };
    int serial = 1000;
    auto make_leaf = [&](const std::string& name, const std::string& cn, const std::string& ext,
                         const std::string& ca_crt, const std::string& ca_k, std::string& crt,
                         std::string& key) {
      key = dir + "/" + name + ".key";
      crt = dir + "/" + name + ".crt";
      const std::string csr = dir + "/" + name + ".csr";
      genkey(key);
      run_openssl(openssl,
                  {"req", "-config", cnf, "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr});
      run_openssl(openssl, {"x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_k,
                            "-set_serial", std::to_string(++serial), "-sha256", "-days", "1",
                            "-extfile", ext, "-out", crt});
    };

    make_ca("ca", "promptcache-test-ca", ca_file, ca_key);
    make_leaf("server", "localhost", server_ext, ca_file, ca_key, server_cert, server_key);
    make_leaf("client", "promptcache-test-client", client_ext, ca_file, ca_key, client_cert,
              client_key);
    make_ca("other-ca", "promptcache-test-other-ca", other_ca_file, other_ca_key);
    make_leaf("other-client", "promptcache-test-other-client", client_ext, other_ca_file,
              other_ca_key, other_client_cert, other_client_key);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    throw;
  }
}

TlsMaterial::~TlsMaterial() {
  // Only the creating process removes the files (a forked child running exit handlers must not).
  if (!dir.empty() && ::getpid() == owner_pid_) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

// ---------------------------------------------------------------------------------------------
// RedisServer
// ---------------------------------------------------------------------------------------------

RedisServer::RedisServer(RedisServerOptions opts) : opts_(std::move(opts)) {
  server_bin_ =
      find_executable("redis-server", {"/usr/bin/redis-server", "/usr/local/bin/redis-server"});
  cli_bin_ = find_executable("redis-cli", {"/usr/bin/redis-cli", "/usr/local/bin/redis-cli"});
  if (opts_.tls) (void)TlsMaterial::get();  // generate before starting (may throw)

  dir_ = make_temp_dir("promptcache-redis-");
  conf_path_ = dir_ + "/redis.conf";
  log_path_ = dir_ + "/redis.log";
  stdio_path_ = dir_ + "/redis.stdio.log";
  if (opts_.unix_socket) unix_path_ = dir_ + "/redis.sock";

  try {
    for (int attempt = 1; attempt <= kMaxPortAttempts; ++attempt) {
      port_ = free_port();
      if (launch_once() == LaunchResult::kReady) return;
    }
    throw std::runtime_error(
        "promptcache::testing::RedisServer: could not bind a free port after " +
        std::to_string(kMaxPortAttempts) + " attempts (Address already in use). Log tail:\n" +
        log_tail());
  } catch (...) {
    cleanup();
    throw;
  }
}

RedisServer::~RedisServer() {
  cleanup();
}

void RedisServer::cleanup() noexcept {
  terminate_gracefully();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void RedisServer::terminate_gracefully() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  if (!wait_for_exit(pid_, kTermTimeout)) kill_and_reap(pid_);
  pid_ = -1;
}

void RedisServer::write_config() const {
  std::ostringstream c;
  c << "# generated by promptcache::testing::RedisServer\n";
  c << "daemonize no\n";
  c << "bind 127.0.0.1\n";
  c << "protected-mode no\n";
  c << "dir " << conf_quote(dir_) << "\n";
  c << "logfile " << conf_quote(log_path_) << "\n";
  c << "loglevel notice\n";
  c << "save \"\"\n";
  c << "appendonly no\n";
  c << "always-show-logo no\n";
  c << "enable-debug-command yes\n";
  if (opts_.tls) {
    const auto& tls = TlsMaterial::get();
    c << "port 0\n";
    c << "tls-port " << port_ << "\n";
    c << "tls-cert-file " << conf_quote(tls.server_cert) << "\n";
    c << "tls-key-file " << conf_quote(tls.server_key) << "\n";
    c << "tls-ca-cert-file " << conf_quote(tls.ca_file) << "\n";
    c << "tls-auth-clients optional\n";
  } else {
    c << "port " << port_ << "\n";
  }
  if (opts_.unix_socket) {
    c << "unixsocket " << conf_quote(unix_path_) << "\n";
    c << "unixsocketperm 700\n";
  }
  if (!opts_.password.empty()) {
    c << "requirepass " << conf_quote(opts_.password) << "\n";
  } else if (!opts_.acl_user.empty()) {
    c << "user default off\n";
  }
  if (!opts_.acl_user.empty()) {
    c << "user " << conf_quote(opts_.acl_user) << " on " << conf_quote(">" + opts_.acl_password)
      << " ~* &* +@all\n";
  }
  for (const auto& line : opts_.extra_config) c << line << "\n";
  write_text(conf_path_, c.str());
}

RedisServer::Probe RedisServer::probe_server() const {
  Probe probe;
  std::string ping_reply;
  std::string info_reply;
  if (opts_.tls) {
    // No TLS client in this library: use redis-cli (slower, ~30 ms per call).
    ProcResult ping = run_process(cli_command({"PING"}), milliseconds(2000));
    ping_reply = ping.timed_out ? std::string() : ping.out + ping.err;
    probe.reply = ping_reply;
    probe.up = ping_reply.find("PONG") != std::string::npos ||
               ping_reply.find("NOAUTH") != std::string::npos;
    if (!probe.up) return probe;
    ProcResult info = run_process(cli_command({"INFO", "server"}), milliseconds(2000));
    info_reply = info.out;
  } else {
    // Plain TCP: pipeline [AUTH] PING INFO in RESP and read the replies.
    std::string request;
    std::size_t expected = 2;
    if (!opts_.acl_user.empty()) {
      request += resp_command({"AUTH", opts_.acl_user, opts_.acl_password});
      ++expected;
    } else if (!opts_.password.empty()) {
      request += resp_command({"AUTH", opts_.password});
      ++expected;
    }
    request += resp_command({"PING"});
    request += resp_command({"INFO", "server"});
    std::vector<std::string> replies = raw_tcp_exchange(port_, request, expected);
    if (replies.size() < expected - 1) {
      probe.reply = replies.empty() ? "(no reply)" : replies.back();
      return probe;
    }
    ping_reply = replies[expected - 2];
    probe.reply = ping_reply;
    probe.up = ping_reply.rfind("+PONG", 0) == 0 || ping_reply.rfind("-NOAUTH", 0) == 0;
    if (replies.size() == expected) info_reply = replies[expected - 1];
  }
  auto pos = info_reply.find("process_id:");
  if (pos != std::string::npos)
    probe.server_pid = std::strtol(info_reply.c_str() + pos + 11, nullptr, 10);
  return probe;
}

RedisServer::LaunchResult RedisServer::launch_once() {
  write_config();
  const std::uintmax_t log_offset = file_size_or_zero(log_path_);
  const std::uintmax_t stdio_offset = file_size_or_zero(stdio_path_);

  int dev_null = open_dev_null();
  int stdio_fd = ::open(stdio_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (stdio_fd < 0) {
    close_fd(dev_null);
    throw std::runtime_error(errno_text("open " + stdio_path_));
  }
  ChildSetup setup({server_bin_, conf_path_});
  setup.stdin_fd = dev_null;
  setup.stdout_fd = stdio_fd;
  setup.stderr_fd = stdio_fd;
  pid_t pid = ::fork();
  if (pid == 0) exec_child(setup);
  int saved_errno = errno;
  close_fd(dev_null);
  close_fd(stdio_fd);
  if (pid < 0) {
    errno = saved_errno;
    throw std::runtime_error(errno_text("fork redis-server"));
  }
  pid_ = pid;

  auto new_output = [&]() {
    std::string log = read_file(log_path_);
    std::string stdio = read_file(stdio_path_);
    return (log_offset < log.size() ? log.substr(log_offset) : std::string()) +
           (stdio_offset < stdio.size() ? stdio.substr(stdio_offset) : std::string());
  };

  const auto deadline = Clock::now() + kReadyTimeout;
  std::string reply;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (new_output().find("Address already in use") != std::string::npos) {
        return LaunchResult::kAddressInUse;
      }
      throw std::runtime_error("promptcache::testing::RedisServer: redis-server (port " +
                               std::to_string(port_) + ") exited during startup with " +
                               describe_status(status) + ". Log tail:\n" + log_tail());
    }

    const Probe probe = probe_server();
    reply = probe.reply;
    // Make sure it is *our* server answering (and not some other process that grabbed the port
    // while ours is about to fail with "Address already in use").
    if (probe.up && (probe.server_pid < 0 || probe.server_pid == static_cast<long>(pid_))) {
      return LaunchResult::kReady;
    }

    if (Clock::now() >= deadline) {
      kill_and_reap(pid_);
      pid_ = -1;
      throw std::runtime_error("promptcache::testing::RedisServer: redis-server (port " +
                               std::to_string(port_) + ") did not answer PING within " +
                               std::to_string(kReadyTimeout.count()) +
                               " ms. Last PING reply: " + reply + "\nLog tail:\n" + log_tail());
    }
    sleep_for(kPollInterval);
  }
}

std::uint16_t RedisServer::port() const {
  return port_;
}
std::string RedisServer::unix_path() const {
  return unix_path_;
}
std::string RedisServer::url() const {
  return std::string(opts_.tls ? "rediss" : "redis") + "://127.0.0.1:" + std::to_string(port_);
}
const std::string& RedisServer::dir() const {
  return dir_;
}
const RedisServerOptions& RedisServer::options() const {
  return opts_;
}

pid_t RedisServer::pid() const {
  reap_if_exited();
  return pid_;
}

void RedisServer::reap_if_exited() const {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) pid_ = -1;
}

bool RedisServer::running() const {
  reap_if_exited();
  return pid_ > 0;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  kill_and_reap(pid_);
  pid_ = -1;
}

void RedisServer::start() {
  if (running()) return;
  const auto deadline = Clock::now() + kRestartBusyTimeout;
  for (;;) {
    if (launch_once() == LaunchResult::kReady) return;
    if (Clock::now() >= deadline) {
      throw std::runtime_error("promptcache::testing::RedisServer::start: port " +
                               std::to_string(port_) + " still busy after " +
                               std::to_string(kRestartBusyTimeout.count()) + " ms. Log tail:\n" +
                               log_tail());
    }
    sleep_for(milliseconds(100));
  }
}

namespace {
// Returns the state letter from /proc/PID/stat, or '\0' if unreadable.
char proc_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return '\0';
  return stat[close_paren + 2];
}
}  // namespace

void RedisServer::freeze() {
  if (pid_ <= 0) throw std::runtime_error("promptcache::testing::RedisServer::freeze: not running");
  if (::kill(pid_, SIGSTOP) != 0) throw std::runtime_error(errno_text("kill(SIGSTOP)"));
  const auto deadline = Clock::now() + milliseconds(2000);
  while (proc_state(pid_) != 'T' && Clock::now() < deadline) sleep_for(milliseconds(1));
}

void RedisServer::thaw() {
  if (pid_ <= 0) throw std::runtime_error("promptcache::testing::RedisServer::thaw: not running");
  if (::kill(pid_, SIGCONT) != 0) throw std::runtime_error(errno_text("kill(SIGCONT)"));
  const auto deadline = Clock::now() + milliseconds(2000);
  while (proc_state(pid_) == 'T' && Clock::now() < deadline) sleep_for(milliseconds(1));
}

std::vector<std::string> RedisServer::cli_command(const std::vector<std::string>& args) const {
  std::vector<std::string> cmd{cli_bin_, "-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (opts_.tls) {
    const auto& tls = TlsMaterial::get();
    cmd.insert(cmd.end(), {"--tls", "--cacert", tls.ca_file, "--cert", tls.client_cert, "--key",
                           tls.client_key});
  }
  if (!opts_.acl_user.empty()) {
    cmd.insert(cmd.end(), {"--user", opts_.acl_user, "-a", opts_.acl_password});
  } else if (!opts_.password.empty()) {
    cmd.insert(cmd.end(), {"-a", opts_.password});
  }
  cmd.push_back("--no-auth-warning");
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  return cli(args, kCliDefaultTimeout);
}

std::string RedisServer::cli(const std::vector<std::string>& args, milliseconds timeout) const {
  ProcResult r = run_process(cli_command(args), timeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error("promptcache::testing::RedisServer::cli(" + join_args(args) +
                             ") on port " + std::to_string(port_) + " failed: " +
                             (r.timed_out
                                  ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                  : "exit code " + std::to_string(r.exit_code)) +
                             "; stdout: " + r.out + "; stderr: " + r.err);
  }
  return strip_trailing_newlines(r.out);
}

std::string RedisServer::log_tail(std::size_t lines) const {
  std::string out = tail_lines(read_file(log_path_), lines);
  std::string stdio = tail_lines(read_file(stdio_path_), lines);
  if (!stdio.empty()) {
    if (!out.empty()) out += "\n";
    out += "--- redis-server stdout/stderr ---\n" + stdio;
  }
  return out;
}

}  // namespace promptcache::testing
