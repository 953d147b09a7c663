#include "support/otlp_receiver.hpp"

#include <signal.h>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/process.hpp"

namespace promptcache::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::string node_binary() {
  for (const char* candidate : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"}) {
    if (detail::is_executable(candidate)) return candidate;
  }
  throw std::runtime_error("OtlpReceiver: Node.js is not installed (scripts/install-deps.sh)");
}

}  // namespace

OtlpReceiver::OtlpReceiver(Mode mode, std::chrono::milliseconds delay) {
  const std::string script_dir = PROMPTCACHE_OTLP_DIR;
  if (!detail::is_executable(node_binary()) ||
      detail::read_file(script_dir + "/node_modules/@elastic/mockotlpserver/package.json")
          .empty()) {
    throw std::runtime_error("OtlpReceiver: " + script_dir +
                             "/node_modules is missing: run scripts/test.sh (npm ci there)");
  }
  dir_ = detail::make_temp_dir("promptcache-otlp-");
  out_path_ = dir_ + "/received.jsonl";
  const std::string stdout_path = dir_ + "/stdout.log";
  const std::string stderr_path = dir_ + "/stderr.log";
  detail::write_text(out_path_, "");
  const char* mode_arg = mode == Mode::accept ? "ok" : mode == Mode::unavailable ? "503" : "slow";
  const detail::Fd in = detail::open_dev_null();
  const detail::Fd out = detail::open_append(stdout_path, 0600);
  const detail::Fd err = detail::open_append(stderr_path, 0600);
  pid_ = detail::spawn({.argv = {node_binary(), script_dir + "/receiver.mjs", "0", out_path_,
                                 mode_arg, std::to_string(delay.count())},
                        .cwd = script_dir,
                        .label = "promptcache::testing::OtlpReceiver"},
                       {.in = in.get(), .out = out.get(), .err = err.get()});
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    std::istringstream lines(detail::read_file(stdout_path));
    std::string word;
    unsigned port = 0;
    if (lines >> word >> port && word == "listening" && port > 0) {
      port_ = static_cast<std::uint16_t>(port);
      return;
    }
    if (detail::reap_if_exited(pid_)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string why = detail::read_file(stderr_path);
  detail::kill_and_reap(pid_);
  detail::remove_dir(dir_);
  throw std::runtime_error("OtlpReceiver did not start: " + why);
}

OtlpReceiver::~OtlpReceiver() {
  if (pid_ > 0 && !detail::terminate_and_wait(pid_, SIGTERM, std::chrono::seconds(5))) {
    detail::kill_and_reap(pid_);
  }
  detail::remove_dir(dir_);
}

std::string OtlpReceiver::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::vector<json::value> OtlpReceiver::requests() const {
  // Every request the receiver has started on, recorded: it records one after answering it,
  // so an exporter that has finished may be ahead of the file by a moment.
  const auto count_lines = [](const std::string& path) {
    const std::string text = detail::read_file(path);
    return std::count(text.begin(), text.end(), '\n');
  };
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (count_lines(out_path_ + ".started") > count_lines(out_path_) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::vector<json::value> out;
  std::istringstream lines(detail::read_file(out_path_));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::vector<json::object> OtlpReceiver::spans() const {
  std::vector<json::object> out;
  for (const auto& request : requests()) {
    for (const auto& rs : request.at("resourceSpans").as_array()) {
      for (const auto& ss : rs.at("scopeSpans").as_array()) {
        for (const auto& span : ss.at("spans").as_array()) out.push_back(span.as_object());
      }
    }
  }
  return out;
}

std::vector<json::object> OtlpReceiver::wait_for(
    const std::function<bool(const std::vector<json::object>&)>& done,
    std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto now_spans = spans();
    if (done(now_spans) || Clock::now() >= deadline) return now_spans;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

json::value otlp_attribute(const json::object& span, std::string_view key) {
  const auto* list = span.if_contains("attributes");
  if (list == nullptr) return nullptr;
  for (const auto& a : list->as_array()) {
    if (a.at("key").as_string() == key) return a.at("value");
  }
  return nullptr;
}

}  // namespace promptcache::testing
