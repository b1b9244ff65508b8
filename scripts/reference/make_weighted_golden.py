#!/usr/bin/env python3
"""Golden bytes for flashlm's importance-weighted quantizers and its Q2_K/Q3_K reference
quantizers, made by ggml itself: ggml_quantize_chunk() of a llama.cpp build's
libggml-base, called through ctypes (the function llama-quantize calls per tensor, with
the imatrix row as quant_weights, or NULL without --imatrix).

The library comes from a llama.cpp build the user names (built by hand, never committed):
    LLAMA_CPP_DIR=/path/to/llama.cpp/build   (bin/ or ggml/src/ holding libggml-base.so)
or  LIBGGML_BASE=/path/to/libggml-base.so

Run:  LLAMA_CPP_DIR=... .venv/bin/python scripts/reference/make_weighted_golden.py
Writes tests/golden/quant/weighted_golden.bin (little-endian), read by
src/quant/quantize_weighted_test.cpp:

  char[8]  magic "FLQWGT01"
  u32      n_cols, u32 n_rows, then f32 rows[n_rows][n_cols]      the float inputs
  u32      n_imatrix, then f32 imatrix[n_imatrix][n_cols]         importance rows
  u32      n_cases, then per case:
             u32 type_id, u32 row, i32 imatrix (-1: none), u32 n_bytes
             u8  bytes[n_bytes]   ggml_quantize_chunk(type, rows[row], 1 row, imatrix)

Inputs are deterministic (fixed seed); rows are 512 wide (two K-quant super-blocks,
sixteen legacy blocks) so the legacy types' whole-row statistics matter too.
"""
from __future__ import annotations

import ctypes
import os
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "quant" / "weighted_golden.bin"
N_COLS = 512

# ggml_type ids (== GGUF tensor type ids).
Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = 2, 3, 6, 7, 8, 10, 11, 12, 13, 14
WEIGHTED = [Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K]


def load_ggml() -> ctypes.CDLL:
    path = os.environ.get("LIBGGML_BASE")
    if not path:
        base = os.environ.get("LLAMA_CPP_DIR")
        if not base:
            sys.exit("set LLAMA_CPP_DIR to a llama.cpp build directory (or LIBGGML_BASE to libggml-base.so)")
        for sub in ("bin", "ggml/src", "lib", "."):
            cand = Path(base) / sub / "libggml-base.so"
            if cand.exists():
                path = str(cand)
                break
        else:
            sys.exit(f"no libggml-base.so under {base}")
    lib = ctypes.CDLL(path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    return lib


def make_rows(rng: np.random.Generator) -> np.ndarray:
    rows = np.zeros((4, N_COLS), dtype=np.float32)
    # 0: a different magnitude per 32 values, so sub-block scales differ within a block.
    rows[0] = rng.standard_normal(N_COLS) * np.exp(rng.uniform(-4.0, 2.0, N_COLS // 32)).repeat(32)
    # 1: sub-blocks of 16 that are zero, constant or normal: the degenerate fitting paths.
    for s in range(N_COLS // 16):
        kind = s % 4
        if kind == 1:
            rows[1, 16 * s:16 * s + 16] = rng.uniform(-2, 2)
        elif kind >= 2:
            rows[1, 16 * s:16 * s + 16] = rng.standard_normal(16) * np.exp(rng.uniform(-3, 1))
    # 2: heavy-tailed, rounded to fp16 like real weights.
    rows[2] = (rng.standard_t(2.0, N_COLS) * 0.02).astype(np.float16).astype(np.float32)
    # 3: all positive, so every offset is 0.
    rows[3] = np.abs(rng.standard_normal(N_COLS))
    return rows


def make_imatrix(rng: np.random.Generator) -> np.ndarray:
    im = np.zeros((2, N_COLS), dtype=np.float32)
    im[0] = np.exp(rng.uniform(-6.0, 6.0, N_COLS))  # very uneven importance
    im[1] = np.where(rng.random(N_COLS) < 0.5, 0.0, rng.uniform(0.1, 5.0, N_COLS))  # unused columns
    return im


def quantize(lib: ctypes.CDLL, t: int, row: np.ndarray, imatrix: np.ndarray | None) -> bytes:
    row = np.ascontiguousarray(row, dtype=np.float32)
    out = ctypes.create_string_buffer(lib.ggml_row_size(t, N_COLS))
    qw = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
    n = lib.ggml_quantize_chunk(t, row.ctypes.data, out, 0, 1, N_COLS, None if qw is None else qw.ctypes.data)
    assert n == len(out.raw), (t, n, len(out.raw))
    return out.raw


def main() -> None:
    lib = load_ggml()
    rng = np.random.default_rng(20261205)
    rows, imatrix = make_rows(rng), make_imatrix(rng)
    cases = []
    for t in WEIGHTED:
        for r in range(len(rows)):
            for k in (-1, 0, 1):
                cases.append((t, r, k, quantize(lib, t, rows[r], None if k < 0 else imatrix[k])))
    for r in range(len(rows)):  # Q8_0 ignores an imatrix; its reference bytes only
        cases.append((Q8_0, r, -1, quantize(lib, Q8_0, rows[r], None)))
    blob = bytearray(b"FLQWGT01")
    blob += struct.pack("<II", N_COLS, len(rows)) + rows.astype("<f4").tobytes()
    blob += struct.pack("<I", len(imatrix)) + imatrix.astype("<f4").tobytes()
    blob += struct.pack("<I", len(cases))
    for t, r, k, raw in cases:
        blob += struct.pack("<IIiI", t, r, k, len(raw)) + raw
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(bytes(blob))
    print(f"wrote {OUT} ({len(blob)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
