#!/usr/bin/env bash
# get_hit_l1 (docs/benchmarks.md): hits of the near tier in front of one redis-server, the
# standard 1 KiB value over 10 000 keys: PromptCacheService::peek (a shared reference to the
# value, no copy, no I/O) and peek_with (the value borrowed for a call: no reference count
# moves) on one thread and on two, and get_json (a coroutine call, the text copied out) on one
# (target: <= 100 ns per peek on one thread). Per-hit costs are each thread's CPU time. Beside it, in the same run, the Redis round trip
# it saves: redis-benchmark -t get -d 1024 -c 1 -P 50, as ns per GET.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ops=${OPS:-20000000}

build_release
start_redis
url="redis://127.0.0.1:$redis_port"
rb=$(redis_benchmark_get 2000000)
# The standard 10 000 keys (uniform: every hit a likely cache miss of the CPU), then a hot set
# of 100 keys that stays in the CPU's caches.
for keys in 10000 100; do
  "$promptcache_bin" bench --workload get_hit_l1 --redis "$url" --keys "$keys" --ops "$ops" \
    --threads 2 2>/dev/null | tee /dev/stderr | python3 -c "
import json, sys
ref_ns = 1e9 / $rb
bare = None
for line in sys.stdin:
    r = json.loads(line)
    if r['api'] == 'bare_map_reference':
        bare = r['ns_per_hit']
        print('keys=%-5d bare locked hash map (the floor) %7.1f ns/lookup' % ($keys, bare))
        continue
    print('keys=%-5d get_hit_l1 %-9s threads=%d %7.1f ns/hit (target <= 100 ns on one thread); '
          '%.1f x the bare map; redis-benchmark GET -P 50: %.0f ns/GET -> %.0f x faster'
          % ($keys, r['api'], r['threads'], r['ns_per_hit'], r['ns_per_hit'] / bare, ref_ns,
             ref_ns / r['ns_per_hit']))"
done
