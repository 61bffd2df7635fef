#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite twice: a normal build and
# an AddressSanitizer + UndefinedBehaviorSanitizer build. Also builds what users and
# packagers build (-O3 Release with GCC, and clang), warnings fatal. Exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== release build: unit and integration tests"
scripts/build.sh >/dev/null
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== -O3 Release (GCC) and clang builds, with their unit tests"
for flavour in release clang; do
  log=/tmp/gatehouse-$flavour.log
  GATEHOUSE_FLAVOUR=$flavour scripts/build.sh >"$log" 2>&1 || { tail -n 60 "$log"; exit 1; }
  ctest --test-dir "build-$flavour" -j "$jobs" -E '^integration\.' --output-on-failure >"$log" ||
    { cat "$log"; exit 1; }
  tail -n 3 "$log"
done

echo "== soak under faults, 60 s (tests/soak/README.md; bench/SOAK.md has the 10-minute run)"
/usr/bin/python3 tests/soak/soak.py --seconds 60 --bin build/proxy/gatehouse

# A fixed seed: the run is repeatable; long local runs (scripts/fuzz.sh) explore freely.
echo "== fuzz targets, 20 s each under ASan+UBSan (tests/fuzz/README.md)"
GATEHOUSE_FUZZ_SECONDS=${GATEHOUSE_FUZZ_SECONDS:-20} GATEHOUSE_FUZZ_SEED=${GATEHOUSE_FUZZ_SEED:-1} \
  scripts/fuzz.sh

echo "== sanitizer build (ASan + UBSan): unit and integration tests"
GATEHOUSE_SANITIZE=1 scripts/build.sh >/dev/null
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
