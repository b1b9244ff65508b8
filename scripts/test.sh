#!/usr/bin/env bash
# Runs every test: the Release build's unit, model and command-line tests, then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer (SmolLM2's real-model
# tests are left to the Release run: the sanitized server tests run that model), the
# server under real clients with the sanitizers, the thread pool under ThreadSanitizer, then the aarch64 cross build's tests
# under qemu-user and a short libFuzzer run over the parsers, when their toolchains are
# installed (scripts/setup.sh installs them).
# Run scripts/setup.sh first (the README's test command does both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

echo "== Release build: all tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j1

# The CUDA backend skeleton: nvcc compiles and links it (no GPU needed), and selecting it
# fails with its clear error. Only the backend layer's test binary is built (the whole
# binary would rebuild every layer a second time); scripts/setup.sh installs nvcc
# (scripts/install_nvcc.sh).
if nvcc=$(scripts/install_nvcc.sh --find); then
  echo "== CUDA build (-DFLASHLM_CUDA=ON, $nvcc): the cuda backend builds and says it is not implemented yet"
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DFLASHLM_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc"
  cmake --build build-cuda -j"$jobs" --target test_backend
  build-cuda/test_backend --gtest_filter='Backend.CudaSaysClearlyWhyItCannotRun:Backend.NamesRoundTrip'
else
  echo "== CUDA build: SKIPPED — no nvcc (scripts/install_nvcc.sh installs one)"
fi

echo "== ASan/UBSan build: unit tests"
# -O1 -g1 (line tables, enough for sanitizer stack traces): the instrumented build is the
# longest stage on two cores, and -O2 -g doubles its compile time.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHLM_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
cmake --build build-asan -j"$jobs"
# SmolLM2's real-model tests are left to the Release run here: the server tests below run
# that model under the sanitizers anyway, and these took two thirds of this stage.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j1 -LE slow -E "SmolLM2|smollm2"

echo "== TSan: the thread pool (every op of every forward pass goes through it)"
# Two sources and GoogleTest, so the data-race check costs seconds, not a third full build.
g++ -std=c++20 -O1 -g -fsanitize=thread -Isrc src/kernels/cpu/thread_pool.cpp \
  src/kernels/cpu/thread_pool_test.cpp -lgtest -lgtest_main -pthread -o build/test_thread_pool_tsan
TSAN_OPTIONS=halt_on_error=1 build/test_thread_pool_tsan --gtest_brief=1

echo "== ASan/UBSan build: the server under real clients (openai, raw sockets, bad requests, streams with disconnects)"
# Fewer concurrent streams than the Release run: the sanitized model is several times slower.
# A sanitizer report aborts the server, and leaks make its exit status non-zero; the tests
# check both. The browser tests (chat page, CORS), the memory soak (RSS means little under
# ASan), the 30-schema JSON-schema corpus, the Gemma 3 runs and LangChain's and LiteLLM's
# (client-side) checks run in the Release build only; the other structured-output and
# tool-calling tests run here too.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  FLASHLM_TEST_STREAMS=200 tests/server/run.sh build-asan/flashlm models/SmolLM2-135M-Instruct.Q4_1.gguf \
  --ignore=test_chat_page.py --ignore=test_cors.py --ignore=test_soak.py \
  -k "not test_json_schema_output_validates and not gemma3 and not langchain and not litellm" \
  || { rc=$?; [ "$rc" -eq 77 ] || exit "$rc"; }

if command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 \
   && [ -f /usr/lib/aarch64-linux-gnu/libpcre2-8.a ] && [ -f /usr/lib/aarch64-linux-gnu/libutf8proc.a ]; then
  echo "== aarch64 cross build: kernel, model (synthetic), tokenizer and unit tests under qemu-user"
  cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release
  cmake --build build-arm64 -j"$jobs"
  # Real-model tests are left to the native runs: under emulation they take too long (the
  # embedding model's tokenizer goldens and short checks do run).
  # qemu's default CPU has the dot-product instructions: CpuFeatures.DispatchedLevel checks
  # that the dotprod kernels are the ones dispatched (both NEON levels are tested either way).
  FLASHLM_EXPECT_ISA=neon+dotprod \
    ctest --test-dir build-arm64 --output-on-failure -j"$jobs" -E "SmolLM2|Gemma3|smollm2|gemma3|Real|cli_|ppl_|MatchesSentenceTransformers"
  echo "== aarch64: kernel tests on an ARMv8.0 CPU without dotprod (plain NEON dispatched, nothing traps)"
  QEMU_CPU=cortex-a53 FLASHLM_EXPECT_ISA=neon qemu-aarch64 build-arm64/test_kernels --gtest_brief=1
else
  echo "== aarch64: SKIPPED — needs g++-aarch64-linux-gnu, qemu-user, libpcre2-dev:arm64, libutf8proc-dev:arm64, libgtest-dev:arm64"
fi

if [ -x fuzz/run_fuzzers.sh ] && command -v clang++ >/dev/null 2>&1; then
  echo "== libFuzzer: ${FUZZ_SECONDS:-60} s per target"
  fuzz/run_fuzzers.sh
else
  echo "== libFuzzer: SKIPPED — clang++ not installed (apt-get install clang libclang-rt-14-dev)"
fi
