#!/usr/bin/env bash
# The service's workloads beside redis-benchmark in the same run:
#   get_hit           get_analysis_result of the standard 1 KiB value, 50 callers, one thread
#                     (target >= 0.75 x redis-benchmark -t get -d 1024 -c 1 -P 50; the median of
#                     ROUNDS (5) rounds)
#   set_multiple      batches of 1000 JSON values (target >= 500 000 entries/s), beside
#                     redis-benchmark sending the same writes (the indexed-write script with
#                     the same key and value sizes, EX) and the bare SETs
#   set_multiple_json the same with already serialized JSON
#   set_multiple_versioned  versioned batches, beside redis-cli --pipe sending the
#                     same versioned writes (target >= 0.9 x)
#   fallback_outage   get_with_fallback with Redis down and the breaker open, beside the
#                     fallback alone (target: under 50 us added at p99)
set -euo pipefail
source "$(dirname "$0")/common.sh"
ops=${OPS:-300000}

build_release
start_redis
url="redis://127.0.0.1:$redis_port"
# get_hit in ROUNDS rounds of redis-benchmark, ours, redis-benchmark: each round's ratio is ours
# over the two references around it, and the median round is the figure (this machine's speed
# swings within seconds; one round proves little).
ratios=""
for round in $(seq "${ROUNDS:-5}"); do
  before=$(redis_benchmark_get 1000000)
  get_hit=$("$promptcache_bin" bench --workload get_hit --redis "$url" --concurrency 50 --ops "$ops" 2>/dev/null | tail -1)
  after=$(redis_benchmark_get 1000000)
  echo "$get_hit"
  echo "{\"workload\":\"redis-benchmark -t get -d 1024 -c 1 -P 50\",\"ops_per_s_before\":$before,\"ops_per_s_after\":$after}"
  ratio=$(echo "$get_hit" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
print('%.3f' % (r['ops_per_s'] / (($before + $after) / 2)))")
  echo "get_hit c=50 round $round: $ratio x redis-benchmark"
  ratios="$ratios $ratio"
done
python3 -c "
import statistics, sys
r = sorted(float(x) for x in '$ratios'.split())
print('get_hit c=50 %.2f x redis-benchmark (median of %d rounds: %s; target >= 0.75)' % (statistics.median(r), len(r), ' '.join('%.2f' % x for x in r)))"
set_before=$(redis_benchmark_set 300000)
plain=$(redis_benchmark_set 1000000 plain)
sets=$(for w in set_multiple set_multiple_json; do
  "$promptcache_bin" bench --workload "$w" --redis "$url" --concurrency 1,4 --ops "$ops" 2>/dev/null |
    awk 'NR % 2 == 0'
done)
set_after=$(redis_benchmark_set 300000)
echo "$sets"
echo "{\"workload\":\"redis-benchmark EVALSHA <indexed write> <97-byte key> <1046 bytes> 3600 -r 10000 -c 1 -P 1000\",\"ops_per_s_before\":$set_before,\"ops_per_s_after\":$set_after,\"plain_set_ops_per_s\":$plain}"
echo "$sets" | python3 -c "
import json, sys
ref = ($set_before + $set_after) / 2
for line in sys.stdin:
    r = json.loads(line)
    print('%-17s c=%d %9.0f entries/s  %.2f x redis-benchmark sending the same indexed writes, %.2f x bare SETs of the same sizes (target >= 500000 entries/s)' % (r['workload'], r['concurrency'], r['ops_per_s'], r['ops_per_s'] / ref, r['ops_per_s'] / $plain))"
# Versioned batches (each entry newer than the one before, so every write takes the script's
# full path) beside what Redis accepts of the same versioned writes sent by redis-cli --pipe.
pipe_before=$(redis_pipe_versioned 200000)
versioned=$("$promptcache_bin" bench --workload set_multiple_versioned --redis "$url" \
  --concurrency 1,4 --ops "$ops" 2>/dev/null | awk 'NR % 2 == 0')
pipe_after=$(redis_pipe_versioned 200000)
echo "$versioned"
echo "{\"workload\":\"redis-cli --pipe EVALSHA <write script, growing version> x 200000\",\"ops_per_s_before\":$pipe_before,\"ops_per_s_after\":$pipe_after}"
echo "$versioned" | python3 -c "
import json, sys
ref = ($pipe_before + $pipe_after) / 2
for line in sys.stdin:
    r = json.loads(line)
    print('%-22s c=%d %9.0f entries/s  %.2f x what Redis accepts of the same versioned writes (target >= 0.9)' % (r['workload'], r['concurrency'], r['ops_per_s'], r['ops_per_s'] / ref))"
# A port nothing listens on: Redis is down for the whole run.
"$promptcache_bin" bench --workload fallback_outage --redis "redis://127.0.0.1:$(free_port)" \
  --concurrency 1,50 --ops "$ops" 2>/dev/null
