# Shared by the bench scripts: a Release build and a throwaway redis-server on a free port.
# shellcheck shell=bash

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_release() {
  bash "$repo_root/scripts/install-deps.sh"
  cmake -S "$repo_root" -B "$repo_root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPROMPTCACHE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$repo_root/build-release" -j"$(nproc)" >/dev/null
  promptcache_bin="$repo_root/build-release/promptcache"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts redis-server on a free port; sets redis_port and redis_dir; stops it on exit.
start_redis() {
  redis_dir=$(mktemp -d)
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$redis_dir" --logfile "$redis_dir/redis.log" --daemonize yes \
    --pidfile "$redis_dir/redis.pid" >/dev/null
  trap stop_redis EXIT
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start; log:" >&2
  cat "$redis_dir/redis.log" >&2
  return 1
}

stop_redis() {
  if [ -n "${redis_dir:-}" ] && [ -f "$redis_dir/redis.pid" ]; then
    kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
    sleep 0.2
  fi
  [ -n "${redis_dir:-}" ] && rm -rf "$redis_dir"
}

# redis-benchmark GET of a 1 KiB value over one connection with 50 commands pipelined:
# prints requests per second.
redis_benchmark_get() {
  local n=${1:-2000000}
  redis-cli -p "$redis_port" set 'key:__rand_int__' "$(head -c 1024 /dev/zero | tr '\0' x)" >/dev/null
  redis-benchmark -p "$redis_port" -t get -d 1024 -c 1 -P 50 -n "$n" --csv |
    awk -F, 'NR==2 { gsub(/"/, "", $2); print $2 }'
}

# redis-benchmark doing the writes set_multiple does: an analysis key's write is the indexed-write
# script of src/store/scripts.cpp (SET, and ZADD to the user's index, atomically), with a key
# and a value of the same sizes (a 97-byte analysis key over 10 000 keys, the 1 KiB value in its
# 30-byte envelope), EX 3600, 1000 pipelined: prints requests per second. `plain` instead
# sends the bare SET, what an unindexed key costs.
redis_benchmark_set() {
  local n=${1:-1000000} kind=${2:-indexed}
  local key value sha
  key="prompt:analysis:$(head -c 52 /dev/zero | tr '\0' a)__rand_int__:{user42}:default"
  value=$(head -c 1054 /dev/zero | tr '\0' x)
  if [ "$kind" = plain ]; then
    redis-benchmark -p "$redis_port" -c 1 -P 1000 -r 10000 -n "$n" --csv SET "$key" "$value" EX 3600 |
      awk -F'","' 'NR==2 { print $2 }'
    return
  fi
  sha=$(write_script_sha)
  # The write script as set_multiple_json sends it: indexed, unversioned (version 0).
  redis-benchmark -p "$redis_port" -c 1 -P 1000 -r 10000 -n "$n" --csv \
    EVALSHA "$sha" 2 "$key" "prompt:analysis-index:{user42}" "$value" 3600 0 0 0 "" 1 |
    awk -F'","' 'NR==2 { print $2 }'
}

# Loads the write script (src/store/scripts.cpp) into the server; prints its SHA.
write_script_sha() {
  redis-cli -p "$redis_port" SCRIPT LOAD "$(sed -n '/write_text = R"lua(/,/)lua"/p' \
    "$repo_root/src/store/scripts.cpp" | sed '1d;$d')"
}

# What Redis accepts of versioned writes (the write script with a version that only grows, so
# every write takes its full path): n EVALSHAs of the standard key and value sizes over 10 000
# keys, sent by redis-cli --pipe; prints entries/s. redis-benchmark cannot send a growing
# version, hence the pipe.
redis_pipe_versioned() {
  local n=${1:-200000} sha file start end
  sha=$(write_script_sha)
  file=$(mktemp)
  python3 - "$sha" "$n" >"$file" <<'PY'
import sys
sha, n = sys.argv[1], int(sys.argv[2])
value = b"x" * 1054  # the envelope header (30 bytes) + 1 KiB of JSON, as the service writes
out = sys.stdout.buffer
def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)
for i in range(n):
    key = b"prompt:analysis:%s%012d:{user%d}:default" % (b"a" * 52, i % 10000, i % 100)
    index = b"prompt:analysis-index:{user%d}" % (i % 100)
    args = [b"EVALSHA", sha.encode(), b"2", key, index, value, b"3600", b"0",
            str(i + 1).encode(), b"0", b"", b"1"]
    out.write(b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args))
PY
  start=$(date +%s.%N)
  redis-cli -p "$redis_port" --pipe <"$file" >/dev/null
  end=$(date +%s.%N)
  rm -f "$file"
  python3 -c "print(round($n / ($end - $start)))"
}
