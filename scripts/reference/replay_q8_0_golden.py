"""Replays llama.cpp's CPU arithmetic for tests/golden/synthetic/tiny-llama-q8_0.gguf in
numpy and compares it with the logits golden, position by position.

What it mirrors of ggml (CPU backend, the build the goldens come from): Q8_0 weights as
stored; activations quantized per 32-block the way the x86 quantize_row_q8_0 does it
(d = amax / 127 rounded to f16, q = round-half-even(x * 127 / amax)); integer block dots
scaled by d_w * d_x; RMS norm with a double sum and 1 / sqrtf(mean + eps); RoPE angles by
ggml_rope_cache_init's float recurrence (theta *= powf(base, -2 / n_rot)); f32 K/V,
softmax attention; SiLU-gated FFN. Float sums are taken in float64, so only the order of
float additions differs from ggml's.

It prints, per golden case and position, the largest |log-prob difference| over the
reference's top-64; then, for the worst position, the single +-1 change of one 8-bit
activation (layer 1 attention output, FFN inputs, output norm) that best explains the
golden. The result this was written for: every position agrees to ~1e-6 except ids_200
position 198 (0.054), which element 52 of layer 1's attention output rounded one step
further (-53, not -52) explains to 7e-7. That rounding is itself a consequence: llama.cpp's
tensors (read through its eval callback) show position 164's layer-0 attention output
rounding the other way first (-59.500004 vs -59.499985 times the inverse scale), which
changes that row's K/V and so position 198's attention (src/models/model_golden_test.cpp).

Usage: /opt/flashlm-ref/bin/python scripts/reference/replay_q8_0_golden.py
"""
import json
import math
import sys
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests/golden/synthetic/tiny-llama-q8_0.gguf"
GOLDEN = ROOT / "tests/golden/logits/tiny-llama-q8_0.json"
F32 = np.float32
N_HEAD, N_HEAD_KV, HEAD_DIM, N_LAYER, EPS, BASE = 4, 2, 16, 2, 1e-5, 500000.0

reader = gguf.GGUFReader(str(MODEL))
NORMS, Q8 = {}, {}
for t in reader.tensors:
    if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
        raw = np.array(t.data, dtype=np.uint8).reshape(-1, 34)
        rows = int(t.shape[1])
        d = raw[:, :2].copy().view(np.float16).astype(F32).reshape(rows, -1)
        q = raw[:, 2:].view(np.int8).astype(np.int64).reshape(rows, -1, 32)
        Q8[t.name] = (d, q)
    else:
        NORMS[t.name] = np.array(t.data, dtype=F32)


def quantize(x):
    """[n, k] -> (d [n, k/32] as f16 values, q [n, k/32, 32]) like x86 quantize_row_q8_0."""
    xb = x.reshape(x.shape[0], -1, 32).astype(F32)
    amax = np.abs(xb).max(axis=2)
    inv = np.where(amax != 0, F32(127) / np.where(amax != 0, amax, F32(1)), F32(0)).astype(F32)
    q = np.rint(xb * inv[..., None]).astype(np.int64)
    return (amax / F32(127)).astype(np.float16).astype(F32), q


