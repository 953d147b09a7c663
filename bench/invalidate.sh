#!/usr/bin/env bash
# invalidate_user (docs/benchmarks.md): invalidate_user_analysis_cache of one user's 100
# entries among 1 000 000 keys of 10 000 other users (the standard 1 KiB value), end to end,
# ten rounds (target: <= 5 ms). Each round checks that the keyspace lost exactly the target's
# 100 entries and its index; at the end every other user's entry is read back. The reference in
# the same run: the SCAN-based invalidate_pattern of the same user over the same keyspace.
# KEYS and USERS change the keyspace.
set -euo pipefail
source "$(dirname "$0")/common.sh"
keys=${KEYS:-1000000}
users=${USERS:-10000}

build_release
start_redis
"$promptcache_bin" bench --workload invalidate_user --redis "redis://127.0.0.1:$redis_port" \
  --keys "$keys" --users "$users" 2>/dev/null | tail -1 | tee /dev/stderr | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
print('invalidate_user: %d entries among %d keys: p50 %.3f ms, max %.3f ms (target <= 5 ms); '
      'SCAN reference %.1f ms (%.0f x slower); other users intact: %d of %d'
      % (r['entries'], r['keyspace'], r['p50_ms'], r['max_ms'], r['scan_reference_ms'],
         r['scan_reference_ms'] / r['p50_ms'], r['others_intact'], r['others']))"
