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
