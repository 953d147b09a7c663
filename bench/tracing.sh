#!/usr/bin/env bash
# What tracing costs `promptcache serve`: http_get (GETs of cached analyses over 50 keep-alive
# connections, wrk, SQLite behind, a real Redis in front) untraced, traced at 100 % sampling
# (a SERVER span and its cache spans per request, exported), and configured but sampled out
# (OTEL_TRACES_SAMPLER=always_off). The three servers run side by side and are measured in
# turn, ROUNDS times; each round's cost is 1 - traced/untraced (and sampled-out/untraced) of
# that round, and the median round is the figure. The order rotates from round to round. A
# fourth server, untraced too (`control`), is measured the same way: its "cost" against the
# first is what this machine's noise alone makes of two identical servers — a cost below it
# is not told apart from none.
# Targets: traced <= 10 %, sampled out <= 2 %.
#
# The receiver: RECEIVER=sink (the default) is nginx answering every export 200 without
# reading it, as a collector on another machine costs this one nothing; RECEIVER=mock is the
# tests' OTLP receiver (@elastic/mockotlpserver, tests/otlp), which decodes and prints every
# span in node on the same two cores as the server, wrk and Redis — its CPU is then charged
# to the traced server's throughput.
#   DURATION=5s ROUNDS=5 CONNS=50 KEYS=200 RECEIVER=sink bash bench/tracing.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
duration=${DURATION:-5s}
rounds=${ROUNDS:-5}
conns=${CONNS:-50}
keys=${KEYS:-200}
receiver_kind=${RECEIVER:-sink}

build_release
need_wrk_and_nginx
start_redis
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_otlp_sink
  wait 2>/dev/null || true
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT

case "$receiver_kind" in
  sink)
    start_otlp_sink "$work"
    receiver=$otlp_sink
    ;;
  mock)
    if [ ! -d "$repo_root/tests/otlp/node_modules" ]; then
      npm ci --prefix "$repo_root/tests/otlp" --no-audit --no-fund --loglevel=error
    fi
    (cd "$repo_root/tests/otlp" && exec node receiver.mjs 0 "$work/received.jsonl" >"$work/receiver.out") &
    pids+=($!)
    for _ in $(seq 100); do grep -q listening "$work/receiver.out" 2>/dev/null && break; sleep 0.05; done
    receiver="http://127.0.0.1:$(awk '{ print $2 }' "$work/receiver.out")"
    ;;
  *)
    echo "RECEIVER: sink or mock, not $receiver_kind" >&2
    exit 2
    ;;
esac

# Three servers on one database and one Redis: untraced, traced, sampled out. A process's own
# luck (where its memory and threads land) moves its throughput by a few per cent for its whole
# life, as much as what is measured: each round starts the three afresh.
declare -A url pid
start_mode() {  # mode -> started, its url and pid set
  local mode=$1 port
  local -a env_of=()
  case "$mode" in
    traced) env_of=(OTEL_EXPORTER_OTLP_ENDPOINT="$receiver" OTEL_BSP_SCHEDULE_DELAY=200) ;;
    sampled_out) env_of=(OTEL_EXPORTER_OTLP_ENDPOINT="$receiver" OTEL_TRACES_SAMPLER=always_off) ;;
    control) env_of=(PROMPTCACHE_BENCH_CONTROL=1) ;;  # untraced, as `untraced`
  esac
  mkdir -p "$work/$mode"
  port=$(free_port)
  env "${env_of[@]}" REDIS_URL="redis://127.0.0.1:$redis_port" "$promptcache_bin" serve \
    --listen "127.0.0.1:$port" --db "sqlite://$work/bench.db" --threads 1 \
    >"$work/$mode/serve.out" 2>"$work/$mode/serve.log" &
  pids+=($!)
  pid[$mode]=$!
  for _ in $(seq 100); do grep -q listening "$work/$mode/serve.out" 2>/dev/null && break; sleep 0.05; done
  url[$mode]="http://127.0.0.1:$port"
}
stop_mode() {  # mode -> stopped (SIGTERM: the traced one flushes its spans)
  kill "${pid[$1]}" 2>/dev/null || true
  wait "${pid[$1]}" 2>/dev/null || true
}
start_mode untraced
populate_analyses "${url[untraced]}" "$keys" "$work/paths.txt" "$work/analysis.json"
write_paths_lua "$work/paths.lua"
stop_mode untraced

