#!/usr/bin/env bash
# Installs everything Gatehouse needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail
# What the binary is built from (deploy/Dockerfile's build stage installs the same).
build_packages=(
  build-essential cmake pkg-config ca-certificates
  libuv1-dev libssl-dev libpq-dev libtomlplusplus-dev libexpected-dev node-llhttp libnghttp2-dev
)
# What the tests run against: real peers, clients and the container engine.
test_packages=(
  clang-format libgtest-dev python3 python3-yaml curl openssl postgresql redis-server
  podman runc slirp4netns uidmap wrk python3-h2 nghttp2-client
  clang libclang-rt-14-dev testssl.sh
)
packages=("${build_packages[@]}" "${test_packages[@]}")
[ "${GATEHOUSE_BENCH:-0}" = 1 ] && packages+=(nginx-light haproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# HTTP/2: the runtime library must carry CVE-2026-27135's fix (1.52.0-1+deb12u3); an
# older one already installed is upgraded (apt skips installed packages above).
nghttp2_min=1.52.0-1+deb12u3
nghttp2_have=$(dpkg-query -W -f='${Version}' libnghttp2-14 2>/dev/null || echo 0)
if dpkg --compare-versions "$nghttp2_have" lt "$nghttp2_min"; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends --only-upgrade libnghttp2-14 libnghttp2-dev
  nghttp2_have=$(dpkg-query -W -f='${Version}' libnghttp2-14)
  if dpkg --compare-versions "$nghttp2_have" lt "$nghttp2_min"; then
    echo "setup: libnghttp2-14 $nghttp2_have is older than $nghttp2_min (CVE-2026-27135)" >&2
    exit 1
  fi
fi

# Node.js and the npm packages of the WebSocket/Socket.IO tests (real replicas and clients).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi
socketio_dir="$(dirname "$0")/../tests/integration/socketio"
if [ ! -d "$socketio_dir/node_modules/socket.io" ]; then
  (cd "$socketio_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
