#!/usr/bin/env python3
"""Writes tiny synthetic GGUF models into tests/golden/synthetic/.

Random weights from fixed seeds, in the exact tensor names, shapes and
metadata keys llama.cpp loads for the `llama`, `qwen2`, `qwen3` and `gemma3`
architectures, with a small self-made GPT-2 style byte-level BPE vocabulary.
They exist so architecture features the real test models lack (Q/K/V biases,
QK-norm, NEOX rope, tied vs. untied output, F32/F16/Q8_0 weights) can be
checked against llama.cpp (see make_logits_golden.py), and so Gemma 3's
sliding-window / global layer mix can be checked with F32 weights (the real
Gemma 3 file is quantized, which blurs differences).

The output is deterministic: numpy's PCG64 stream for a given seed is stable
and the gguf writer emits keys/tensors in insertion order.

Usage: /opt/flashlm-ref/bin/python scripts/reference/make_synthetic_models.py
       [--no-verify]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = 16
N_FF = 128
N_CTX_TRAIN = 256


@dataclass(frozen=True)
class Spec:
    file: str
    arch: str           # llama | qwen2 | qwen3
    wtype: QT           # type of the 2-D weight matrices
    tied: bool          # no output.weight: llama.cpp reuses token_embd
    seed: int
    rope_base: float
    rms_eps: float
    pre: str            # tokenizer.ggml.pre
    add_bos: bool
    n_layer: int = N_LAYER
    sliding_window: int = 0  # gemma3.attention.sliding_window (0: not written)


SPECS = [
    Spec("tiny-llama-f32.gguf", "llama", QT.F32, True, 101, 10000.0, 1e-5, "llama-bpe", True),
    Spec("tiny-llama-q8_0.gguf", "llama", QT.Q8_0, False, 102, 500000.0, 1e-5, "llama-bpe", True),
    Spec("tiny-qwen2-f16.gguf", "qwen2", QT.F16, False, 103, 1000000.0, 1e-6, "qwen2", False),
    Spec("tiny-qwen3-f32.gguf", "qwen3", QT.F32, True, 104, 1000000.0, 1e-6, "qwen2", False),
    # 7 layers: under llama.cpp's default gemma3 pattern (every 6th layer global) layers
    # 0-4 and 6 are local and 5 is global. A window of 8 makes the 40/200-token goldens
    # mostly windowed. Local layers use llama.cpp's default swa rope base 1e4 (no
    # rope.freq_base_swa key, like the real gemma-3-270m file).
    Spec("tiny-gemma3-f32.gguf", "gemma3", QT.F32, True, 105, 1000000.0, 1e-6, "llama-bpe", True,
         n_layer=7, sliding_window=8),
]

# general.file_type values (llama_ftype).
FILE_TYPE = {QT.F32: 0, QT.F16: 1, QT.Q8_0: 7}


def bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable unicode character table, indexed by byte."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


# Applied in this order (rank = index); each result becomes a token.
MERGES = [
    ("Ġ", "t"), ("h", "e"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"),
    ("Ġt", "he"), ("r", "e"), ("a", "t"), ("Ġ", "s"), ("e", "n"), ("o", "u"),
    ("Ġ", "w"), ("i", "s"), ("Ġ", "c"), ("o", "r"), ("e", "s"), ("Ġ", "f"),
    ("a", "n"), ("Ġ", "b"), ("e", "d"), ("i", "t"), ("a", "l"), ("Ġ", "o"),
    ("Ġ", "p"), ("a", "r"), ("n", "g"), ("in", "g"), ("Ġa", "n"), ("Ġan", "d"),
    ("Ġ", "i"), ("Ġ", "m"), ("l", "l"), ("Ġo", "f"), ("Ġt", "o"), ("Ġ", "h"),
    ("Ġ", "Ġ"), ("Ċ", "Ċ"), ("a", "s"), ("Ġw", "as"), ("Ġw", "h"), ("Ġwh", "at"),
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_vocab() -> tuple[list[str], list[int], list[str]]:
    tokens = bytes_to_unicode()
    merges = []
    for a, b in MERGES:
        assert a in tokens and b in tokens, (a, b)
        merges.append(f"{a} {b}")
        if a + b not in tokens:
            tokens.append(a + b)
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    for s in SPECIALS:
        tokens.append(s)
        types.append(int(gguf.TokenType.CONTROL))
    return tokens, types, merges


def rand(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def add_matrix(w: gguf.GGUFWriter, name: str, data: np.ndarray, wtype: QT) -> None:
    # numpy shape is (rows, cols) = ggml (ne1, ne0): ne0 is the input dim.
    if wtype == QT.F32:
        w.add_tensor(name, data)
    elif wtype == QT.F16:
        w.add_tensor(name, data.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(data, wtype), raw_dtype=wtype)


def write_model(spec: Spec, out_dir: Path) -> Path:
    tokens, types, merges = build_vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(spec.seed)
    path = out_dir / spec.file
    w = gguf.GGUFWriter(str(path), spec.arch)

    w.add_name(f"flashlm synthetic {spec.file}")
    w.add_description("random weights for tests; written by scripts/reference/make_synthetic_models.py")
    w.add_file_type(FILE_TYPE[spec.wtype])
    if spec.wtype == QT.Q8_0:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_vocab_size(n_vocab)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    if spec.arch != "gemma3":
        # The real Gemma 3 GGUF omits it (llama.cpp defaults n_rot to key_length).
        w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(spec.rope_base)
    w.add_layer_norm_rms_eps(spec.rms_eps)
    if spec.sliding_window:
        w.add_sliding_window(spec.sliding_window)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(spec.pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eot = tokens.index("<|endoftext|>")
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(spec.add_bos)

    q_dim = N_HEAD * HEAD_DIM
    kv_dim = N_HEAD_KV * HEAD_DIM
    # Scales keep activations O(1) so attention is neither uniform nor
    # one-hot and the logits have a clear spread (std ~ 3).
    emb = rand(rng, (n_vocab, N_EMBD), 0.25)
    add_matrix(w, "token_embd.weight", emb, spec.wtype)
    w.add_tensor("output_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
    if not spec.tied:
        add_matrix(w, "output.weight", rand(rng, (n_vocab, N_EMBD), 0.4), spec.wtype)
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
        add_matrix(w, p + "attn_q.weight", rand(rng, (q_dim, N_EMBD), 1.5 / N_EMBD ** 0.5), spec.wtype)
        add_matrix(w, p + "attn_k.weight", rand(rng, (kv_dim, N_EMBD), 1.5 / N_EMBD ** 0.5), spec.wtype)
        add_matrix(w, p + "attn_v.weight", rand(rng, (kv_dim, N_EMBD), 1.0 / N_EMBD ** 0.5), spec.wtype)
        if spec.arch == "qwen2":
            w.add_tensor(p + "attn_q.bias", rand(rng, (q_dim,), 0.5))
            w.add_tensor(p + "attn_k.bias", rand(rng, (kv_dim,), 0.5))
            w.add_tensor(p + "attn_v.bias", rand(rng, (kv_dim,), 0.5))
        if spec.arch in ("qwen3", "gemma3"):
            w.add_tensor(p + "attn_q_norm.weight", 1.0 + rand(rng, (HEAD_DIM,), 0.2))
            w.add_tensor(p + "attn_k_norm.weight", 1.0 + rand(rng, (HEAD_DIM,), 0.2))
        add_matrix(w, p + "attn_output.weight", rand(rng, (N_EMBD, q_dim), 1.0 / q_dim ** 0.5), spec.wtype)
        # Gemma's norm weights are stored with the +1 already added (HF's convert
        # script does it; llama.cpp multiplies by the stored value), so "near 1" here.
        if spec.arch == "gemma3":
            w.add_tensor(p + "post_attention_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
        w.add_tensor(p + "ffn_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
        add_matrix(w, p + "ffn_gate.weight", rand(rng, (N_FF, N_EMBD), 1.0 / N_EMBD ** 0.5), spec.wtype)
        add_matrix(w, p + "ffn_up.weight", rand(rng, (N_FF, N_EMBD), 1.0 / N_EMBD ** 0.5), spec.wtype)
        add_matrix(w, p + "ffn_down.weight", rand(rng, (N_EMBD, N_FF), 1.0 / N_FF ** 0.5), spec.wtype)
        if spec.arch == "gemma3":
            w.add_tensor(p + "post_ffw_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def verify(path: Path) -> None:
    """Loads the file with llama.cpp and checks it evaluates to finite logits."""
    llm = common.open_llama(path, n_ctx=64)
    logits = common.eval_logits(llm, [1, 100, 200, 296, 5, 37])
    ids = llm.tokenize(b"the cat and the hat", add_bos=False, special=False)
    print(f"  llama.cpp ok: n_vocab={llm.n_vocab()} logits {logits.shape} "
          f"range [{logits.min():.3f}, {logits.max():.3f}] std {logits.std():.3f}; "
          f"tokenize('the cat and the hat') = {ids}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-verify", action="store_true", help="skip loading with llama-cpp-python")
    ap.add_argument("--out-dir", type=Path, default=common.SYNTHETIC_DIR)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        path = write_model(spec, args.out_dir)
        print(f"wrote {path} ({path.stat().st_size} bytes) sha256 {common.sha256_file(path)}")
        if not args.no_verify:
            verify(path)


if __name__ == "__main__":
    main()
