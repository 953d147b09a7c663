#!/usr/bin/env bash
# Installs what is missing, builds a Release binary, and runs `promptcache serve` on its
# embedded defaults: http://127.0.0.1:8080, the in-process cache (unless REDIS_URL is set) and
# a SQLite database under ./data/ (unless --db or PROMPTCACHE_DATABASE_URL says otherwise).
# Arguments are passed to `promptcache serve` (try --help).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

bash "$repo/scripts/install-deps.sh"
cmake -S "$repo" -B "$repo/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPROMPTCACHE_BUILD_TESTS=OFF >/dev/null
cmake --build "$repo/build-release" -j"$(nproc)" --target promptcache_cli
exec "$repo/build-release/promptcache" serve "$@"
