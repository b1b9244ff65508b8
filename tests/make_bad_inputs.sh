#!/usr/bin/env bash
# Makes broken model files for the command-line error tests from a real model.
set -euo pipefail
src=$1
out=$2
mkdir -p "$out"
: > "$out/empty.gguf"
head -c 4096 /dev/urandom > "$out/random.gguf"
head -c 100 "$src" > "$out/truncated_header.gguf"
head -c 20000000 "$src" > "$out/truncated_data.gguf"
# A valid header whose architecture string is changed ("llama" -> "fakea...") is made
# with python's struct module: GGUF v3, no tensors, one key.
python3 - "$out/wrong_arch.gguf" <<'PY'
import struct, sys
def s(x): b = x.encode(); return struct.pack("<Q", len(b)) + b
kv = s("general.architecture") + struct.pack("<I", 8) + s("fakearch")
open(sys.argv[1], "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv)
PY
# Hugging Face directories that must be refused (when setup made models/hf/): untied
# embeddings without lm_head.weight, and a SentencePiece-style tokenizer.json (Gemma's)
# beside SmolLM2's weights. The big files are links.
hf=$(dirname "$src")/hf
if [ -s "$hf/SmolLM2-135M-Instruct/model.safetensors" ] && [ -s "$hf/gemma-3-270m/tokenizer.json" ]; then
  for d in hf_untied hf_spm; do
    rm -rf "${out:?}/$d" && mkdir -p "$out/$d"
    ln -s "$(realpath "$hf/SmolLM2-135M-Instruct/model.safetensors")" "$out/$d/model.safetensors"
  done
  sed 's/"tie_word_embeddings": true/"tie_word_embeddings": false/' "$hf/SmolLM2-135M-Instruct/config.json" > "$out/hf_untied/config.json"
  ln -s "$(realpath "$hf/SmolLM2-135M-Instruct/tokenizer.json")" "$out/hf_untied/tokenizer.json"
  cp "$hf/SmolLM2-135M-Instruct/config.json" "$out/hf_spm/config.json"
  ln -s "$(realpath "$hf/gemma-3-270m/tokenizer.json")" "$out/hf_spm/tokenizer.json"
fi