def matmul(name, x, flip=None):
    wd, wq = Q8[name]
    xd, xq = quantize(x)
    if flip is not None:  # (row, element, +-1): one 8-bit value moved by one step
        r, j, s = flip
        xq[r, j // 32, j % 32] += s
    sumi = np.einsum("rbk,nbk->nrb", wq, xq).astype(np.float64)
    return (sumi * (wd[None] * xd[:, None]).astype(F32)).sum(axis=2).astype(F32)


def rms_norm(x, w):
    mean = ((x.astype(np.float64) ** 2).sum(axis=1) / x.shape[1]).astype(F32)
    return (x * (F32(1) / np.sqrt(mean + F32(EPS))).astype(F32)[:, None]).astype(F32) * w


def rope(x, n_head):
    out = x.reshape(x.shape[0], n_head, HEAD_DIM).copy()
    scale = F32(math.pow(BASE, -2.0 / HEAD_DIM))
    theta = np.arange(x.shape[0], dtype=F32)  # every position's recurrence at once, in f32
    for i in range(HEAD_DIM // 2):
        c = np.array([math.cos(t) for t in theta], dtype=F32)[:, None]
        s = np.array([math.sin(t) for t in theta], dtype=F32)[:, None]
        a, b = out[:, :, 2 * i].copy(), out[:, :, 2 * i + 1].copy()
        out[:, :, 2 * i], out[:, :, 2 * i + 1] = a * c - b * s, a * s + b * c
        theta = (theta * scale).astype(F32)
    return out.reshape(x.shape[0], -1)


def attention(q, k, v):
    n = q.shape[0]
    q, k, v = q.reshape(n, N_HEAD, -1), k.reshape(n, N_HEAD_KV, -1), v.reshape(n, N_HEAD_KV, -1)
    out = np.zeros_like(q)
    causal = np.tril(np.ones((n, n), bool))
    for h in range(N_HEAD):
        g = h // (N_HEAD // N_HEAD_KV)
        s = np.where(causal, (q[:, h] @ k[:, g].T).astype(F32) * F32(HEAD_DIM ** -0.5), -np.inf)
        e = np.exp((s - s.max(axis=1, keepdims=True)).astype(np.float64))
        out[:, h] = ((e / e.sum(axis=1, keepdims=True)).astype(F32) @ v[:, g]).astype(F32)
    return out.reshape(n, -1)


def forward(tokens, rows, flips=None):
    """Logits at `rows`; flips: {site: (row, element, +-1)} with site in attn_out.1,
    ffn_in.1, ffn_down.1, output."""
    flips = flips or {}
    d, q = Q8["token_embd.weight"]
    x = (q[tokens] * d[tokens][..., None]).reshape(len(tokens), -1).astype(F32)
    for il in range(N_LAYER):
        p = f"blk.{il}."
        cur = rms_norm(x, NORMS[p + "attn_norm.weight"])
        a = attention(rope(matmul(p + "attn_q.weight", cur), N_HEAD), rope(matmul(p + "attn_k.weight", cur), N_HEAD_KV),
                      matmul(p + "attn_v.weight", cur))
        x = (x + matmul(p + "attn_output.weight", a, flips.get(f"attn_out.{il}"))).astype(F32)
        cur = rms_norm(x, NORMS[p + "ffn_norm.weight"])
        gate = matmul(p + "ffn_gate.weight", cur, flips.get(f"ffn_in.{il}"))
        up = matmul(p + "ffn_up.weight", cur, flips.get(f"ffn_in.{il}"))
        par = (gate / (F32(1) + np.exp(-gate)) * up).astype(F32)
        x = (x + matmul(p + "ffn_down.weight", par, flips.get(f"ffn_down.{il}"))).astype(F32)
    out = rms_norm(x[rows], NORMS["output_norm.weight"])
    flip = flips.get("output")
    return matmul("output.weight", out, None if flip is None else (rows.index(flip[0]), flip[1], flip[2]))


def worst_diff(case, pi, row):
    lg = row.astype(np.float64)
    lse = lg.max() + math.log(np.exp(lg - lg.max()).sum())
    return max(abs((lg[i] - lse) - (ref - case["logsumexp"][pi])) for i, ref in case["top"][pi])


def main():
    golden = json.loads(GOLDEN.read_text())
    worst = (0.0, None, None)
    for case in golden["cases"]:
        rows = list(case["positions"])
        logits = forward(case["tokens"], rows)
        diffs = [worst_diff(case, pi, logits[pi]) for pi in range(len(rows))]
        print(case["name"], " ".join(f"pos {p}: {d:.1e}" for p, d in zip(rows, diffs)))
        for pi, dmax in enumerate(diffs):
            if dmax > worst[0]:
                worst = (dmax, case, pi)
    dmax, case, pi = worst
    if dmax < 1e-3:
        return 0
    pos = case["positions"][pi]
    print(f"worst: {case['name']} position {pos}, max |log-prob diff| {dmax:.4f}; one-step changes of an 8-bit value:")
    best = []
    for site, width in (("attn_out.1", 64), ("ffn_in.1", 64), ("ffn_down.1", 128), ("output", 64)):
        for j in range(width):
            for s in (1, -1):
                lg = forward(case["tokens"], [pos], {site: (pos, j, s)})[0]
                best.append((worst_diff(case, pi, lg), site, j, s))
    best.sort()
    for d, site, j, s in best[:3]:
        print(f"  {site} element {j} {s:+d}: max |log-prob diff| {d:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
