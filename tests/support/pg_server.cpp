#include "support/pg_server.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "support/process.hpp"

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
constexpr const char* kLabel = "promptcache::testing::PgServer";

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

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  return lines;
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
    if (version.empty() || !detail::is_executable(bin + "/initdb") ||
        !detail::is_executable(bin + "/postgres")) {
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

  dir_ = detail::make_temp_dir("promptcache-pg-");
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/postgres.log";
  child_env_ = child_environment(dir_);

  try {
    if (switch_user_ && ::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
      throw std::runtime_error(detail::errno_text("promptcache::testing::PgServer: chown " + dir_));
    }
    init_cluster();
    if (detail::launch_on_free_port(port_, kMaxPortAttempts,
                                    [&] { return launch_once() == LaunchResult::kReady; })) {
      run_psql(kSuperuser, "CREATE ROLE " + quote_ident(opts_.user) + " LOGIN PASSWORD " +
                               quote_literal(opts_.password));
      run_psql(kSuperuser, "CREATE DATABASE " + quote_ident(opts_.database) + " OWNER " +
                               quote_ident(opts_.user));
      return;
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
  detail::remove_dir(dir_);
}

void PgServer::terminate_gracefully() noexcept {
  if (pid_ <= 0) return;
  // SIGINT: "fast" shutdown (disconnect clients, checkpoint, exit).
  if (detail::terminate_and_wait(pid_, SIGINT, kTermTimeout)) {
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
  while (detail::proc_stat(pid_).state != 'T' && Clock::now() < stop_deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  const std::vector<pid_t> children = detail::child_pids(pid_);
  for (pid_t child : children) ::kill(child, SIGKILL);
  detail::kill_and_reap(pid_);
  pid_ = -1;
  // The children are reparented to init; wait until they are gone, so that a restart does not
  // find them still attached to the old shared memory ("pre-existing shared memory block is still
  // in use").
  detail::wait_gone(children, kKillTimeout);
  // Release the SysV shared memory segment a crashed server leaves behind; postmaster.pid line 7
  // is "KEY ID". A restart would clean it up itself, but the last stop() of a test would leak it.
  const std::vector<std::string> lines =
      split_lines(detail::read_file(data_dir_ + "/postmaster.pid"));
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

detail::ChildSpec PgServer::child_spec(std::vector<std::string> args) const {
  detail::ChildSpec spec{.argv = std::move(args), .env = child_env_, .cwd = dir_, .label = kLabel};
  if (switch_user_) spec.run_as = detail::RunAs{.uid = run_uid_, .gid = run_gid_};
  return spec;
}

detail::RunResult PgServer::run(const std::vector<std::string>& args, milliseconds timeout) const {
  return detail::run_captured(child_spec(args), timeout);
}

void PgServer::init_cluster() {
  // -A trust makes initdb accept a superuser without password; pg_hba.conf is replaced below.
  // --no-sync: nothing is flushed to disk (test data is throwaway).
  const std::vector<std::string> args{
      bin_dir_ + "/initdb", "-D", data_dir_,  "-U", kSuperuser, "-A", "trust", "-E", "UTF8",
      "--locale",           "C",  "--no-sync"};
  const detail::RunResult r = run(args, kInitdbTimeout);
  if (r.timed_out || r.exit_code != 0) {
    throw std::runtime_error(
        "promptcache::testing::PgServer: initdb failed (" +
        (r.timed_out ? "timeout" : "exit code " + std::to_string(r.exit_code)) + "): " + r.err +
        r.out);
  }
  // Trust only the unix socket (in our private dir); TCP needs the role's password. Truncating
  // the existing file keeps its owner (the server's OS user) and mode.
  detail::write_text(data_dir_ + "/pg_hba.conf",
                     "# generated by promptcache::testing::PgServer\n"
                     "local all all trust\n"
                     "host all all 127.0.0.1/32 scram-sha-256\n");
}

bool PgServer::postmaster_ready() const {
  // postmaster.pid: line 1 is the postmaster's pid, line 8 its status ("starting", "ready", ...).
  // "ready" is written once the listen sockets are open and the startup process has finished.
  const std::vector<std::string> lines =
      split_lines(detail::read_file(data_dir_ + "/postmaster.pid"));
  return lines.size() >= 8 && lines[0] == std::to_string(pid_) && lines[7].rfind("ready", 0) == 0;
}

PgServer::LaunchResult PgServer::launch_once() {
  const std::uintmax_t log_offset = detail::file_size_or_zero(log_path_);
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
  {
    const detail::Fd dev_null = detail::open_dev_null();
    const detail::Fd log = detail::open_append(log_path_, 0644);
    pid_ =
        detail::spawn(child_spec(args), {.in = dev_null.get(), .out = log.get(), .err = log.get()});
  }

  const detail::StartupResult startup =
      detail::await_startup(pid_, kReadyTimeout, kPollInterval, [&] {
        // postmaster.pid names *our* process (not some other server that grabbed the port), and
        // the TCP port really accepts connections.
        if (!postmaster_ready()) return false;
        const detail::RunResult probe =
            run({bin_dir_ + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_),
                 "-U", kSuperuser, "-d", kSuperuser},
                kProbeTimeout);
        return !probe.timed_out && probe.exit_code == 0;
      });
  switch (startup.state) {
    case detail::StartupState::kReady:
      return LaunchResult::kReady;
    case detail::StartupState::kExited: {
      pid_ = -1;
      const std::string log = detail::read_file(log_path_);
      if (log_offset < log.size() &&
          log.find("Address already in use", log_offset) != std::string::npos) {
        return LaunchResult::kAddressInUse;
      }
      throw std::runtime_error("promptcache::testing::PgServer: postgres (port " +
                               std::to_string(port_) + ") exited during startup with " +
                               detail::describe_status(startup.status) + ". Log tail:\n" +
                               log_tail());
    }
    case detail::StartupState::kTimedOut:
      break;
  }
  kill_server();
  throw std::runtime_error("promptcache::testing::PgServer: postgres (port " +
                           std::to_string(port_) + ") did not accept connections within " +
                           std::to_string(kReadyTimeout.count()) + " ms. Log tail:\n" + log_tail());
}

std::uint16_t PgServer::port() const {
  return port_;
}
std::string PgServer::url() const {
  return "postgresql://" + detail::percent_encode(opts_.user) + ":" +
         detail::percent_encode(opts_.password) + "@127.0.0.1:" + std::to_string(port_) + "/" +
         detail::percent_encode(opts_.database);
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
  if (pid_ > 0 && detail::reap_if_exited(pid_)) pid_ = -1;
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
  if (detail::relaunch_on_same_port(kRestartBusyTimeout,
                                    [&] { return launch_once() == LaunchResult::kReady; })) {
    return;
  }
  throw std::runtime_error("promptcache::testing::PgServer::start: port " + std::to_string(port_) +
                           " still busy after " + std::to_string(kRestartBusyTimeout.count()) +
                           " ms. Log tail:\n" + log_tail());
}

std::string PgServer::run_psql(const std::string& database, const std::string& sql) const {
  const detail::RunResult r =
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
  return detail::strip_trailing_newlines(r.out);
}

std::string PgServer::psql(const std::string& sql) const {
  return run_psql(opts_.database, sql);
}

std::string PgServer::log_tail(std::size_t lines) const {
  return detail::file_tail(log_path_, lines);
}

}  // namespace promptcache::testing
