#!/usr/bin/env python3
"""Golden data for src/quant, made with the `gguf` Python package as the independent
reference (its numpy dequantizers/quantizers, not flashlm's code).

Run:  /opt/flashlm-ref/bin/python scripts/reference/make_quant_golden.py
Writes tests/golden/quant/quant_golden.bin (little-endian), laid out as:

  char[8]  magic "FLQGOLD1"
  u32      n_sizes, then n_sizes x (u32 type_id, u32 block_size, u32 type_size)
           -- gguf.GGML_QUANT_SIZES for every type the package knows
  u32      n_dequant, then per case:
             u32 type_id, u32 n_elements, u32 n_bytes
             u8  raw[n_bytes]             blocks (random bytes, sane fp16 scales)
             f32 expected[n_elements]     gguf.quants.dequantize(raw)
             f32 x[n_elements]            a random activation vector
             f64 dot                      float64 dot(expected, x)
             f64 abs_dot                  float64 sum |expected_i * x_i|
  u32      n_quant, then per case:
             u32 type_id, u32 n_elements, u32 n_bytes
             f32 input[n_elements]
             u8  expected[n_bytes]        gguf.quants.quantize(input)
"""

from __future__ import annotations

import pathlib
import struct

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf import quants

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "quant" / "quant_golden.bin"
N_BLOCKS = 8
rng = np.random.default_rng(20240607)

# Byte offsets of the fp16 scale fields inside each block (ggml's block_* structs).
HALF_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],    # scales[16] qs[64] d dmin
    T.Q3_K: [108],       # hmask[32] qs[64] scales[12] d
    T.Q4_K: [0, 2],      # d dmin scales[12] qs[128]
    T.Q5_K: [0, 2],      # d dmin scales[12] qh[32] qs[128]
    T.Q6_K: [208],       # ql[128] qh[64] scales[16] d
}


def sane_half(block_index: int) -> np.float16:
    """A finite fp16 scale; a few blocks get edge values (zero, subnormal, large)."""
    special = {3: 0.0, 5: 3.0e-6, 6: 1024.0}  # 3e-6 is an fp16 subnormal
    if block_index in special:
        v = special[block_index]
    else:
        v = float(np.exp(rng.uniform(np.log(1e-4), np.log(4.0))))
    if rng.random() < 0.3:
        v = -v
    return np.float16(v)


def random_blocks(qtype: T) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(N_BLOCKS, type_size), dtype=np.uint8)
    for b in range(N_BLOCKS):
        for off in HALF_FIELDS[qtype]:
            raw[b, off:off + 2] = np.frombuffer(sane_half(b).tobytes(), dtype=np.uint8)
    return raw.reshape(-1)


def random_float_bytes(qtype: T, n: int) -> np.ndarray:
    if qtype == T.F32:
        v = (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(np.float32)
        v[:4] = [0.0, -0.0, 1e-40, -3e-39]  # zeros and f32 subnormals
        return v.view(np.uint8)
    # F16 / BF16: random bit patterns with NaN/inf removed (exponent all ones).
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
    exp_mask = np.uint16(0x7C00 if qtype == T.F16 else 0x7F80)
    bits = np.where((bits & exp_mask) == exp_mask, bits ^ np.uint16(0x4000), bits).astype(np.uint16)
    if qtype == T.BF16:
        # Keep |v| < 2^64 so the dot product stays inside float range.
        exp = (bits >> 7) & 0xFF
        bits = np.where(exp > 190, bits & np.uint16(0xBFFF), bits).astype(np.uint16)
    bits[:4] = [0x0000, 0x8000, 0x0001, 0x8123 if qtype == T.F16 else 0x807F]
    return bits.view(np.uint8)


def dequant_case(qtype: T) -> bytes:
    block_size, _ = GGML_QUANT_SIZES[qtype]
    if block_size == 1:
        n = 256
        raw = random_float_bytes(qtype, n)
    else:
        n = N_BLOCKS * block_size
        raw = random_blocks(qtype)
    expected = np.asarray(quants.dequantize(raw.copy(), qtype), dtype=np.float32).reshape(-1)
    assert expected.size == n and np.all(np.isfinite(expected)), qtype.name
    x = rng.standard_normal(n).astype(np.float32)
    e64 = expected.astype(np.float64)
    x64 = x.astype(np.float64)
    dot = float(np.dot(e64, x64))
    abs_dot = float(np.sum(np.abs(e64 * x64)))
    return (struct.pack("<III", int(qtype), n, raw.size) + raw.tobytes() +
            expected.astype("<f4").tobytes() + x.astype("<f4").tobytes() +
            struct.pack("<dd", dot, abs_dot))


def quant_inputs(n_blocks: int, block_size: int) -> np.ndarray:
    x = rng.standard_normal((n_blocks, block_size)).astype(np.float32)
    x *= np.exp(rng.uniform(-6, 6, (n_blocks, 1))).astype(np.float32)
    x[0] = 0.0                      # all-zero block: d == 0 path
    x[1] = 0.75                     # constant block: max == min for the _1 types
    x[2] = np.abs(x[2])             # one-signed blocks
    x[3] = -np.abs(x[3])
    x[4, 5] = 1000.0 * np.abs(x[4]).max()  # one outlier dominates the scale
    return x.reshape(-1)


def quant_case(qtype: T) -> bytes:
    # All types quantized here have 32-element blocks (float types: 1), so the same
    # 8 x 32 layout of inputs exercises every edge case per block.
    x = quant_inputs(8, 32)
    with np.errstate(over="ignore"):  # the outlier block overflows fp16 to inf on purpose
        q = np.asarray(quants.quantize(x.reshape(1, -1), qtype)).view(np.uint8).reshape(-1)
    return struct.pack("<III", int(qtype), x.size, q.size) + x.astype("<f4").tobytes() + q.tobytes()


def main() -> None:
    out = bytearray(b"FLQGOLD1")
    sizes = sorted((int(t), bs, ts) for t, (bs, ts) in GGML_QUANT_SIZES.items())
    out += struct.pack("<I", len(sizes))
    for s in sizes:
        out += struct.pack("<III", *s)

    deq_types = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                 T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
    out += struct.pack("<I", len(deq_types))
    for t in deq_types:
        out += dequant_case(t)

    q_types = [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
    out += struct.pack("<I", len(q_types))
    for t in q_types:
        out += quant_case(t)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(bytes(out))
    print(f"wrote {OUT} ({len(out)} bytes)")


if __name__ == "__main__":
    main()
