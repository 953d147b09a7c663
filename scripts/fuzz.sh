#!/usr/bin/env bash
# Builds the RESP parser libFuzzer target and fuzzes it for SECONDS (default 60).
#
#   scripts/fuzz.sh [SECONDS]
#
# Output goes to build-fuzz/: the binary, a working copy of tests/fuzz/corpus (grown by each
# run), the log and any crash/leak/timeout/oom artifacts. Exits non-zero if the fuzzer found
# a problem or the build failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a positive number of seconds, default 60)" >&2
  exit 2
fi

out=build-fuzz
bin="$out/resp_parser_fuzz"
log="$out/fuzz.log"
mkdir -p "$out/corpus" "$out/artifacts"

echo "fuzz: building $bin"
clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I include \
  src/resp/parser.cpp src/net/error.cpp tests/fuzz/resp_parser_fuzz.cpp -o "$bin"

cp tests/fuzz/corpus/* "$out/corpus/"
# Artifacts of earlier runs must not be mistaken for findings of this one.
rm -f "$out"/artifacts/crash-* "$out"/artifacts/leak-* "$out"/artifacts/timeout-* \
  "$out"/artifacts/oom-*

echo "fuzz: running for ${seconds}s (log: $log)"
set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" >"$log" 2>&1
rc=$?
set -e

runs=$({ sed -n 's/^stat::number_of_executed_units: *//p' "$log" || true; } | tail -n 1)
cov=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -n 1 | awk '{print $2}')
corpus=$(find "$out/corpus" -type f | wc -l)
mapfile -t found < <(find "$out/artifacts" -type f \
  \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))

if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
  echo "fuzz: FAILED exit=$rc runs=${runs:-?} cov=${cov:-?} artifacts: ${found[*]:-none}" \
    "(see $log)"
  grep -m 20 -E 'ERROR|SUMMARY|runtime error|deadly signal|Test unit written' "$log" >&2 || true
  exit 1
fi
echo "fuzz: OK ${seconds}s runs=${runs:-?} cov=${cov:-?} corpus=${corpus} files, no crashes"
