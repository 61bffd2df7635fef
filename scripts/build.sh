#!/usr/bin/env bash
# Configures and builds one flavour of Gatehouse, warnings fatal (the developer/CI setting;
# a plain `cmake` build keeps them as warnings):
#   (default)              build/          release with debug info (what the tests use)
#   GATEHOUSE_SANITIZE=1   build-asan/     AddressSanitizer + UBSan
#   GATEHOUSE_FLAVOUR=release  build-release/  -O3 Release, as a packager builds it
#   GATEHOUSE_FLAVOUR=clang    build-clang/    Debian's clang, so both compilers keep building
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${GATEHOUSE_FLAVOUR:-default}
[ "${GATEHOUSE_SANITIZE:-0}" = 1 ] && flavour=asan
flags=(-DGATEHOUSE_WERROR=ON)
case "$flavour" in
  default) dir=build; flags+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags+=(-DCMAKE_BUILD_TYPE=Debug -DGATEHOUSE_SANITIZE=ON) ;;
  release) dir=build-release; flags+=(-DCMAKE_BUILD_TYPE=Release) ;;
  clang)
    dir=build-clang
    flags+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
    ;;
  *) echo "build.sh: unknown GATEHOUSE_FLAVOUR '$flavour'" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
