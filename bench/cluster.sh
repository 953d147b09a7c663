#!/usr/bin/env bash
# get_hit (get_analysis_result of the standard 1 KiB value, 10 000 keys) against a Redis Cluster
# of 3 masters and against one standalone server, in the same run, beside redis-benchmark
# GET on the standalone server (-c 1 -P 50) and on the cluster (--cluster, -c 3 -P 50: one
# connection per master, as our client has).
#   OPS=300000 CONCURRENCY=50,150 bash bench/cluster.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
ops=${OPS:-300000}
concurrency=${CONCURRENCY:-50,150}

build_release
start_redis
cluster_dir=$(mktemp -d)
cluster_ports=()
stop_cluster() {
  for f in "$cluster_dir"/*/redis.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.2
  rm -rf "$cluster_dir"
  stop_redis
}
trap stop_cluster EXIT
for i in 1 2 3; do
  port=$(free_port)
  bus=$(free_port)
  mkdir -p "$cluster_dir/$i"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --cluster-enabled yes \
    --cluster-config-file "$cluster_dir/$i/nodes.conf" --cluster-port "$bus" \
    --dir "$cluster_dir/$i" --logfile "$cluster_dir/$i/redis.log" --daemonize yes \
    --pidfile "$cluster_dir/$i/redis.pid" >/dev/null
  cluster_ports+=("$port")
done
for port in "${cluster_ports[@]}"; do
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli --cluster create $(for p in "${cluster_ports[@]}"; do printf '127.0.0.1:%s ' "$p"; done) \
  --cluster-yes >/dev/null
for _ in $(seq 200); do
  redis-cli -p "${cluster_ports[0]}" cluster info | grep -q cluster_state:ok && break
  sleep 0.1
done
cluster_url="redis://$(IFS=,; for p in "${cluster_ports[@]}"; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')"
standalone_url="redis://127.0.0.1:$redis_port"

before=$(redis_benchmark_get 2000000)
standalone=$("$promptcache_bin" bench --workload get_hit --redis "$standalone_url" \
  --concurrency "$concurrency" --ops "$ops" 2>/dev/null | awk 'NR % 2 == 0')
cluster=$("$promptcache_bin" bench --workload get_hit --redis "$cluster_url" \
  --concurrency "$concurrency" --ops "$ops" 2>/dev/null | awk 'NR % 2 == 0')
# 10 000 keys of 1 KiB over the masters (redis-benchmark tags them per node), then GETs of them.
redis-benchmark -p "${cluster_ports[0]}" --cluster -t set -d 1024 -r 10000 -n 200000 -c 3 -P 50 \
  >/dev/null 2>&1
cluster_reference=$(redis-benchmark -p "${cluster_ports[0]}" --cluster -t get -d 1024 -r 10000 \
  -c 3 -P 50 -n 2000000 --csv 2>/dev/null | awk -F, '/"GET"/ { gsub(/"/, "", $2); print $2 }')
echo "$standalone" | sed 's/^{/{"store":"standalone",/'
echo "$cluster" | sed 's/^{/{"store":"cluster (3 masters)",/'
echo "{\"workload\":\"redis-benchmark -t get -d 1024 -c 1 -P 50 (standalone)\",\"ops_per_s\":$before}"
echo "{\"workload\":\"redis-benchmark --cluster -t get -d 1024 -c 3 -P 50\",\"ops_per_s\":${cluster_reference:-0}}"
python3 - "$before" "${cluster_reference:-0}" <<PY
import json, sys
standalone = [json.loads(l) for l in """$standalone""".splitlines() if l.strip()]
cluster = [json.loads(l) for l in """$cluster""".splitlines() if l.strip()]
ref, cref = float(sys.argv[1]), float(sys.argv[2])
for s, c in zip(standalone, cluster):
    print('get_hit c=%-4d standalone %8.0f ops/s (%.2f x redis-benchmark)   cluster %8.0f ops/s '
          '(%.2f x standalone%s)' % (s['concurrency'], s['ops_per_s'], s['ops_per_s'] / ref,
          c['ops_per_s'], c['ops_per_s'] / s['ops_per_s'],
          ', %.2f x redis-benchmark --cluster' % (c['ops_per_s'] / cref) if cref else ''))
PY
