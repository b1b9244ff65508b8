#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for flashlm: system packages, the default models
# (into models/), the evaluation text (data/eval.txt), and a Release build (build/).
# Safe to run again: each step skips what is already done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

APT_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates unzip
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libboost-dev
  python3 python3-pip python3-venv curl chromium
  bible-kjv
)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

scripts/fetch_models.sh
scripts/make_eval_text.sh

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

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: done — binary at build/flashlm"
