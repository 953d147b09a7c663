// promptcache: the command. Subcommands live in their own files.
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "bench.hpp"
#include "buffered_sink.hpp"
#include "ops.hpp"
#include "promptcache/log.hpp"
#include "promptcache/redact.hpp"
#include "redacting_sink.hpp"
#include "serve.hpp"

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries results (JSON lines, values) for scripts.
  // Every line passes a redaction first: no credential reaches a log (redacting_sink.hpp).
  using promptcache::app::RedactingSink;
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "promptcache",
      std::make_shared<RedactingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>())));
  promptcache::set_logger(spdlog::default_logger());  // the library's lines: ours
  // The access log (a line per request of serve) is buffered: see buffered_sink.hpp.
  spdlog::register_logger(std::make_shared<spdlog::logger>(
      "access", std::make_shared<RedactingSink>(
                    std::make_shared<promptcache::app::BufferedFdSink>(STDERR_FILENO))));
  // PROMPTCACHE_LOG_FORMAT=json: one JSON object per line, the access log too (log.hpp).
  if (const char* format = std::getenv("PROMPTCACHE_LOG_FORMAT"); format != nullptr && *format) {
    if (std::string_view(format) == "json") {
      spdlog::default_logger()->set_formatter(promptcache::json_log_formatter());
      spdlog::get("access")->set_formatter(promptcache::json_log_formatter());
    } else if (std::string_view(format) != "text") {
      std::cerr << "promptcache: PROMPTCACHE_LOG_FORMAT=" << format << " is not text or json\n";
      return 2;
    }
  }
  // serve logs what it does; an operator command prints its result and, on failure, one line,
  // so its own log stays quiet unless asked (PROMPTCACHE_LOG_LEVEL=info|debug|...).
  const std::string_view command = argc > 1 ? argv[1] : "";
  spdlog::set_level(command == "serve" ? spdlog::level::info : spdlog::level::err);
  if (const char* level = std::getenv("PROMPTCACHE_LOG_LEVEL"); level != nullptr && *level) {
    const auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && std::string_view(level) != "off") {
      std::cerr << "promptcache: PROMPTCACHE_LOG_LEVEL=" << level
                << " is not one of trace, debug, info, warning, error, critical, off\n";
      return 2;
    }
    spdlog::set_level(parsed);
  }
  CLI::App app{"promptcache: a cache for prompt-analysis results"};
  app.require_subcommand(1);
  int exit_code = 0;
  promptcache::app::add_serve_command(app, exit_code);
  promptcache::app::add_operator_commands(app, exit_code);
  promptcache::app::add_bench_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A parse error may quote what it was given (an --api-key value misplaced, say).
    std::ostringstream out;
    std::ostringstream err;
    const int status = app.exit(e, out, err);
    std::cout << promptcache::redact(out.str());
    std::cerr << promptcache::redact(err.str());
    return status;
  }
  return exit_code;
}
