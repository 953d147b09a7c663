#!/usr/bin/env bash
# http_get: GET of cached analyses through `promptcache serve` (SQLite behind, a real Redis in
# front) over 50 keep-alive connections, beside nginx serving the same ~1 KiB JSON as a static
# file, both driven by wrk with the same settings and the same Lua script in the same run.
# Target: >= 0.5 x nginx's requests/s.
# The machine's speed drifts within a run, so the two alternate: ROUNDS rounds of nginx, ours,
# nginx; each round's ratio is ours over the mean of the nginx runs around it, and the median
# round is the figure.
#   DURATION=5s ROUNDS=3 CONNS=50 THREADS=1 KEYS=200 bash bench/http.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
duration=${DURATION:-5s}
rounds=${ROUNDS:-3}
conns=${CONNS:-50}
threads=${THREADS:-1}
keys=${KEYS:-200}

build_release
need_wrk_and_nginx
start_redis
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT

start_serve "$work"
populate_analyses "$base" "$keys" "$work/paths.txt" "$work/analysis.json"

# nginx: the same JSON body as a static file, one path repeated as often as ours.
nginx_port=$(free_port)
mkdir -p "$work/www" "$work/nginx-tmp"
cp "$work/analysis.json" "$work/www/analysis.json"
chmod -R a+rX "$work/www"
for _ in $(seq "$keys"); do echo /analysis.json; done >"$work/nginx-paths.txt"
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx-access.log;
  client_body_temp_path $work/nginx-tmp;
  default_type application/json;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
EOF
nginx -c "$work/nginx.conf"

write_paths_lua "$work/paths.lua"

run_wrk() {  # url paths-file -> "requests/s p50 p99"
  PATHS_FILE="$2" wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$work/paths.lua" "$1" |
    awk '/Requests\/sec/ { rps = $2 } / 50%/ { p50 = $2 } / 99%/ { p99 = $2 } END { print rps, p50, p99 }'
}
PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d2s -s "$work/paths.lua" "$base" >/dev/null  # warm-up
results=()
nginx_last=$(run_wrk "http://127.0.0.1:$nginx_port" "$work/nginx-paths.txt")
for _ in $(seq "$rounds"); do
  ours=$(run_wrk "$base" "$work/paths.txt")
  nginx_next=$(run_wrk "http://127.0.0.1:$nginx_port" "$work/nginx-paths.txt")
  results+=("$ours|$nginx_last|$nginx_next")
  nginx_last=$nginx_next
done
metrics=$(curl -s "$base/metrics")
hits=$(echo "$metrics" | awk '/cache_requests_total.*outcome="hit"/ { print $2 }')
misses=$(echo "$metrics" | awk '/cache_requests_total.*outcome="miss"/ { print $2 }')
# Where the time goes: the handler's own time (cache lookup, JSON, response built) per GET, from
# the server's histogram; the rest of wrk's latency is HTTP parsing, queueing and the sockets.
handler_us=$(echo "$metrics" | awk '
  /request_duration_seconds_sum\{route="GET \/v1\/analyses/ { sum = $NF }
  /request_duration_seconds_count\{route="GET \/v1\/analyses/ { n = $NF }
  END { if (n > 0) printf "%.1f", sum / n * 1e6; else print 0 }')
body_bytes=$(wc -c <"$work/analysis.json")

python3 - "$conns" "$threads" "$duration" "$hits" "$misses" "$body_bytes" "$handler_us" \
  "${results[@]}" <<'EOF'
import json, sys
conns, threads, duration, hits, misses, body, handler_us = sys.argv[1:8]
rounds = []
for r in sys.argv[8:]:
    ours, before, after = (s.split() for s in r.split("|"))
    ref = (float(before[0]) + float(after[0])) / 2
    rounds.append({"requests_per_s": float(ours[0]), "p50": ours[1], "p99": ours[2],
                   "nginx_requests_per_s": ref, "ratio": round(float(ours[0]) / ref, 3)})
for r in rounds:
    print(json.dumps({"workload": "http_get", **r, "connections": int(conns),
                      "wrk_threads": int(threads), "duration": duration}))
median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
print(json.dumps({"workload": "http_get summary", "rounds": len(rounds), "body_bytes": int(body),
                  "cache_hits": int(hits), "cache_misses": int(misses),
                  "handler_mean_us": float(handler_us), "median_ratio": median["ratio"]}))
print("http_get %.0f req/s  %.2f x nginx (median of %d rounds: %s; target >= 0.50)" % (
    median["requests_per_s"], median["ratio"], len(rounds),
    " ".join("%.2f" % r["ratio"] for r in rounds)))
EOF
