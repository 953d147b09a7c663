#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "support/process.hpp"

namespace promptcache::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kReadyTimeout{10000};
constexpr milliseconds kPollInterval{20};
constexpr milliseconds kTermTimeout{5000};
constexpr milliseconds kRestartBusyTimeout{5000};
constexpr milliseconds kCliDefaultTimeout{10000};
constexpr int kMaxPortAttempts = 5;
constexpr const char* kLabel = "promptcache::testing::RedisServer";

// Finds `name` on PATH, then in the given fallback locations. Throws if not found.
std::string find_executable(const std::string& name, const std::vector<std::string>& fallbacks) {
  if (const char* path_env = std::getenv("PATH")) {
    std::stringstream ss(path_env);
    std::string entry;
    while (std::getline(ss, entry, ':')) {
      if (entry.empty()) entry = ".";
      std::string candidate = entry + "/" + name;
      if (detail::is_executable(candidate)) return candidate;
    }
  }
  for (const auto& f : fallbacks) {
    if (detail::is_executable(f)) return f;
  }
  throw std::runtime_error("promptcache::testing: cannot find executable '" + name +
                           "' on PATH or in fallback locations");
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

// Runs argv (argv[0] must be an absolute path) with stdin=/dev/null, capturing stdout/stderr.
// Kills the child and sets timed_out if it does not finish within `timeout`.
detail::RunResult run_process(const std::vector<std::string>& args, milliseconds timeout) {
  return detail::run_captured({.argv = args}, timeout);
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
  detail::RunResult r = run_process(args, milliseconds(60000));
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error(
        "promptcache::testing::TlsMaterial: `" + join_args(args) + "` failed (" +
        (r.timed_out ? "timeout" : "exit code " + std::to_string(r.exit_code)) + "): " + r.err +
        r.out);
  }
}

