#!/usr/bin/env bash
# Builds the libFuzzer targets and fuzzes each for SECONDS (default 60):
#   resp_parser_fuzz   the sans-IO RESP parser (tests/fuzz/resp_parser_fuzz.cpp)
#   http_request_fuzz  the server's request reading: Beast's parser over a buffer, then the
#                      framing check (tests/fuzz/http_request_fuzz.cpp)
#   otlp_fuzz          the trace exporter's reading: a collector's HTTP response (whole and
#                      chunked) and its protobuf partial success; span records read back and
#                      written again (tests/fuzz/otlp_fuzz.cpp)
#
#   scripts/fuzz.sh [SECONDS]
#
# Output goes to build-fuzz/: the binaries, working copies of the corpora (grown by each run),
# the logs and any crash/leak/timeout/oom artifacts. Exits non-zero if a fuzzer found a problem
# or a build failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a positive number of seconds, default 60)" >&2
  exit 2
fi

out=build-fuzz
mkdir -p "$out"

# fuzz NAME CORPUS SOURCES...: builds build-fuzz/NAME from SOURCES and runs it on a copy of
# CORPUS for $seconds.
fuzz() {
  local name="$1" seed="$2"
  shift 2
  local bin="$out/$name" log="$out/$name.log" corpus="$out/$name.corpus"
  local artifacts="$out/$name.artifacts"
  mkdir -p "$corpus" "$artifacts"

  echo "fuzz: building $bin"
  clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I include -I src "$@" -o "$bin"

  cp "$seed"/* "$corpus/"
  # Artifacts of earlier runs must not be mistaken for findings of this one.
  rm -f "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*

  echo "fuzz: running $name for ${seconds}s (log: $log)"
  set +e
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  local rc=$?
  set -e

  local runs cov files
  runs=$({ sed -n 's/^stat::number_of_executed_units: *//p' "$log" || true; } | tail -n 1)
  cov=$({ grep -o 'cov: [0-9]*' "$log" || true; } | tail -n 1 | awk '{print $2}')
  files=$(find "$corpus" -type f | wc -l)
  local found
  mapfile -t found < <(find "$artifacts" -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))

  if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
    echo "fuzz: $name FAILED exit=$rc runs=${runs:-?} cov=${cov:-?} artifacts: ${found[*]:-none}" \
      "(see $log)"
    grep -m 20 -E 'ERROR|SUMMARY|runtime error|deadly signal|Test unit written' "$log" >&2 || true
    return 1
  fi
  echo "fuzz: $name OK ${seconds}s runs=${runs:-?} cov=${cov:-?} corpus=${files} files, no crashes"
}

status=0
fuzz resp_parser_fuzz tests/fuzz/corpus \
  src/resp/parser.cpp src/error.cpp tests/fuzz/resp_parser_fuzz.cpp || status=1
# Beast header-only here (no BOOST_BEAST_SEPARATE_COMPILATION): nothing else to link.
fuzz http_request_fuzz tests/fuzz/http_corpus -DBOOST_ENABLE_ASSERT_HANDLER \
  src/server/framing.cpp tests/fuzz/http_request_fuzz.cpp || status=1
fuzz otlp_fuzz tests/fuzz/otlp_corpus \
  src/telemetry/sansio/http_exchange.cpp src/telemetry/sansio/otlp_json.cpp \
  src/telemetry/sansio/otlp_proto.cpp src/telemetry/sansio/span_record.cpp \
  src/telemetry/sansio/span_data.cpp src/json_text.cpp src/telemetry/span_context.cpp \
  tests/fuzz/otlp_fuzz.cpp -lboost_json || status=1
exit $status
