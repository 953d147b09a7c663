// `promptcache bench`: the workloads of docs/benchmarks.md, one JSON line per run.
#pragma once

#include <CLI/CLI.hpp>

namespace promptcache::app {

// Adds the `bench` subcommand to `app`; it runs when selected.
void add_bench_command(CLI::App& app, int& exit_code);

}  // namespace promptcache::app
