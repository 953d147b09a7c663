#!/usr/bin/env bash
# redis_pause: cached GETs through `promptcache serve` under wrk load while Redis hangs
# (SIGSTOP for PAUSE seconds, then SIGCONT). A request's cache read has a budget (100 ms by
# default): the database answers past it, the breaker opens, and no request waits for
# REDIS_SOCKET_TIMEOUT. Prints wrk's requests/s, p50, p99, max and the non-2xx answers of the
# whole run, beside the same run without the pause.
#   DURATION=20 PAUSE=8 CONNS=50 KEYS=200 bash bench/pause.sh
#   PROMPTCACHE_BIN=/path/to/older/promptcache bash bench/pause.sh   (a before figure)
set -euo pipefail
source "$(dirname "$0")/common.sh"
duration=${DURATION:-20}
pause=${PAUSE:-8}
conns=${CONNS:-50}
keys=${KEYS:-200}

build_release
need_wrk_and_nginx
start_redis
work=$(mktemp -d)
cleanup() {
  kill -CONT "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT

start_serve "$work"
populate_analyses "$base" "$keys" "$work/paths.txt" "$work/analysis.json"
write_paths_lua "$work/paths.lua"
cat >>"$work/paths.lua" <<'EOF'
local errors = 0
response = function(status)
  if status >= 300 then errors = errors + 1 end
end
done = function(summary, latency)
  io.write(string.format("RESULT %.0f %.1f %.1f %.1f %d %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status + errors,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF

run_wrk() {  # -> "requests/s p50_ms p99_ms max_ms non2xx socket_errors"
  PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d"${duration}s" --timeout 30s \
    -s "$work/paths.lua" "$base" | awk '/^RESULT/ { print $2, $3, $4, $5, $6, $7 }'
}

PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d2s -s "$work/paths.lua" "$base" >/dev/null
steady=$(run_wrk)
redis_pid=$(cat "$redis_dir/redis.pid")
(
  sleep $((duration / 4))
  kill -STOP "$redis_pid"
  sleep "$pause"
  kill -CONT "$redis_pid"
) &
pauser=$!
paused=$(run_wrk)
wait "$pauser"

python3 - "$duration" "$pause" "$conns" "$steady" "$paused" <<'EOF'
import json, sys
duration, pause, conns, steady, paused = sys.argv[1:6]
def parse(s):
    rps, p50, p99, mx, non2xx, sock = s.split()
    return {"requests_per_s": float(rps), "p50_ms": float(p50), "p99_ms": float(p99),
            "max_ms": float(mx), "non_2xx": int(non2xx), "socket_errors": int(sock)}
s, p = parse(steady), parse(paused)
print(json.dumps({"workload": "redis_pause", "run": "steady", **s, "duration_s": int(duration),
                  "connections": int(conns)}))
print(json.dumps({"workload": "redis_pause", "run": "paused", "pause_s": int(pause), **p,
                  "duration_s": int(duration), "connections": int(conns)}))
print("redis paused %ss of %ss: p50 %.1f ms, p99 %.1f ms, max %.0f ms, %d errors "
      "(steady: p50 %.1f ms, p99 %.1f ms)" % (pause, duration, p["p50_ms"], p["p99_ms"],
      p["max_ms"], p["non_2xx"] + p["socket_errors"], s["p50_ms"], s["p99_ms"]))
EOF
