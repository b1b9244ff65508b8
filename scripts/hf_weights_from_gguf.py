#!/usr/bin/env python3
"""Writes a Hugging Face model directory's config.json and model.safetensors (BF16, as
the models are published) from a llama-family GGUF, undoing what llama.cpp's
convert_hf_to_gguf.py does: tensor names back to Hugging Face's, the rotary row
permutation of q_proj/k_proj undone, quantized tensors dequantized by gguf-py.

The project has no Hugging Face release of its real models on the registries it can
reach, so setup makes one from each GGUF: the weights are the GGUF's (quantization
noise included), the layout and config are Hugging Face's, and transformers loads the
directory (scripts/reference/make_hf_logits_golden.py checks it against llama.cpp on
the GGUF before taking its logits as the golden). The tokenizer files come from
scripts/hf_tokenizer_from_gguf.py (transformers' own GGUF conversion).

Usage: hf_weights_from_gguf.py MODEL.gguf OUTDIR   (needs numpy and gguf only)"""
import json
import os
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(r, key, default=None):
    f = r.fields.get(key)
    return default if f is None else f.contents()


def unpermute(w, n_head):
    # Inverse of convert_hf_to_gguf.py's LlamaModel.permute: rows (head, pair, half) ->
    # (head, half, pair).
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def to_bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors:
        b = to_bf16(a).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    src, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(src)
    arch = field(r, "general.architecture")
    if arch != "llama":
        sys.exit(f"hf_weights_from_gguf: architecture '{arch}' is not handled (llama only)")
    k = lambda s, d=None: field(r, f"{arch}.{s}", d)  # noqa: E731
    n_head, n_kv = int(k("attention.head_count")), int(k("attention.head_count_kv"))
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                 "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
    tensors, have = [], set()
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name in names:
            hf = names[t.name]
        else:
            _, layer, kind, suffix = t.name.split(".")
            hf = f"model.layers.{layer}.{per_layer[kind]}.{suffix}"
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv)
        have.add(t.name)
        tensors.append((hf, w))
    tied = "output.weight" not in have
    vocab = len(field(r, "tokenizer.ggml.tokens"))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": int(k("embedding_length")), "intermediate_size": int(k("feed_forward_length")),
        "num_hidden_layers": int(k("block_count")), "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": int(k("attention.key_length", int(k("embedding_length")) // n_head)),
        "rms_norm_eps": float(k("attention.layer_norm_rms_epsilon")), "rope_theta": float(k("rope.freq_base")),
        "max_position_embeddings": int(k("context_length")), "vocab_size": vocab,
        "tie_word_embeddings": tied, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "bos_token_id": int(field(r, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field(r, "tokenizer.ggml.eos_token_id")),
        "torch_dtype": "bfloat16",
    }
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"hf_weights_from_gguf: {len(tensors)} tensors, tied={tied} -> {out}")


if __name__ == "__main__":
    main()
