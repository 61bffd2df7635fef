#!/usr/bin/env bash
# Configures and builds one flavour of Gatehouse: build/ (release with debug info) or,
# with GATEHOUSE_SANITIZE=1, build-asan/ (AddressSanitizer + UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${GATEHOUSE_SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DGATEHOUSE_SANITIZE=ON)
else
  dir=build
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
