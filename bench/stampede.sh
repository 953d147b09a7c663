#!/usr/bin/env bash
# stampede (docs/benchmarks.md): 1 000 concurrent get_with_fallback on one cold key with a
# 5 ms fallback (target: 1 fallback call), on 10 cold keys (target: 10), and two processes of
# 500 callers each on one cold key with the cross-process lease (target: <= 2). The reference
# in the same run: the seed's behaviour, every concurrent miss calling the fallback (1 000).
set -euo pipefail
source "$(dirname "$0")/common.sh"

build_release
start_redis
url="redis://127.0.0.1:$redis_port"
"$promptcache_bin" bench --workload stampede --redis "$url" --keys 1 --concurrency 1000 2>/dev/null
"$promptcache_bin" bench --workload stampede --redis "$url" --keys 10 --concurrency 1000 2>/dev/null
at=$(( $(date +%s%3N) + 1500 ))
out=$(mktemp -d)
for p in 1 2; do
  "$promptcache_bin" bench --workload stampede --redis "$url" --keys 1 --concurrency 500 \
    --lease-ms 2000 --start-at "$at" --nonce "two-$at" >"$out/$p" 2>/dev/null &
done
wait
cat "$out/1" "$out/2"
python3 -c "
import json
calls = sum(json.loads(open('$out/%d' % p).read().strip().splitlines()[-1])['fallback_calls'] for p in (1, 2))
print('two processes x 500 callers with the lease: %d fallback calls (target <= 2; without any protection 1000)' % calls)"
rm -rf "$out"
