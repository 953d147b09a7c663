#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test.
#   scripts/test.sh             RelWithDebInfo build in build/
#   scripts/test.sh --sanitize  AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# The tests' peers from npm (the OTLP receiver), pinned by tests/otlp/package-lock.json.
if [ ! -f tests/otlp/node_modules/.package-lock.json ] ||
  ! cmp -s tests/otlp/package-lock.json tests/otlp/node_modules/.promptcache-installed-lock; then
  npm ci --prefix tests/otlp --no-audit --no-fund --loglevel=error
  cp tests/otlp/package-lock.json tests/otlp/node_modules/.promptcache-installed-lock
fi

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROMPTCACHE_BUILD_TESTS=ON)
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DPROMPTCACHE_SANITIZE=ON -DPROMPTCACHE_BUILD_TESTS=ON)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
# Redis servers are started by the tests themselves, on free loopback ports.
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" --timeout 300 --no-tests=error
