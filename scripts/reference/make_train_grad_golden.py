#!/usr/bin/env python3
"""Golden loss and gradients for flashlm's training step, from PyTorch autograd.

For each synthetic model (tests/golden/synthetic/tiny-{llama,qwen3,gemma3}-f32.gguf and
the MoE forms tiny-qwen3moe-f32, tiny-qwen2moe-f16) this script builds the decoder in torch
(float64) straight from the GGUF tensors, as llama.cpp defines the architecture (ggml RoPE
styles, RMS norms, GQA, q/k/v biases, Gemma 3's sliding-window layers, QK-norm,
post-norms, GeGLU and embedding scale, tied output; MoE FFNs: softmax router, top-k
experts with weights renormalised or not, a shared expert scaled by a sigmoid gate, the
choice of experts held fixed by autograd as it is by every MoE trainer), and:

  1. checks its logits against llama.cpp's own (tests/golden/logits/<model>.json, made by
     make_logits_golden.py with llama-cpp-python), so the reference is itself anchored;
  2. runs the mean next-token cross-entropy over a fixed token sequence and
     loss.backward();
  3. writes tests/golden/train/<model>.json: the loss, and for every tensor its
     gradient's L2 norm and 16 evenly spaced elements (flat index in GGUF order: row-major
     over [ne1][ne0]).

Tokens: tokens[i] = (7 + 31 * i) % n_vocab for i in 0..T, inputs tokens[:T], targets
tokens[1:]; T = 20 (beyond Gemma's window of 8). src/train/train_model_test.cpp uses the
same formula.

Needs torch (CPU is enough), numpy and gguf:  pip install torch==2.15.0 numpy gguf
Usage: python scripts/reference/make_train_grad_golden.py
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
from gguf import GGUFReader

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = ["tiny-llama-f32", "tiny-qwen3-f32", "tiny-gemma3-f32", "tiny-qwen3moe-f32", "tiny-qwen2moe-f16"]
T = 20
N_SAMPLES = 16
# Logit check against llama.cpp: F32 noise, except Gemma 3 whose GELU llama.cpp reads from
# an f16 table.
# qwen2moe's weights are F16, and llama.cpp rounds the activations to F16 for them too.
LOGIT_BOUND = {"tiny-llama-f32": 1e-4, "tiny-qwen3-f32": 1e-4, "tiny-gemma3-f32": 5e-3, "tiny-qwen3moe-f32": 1e-4,
               "tiny-qwen2moe-f16": 2e-2}
# llama.cpp's default for {arch}.expert_weights_norm when a file does not say.
NORM_DEFAULT = {"qwen3moe": True, "qwen2moe": False, "llama": True}


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class Decoder:
    def __init__(self, path):
        r = GGUFReader(path)
        arch = field(r, "general.architecture")
        self.arch = arch
        g = lambda k, d=None: field(r, f"{arch}.{k}", d)
        self.n_embd = int(g("embedding_length"))
        self.n_layer = int(g("block_count"))
        self.n_head = int(g("attention.head_count"))
        self.n_head_kv = int(g("attention.head_count_kv"))
        self.head_dim = int(g("attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(g("rope.dimension_count", self.head_dim))
        self.eps = float(g("attention.layer_norm_rms_epsilon"))
        base = float(g("rope.freq_base", 10000.0))
        self.neox = arch in ("qwen2", "qwen3", "gemma3", "qwen2moe", "qwen3moe")
        self.n_expert_used = int(g("expert_used_count", 0))
        self.norm_experts = bool(g("expert_weights_norm", NORM_DEFAULT.get(arch, False)))
        self.gemma = arch == "gemma3"
        window = int(g("attention.sliding_window", 0)) if self.gemma else 0
        local_base = float(g("rope.freq_base_swa", 10000.0))
        # Gemma 3's default layer pattern: five local (windowed) layers, then one global.
        self.window = [window if self.gemma and (i % 6) < 5 else 0 for i in range(self.n_layer)]
        self.base = [local_base if self.window[i] > 0 else base for i in range(self.n_layer)]
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.w = {}
        for t in r.tensors:
            a = np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
            self.w[t.name] = torch.tensor(a.astype(np.float64), requires_grad=True)
        self.n_vocab = self.w["token_embd.weight"].shape[0]

    def rope(self, x, base):  # x [T, heads, hd]
        n = x.shape[0]
        half = self.n_rot // 2
        pos = torch.arange(n, dtype=torch.float64)[:, None]
        inv = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / self.n_rot)
        ang = pos * inv[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        rot, rest = x[..., : self.n_rot], x[..., self.n_rot :]
        if self.neox:
            a, b = rot[..., :half], rot[..., half:]
            out = torch.cat([a * c - b * s, a * s + b * c], dim=-1)
        else:
            a, b = rot[..., 0::2], rot[..., 1::2]
            out = torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)
        return torch.cat([out, rest], dim=-1)

    def norm(self, x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    def ffn(self, x, gate_w, up_w, down_w):
        gate = x @ gate_w.T
        act = torch.nn.functional.gelu(gate, approximate="tanh") if self.gemma else torch.nn.functional.silu(gate)
        return (act * (x @ up_w.T)) @ down_w.T

    def moe(self, p, x):
        W = self.w
        probs = torch.softmax(x @ W[p + "ffn_gate_inp.weight"].T, dim=-1)
        # The choice is made on the values (no gradient through it); the weights carry it.
        top = torch.topk(probs.detach(), self.n_expert_used, dim=-1).indices
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            w = probs[t, top[t]]
            if self.norm_experts:
                w = w / w.sum()
            for j, e in enumerate(top[t].tolist()):
                out[t] = out[t] + w[j] * self.ffn(x[t : t + 1], W[p + "ffn_gate_exps.weight"][e],
                                                  W[p + "ffn_up_exps.weight"][e], W[p + "ffn_down_exps.weight"][e])[0]
        if p + "ffn_gate_shexp.weight" in W:
            sh = self.ffn(x, W[p + "ffn_gate_shexp.weight"], W[p + "ffn_up_shexp.weight"], W[p + "ffn_down_shexp.weight"])
            if p + "ffn_gate_inp_shexp.weight" in W:
                sh = sh * torch.sigmoid(x @ W[p + "ffn_gate_inp_shexp.weight"])[:, None]
            out = out + sh
        return out

    def logits(self, tokens):
        W = self.w
        n = len(tokens)
        x = W["token_embd.weight"][torch.tensor(tokens)]
        if self.gemma:
            x = x * float(np.float32(math.sqrt(self.n_embd)))
        for i in range(self.n_layer):
            p = f"blk.{i}."
            cur = self.norm(x, W[p + "attn_norm.weight"])
            proj3 = [cur @ W[p + f"attn_{c}.weight"].T for c in "qkv"]
            for j, c in enumerate("qkv"):
                if p + f"attn_{c}.bias" in W:
                    proj3[j] = proj3[j] + W[p + f"attn_{c}.bias"]
            q = proj3[0].view(n, self.n_head, self.head_dim)
            k = proj3[1].view(n, self.n_head_kv, self.head_dim)
            v = proj3[2].view(n, self.n_head_kv, self.head_dim)
            if p + "attn_q_norm.weight" in W:
                q = self.norm(q, W[p + "attn_q_norm.weight"])
                k = self.norm(k, W[p + "attn_k_norm.weight"])
            q, k = self.rope(q, self.base[i]), self.rope(k, self.base[i])
            group = self.n_head // self.n_head_kv
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            s = torch.einsum("ihd,jhd->hij", q, k) * self.scale
            ii = torch.arange(n)[:, None]
            jj = torch.arange(n)[None, :]
            mask = jj <= ii
            if self.window[i] > 0:
                mask = mask & (ii - jj < self.window[i])
            s = s.masked_fill(~mask[None], float("-inf"))
            o = torch.einsum("hij,jhd->ihd", torch.softmax(s, dim=-1), v).reshape(n, -1)
            proj = o @ W[p + "attn_output.weight"].T
            if p + "post_attention_norm.weight" in W:
                proj = self.norm(proj, W[p + "post_attention_norm.weight"])
            x = x + proj
            cur = self.norm(x, W[p + "ffn_norm.weight"])
            if p + "ffn_gate_inp.weight" in W:
                f = self.moe(p, cur)
            else:
                f = self.ffn(cur, W[p + "ffn_gate.weight"], W[p + "ffn_up.weight"], W[p + "ffn_down.weight"])
            if p + "post_ffw_norm.weight" in W:
                f = self.norm(f, W[p + "post_ffw_norm.weight"])
            x = x + f
        xo = self.norm(x, W["output_norm.weight"])
        out = W["output.weight"] if "output.weight" in W else W["token_embd.weight"]
        return xo @ out.T


def check_against_llama_cpp(name, model):
    with open(os.path.join(ROOT, "tests/golden/logits", name + ".json")) as f:
        g = json.load(f)
    worst = 0.0
    with torch.no_grad():
        for c in g["cases"]:
            lp = torch.log_softmax(model.logits(c["tokens"]), dim=-1)
            for pi, pos in enumerate(c["positions"]):
                lse = c["logsumexp"][pi]
                for tok, logit in c["top"][pi]:
                    worst = max(worst, abs(lp[pos, tok].item() - (logit - lse)))
    print(f"{name}: torch float64 vs llama.cpp logits, max |logprob diff| {worst:.2e}")
    if worst > LOGIT_BOUND[name]:
        sys.exit(f"{name}: the torch reference does not match llama.cpp ({worst} > {LOGIT_BOUND[name]})")


def main():
    torch.set_grad_enabled(True)
    out_dir = os.path.join(ROOT, "tests/golden/train")
    os.makedirs(out_dir, exist_ok=True)
    for name in MODELS:
        rel = f"tests/golden/synthetic/{name}.gguf"
        path = os.path.join(ROOT, rel)
        model = Decoder(path)
        check_against_llama_cpp(name, model)
        seq = [(7 + 31 * i) % model.n_vocab for i in range(T + 1)]
        logits = model.logits(seq[:T])
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(seq[1:]))
        loss.backward()
        tensors = []
        for tname, w in model.w.items():
            grad = w.grad.flatten().numpy()
            n = grad.size
            idx = sorted(set(int(k * (n - 1) // (N_SAMPLES - 1)) for k in range(N_SAMPLES)))
            tensors.append({"name": tname, "n": n, "norm": float(np.linalg.norm(grad)),
                            "index": idx, "grad": [float(grad[i]) for i in idx]})
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        doc = {"model": rel, "model_sha256": sha, "script": "scripts/reference/make_train_grad_golden.py",
               "reference": f"torch {torch.__version__} autograd, float64", "T": T,
               "tokens": seq[:T], "targets": seq[1:], "loss": float(loss.item()), "tensors": tensors}
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"{name}: loss {loss.item():.6f}, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
