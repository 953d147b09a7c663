#!/usr/bin/env bash
# raw_get (DESIGN.md §7): our client's GET of the standard 1 KiB value at 1, 50 and 500
# concurrent coroutines on one thread, beside redis-benchmark -t get -d 1024 -c 1 -P 50 against
# the same server in the same run. Target: at 50 callers, >= 0.6 of redis-benchmark.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ops=${OPS:-500000}

build_release
start_redis
results=$("$promptcache_bin" bench --workload raw_get --redis "redis://127.0.0.1:$redis_port" \
  --concurrency 1,50,500 --ops "$ops" 2>/dev/null)
echo "$results"
reference=$(redis_benchmark_get 2000000)
echo "{\"workload\":\"redis-benchmark -t get -d 1024 -c 1 -P 50\",\"ops_per_s\":$reference}"
ours=$(echo "$results" | python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l)
    if r["concurrency"]==50: print(r["ops_per_s"])')
python3 -c "print('raw_get at 50 callers / redis-benchmark: %.2f (target >= 0.6)' % ($ours / $reference))"
