#!/usr/bin/env python3
"""Writes the GGUF seed corpus for fuzz_gguf into fuzz/seeds/gguf/.

The files come from gguf-py's GGUFWriter (an independent writer, not flashlm's), are
tiny (a few KB, so libFuzzer mutates them quickly) and between them cover: every
metadata value type and nested arrays, v2 and v3 headers, several tensor types, a
custom alignment, and complete tiny models of each supported architecture so that a
mutated file reaches parse_model_config and the weight table. The llama and gemma3
models carry small tokenizers (GPT-2 byte-level BPE and SentencePiece-style) so the
tokenizer's loading of hostile vocabulary metadata is fuzzed too.

Usage: /opt/flashlm-ref/bin/python fuzz/make_seeds.py
The output is deterministic (fixed values, insertion order), and committed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

OUT = Path(__file__).resolve().parent / "seeds" / "gguf"

# A 1-layer decoder: n_embd 8, 2 heads of 4 (1 KV head), FFN 16, vocabulary 6.
N_EMBD, N_HEAD, N_HEAD_KV, HEAD_DIM, N_FF, N_VOCAB = 8, 2, 1, 4, 16, 6


def f32(*shape: int, seed: int = 0) -> np.ndarray:
    # numpy shapes are reversed relative to GGUF's ne[] (row length last).
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)


def gpt2_byte_chars() -> list[str]:
    # GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100+.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def add_bpe_tokenizer(w: gguf.GGUFWriter) -> int:
    tokens = gpt2_byte_chars() + ["\u0120h", "hi", "\u0120hi", "<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]  # normal..., control
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["\u0120 h", "h i", "\u0120h i"])
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)
    return len(tokens)


def add_spm_tokenizer(w: gguf.GGUFWriter) -> int:
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += ["\u2581", "h", "i", "\u2581h", "\u2581hi", "<start_of_turn>"]
    types = [2, 3, 3] + [6] * 256 + [1, 1, 1, 1, 1, 4]  # unknown, control, byte, normal, user-defined
    scores = [0.0] * 259 + [-1.0, -2.0, -2.5, -1.5, -0.5, 0.0]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_add_bos_token(True)
    return len(tokens)


def tiny_model(arch: str, path: Path) -> None:
    w = gguf.GGUFWriter(str(path), arch)
    n_vocab = N_VOCAB
    if arch == "llama":
        n_vocab = add_bpe_tokenizer(w)
    elif arch == "gemma3":
        n_vocab = add_spm_tokenizer(w)
    w.add_name(f"seed-{arch}")
    w.add_context_length(64)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        w.add_sliding_window(4)
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
    # f16 embeddings keep the seeds with a full vocabulary small.
    w.add_tensor("token_embd.weight", f32(n_vocab, N_EMBD, seed=1).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    p = "blk.0."
    w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(p + "attn_q.weight", f32(N_HEAD * HEAD_DIM, N_EMBD, seed=2))
    w.add_tensor(p + "attn_k.weight", f32(N_HEAD_KV * HEAD_DIM, N_EMBD, seed=3))
    w.add_tensor(p + "attn_v.weight", f32(N_HEAD_KV * HEAD_DIM, N_EMBD, seed=4))
    w.add_tensor(p + "attn_output.weight", f32(N_EMBD, N_HEAD * HEAD_DIM, seed=5))
    if arch == "qwen2":
        w.add_tensor(p + "attn_q.bias", np.zeros(N_HEAD * HEAD_DIM, dtype=np.float32))
        w.add_tensor(p + "attn_k.bias", np.zeros(N_HEAD_KV * HEAD_DIM, dtype=np.float32))
        w.add_tensor(p + "attn_v.bias", np.zeros(N_HEAD_KV * HEAD_DIM, dtype=np.float32))
    if arch in ("qwen3", "gemma3"):
        w.add_tensor(p + "attn_q_norm.weight", np.ones(HEAD_DIM, dtype=np.float32))
        w.add_tensor(p + "attn_k_norm.weight", np.ones(HEAD_DIM, dtype=np.float32))
    if arch == "gemma3":
        w.add_tensor(p + "post_attention_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "post_ffw_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    # f16 FFN weights so a second float type is in the mix.
    w.add_tensor(p + "ffn_gate.weight", f32(N_FF, N_EMBD, seed=6).astype(np.float16))
    w.add_tensor(p + "ffn_up.weight", f32(N_FF, N_EMBD, seed=7).astype(np.float16))
    w.add_tensor(p + "ffn_down.weight", f32(N_EMBD, N_FF, seed=8).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def all_value_types(path: Path) -> None:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_uint64("t.u64", 1 << 62)
    w.add_int64("t.i64", -(1 << 62))
    w.add_float32("t.f32", 1.5)
    w.add_float64("t.f64", -2.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "h\u00e9llo")
    w.add_array("t.strs", ["a", "", "bc"])
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, -1.0])
    w.add_array("t.bools", [True, False])
    w.add_array("t.nested", [[1, 2], ["x"], [[3.0]]])
    w.add_custom_alignment(64)
    # Quantized tensors with (arbitrary but well-formed) blocks.
    q8 = np.arange(2 * 34 * 2, dtype=np.uint8).reshape(2, 68)
    w.add_tensor("q8", q8, raw_dtype=QT.Q8_0)
    q4k = (np.arange(144, dtype=np.uint32) * 7 % 251).astype(np.uint8).reshape(1, 144)
    w.add_tensor("q4k", q4k, raw_dtype=QT.Q4_K)
    w.add_tensor("f32", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def v2_header(path: Path) -> None:
    # gguf-py writes v3 only; a v2 file differs just in the version field, so the v3
    # bytes are patched (GGUF v2 and v3 share the little-endian layout).
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("general.name", "v2")
    w.add_tensor("x", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = bytearray(path.read_bytes())
    assert struct.unpack_from("<I", data, 4)[0] == 3
    struct.pack_into("<I", data, 4, 2)
    path.write_bytes(bytes(data))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for arch in ("llama", "qwen2", "qwen3", "gemma3"):
        tiny_model(arch, OUT / f"tiny_{arch}.gguf")
    all_value_types(OUT / "all_value_types.gguf")
    v2_header(OUT / "v2_header.gguf")
    total = 0
    for p in sorted(OUT.glob("*.gguf")):
        total += p.stat().st_size
        print(f"{p.name}: {p.stat().st_size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
