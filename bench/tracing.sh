#!/usr/bin/env bash
# What tracing costs `promptcache serve`: http_get (GETs of cached analyses over 50 keep-alive
# connections, wrk, SQLite behind, a real Redis in front) untraced, traced at 100 % sampling
# into a real OTLP receiver (tests/otlp: @elastic/mockotlpserver), and configured but sampled
# out (OTEL_TRACES_SAMPLER=always_off). The three servers run side by side and are measured in
# turn, ROUNDS times; each round's cost is 1 - traced/untraced (and sampled-out/untraced) of
# that round, and the median round is the figure.
# Targets: traced <= 10 %, sampled out <= 2 %.
#   DURATION=5s ROUNDS=5 CONNS=50 KEYS=200 bash bench/tracing.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
duration=${DURATION:-5s}
rounds=${ROUNDS:-5}
conns=${CONNS:-50}
keys=${KEYS:-200}

build_release
need_wrk_and_nginx
if [ ! -d "$repo_root/tests/otlp/node_modules" ]; then
  npm ci --prefix "$repo_root/tests/otlp" --no-audit --no-fund --loglevel=error
fi
start_redis
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo_root/tests/otlp" && exec node receiver.mjs 0 "$work/received.jsonl" >"$work/receiver.out") &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/receiver.out" 2>/dev/null && break; sleep 0.05; done
receiver="http://127.0.0.1:$(awk '{ print $2 }' "$work/receiver.out")"

# Three servers on one database and one Redis: untraced, traced, sampled out.
declare -A url
start_mode() {  # mode VAR=value...
  local mode=$1 port
  shift
  mkdir -p "$work/$mode"
  port=$(free_port)
  env "$@" REDIS_URL="redis://127.0.0.1:$redis_port" "$promptcache_bin" serve \
    --listen "127.0.0.1:$port" --db "sqlite://$work/bench.db" --threads 1 \
    >"$work/$mode/serve.out" 2>"$work/$mode/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$mode/serve.out" 2>/dev/null && break; sleep 0.05; done
  url[$mode]="http://127.0.0.1:$port"
}
start_mode untraced
start_mode traced OTEL_EXPORTER_OTLP_ENDPOINT="$receiver" OTEL_BSP_SCHEDULE_DELAY=200
start_mode sampled_out OTEL_EXPORTER_OTLP_ENDPOINT="$receiver" OTEL_TRACES_SAMPLER=always_off
populate_analyses "${url[untraced]}" "$keys" "$work/paths.txt" "$work/analysis.json"
write_paths_lua "$work/paths.lua"

run_wrk() {  # url -> requests/s
  PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d"$duration" -s "$work/paths.lua" "$1" |
    awk '/Requests\/sec/ { print $2 }'
}
for mode in untraced traced sampled_out; do  # warm-up: every cache and connection
  PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d2s -s "$work/paths.lua" "${url[$mode]}" >/dev/null
done
results=()
for _ in $(seq "$rounds"); do
  u=$(run_wrk "${url[untraced]}")
  t=$(run_wrk "${url[traced]}")
  s=$(run_wrk "${url[sampled_out]}")
  results+=("$u $t $s")
done
exported=$(curl -s "${url[traced]}/metrics" | awk '/promptcache_otel_spans_total\{outcome="exported"\}/ { print $2 }')
dropped=$(curl -s "${url[traced]}/metrics" | awk '/promptcache_otel_spans_total\{outcome="dropped"\}/ { print $2 }')
python3 - "$exported" "$dropped" "${results[@]}" <<'PY'
import json, sys
exported, dropped = sys.argv[1], sys.argv[2]
rounds = []
for r in sys.argv[3:]:
    u, t, s = map(float, r.split())
    rounds.append({"untraced": u, "traced": t, "sampled_out": s,
                   "traced_cost": round(1 - t / u, 3), "sampled_out_cost": round(1 - s / u, 3)})
    print(json.dumps({"workload": "http_get tracing", **rounds[-1]}))
def median(key):
    return sorted(r[key] for r in rounds)[len(rounds) // 2]
print(json.dumps({"workload": "http_get tracing summary", "rounds": len(rounds),
                  "spans_exported": int(exported), "spans_dropped": int(dropped),
                  "traced_cost": median("traced_cost"), "sampled_out_cost": median("sampled_out_cost")}))
print("tracing cost: traced %.1f %% (target <= 10), sampled out %.1f %% (target <= 2); median of %d rounds" % (
    100 * median("traced_cost"), 100 * median("sampled_out_cost"), len(rounds)))
PY