cpu_ticks() {  # pid -> user+system clock ticks so far
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run_wrk() {  # mode -> "requests/s cpu-microseconds-per-request" (the server's own CPU)
  local before after out
  before=$(cpu_ticks "${pid[$1]}")
  out=$(PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d"$duration" -s "$work/paths.lua" "${url[$1]}")
  after=$(cpu_ticks "${pid[$1]}")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    '/Requests\/sec/ { rps = $2 } /requests in/ { n = $1 } END { printf "%s %.2f\n", rps, ticks / hz * 1e6 / n }' <<<"$out"
}
metric() {  # mode outcome -> promptcache_otel_spans_total{outcome=...}
  curl -s "${url[$1]}/metrics" | awk -v o="$2" '$1 == "promptcache_otel_spans_total{outcome=\"" o "\"}" { print $2 }'
}
results=()
declare -A got
modes=(untraced traced sampled_out control)
exported=0 dropped=0 failed=0
for round in $(seq "$rounds"); do
  for mode in "${modes[@]}"; do
    start_mode "$mode"
    # Warm-up: every cache and connection.
    PATHS_FILE="$work/paths.txt" wrk -t1 -c"$conns" -d1s -s "$work/paths.lua" "${url[$mode]}" >/dev/null
  done
  # Each round in another order (untraced first, then second, then third…): the machine's
  # drift within a round then favours no mode.
  for i in 0 1 2 3; do
    mode=${modes[$(((i + round) % 4))]}
    got[$mode]=$(run_wrk "$mode")
  done
  results+=("${got[untraced]} ${got[traced]} ${got[sampled_out]} ${got[control]}")
  exported=$((exported + $(metric traced exported)))
  dropped=$((dropped + $(metric traced dropped)))
  failed=$((failed + $(metric traced failed)))
  for mode in "${modes[@]}"; do stop_mode "$mode"; done
done
python3 - "$receiver_kind" "$exported" "$dropped" "$failed" "${results[@]}" <<'PY'
import json, sys
receiver, exported, dropped, failed = sys.argv[1:5]
rounds = []
for r in sys.argv[5:]:
    u, ucpu, t, tcpu, s, scpu, c, ccpu = map(float, r.split())
    rounds.append({"untraced": u, "traced": t, "sampled_out": s, "control": c,
                   "traced_cost": round(1 - t / u, 3), "sampled_out_cost": round(1 - s / u, 3),
                   "control_cost": round(1 - c / u, 3),
                   "cpu_us_per_request": {"untraced": ucpu, "traced": tcpu, "sampled_out": scpu,
                                          "control": ccpu},
                   "traced_cpu_cost": round(tcpu / ucpu - 1, 3),
                   "sampled_out_cpu_cost": round(scpu / ucpu - 1, 3),
                   "control_cpu_cost": round(ccpu / ucpu - 1, 3)})
    print(json.dumps({"workload": "http_get tracing", **rounds[-1]}))
def median(key):
    return sorted(r[key] for r in rounds)[len(rounds) // 2]
print(json.dumps({"workload": "http_get tracing summary", "receiver": receiver, "rounds": len(rounds),
                  "spans_exported": int(exported), "spans_dropped": int(dropped),
                  "spans_failed": int(failed or 0),
                  "traced_cost": median("traced_cost"), "sampled_out_cost": median("sampled_out_cost"),
                  "control_cost": median("control_cost"),
                  "control_cost_spread": [min(r["control_cost"] for r in rounds),
                                          max(r["control_cost"] for r in rounds)],
                  "traced_cpu_cost": median("traced_cpu_cost"),
                  "sampled_out_cpu_cost": median("sampled_out_cpu_cost"),
                  "control_cpu_cost": median("control_cpu_cost")}))
print("tracing cost: traced %.1f %% (target <= 10), sampled out %.1f %% (target <= 2); median of %d rounds" % (
    100 * median("traced_cost"), 100 * median("sampled_out_cost"), len(rounds)))
print("server CPU per request: traced %+.1f %%, sampled out %+.1f %% (median of %d rounds)" % (
    100 * median("traced_cpu_cost"), 100 * median("sampled_out_cpu_cost"), len(rounds)))
print("noise floor (an identical untraced server): %.1f %% fewer requests/s, CPU %+.1f %%" % (
    100 * median("control_cost"), 100 * median("control_cpu_cost")))
PY
