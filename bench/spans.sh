#!/usr/bin/env bash
# What recording spans costs, without a server around them (bench/spans.cpp): a loop of the
# spans `promptcache serve` records for a cache hit (a SERVER span with the HTTP attributes and
# its cache_get child), exported to nginx answering 200 on this machine. Reference, in the same
# run: the same loop sampled out. Reported: the recording thread's CPU per request and the whole
# process's (the exporter's thread included), for OTLP/protobuf and OTLP/JSON; the median of
# ROUNDS runs each.
#   REQUESTS=1000000 ROUNDS=3 bash bench/spans.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
requests=${REQUESTS:-1000000}
rounds=${ROUNDS:-3}

build_release
need_wrk_and_nginx
work=$(mktemp -d)
chmod 755 "$work"
trap 'stop_otlp_sink; rm -rf "$work"' EXIT
start_otlp_sink "$work"
span_bench="$(dirname "$promptcache_bin")/promptcache_span_bench"

lines=()
for round in $(seq "$rounds"); do
  for run in "always_off http/protobuf" "always_on http/protobuf" "always_on http/json"; do
    read -r sampler protocol <<<"$run"
    lines+=("$("$span_bench" "$otlp_sink" "$sampler" "$protocol" "$requests")")
    [ "$round" = 1 ] && echo "${lines[-1]}"
  done
done
python3 - "${lines[@]}" <<'PY'
import json, sys
runs = [json.loads(l) for l in sys.argv[1:]]
def median(sampler, protocol, key):
    v = sorted(r[key] for r in runs if r["sampler"] == sampler and r["protocol"] == protocol)
    return v[len(v) // 2]
off = median("always_off", "http/protobuf", "recording_thread_us_per_request")
summary = {"workload": "spans summary", "rounds": len(runs) // 3, "sampled_out_us": off}
for protocol in ("http/protobuf", "http/json"):
    name = protocol.split("/")[1]
    summary[name + "_recording_thread_us"] = median("always_on", protocol, "recording_thread_us_per_request")
    summary[name + "_process_us"] = median("always_on", protocol, "process_us_per_request")
print(json.dumps(summary))
print("a request's two spans: recording thread %.2f us (protobuf), %.2f us (json); whole process %.2f us (protobuf), %.2f us (json); sampled out %.3f us" % (
    summary["protobuf_recording_thread_us"], summary["json_recording_thread_us"],
    summary["protobuf_process_us"], summary["json_process_us"], off))
PY
