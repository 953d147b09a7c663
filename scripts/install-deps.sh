#!/usr/bin/env bash
# Installs the Debian 12 packages promptcache needs (docs/building.md). Idempotent: quiet
# when everything is present, one apt-get run for whatever is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl libspdlog-dev libfmt-dev libcli11-dev
  libsqlite3-dev libpq-dev postgresql
  libzstd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-tools redis-sentinel
  clang-14 libclang-rt-14-dev
)

# Node.js and npm run the tests' OTLP receiver (@elastic/mockotlpserver needs Node 18.19+):
# Debian's, unless a Node.js is already installed.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged redis-server starts a system instance on 6379; tests start their own.
if command -v systemctl >/dev/null 2>&1; then
  "${sudo_cmd[@]}" systemctl disable --now redis-server redis-sentinel >/dev/null 2>&1 || true
fi
