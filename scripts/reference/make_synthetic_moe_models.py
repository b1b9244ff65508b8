#!/usr/bin/env python3
"""Writes tiny synthetic Mixture-of-Experts GGUF models into tests/golden/synthetic/.

Same vocabulary, sizes and weight scales as make_synthetic_models.py, in the exact
metadata keys, tensor names and shapes llama.cpp loads for its MoE architectures:

* tiny-qwen3moe-f32: `qwen3moe` (QK-norm, NEOX rope), 8 experts, top-3, experts
  renormalised (llama.cpp's qwen3moe always normalises the top-k weights).
* tiny-qwen2moe-f16: `qwen2moe` (q/k/v biases), 6 experts, top-2, NOT renormalised,
  plus a shared expert scaled by sigmoid(ffn_gate_inp_shexp . x).
* tiny-mixtral-q8_0: `llama` with experts (Mixtral layout: experts use
  feed_forward_length), 4 experts, top-2, normalised softmax; Q8_0 experts.

Routers (`ffn_gate_inp`, `ffn_gate_inp_shexp`) are F32, as the converters keep them.
Expert tensors are 3-D: gate/up ne = [n_embd, n_ff_exp, n_expert], down
ne = [n_ff_exp, n_embd, n_expert] (numpy shape is the reverse).

Usage: /opt/flashlm-ref/bin/python scripts/reference/make_synthetic_moe_models.py [--no-verify]
Then:  /opt/flashlm-ref/bin/python scripts/reference/make_logits_golden.py \
           --only tiny-qwen3moe-f32 tiny-qwen2moe-f16 tiny-mixtral-q8_0
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import make_synthetic_models as dense  # noqa: E402

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402

N_EMBD = dense.N_EMBD
N_HEAD = dense.N_HEAD
N_HEAD_KV = dense.N_HEAD_KV
HEAD_DIM = dense.HEAD_DIM


@dataclass(frozen=True)
class MoeSpec:
    file: str
    arch: str            # qwen3moe | qwen2moe | llama
    wtype: QT
    tied: bool
    seed: int
    rope_base: float
    rms_eps: float
    pre: str
    add_bos: bool
    n_ff: int            # feed_forward_length
    n_expert: int
    n_expert_used: int
    n_ff_exp: int        # expert_feed_forward_length (0: not written; experts use n_ff)
    n_ff_shexp: int = 0  # shared expert (qwen2moe), 0: none
    n_layer: int = 2


SPECS = [
    MoeSpec("tiny-qwen3moe-f32.gguf", "qwen3moe", QT.F32, True, 201, 1000000.0, 1e-6, "qwen2", False,
            n_ff=96, n_expert=8, n_expert_used=3, n_ff_exp=32),
    MoeSpec("tiny-qwen2moe-f16.gguf", "qwen2moe", QT.F16, False, 202, 1000000.0, 1e-6, "qwen2", False,
            n_ff=128, n_expert=6, n_expert_used=2, n_ff_exp=32, n_ff_shexp=64),
    MoeSpec("tiny-mixtral-q8_0.gguf", "llama", QT.Q8_0, False, 203, 10000.0, 1e-5, "llama-bpe", True,
            n_ff=64, n_expert=4, n_expert_used=2, n_ff_exp=0),
]


def write_model(spec: MoeSpec, out_dir: Path) -> Path:
    tokens, types, merges = dense.build_vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(spec.seed)
    rand = dense.rand
    path = out_dir / spec.file
    w = gguf.GGUFWriter(str(path), spec.arch)

    w.add_name(f"flashlm synthetic {spec.file}")
    w.add_description("random weights for tests; written by scripts/reference/make_synthetic_moe_models.py")
    w.add_file_type(dense.FILE_TYPE[spec.wtype])
    if spec.wtype == QT.Q8_0:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_vocab_size(n_vocab)
    w.add_context_length(dense.N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(spec.n_ff)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(spec.rope_base)
    w.add_layer_norm_rms_eps(spec.rms_eps)
    w.add_expert_count(spec.n_expert)
    w.add_expert_used_count(spec.n_expert_used)
    if spec.n_ff_exp:
        w.add_expert_feed_forward_length(spec.n_ff_exp)
    if spec.n_ff_shexp:
        w.add_expert_shared_feed_forward_length(spec.n_ff_shexp)

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
    n_ff_exp = spec.n_ff_exp or spec.n_ff
    mat = lambda name, data: dense.add_matrix(w, name, data, spec.wtype)  # noqa: E731
    mat("token_embd.weight", rand(rng, (n_vocab, N_EMBD), 0.25))
    w.add_tensor("output_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
    if not spec.tied:
        mat("output.weight", rand(rng, (n_vocab, N_EMBD), 0.4))
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
        mat(p + "attn_q.weight", rand(rng, (q_dim, N_EMBD), 1.5 / N_EMBD ** 0.5))
        mat(p + "attn_k.weight", rand(rng, (kv_dim, N_EMBD), 1.5 / N_EMBD ** 0.5))
        mat(p + "attn_v.weight", rand(rng, (kv_dim, N_EMBD), 1.0 / N_EMBD ** 0.5))
        if spec.arch == "qwen2moe":
            w.add_tensor(p + "attn_q.bias", rand(rng, (q_dim,), 0.5))
            w.add_tensor(p + "attn_k.bias", rand(rng, (kv_dim,), 0.5))
            w.add_tensor(p + "attn_v.bias", rand(rng, (kv_dim,), 0.5))
        if spec.arch == "qwen3moe":
            w.add_tensor(p + "attn_q_norm.weight", 1.0 + rand(rng, (HEAD_DIM,), 0.2))
            w.add_tensor(p + "attn_k_norm.weight", 1.0 + rand(rng, (HEAD_DIM,), 0.2))
        mat(p + "attn_output.weight", rand(rng, (N_EMBD, q_dim), 1.0 / q_dim ** 0.5))
        w.add_tensor(p + "ffn_norm.weight", 1.0 + rand(rng, (N_EMBD,), 0.1))
        # Router logits with std ~2 so the top-k choice is clear (no near-ties).
        w.add_tensor(p + "ffn_gate_inp.weight", rand(rng, (spec.n_expert, N_EMBD), 2.0 / N_EMBD ** 0.5))
        e = spec.n_expert
        mat(p + "ffn_gate_exps.weight", rand(rng, (e, n_ff_exp, N_EMBD), 1.0 / N_EMBD ** 0.5))
        mat(p + "ffn_up_exps.weight", rand(rng, (e, n_ff_exp, N_EMBD), 1.0 / N_EMBD ** 0.5))
        # Scaled up so the k-of-n expert mix moves the logits as much as a dense FFN.
        mat(p + "ffn_down_exps.weight", rand(rng, (e, N_EMBD, n_ff_exp), 2.0 / n_ff_exp ** 0.5))
        if spec.n_ff_shexp:
            w.add_tensor(p + "ffn_gate_inp_shexp.weight", rand(rng, (N_EMBD,), 1.0 / N_EMBD ** 0.5))
            mat(p + "ffn_gate_shexp.weight", rand(rng, (spec.n_ff_shexp, N_EMBD), 1.0 / N_EMBD ** 0.5))
            mat(p + "ffn_up_shexp.weight", rand(rng, (spec.n_ff_shexp, N_EMBD), 1.0 / N_EMBD ** 0.5))
            mat(p + "ffn_down_shexp.weight", rand(rng, (N_EMBD, spec.n_ff_shexp), 1.0 / spec.n_ff_shexp ** 0.5))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_moefied_gemma3(out_dir: Path) -> Path:
    """tiny-gemma3-f32 with each dense FFN split along n_ff into a shared expert (32
    wide, no gate) and 3 routed experts (32 wide), all 3 used with unit weights
    (flashlm.moe.unit_weights): the plain sum of the parts, so its logits must equal the
    dense model's, whose llama.cpp golden (tiny-gemma3-f32.json) is the reference. The
    dense writer is reused (same seed, same random stream); only its FFN tensors are
    re-cut. llama.cpp has no gemma3 MoE, so this file is flashlm-only (the layout
    `flashlm moefy` writes)."""
    base = next(s for s in dense.SPECS if s.arch == "gemma3")
    spec = dataclasses.replace(base, file="tiny-gemma3-moefied-f32.gguf")
    n_sh, n_exp = 32, 3
    n_ff_exp = (dense.N_FF - n_sh) // n_exp
    router_rng = np.random.default_rng(301)
    original = dense.add_matrix
    pending: dict[str, np.ndarray] = {}

    def split_ffn(w, name, data, wtype):
        if ".ffn_" not in name:
            return original(w, name, data, wtype)
        if not pending and name.startswith("blk.0."):
            w.add_expert_count(n_exp)
            w.add_expert_used_count(n_exp)
            w.add_expert_feed_forward_length(n_ff_exp)
            w.add_expert_shared_feed_forward_length(n_sh)
            w.add_expert_weights_norm(False)
            w.add_expert_gating_func(gguf.ExpertGatingFuncType.SOFTMAX)
            w.add_bool("flashlm.moe.unit_weights", True)
        pending[name.split(".")[-2]] = data
        if len(pending) < 3:
            return None
        p = name[:name.index("ffn_")]
        gate, up, down = pending.pop("ffn_gate"), pending.pop("ffn_up"), pending.pop("ffn_down")
        original(w, p + "ffn_gate_shexp.weight", gate[:n_sh], wtype)
        original(w, p + "ffn_up_shexp.weight", up[:n_sh], wtype)
        original(w, p + "ffn_down_shexp.weight", np.ascontiguousarray(down[:, :n_sh]), wtype)
        w.add_tensor(p + "ffn_gate_inp.weight", rand_router(router_rng, n_exp))
        original(w, p + "ffn_gate_exps.weight", gate[n_sh:].reshape(n_exp, n_ff_exp, N_EMBD), wtype)
        original(w, p + "ffn_up_exps.weight", up[n_sh:].reshape(n_exp, n_ff_exp, N_EMBD), wtype)
        down_exps = down[:, n_sh:].reshape(N_EMBD, n_exp, n_ff_exp).transpose(1, 0, 2)
        original(w, p + "ffn_down_exps.weight", np.ascontiguousarray(down_exps), wtype)
        return None

    dense.add_matrix = split_ffn
    try:
        return dense.write_model(spec, out_dir)
    finally:
        dense.add_matrix = original


def rand_router(rng: np.random.Generator, n_exp: int) -> np.ndarray:
    return dense.rand(rng, (n_exp, N_EMBD), 2.0 / N_EMBD ** 0.5)


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
            dense.verify(path)
    path = write_moefied_gemma3(args.out_dir)
    print(f"wrote {path} ({path.stat().st_size} bytes) sha256 {common.sha256_file(path)} (flashlm-only)")


if __name__ == "__main__":
    main()
