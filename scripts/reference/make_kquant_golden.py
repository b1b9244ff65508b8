#!/usr/bin/env python3
"""Golden files for flashlm's K-quant quantizers, made by llama.cpp's own llama-quantize.

gguf-py has no K-quant quantizers, so the reference is llama-quantize from a llama.cpp
build the user names (LLAMA_QUANTIZE=/path/to/llama-quantize; built by hand, never
committed). This writes a one-layer llama-architecture model in F16 whose matrices have
rows of 256 (one K-quant block per 256 values, every block a case) with values of mixed
magnitudes, including an all-zero and a constant row, then quantizes it with

    llama-quantize --pure IN OUT Q4_K_M|Q5_K_M|Q6_K 1

(--pure: every matrix in the base type Q4_K, Q5_K or Q6_K). src/factory/quantize_test.cpp
quantizes the same input with flashlm and compares every tensor byte for byte.

Run:  LLAMA_QUANTIZE=... /opt/flashlm-ref/bin/python scripts/reference/make_kquant_golden.py
Writes tests/golden/quant/kquant-f16.gguf and kquant-{q4_k,q5_k,q6_k}.gguf.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "quant"
N_EMBD, N_FF, HEAD_DIM, N_VOCAB = 256, 256, 128, 16


def matrix(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    # A different magnitude per 32 values, so sub-block scales differ within a block.
    scale = np.exp(rng.uniform(-4.0, 2.0, size=(rows, cols // 32))).repeat(32, axis=1)
    m = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    m[0, :] = 0.0    # an all-zero block
    m[1, :] = 0.75   # a constant block
    m[2, :] = np.abs(m[2, :])  # all positive: the min is 0
    return m.astype(np.float16)


def write_input(path: Path) -> None:
    rng = np.random.default_rng(20261203)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("flashlm K-quant golden input")
    w.add_file_type(1)
    w.add_vocab_size(N_VOCAB)
    w.add_context_length(256)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_EMBD // HEAD_DIM)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([f"t{i}" for i in range(N_VOCAB)])
    w.add_token_types([1] * N_VOCAB)
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_tensor("token_embd.weight", matrix(rng, N_VOCAB, N_EMBD))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("output.weight", matrix(rng, N_VOCAB, N_EMBD))
    p = "blk.0."
    w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(p + "attn_q.weight", matrix(rng, N_EMBD, N_EMBD))
    w.add_tensor(p + "attn_k.weight", matrix(rng, HEAD_DIM, N_EMBD))
    w.add_tensor(p + "attn_v.weight", matrix(rng, HEAD_DIM, N_EMBD))
    w.add_tensor(p + "attn_output.weight", matrix(rng, N_EMBD, N_EMBD))
    w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(p + "ffn_gate.weight", matrix(rng, N_FF, N_EMBD))
    w.add_tensor(p + "ffn_up.weight", matrix(rng, N_FF, N_EMBD))
    w.add_tensor(p + "ffn_down.weight", matrix(rng, N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    quantize = os.environ.get("LLAMA_QUANTIZE")
    if not quantize:
        sys.exit("set LLAMA_QUANTIZE to a llama-quantize binary")
    OUT.mkdir(parents=True, exist_ok=True)
    src = OUT / "kquant-f16.gguf"
    write_input(src)
    for ftype, stem in (("Q4_K_M", "q4_k"), ("Q5_K_M", "q5_k"), ("Q6_K", "q6_k")):
        dst = OUT / f"kquant-{stem}.gguf"
        subprocess.run([quantize, "--pure", str(src), str(dst), ftype, "1"], check=True, capture_output=True)
        types = {t.tensor_type.name for t in gguf.GGUFReader(dst).tensors if len(t.shape) == 2}
        print(f"wrote {dst} ({dst.stat().st_size} bytes): matrix types {sorted(types)}")


if __name__ == "__main__":
    main()
