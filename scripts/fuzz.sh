#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) and runs each for a bounded time.
#
#   scripts/fuzz.sh                      every target, GATEHOUSE_FUZZ_SECONDS (60) each
#   scripts/fuzz.sh head_request config  only these
#   GATEHOUSE_FUZZ_SECONDS=600 scripts/fuzz.sh chunked
#   GATEHOUSE_FUZZ_SEED=1 scripts/fuzz.sh  the same mutation sequence every run (CI)
#
# Needs clang and libclang-rt-14-dev (scripts/setup.sh). Builds in build-fuzz/ of this
# checkout (GATEHOUSE_FUZZ_BUILD to change it). Each target starts from a copy of its seed
# corpus (tests/fuzz/corpus/<target>) in a temporary directory, so the checkout stays
# clean, and replays tests/fuzz/regressions/<target> (inputs that once failed) first.
# Prints one line per target (seconds, executions, corpus size) and exits non-zero if any
# target failed, naming the saved input. The work directory is kept when something failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${GATEHOUSE_FUZZ_BUILD:-$root/build-fuzz}
seconds=${GATEHOUSE_FUZZ_SECONDS:-60}
fuzz_dir=$root/tests/fuzz

# Longest input per target: what the parser meets in practice, short enough to stay fast.
declare -A max_len=(
  [head_request]=2048 [head_response]=2048 [head_vs_llhttp]=2048 [http_parser]=2048
  [chunked]=1024 [engineio_sid]=512 [config]=8192 [probe_redis]=512 [probe_http]=2048
  [probe_pg_error]=1024 [rewrite]=2048
)
# Dictionaries (tests/fuzz/<name>.dict): the tokens the parsers compare case-insensitively
# or field by field, which libFuzzer's comparison tracing does not pick up by itself.
declare -A dict=(
  [head_request]=http [head_response]=http [head_vs_llhttp]=http [http_parser]=http
  [chunked]=http [probe_http]=http [rewrite]=http [config]=config
)

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for dir in "$fuzz_dir"/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
for target in "${targets[@]}"; do
  if [[ ! -d $fuzz_dir/corpus/$target ]]; then
    echo "fuzz.sh: unknown target '$target' (targets: $(ls "$fuzz_dir/corpus" | tr '\n' ' '))" >&2
    exit 2
  fi
done

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGATEHOUSE_FUZZ=ON -DGATEHOUSE_TESTS=OFF >/dev/null
if [[ ! -d $build/tests/fuzz ]]; then
  echo "fuzz.sh: $build has no tests/fuzz: the top-level CMakeLists.txt needs" \
    "'if(GATEHOUSE_FUZZ) add_subdirectory(tests/fuzz) endif()'" >&2
  exit 2
fi
build_targets=()
for target in "${targets[@]}"; do build_targets+=(--target "fuzz_$target"); done
cmake --build "$build" -j"$(nproc)" "${build_targets[@]}"

work=$(mktemp -d /tmp/gatehouse-fuzz.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The value of libFuzzer's "stat::<name>: <value>" line in a log, or "-".
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1 | grep . || echo -; }

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus=$work/corpus/$target
  artifacts=$work/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  cp "$fuzz_dir/corpus/$target"/* "$corpus"/
  extra=()
  if [[ -d $fuzz_dir/regressions/$target ]]; then extra+=("$fuzz_dir/regressions/$target"); fi
  if [[ -n ${dict[$target]:-} ]]; then extra+=(-dict="$fuzz_dir/${dict[$target]}.dict"); fi
  if [[ -n ${GATEHOUSE_FUZZ_SEED:-} ]]; then extra+=(-seed="$GATEHOUSE_FUZZ_SEED"); fi
  log=$work/$target.log
  echo "== $target: ${seconds}s, max_len ${max_len[$target]:-4096}"
  start=$(date +%s)
  status=0
  "$build/tests/fuzz/fuzz_$target" "$corpus" "${extra[@]}" \
    -max_total_time="$seconds" -max_len="${max_len[$target]:-4096}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  execs=$(final_stat number_of_executed_units "$log")
  files=$(find "$corpus" -type f | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  line=$(printf '%-16s %5ss %12s execs %6s corpus %6s cov' "$target" "$elapsed" "$execs" \
    "$files" "${cov:--}")
  if [[ $status -ne 0 ]]; then
    saved=$(find "$artifacts" -type f | head -n 1)
    line+="  FAILED (exit $status): ${saved:-no input saved}, log $log"
    failed+=("$target")
    grep -m 1 -A 3 -E 'fuzz invariant broken|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' \
      "$log" || tail -n 20 "$log"
  fi
  summary+=("$line")
done

echo
echo "fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${seconds}s per target):"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]} (work directory $work kept)" >&2
  exit 1
fi
rm -rf "$work"
