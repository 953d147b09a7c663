# Shared by the bench scripts: a Release build and a throwaway redis-server on a free port.
# shellcheck shell=bash

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# PROMPTCACHE_BIN=path runs another build instead (an older one, for a before/after figure).
build_release() {
  if [ -n "${PROMPTCACHE_BIN:-}" ]; then
    promptcache_bin=$PROMPTCACHE_BIN
    return
  fi
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
import sys, time
sha, n = sys.argv[1], int(sys.argv[2])
base = int(time.time() * 1e6)  # above whatever an earlier run left, as the bench does
value = b"x" * 1054  # the envelope header (30 bytes) + 1 KiB of JSON, as the service writes
out = sys.stdout.buffer
def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)
for i in range(n):
    key = b"prompt:analysis:%s%012d:{user%d}:default" % (b"a" * 52, i % 10000, i % 100)
    index = b"prompt:analysis-index:{user%d}" % (i % 100)
    args = [b"EVALSHA", sha.encode(), b"2", key, index, value, b"3600", b"0",
            str(base + i).encode(), b"0", b"", b"1"]
    out.write(b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args))
PY
  start=$(date +%s.%N)
  redis-cli -p "$redis_port" --pipe <"$file" >/dev/null
  end=$(date +%s.%N)
  rm -f "$file"
  python3 -c "print(round($n / ($end - $start)))"
}

need_wrk_and_nginx() {
  if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nginx-light \
      >/dev/null
  fi
}

# Starts nginx in $1 answering every OTLP trace export 200 without reading it, as a collector
# on another machine costs this one nothing; sets otlp_sink (its base URL) and otlp_sink_dir.
start_otlp_sink() {
  otlp_sink_dir=$1
  local port
  port=$(free_port)
  mkdir -p "$otlp_sink_dir/nginx-tmp"
  cat >"$otlp_sink_dir/nginx.conf" <<CONF
worker_processes 1;
pid $otlp_sink_dir/nginx.pid;
error_log $otlp_sink_dir/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $otlp_sink_dir/nginx-tmp;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:$port;
    location = /v1/traces { default_type application/json; return 200 '{}'; }
  }
}
CONF
  nginx -c "$otlp_sink_dir/nginx.conf"
  otlp_sink="http://127.0.0.1:$port"
}

stop_otlp_sink() {
  if [ -n "${otlp_sink_dir:-}" ] && [ -f "$otlp_sink_dir/nginx.pid" ]; then
    kill "$(cat "$otlp_sink_dir/nginx.pid")" 2>/dev/null || true
  fi
}

# Starts `promptcache serve` on the Redis of start_redis and a SQLite file in $1 (extra flags
# after it); sets serve_pid and base (its URL).
start_serve() {
  local dir=$1
  shift
  local port
  port=$(free_port)
  REDIS_URL="redis://127.0.0.1:$redis_port" "$promptcache_bin" serve \
    --listen "127.0.0.1:$port" --db "sqlite://$dir/bench.db" "$@" \
    >"$dir/serve.out" 2>"$dir/serve.log" &
  serve_pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.05; done
  base="http://127.0.0.1:$port"
}

# Stores $2 analyses of about 1 KiB each (the standard value's 12 suggestions) through the API
# at $1; their GET paths go to the file $3, the first one's body to $4.
populate_analyses() {
  python3 - "$@" <<'PY'
import hashlib, json, sys, urllib.request
base, keys, paths_file, sample_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(paths_file, "w") as paths:
    for i in range(keys):
        prompt = f"Summarize the quarterly report, variant {i}"
        body = {
            "prompt": prompt, "user_id": f"user{i % 100}",
            "quality_scores": {"score": 0.87, "clarity": 0.91, "tokens": 412},
            "improvement_suggestions": [
                f"suggestion {j:02}: state the expected output format" for j in range(12)],
            "metadata": {"source": "bench"},
        }
        req = urllib.request.Request(base + "/v1/analyses", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        h = hashlib.sha256(prompt.encode()).hexdigest()
        paths.write(f"/v1/analyses/{h}?user_id=user{i % 100}\n")
        if i == 0:
            with open(sample_file, "wb") as f:
                f.write(urllib.request.urlopen(base + f"/v1/analyses/{h}?user_id=user0").read())
PY
}

# A wrk script that GETs the paths of the file $PATHS_FILE in turn; written to $1.
write_paths_lua() {
  cat >"$1" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
}
