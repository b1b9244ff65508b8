#!/usr/bin/env bash
# Runs every test: the Release build's unit, model and command-line tests, then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer (real-model golden
# tests are left to the Release run: under the sanitizers they would take too long on
# two cores), then a short libFuzzer run over the parsers when clang is available.
# Run scripts/setup.sh first (the README's test command does both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

echo "== Release build: all tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j1

echo "== ASan/UBSan build: unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHLM_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j1 -LE slow

if [ -x fuzz/run_fuzzers.sh ] && command -v clang++ >/dev/null 2>&1; then
  echo "== libFuzzer: ${FUZZ_SECONDS:-60} s per target"
  fuzz/run_fuzzers.sh
else
  echo "== libFuzzer: SKIPPED — clang++ not installed (apt-get install clang libclang-rt-14-dev)"
fi