// Binds 127.0.0.1:port without listening: connecting is refused as with no socket, but the
// kernel hands the port to no bind(127.0.0.1:0) without SO_REUSEADDR (free_loopback_port()) and
// to no outgoing connection. SO_REUSEADDR lets the bind succeed although the killed server's
// connections linger in TIME_WAIT. Best effort: returns the socket, or -1 if the bind fails.
int hold_port(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// free_port
// ---------------------------------------------------------------------------------------------

std::uint16_t free_port() {
  return detail::free_loopback_port();
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
  dir = detail::make_temp_dir("promptcache-tls-");
  owner_pid_ = ::getpid();
  try {
    const std::string cnf = dir + "/openssl.cnf";
    detail::write_text(cnf,
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
    detail::write_text(server_ext,
                       "basicConstraints = critical,CA:FALSE\n"
                       "keyUsage = critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage = serverAuth\n"
                       "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
                       "subjectKeyIdentifier = hash\n"
                       "authorityKeyIdentifier = keyid,issuer\n");
    const std::string client_ext = dir + "/client.ext";
    detail::write_text(client_ext,
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
    detail::remove_dir(dir);
    throw;
  }
}

TlsMaterial::~TlsMaterial() {
  // Only the creating process removes the files (a forked child running exit handlers must not).
  if (::getpid() == owner_pid_) detail::remove_dir(dir);
}

// ---------------------------------------------------------------------------------------------
// RedisServer
// ---------------------------------------------------------------------------------------------

RedisServer::RedisServer(RedisServerOptions opts) : opts_(std::move(opts)) {
  server_bin_ =
      find_executable("redis-server", {"/usr/bin/redis-server", "/usr/local/bin/redis-server"});
  cli_bin_ = find_executable("redis-cli", {"/usr/bin/redis-cli", "/usr/local/bin/redis-cli"});
  if (opts_.tls) (void)TlsMaterial::get();  // generate before starting (may throw)

  dir_ = detail::make_temp_dir("promptcache-redis-");
  conf_path_ = dir_ + "/redis.conf";
  log_path_ = dir_ + "/redis.log";
  stdio_path_ = dir_ + "/redis.stdio.log";
  if (opts_.unix_socket) unix_path_ = dir_ + "/redis.sock";

  try {
    if (detail::launch_on_free_port(port_, kMaxPortAttempts,
                                    [&] { return launch_once() == LaunchResult::kReady; })) {
      run_startup_commands();
      return;
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
  release_port();
  detail::remove_dir(dir_);
}

void RedisServer::release_port() noexcept {
  if (port_hold_fd_ >= 0) ::close(port_hold_fd_);
  port_hold_fd_ = -1;
}

void RedisServer::terminate_gracefully() noexcept {
  if (pid_ <= 0) return;
  if (!detail::terminate_and_wait(pid_, SIGTERM, kTermTimeout)) detail::kill_and_reap(pid_);
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
  detail::write_text(conf_path_, c.str());
}

RedisServer::Probe RedisServer::probe_server() const {
  Probe probe;
  std::string ping_reply;
  std::string info_reply;
  if (opts_.tls) {
    // No TLS client in this library: use redis-cli (slower, ~30 ms per call).
    detail::RunResult ping = run_process(cli_command({"PING"}), milliseconds(2000));
    ping_reply = ping.timed_out ? std::string() : ping.out + ping.err;
    probe.reply = ping_reply;
    probe.up = ping_reply.find("PONG") != std::string::npos ||
               ping_reply.find("NOAUTH") != std::string::npos;
    if (!probe.up) return probe;
    detail::RunResult info = run_process(cli_command({"INFO", "server"}), milliseconds(2000));
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
  // Before the first successful start the file must be (re)written: a retry on a new port needs
  // the new port in it.
  if (!started_ || !(opts_.keep_config || opts_.sentinel)) write_config();
  const std::uintmax_t log_offset = detail::file_size_or_zero(log_path_);
  const std::uintmax_t stdio_offset = detail::file_size_or_zero(stdio_path_);
  {
    const detail::Fd dev_null = detail::open_dev_null();
    const detail::Fd stdio = detail::open_append(stdio_path_, 0600);
    std::vector<std::string> argv{server_bin_, conf_path_};
    if (opts_.sentinel) argv.push_back("--sentinel");
    pid_ = detail::spawn({.argv = std::move(argv), .label = kLabel},
                         {.in = dev_null.get(), .out = stdio.get(), .err = stdio.get()});
  }

  auto new_output = [&]() {
    std::string log = detail::read_file(log_path_);
    std::string stdio = detail::read_file(stdio_path_);
    return (log_offset < log.size() ? log.substr(log_offset) : std::string()) +
           (stdio_offset < stdio.size() ? stdio.substr(stdio_offset) : std::string());
  };

  std::string reply;
  const detail::StartupResult startup =
      detail::await_startup(pid_, kReadyTimeout, kPollInterval, [&] {
        const Probe probe = probe_server();
        reply = probe.reply;
        // Make sure it is *our* server answering (and not some other process that grabbed the
        // port while ours is about to fail with "Address already in use").
        return probe.up && (probe.server_pid < 0 || probe.server_pid == static_cast<long>(pid_));
      });
  switch (startup.state) {
    case detail::StartupState::kReady:
      started_ = true;
      return LaunchResult::kReady;
    case detail::StartupState::kExited:
      pid_ = -1;
      if (new_output().find("Address already in use") != std::string::npos) {
        return LaunchResult::kAddressInUse;
      }
      throw std::runtime_error("promptcache::testing::RedisServer: redis-server (port " +
                               std::to_string(port_) + ") exited during startup with " +
                               detail::describe_status(startup.status) + ". Log tail:\n" +
                               log_tail());
    case detail::StartupState::kTimedOut:
      break;
  }
  detail::kill_and_reap(pid_);
  pid_ = -1;
  throw std::runtime_error("promptcache::testing::RedisServer: redis-server (port " +
                           std::to_string(port_) + ") did not answer PING within " +
                           std::to_string(kReadyTimeout.count()) +
                           " ms. Last PING reply: " + reply + "\nLog tail:\n" + log_tail());
}

std::uint16_t RedisServer::port() const {
  return port_;
}
std::string RedisServer::unix_path() const {
  return unix_path_;
}
std::string RedisServer::url() const {
  return std::string(opts_.tls ? "rediss" : "redis") + "://" + address();
}
std::string RedisServer::address() const {
  return "127.0.0.1:" + std::to_string(port_);
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
  if (pid_ > 0 && detail::reap_if_exited(pid_)) pid_ = -1;
}

bool RedisServer::running() const {
  reap_if_exited();
  return pid_ > 0;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  detail::kill_and_reap(pid_);
  pid_ = -1;
  if (opts_.hold_port_while_stopped) port_hold_fd_ = hold_port(port_);
}

void RedisServer::start() {
  if (running()) return;
  release_port();
  if (detail::relaunch_on_same_port(kRestartBusyTimeout,
                                    [&] { return launch_once() == LaunchResult::kReady; })) {
    run_startup_commands();
    return;
  }
  throw std::runtime_error("promptcache::testing::RedisServer::start: port " +
                           std::to_string(port_) + " still busy after " +
                           std::to_string(kRestartBusyTimeout.count()) + " ms. Log tail:\n" +
                           log_tail());
}

void RedisServer::run_startup_commands() const {
  for (const auto& command : opts_.startup_commands) {
    const std::string reply = cli(command);
    if (reply != "OK") {
      throw std::runtime_error("promptcache::testing::RedisServer: startup command `" +
                               join_args(command) + "` on port " + std::to_string(port_) +
                               " replied: " + reply + "\nLog tail:\n" + log_tail());
    }
  }
}

void RedisServer::freeze() {
  if (pid_ <= 0) throw std::runtime_error("promptcache::testing::RedisServer::freeze: not running");
  if (::kill(pid_, SIGSTOP) != 0) throw std::runtime_error(detail::errno_text("kill(SIGSTOP)"));
  const auto deadline = Clock::now() + milliseconds(2000);
  while (detail::proc_stat(pid_).state != 'T' && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
}

void RedisServer::thaw() {
  if (pid_ <= 0) throw std::runtime_error("promptcache::testing::RedisServer::thaw: not running");
  if (::kill(pid_, SIGCONT) != 0) throw std::runtime_error(detail::errno_text("kill(SIGCONT)"));
  const auto deadline = Clock::now() + milliseconds(2000);
  while (detail::proc_stat(pid_).state == 'T' && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
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
  detail::RunResult r = run_process(cli_command(args), timeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error("promptcache::testing::RedisServer::cli(" + join_args(args) +
                             ") on port " + std::to_string(port_) + " failed: " +
                             (r.timed_out
                                  ? "timed out after " + std::to_string(timeout.count()) + " ms"
                                  : "exit code " + std::to_string(r.exit_code)) +
                             "; stdout: " + r.out + "; stderr: " + r.err);
  }
  return detail::strip_trailing_newlines(r.out);
}

std::string RedisServer::log_tail(std::size_t lines) const {
  std::string out = detail::file_tail(log_path_, lines);
  std::string stdio = detail::file_tail(stdio_path_, lines);
  if (!stdio.empty()) {
    if (!out.empty()) out += "\n";
    out += "--- redis-server stdout/stderr ---\n" + stdio;
  }
  return out;
}

std::string address_list(const std::vector<std::unique_ptr<RedisServer>>& servers) {
  std::string out;
  for (const auto& s : servers) {
    if (!out.empty()) out += ',';
    out += s->address();
  }
  return out;
}

}  // namespace promptcache::testing
