#!/usr/bin/env python3
"""Golden files for flashlm imatrix and flashlm quantize --imatrix, made by llama.cpp's own
llama-imatrix and llama-quantize.

The llama.cpp build is the user's (LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin holding
llama-imatrix and llama-quantize; built by hand, never committed). Input: the synthetic
model tests/golden/synthetic/tiny-llama-f32.gguf and the text tests/golden/quant/
imatrix-text.txt (the first 4000 bytes of Genesis, King James Version, public domain,
from the Debian package bible-kjv; this script writes it from `bible` when it is missing).

    llama-imatrix -m tiny-llama-f32.gguf -f imatrix-text.txt -c 64 --chunks 8 --no-ppl
        -o tiny-llama.imatrix.gguf                       (GGUF form)
        -o tiny-llama.imatrix.dat --output-format dat    (legacy form)
    llama-quantize --imatrix tiny-llama.imatrix.gguf tiny-llama-f32.gguf OUT TYPE 1
        for TYPE in Q4_0 and Q4_K_M -> tiny-llama-{q4_0,q4_k_m}-imatrix.gguf

src/factory/imatrix_test.cpp (target test_factory) collects the imatrix with flashlm on
the same model and text and compares it with these files, reads both forms, and
quantizes with the golden imatrix, comparing every tensor byte for byte.

Run:  LLAMA_CPP_BIN=... python3 scripts/reference/make_imatrix_golden.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "quant"
MODEL = ROOT / "tests" / "golden" / "synthetic" / "tiny-llama-f32.gguf"
TEXT = OUT / "imatrix-text.txt"


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    bin_dir = os.environ.get("LLAMA_CPP_BIN")
    if not bin_dir:
        print("set LLAMA_CPP_BIN to a llama.cpp build's bin directory", file=sys.stderr)
        return 2
    imatrix, quantize = Path(bin_dir) / "llama-imatrix", Path(bin_dir) / "llama-quantize"
    if not TEXT.exists():
        genesis = subprocess.run(["bible", "-f", "gen1:1-gen50:26"], check=True, capture_output=True, text=True).stdout
        lines = [line.split(" ", 1)[1] if " " in line else line for line in genesis.splitlines()]
        TEXT.write_text("\n".join(lines)[:4000], encoding="utf-8")
    common = [str(imatrix), "-m", str(MODEL), "-f", str(TEXT), "-c", "64", "--chunks", "8", "--no-ppl", "-t", "1"]
    run(common + ["-o", str(OUT / "tiny-llama.imatrix.gguf")])
    run(common + ["-o", str(OUT / "tiny-llama.imatrix.dat"), "--output-format", "dat"])
    for t in ("Q4_0", "Q4_K_M"):
        out = OUT / f"tiny-llama-{t.lower()}-imatrix.gguf"
        run([str(quantize), "--imatrix", str(OUT / "tiny-llama.imatrix.gguf"), str(MODEL), str(out), t, "1"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
