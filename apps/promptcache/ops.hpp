// The operator commands: get, get-analysis, set, invalidate, stats, warm. They act on the
// cache serve uses (REDIS_URL, or --redis) and, for warm, on its database (--db).
#pragma once

#include <CLI/CLI.hpp>

namespace promptcache::app {

// Adds the subcommands to `app`; the selected one runs and sets `exit_code`.
void add_operator_commands(CLI::App& app, int& exit_code);

}  // namespace promptcache::app
