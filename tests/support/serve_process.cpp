#include "support/serve_process.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "support/process.hpp"

#ifndef PROMPTCACHE_BIN
#error "PROMPTCACHE_BIN must name the promptcache binary (see tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace promptcache::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Ours without REDIS_*, PROMPTCACHE_* and OTEL_* (they would change what the binary does), plus
// `extra` (which wins over a variable of ours of the same name).
std::vector<std::string> child_environment(const EnvVars& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var(*e);
    if (var.rfind("REDIS_", 0) == 0 || var.rfind("PROMPTCACHE_", 0) == 0 ||
        var.rfind("OTEL_", 0) == 0) {
      continue;
    }
    const std::string name = var.substr(0, var.find('='));
    const bool overridden =
        std::any_of(extra.begin(), extra.end(), [&](const auto& e) { return e.first == name; });
    if (!overridden) env.push_back(std::move(var));
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Forks and execs `binary` with stdin /dev/null and stdout/stderr appended to the two files.
pid_t spawn(const std::string& binary, const std::vector<std::string>& args, const EnvVars& env,
            const std::string& out_path, const std::string& err_path,
            std::optional<unsigned> max_open_files = std::nullopt) {
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  const detail::Fd in = detail::open_dev_null();
  const detail::Fd out = detail::open_append(out_path, 0600);
  const detail::Fd err = detail::open_append(err_path, 0600);
  return detail::spawn({.argv = std::move(argv),
                        .env = child_environment(env),
                        .max_open_files = max_open_files,
                        .label = "promptcache::testing::ServeProcess"},
                       {.in = in.get(), .out = out.get(), .err = err.get()});
}

}  // namespace

std::string promptcache_binary() {
  // PROMPTCACHE_TEST_BIN: another build of the binary (the consistency checker run against an
  // older one, say).
  const char* other = std::getenv("PROMPTCACHE_TEST_BIN");
  return other != nullptr && *other != '\0' ? std::string(other) : std::string(PROMPTCACHE_BIN);
}

ServeProcess::ServeProcess(std::vector<std::string> args, EnvVars env,
                           std::chrono::milliseconds ready_timeout,
                           std::optional<unsigned> max_open_files)
    : args_(std::move(args)) {
  dir_ = detail::make_temp_dir("promptcache-serve-");
  stdout_path_ = dir_ + "/stdout.log";
  stderr_path_ = dir_ + "/stderr.log";
  try {
    pid_ = spawn(promptcache_binary(), args_, env, stdout_path_, stderr_path_, max_open_files);
  } catch (...) {
    detail::remove_dir(dir_);
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
        detail::remove_dir(dir_);
        throw std::runtime_error("ServeProcess: cannot parse the port in " + out + "\nstderr:\n" +
                                 err);
      }
      host_ = address.substr(0, colon);
      port_ = static_cast<std::uint16_t>(port);
      return;
    }
    int status = 0;
    const bool exited = detail::reap_if_exited(pid_, &status);
    if (exited || Clock::now() >= deadline) {
      std::string why;
      if (exited) {
        pid_ = -1;
        why = "exited with code " + std::to_string(exit_code_of(status)) + " before listening";
      } else {
        kill_now();
        why = "printed no \"listening on\" line within " + std::to_string(ready_timeout.count()) +
              " ms";
      }
      const std::string err = stderr_text();
      const std::string out_now = stdout_text();
      detail::remove_dir(dir_);
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
  detail::remove_dir(dir_);
}

void ServeProcess::kill_now() noexcept {
  if (pid_ <= 0) return;
  reap(detail::kill_and_reap(pid_));
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
  if (!detail::wait_for_exit(pid_, timeout, &status)) return -1;
  reap(status);
  return exit_code_;
}

bool ServeProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (detail::reap_if_exited(pid_, &status)) reap(status);
  return pid_ > 0;
}

std::string ServeProcess::stdout_text() const {
  return detail::read_file(stdout_path_);
}

std::string ServeProcess::stderr_text() const {
  return detail::read_file(stderr_path_);
}

ProcessResult run_promptcache(const std::vector<std::string>& args, const EnvVars& env,
                              std::chrono::milliseconds timeout) {
  return run_program(promptcache_binary(), args, env, timeout);
}

ProcessResult run_program(const std::string& binary, const std::vector<std::string>& args,
                          const EnvVars& env, std::chrono::milliseconds timeout) {
  const std::string dir = detail::make_temp_dir("promptcache-run-");
  ProcessResult result;
  try {
    const pid_t pid = spawn(binary, args, env, dir + "/stdout.log", dir + "/stderr.log");
    int status = 0;
    if (detail::wait_for_exit(pid, timeout, &status)) {
      result.exit_code = exit_code_of(status);
    } else {
      result.timed_out = true;
      detail::kill_and_reap(pid);
    }
    result.out = detail::read_file(dir + "/stdout.log");
    result.err = detail::read_file(dir + "/stderr.log");
  } catch (...) {
    detail::remove_dir(dir);
    throw;
  }
  detail::remove_dir(dir);
  return result;
}

}  // namespace promptcache::testing
