// promptcache: the command. Subcommands live in their own files.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "bench.hpp"
#include "serve.hpp"

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries results (JSON lines, values) for scripts.
  spdlog::set_default_logger(spdlog::stderr_color_mt("promptcache"));
  spdlog::stderr_color_mt("access");
  CLI::App app{"promptcache: a cache for prompt-analysis results"};
  app.require_subcommand(1);
  int exit_code = 0;
  promptcache::app::add_serve_command(app, exit_code);
  promptcache::app::add_bench_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
