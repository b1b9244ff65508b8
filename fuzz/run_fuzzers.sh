#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz/ (clang, ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60) over its seed corpus. Exits non-zero if a target fails to
# build or the fuzzer finds a crash, leak, timeout or out-of-memory input; the input is
# left in build-fuzz/fuzz-artifacts/<target>/.
#
#   fuzz/run_fuzzers.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 fuzz/run_fuzzers.sh gguf
#
# Env: FUZZ_SECONDS, FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_JOBS (build -j, 2).
# Seeds: fuzz/seeds/gguf/ (made by fuzz/make_seeds.py), fuzz/seeds/kv_store/
# (fuzz/make_kv_store_seeds.py), fuzz/seeds/imatrix/ (copies of tests/golden/quant's
# llama-imatrix files), fuzz/seeds/kl_base/ (written by flashlm perplexity
# --kl-save on a synthetic model, see fuzz/seeds/kl_base/README), the test recipes of
# tests/golden/flash/ (flash_recipe), the safetensors files of tests/golden/safetensors/
# (written by Hugging Face's package) and the real chat templates in
# tests/golden/chat/templates/. New corpus entries go to build-fuzz/fuzz-corpus/, never
# into the repo.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gguf chat_template request kv_store kl_base imatrix grammar flash_recipe safetensors tokenizer_json)

mkdir -p "$build"
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DFLASHLM_FUZZ=ON -DFLASHLM_TESTS=OFF -DFLASHLM_WERROR=OFF >"$build/configure.log" 2>&1 || {
  echo "configure failed (see $build/configure.log)"; exit 2; }

status=0
for t in "${targets[@]}"; do
  case $t in
    gguf) seeds=("$root/fuzz/seeds/gguf"); opts=(-max_len=16384 -dict="$root/fuzz/gguf.dict") ;;
    chat_template) seeds=("$root/tests/golden/chat/templates"); opts=(-max_len=8192 -dict="$root/fuzz/jinja.dict") ;;
    request) seeds=("$root/fuzz/seeds/request"); opts=(-max_len=4096) ;;
    kv_store) seeds=("$root/fuzz/seeds/kv_store"); opts=(-max_len=4096) ;;
    kl_base) seeds=("$root/fuzz/seeds/kl_base"); opts=(-max_len=8192) ;;
    imatrix) seeds=("$root/fuzz/seeds/imatrix"); opts=(-max_len=8192) ;;
    grammar) seeds=("$root/fuzz/seeds/grammar"); opts=(-max_len=4096) ;;
    flash_recipe) seeds=("$root/tests/golden/flash"); opts=(-max_len=4096) ;;
    safetensors) seeds=("$root/tests/golden/safetensors"); opts=(-max_len=4096) ;;
    tokenizer_json) seeds=("$root/fuzz/seeds/tokenizer_json"); opts=(-max_len=8192) ;;
    *) echo "unknown target '$t'"; status=2; continue ;;
  esac
  echo "== fuzz_$t: building"
  if ! cmake --build "$build" --target "fuzz_$t" -j"$jobs" >"$build/fuzz_$t.build.log" 2>&1; then
    echo "== fuzz_$t: BUILD FAILED (see $build/fuzz_$t.build.log)"
    grep -m5 "error" "$build/fuzz_$t.build.log"
    status=1
    continue
  fi
  corpus=$build/fuzz-corpus/$t
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  log=$build/fuzz_$t.log
  echo "== fuzz_$t: running ${secs}s (log $log)"
  # The first corpus dir receives new inputs; the seed dirs are only read.
  # -malloc_limit_mb catches any single huge allocation; -timeout any input over 10 s.
  "$build/fuzz_$t" "$corpus" "${seeds[@]}" "${opts[@]}" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -m1 "stat::number_of_executed_units" "$log" | awk '{print $2}')
  cov=$(grep -E "^#[0-9]+" "$log" | tail -1 | grep -oE "cov: [0-9]+" || true)
  if [ $rc -ne 0 ]; then
    echo "== fuzz_$t: FAILED (exit $rc) after ${execs:-?} runs; input in $artifacts/"
    grep -m3 -E "ERROR|runtime error|SUMMARY" "$log"
    status=1
  else
    echo "== fuzz_$t: ok, ${execs:-?} runs in ${secs}s, $cov, corpus $(ls "$corpus" | wc -l) files"
  fi
done
exit $status
