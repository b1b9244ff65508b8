#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for flashlm: system packages (including the fuzzing
# and aarch64 cross-build toolchains scripts/test.sh uses), the default models
# (into models/), the evaluation text (data/eval.txt), and a Release build (build/).
# Safe to run again: each step skips what is already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

APT_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates unzip
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libboost-dev libtomlplusplus-dev
  python3 python3-pip python3-venv curl chromium
  bible-kjv
)
# The test stages beyond the Release build: clang and its sanitizer runtimes for the
# fuzzers; Debian's aarch64 cross compiler, qemu-user and arm64 multiarch libraries for
# the aarch64 build (scripts/test.sh skips a stage whose tools are missing).
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
ARM64_PACKAGES=(g++-aarch64-linux-gnu qemu-user libpcre2-dev:arm64 libutf8proc-dev:arm64 libgtest-dev:arm64)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}" "${ARM64_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # The :arm64 packages need the architecture enabled before apt-get update.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# nvcc for the CUDA backend's build stage (the machine's toolkit, else NVIDIA's PyPI
# wheels); without one scripts/test.sh says that stage is skipped.
scripts/install_nvcc.sh || echo "setup: no nvcc could be installed: the CUDA build stage will be skipped"

scripts/fetch_models.sh
scripts/make_eval_text.sh
scripts/make_tasks.py  # data/tasks/: the evaluation tasks of flashlm eval
# The Flash factory's calibration text (flashlm imatrix, prune; bench/quant_frontier.py).
[ -s data/factory-calibration.txt ] || scripts/make_calibration_text.sh data/factory-calibration.txt 'nu1:1-de34:12'

# Pinned Python packages for the server's integration tests (tests/server) in .venv/.
# Re-installs when any pinned line is missing from the venv's `pip freeze`.
req=tests/server/requirements.txt
pinned=$(grep -cE '^[A-Za-z]' "$req")
have=$( (.venv/bin/python -m pip freeze 2>/dev/null || true) | grep -cixF -f <(grep -E '^[A-Za-z]' "$req") || true)
if [ "$have" -ne "$pinned" ]; then
  echo "setup: installing the server test packages into .venv"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -r "$req"
fi

# Hugging Face tokenizer directories of the real models (models/hf/<model>/: tokenizer.json,
# tokenizer_config.json), made by transformers' GGUF conversion in the .venv (no torch),
# for the tokenizer.json BPE goldens; skipped when tokenizer.json is there.
for pair in SmolLM2-135M-Instruct.Q4_1.gguf:SmolLM2-135M-Instruct gemma-3-270m-q4_k_m.gguf:gemma-3-270m; do
  gguf="models/${pair%%:*}" out="models/hf/${pair##*:}"
  [ -s "$out/tokenizer.json" ] || .venv/bin/python scripts/hf_tokenizer_from_gguf.py "$gguf" "$out"
done
# SmolLM2's directory gets its weights too (config.json, BF16 model.safetensors; numpy and
# gguf-py only), so it is a whole Hugging Face model for -m DIR and flashlm convert.
[ -s models/hf/SmolLM2-135M-Instruct/model.safetensors ] ||
  .venv/bin/python scripts/hf_weights_from_gguf.py models/SmolLM2-135M-Instruct.Q4_1.gguf models/hf/SmolLM2-135M-Instruct

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: done — binary at build/flashlm"
