#!/usr/bin/env bash
# raw_get (docs/benchmarks.md): our client's GET of the standard 1 KiB value at 1, 50 and 500
# concurrent coroutines on one thread, beside redis-benchmark -t get -d 1024 -c 1 -P 50 against
# the same server in the same run. Target: at 50 callers, >= 0.6 of redis-benchmark.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ops=${OPS:-500000}

build_release
start_redis
# redis-benchmark before and after ours: the machine drifts; the ratio uses their mean.
before=$(redis_benchmark_get 2000000)
results=$("$promptcache_bin" bench --workload raw_get --redis "redis://127.0.0.1:$redis_port" \
  --concurrency 1,50,500 --ops "$ops" 2>/dev/null)
after=$(redis_benchmark_get 2000000)
echo "$results"
echo "{\"workload\":\"redis-benchmark -t get -d 1024 -c 1 -P 50\",\"ops_per_s_before\":$before,\"ops_per_s_after\":$after}"
echo "$results" | python3 -c "
import json, sys
ref = ($before + $after) / 2
for line in sys.stdin:
    r = json.loads(line)
    print('raw_get c=%-4d %9.0f ops/s  %.2f x redis-benchmark' % (r['concurrency'], r['ops_per_s'], r['ops_per_s'] / ref))
print('target: >= 0.60 at c=50')"
