// `promptcache serve`: the HTTP service (README "HTTP API").
#pragma once

#include <CLI/CLI.hpp>

namespace promptcache::app {

// Adds the `serve` subcommand to `app`; it runs when selected.
void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace promptcache::app
