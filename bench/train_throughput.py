#!/usr/bin/env python3
"""Training throughput: `flashlm finetune` against PyTorch on the CPU, on the same GGUF
model, the same token ids, sequence length, batch and threads, in one run.

flashlm side: `flashlm finetune -m MODEL -f TEXT --ctx SEQ --batch B --steps N+2 -t T
--valid-fraction F` in a child process. Its stderr is read as it arrives and every
progress line is timestamped: step 1 is the warm-up, steps 2..N+1 are timed, and the
last step is dropped because flashlm writes its checkpoint (about 12 bytes per
parameter) and runs the held-out loss after it. The tok/s that flashlm prints counts
its training steps from the first (warm-up included), so it is shown for reference only.
The default --valid-fraction 0 means no held-out loss is computed.

PyTorch side: a float32 eager decoder in a child process (torch.set_num_threads(T)),
built from the same GGUF file's tensors dequantized with the `gguf` package. It follows
llama.cpp's llama/qwen2/qwen3/gemma3 graph as scripts/reference/make_train_grad_golden.py
does (ggml RoPE styles, GQA, QK-norm, biases, Gemma 3's embedding scale, post-norms,
GeGLU and sliding-window layers, tied output), with F.scaled_dot_product_attention.
Each step runs B sequences of SEQ tokens with gradient accumulation, as flashlm does
(--torch-batched: one [B, SEQ] forward instead), then the mean next-token cross-entropy,
backward, clipping to norm 1 (flashlm's default) and torch.optim.AdamW (fused if this
torch allows it, weight decay 0). Every tensor trains on both sides. One warm-up step,
then N timed steps. --compile tries torch.compile and falls back to eager if it fails.
Both sides read the same sequences: the ids come from `flashlm tokenize` on the text
(in 100 KB pieces split at newlines, so a token may differ where two pieces meet; a
difference in the total count is printed), cut as flashlm cuts them. The table shows
both first-step losses (same weights, same tokens): a check of the torch decoder.
-r R runs each engine R times in alternating order and shows the median.
--matmul bf16 rounds every matmul's inputs to BF16 on both sides: `flashlm finetune
--matmul bf16`, and PyTorch's forward under torch.autocast("cpu", dtype=torch.bfloat16)
(its CPU mixed precision: matmuls in BF16, master weights and AdamW in F32); the
step-1 losses then differ by the two roundings, not only by float order.

Peak RSS is the kernel's peak for each child (wait4). The torch child's includes the
interpreter and torch (its RSS before loading the model is shown too). The table records
the load average: PyTorch's OpenMP threads slow down many times over when other
processes hold the cores, so only numbers from an idle machine compare.

With --checkpointing-sweep, flashlm alone runs --checkpointing none, layer and every-4
(--batch 1, one warm-up step, N timed steps, the final checkpoint-writing step dropped)
and the table gives the time per step, flashlm's own peak activation count and the peak RSS.

Needs, for the torch side only (a benchmark dependency, not a test one):
  pip install torch==2.15.0 numpy gguf
Usage:
  python bench/train_throughput.py -m models/SmolLM2-135M-Instruct.Q4_1.gguf -f data/eval.txt \\
      --ctx 128 --batch 1 --steps 3 -t 2 [--torch-python PATH] [--flashlm build/flashlm] \\
      [-r 3] [--compile] [--torch-batched] [--checkpointing-sweep] [--write docs/BENCHMARKS.md]
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIECE_BYTES = 100_000  # one argv string may hold at most 128 KiB


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- token ids, as flashlm finetune cuts them ----

def tokenize(flashlm, model, text):
    """Ids of text as `flashlm finetune` makes them (BOS as the model asks, special-token
    texts as plain text). A text over PIECE_BYTES goes in pieces split at newlines (a
    token can differ where two pieces meet)."""
    pieces, rest = [], text.encode()
    while len(rest) > PIECE_BYTES:
        # Cut after a newline that a non-space follows (UTF-8 stays whole; no run of
        # whitespace, which a pre-tokenizer may keep together, is split).
        cut = next((i + 1 for i in range(PIECE_BYTES - 1, 0, -1)
                    if rest[i:i + 1] == b"\n" and not rest[i + 1:i + 2].isspace()), PIECE_BYTES)
        pieces.append(rest[:cut].decode(errors="replace"))
        rest = rest[cut:]
    pieces.append(rest.decode(errors="replace"))
    ids = []
    for i, p in enumerate(pieces):
        cmd = [flashlm, "tokenize", "-m", model, "-p", p, "--no-parse-special"] + (["--no-bos"] if i else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"flashlm tokenize failed ({r.returncode}): {r.stderr[-2000:]}")
        ids += json.loads(r.stdout)
    return ids, len(pieces)


def sequences(ids, seq, batch, n_steps, valid_fraction):
    """The (tokens, targets) of every sequence of the first n_steps steps: flashlm's split
    (the tail held out) and cursor (sequence k at k * seq, wrapping over the training part)."""
    n_valid = int(len(ids) * valid_fraction) if valid_fraction > 0 else 0
    train = ids[:len(ids) - n_valid]
    n_seqs = (len(train) - 1) // seq
    if n_seqs < 1:
        sys.exit(f"the text has {len(train)} training tokens; one sequence needs {seq + 1}")
    out = []
    for c in range(n_steps * batch):
        s = (c % n_seqs) * seq
        out.append((train[s:s + seq], train[s + 1:s + seq + 1]))
    return out


# ---- flashlm ----

STEP_RE = re.compile(r"step (\d+)/(\d+) \| loss (\S+)(?: \| held-out (\S+))? \| lr (\S+) \| (\S+) tok/s \| "
                     r"ETA \S+ \| act (\d+) MiB")
END_RE = re.compile(r"finetune: held-out loss (\S+) -> (\S+); wrote '.*' \(peak RSS (\d+) MiB\)")


def run_flashlm(args, checkpointing, batch, n_steps):
    """Runs flashlm finetune for n_steps; returns its parsed progress lines, the time each
    step's line arrived (s since the header line), its own and the kernel's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="flashlm-train-bench-") as tmp:
        cmd = [args.flashlm, "finetune", "-m", args.model, "-f", args.file, "-o", os.path.join(tmp, "out.gguf"),
               "--ctx", str(args.ctx), "--batch", str(batch), "--steps", str(n_steps), "-t", str(args.threads),
               "--checkpointing", checkpointing, "--valid-fraction", str(args.valid_fraction), "--lr", str(args.lr),
               "--matmul", args.matmul]
        print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        buf, t_header, seen, n_tok = b"", None, {}, 0
        while True:
            chunk = os.read(p.stderr.fileno(), 65536)
            now = time.perf_counter()
            if not chunk:
                break
            buf += chunk
            text = buf.decode(errors="replace")
            if t_header is None and re.search(r"finetune: .* threads, .*\n", text):
                t_header = now
                n_tok = int(re.search(r"(\d+) tokens of", text).group(1))
            # The "step k/N | loss X" head of a progress line is one write(): it arrives whole.
            for m in re.finditer(r"step (\d+)/\d+ \| loss \d", text):
                seen.setdefault(int(m.group(1)), now)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stderr.close()
    err = buf.decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"flashlm finetune failed ({p.returncode}): {err[-2000:]}")
    steps = {}
    for line in re.split(r"[\r\n]", err):
        m = STEP_RE.search(line)
        if m:
            steps[int(m.group(1))] = {"loss": float(m.group(3)), "tok_s_printed": float(m.group(6)),
                                      "act_mib": int(m.group(7))}
    end = END_RE.search(err)
    if len(steps) != n_steps or end is None or t_header is None:
        sys.exit(f"could not parse flashlm's output:\n{err[-2000:]}")
    shown = [("OUT.gguf" if c == cmd[cmd.index("-o") + 1] else c) for c in cmd]
    return {"cmd": shlex.join(shown), "steps": steps, "t": {k: v - t_header for k, v in seen.items()},
            "rss_own_mib": int(end.group(3)), "rss_mib": ru.ru_maxrss / 1024.0, "n_tokens": n_tok}


def flashlm_throughput(args):
    """One warm-up step, args.steps timed, one dropped (it writes the checkpoint)."""
    r = run_flashlm(args, args.checkpointing, args.batch, args.steps + 2)
    timed = r["t"][args.steps + 1] - r["t"][1]
    r.update(step_s=timed / args.steps, tok_s=args.batch * args.ctx * args.steps / timed,
             first_loss=r["steps"][1]["loss"], act_mib=max(s["act_mib"] for s in r["steps"].values()),
             tok_s_printed=r["steps"][args.steps + 2]["tok_s_printed"])
    return r


# ---- PyTorch, in a child process ----

def torch_worker(spec_path):
    import resource

    import numpy as np
    import torch
    import torch.nn.functional as F
    from gguf import GGUFReader, GGMLQuantizationType
    from gguf.quants import dequantize

    with open(spec_path) as f:
        spec = json.load(f)
    torch.set_num_threads(spec["threads"])
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def field(r, key, default=None):
        f = r.fields.get(key)
        return default if f is None else f.contents()

    class Decoder(torch.nn.Module):
        """float32 port of make_train_grad_golden.py's Decoder, batched, plus biases and
        llama.cpp's RoPE frequency factors and linear scaling."""

        def __init__(self, path):
            super().__init__()
            r = GGUFReader(path)
            arch = field(r, "general.architecture")
            if arch not in ("llama", "qwen2", "qwen3", "gemma3"):
                raise SystemExit(f"architecture '{arch}' is not one this benchmark implements")
            g = lambda k, d=None: field(r, f"{arch}.{k}", d)  # noqa: E731
            self.arch = arch
            self.n_embd = int(g("embedding_length"))
            self.n_layer = int(g("block_count"))
            self.n_head = int(g("attention.head_count"))
            self.n_head_kv = int(g("attention.head_count_kv"))
            self.head_dim = int(g("attention.key_length", self.n_embd // self.n_head))
            self.n_rot = int(g("rope.dimension_count", self.head_dim))
            self.eps = float(g("attention.layer_norm_rms_epsilon"))
            self.neox = arch in ("qwen2", "qwen3", "gemma3")
            self.gemma = arch == "gemma3"
            window = int(g("attention.sliding_window", 0)) if self.gemma else 0
            # Gemma 3: five local (windowed) layers, then one global.
            self.window = [window if self.gemma and (i % 6) < 5 else 0 for i in range(self.n_layer)]
            base, local_base = float(g("rope.freq_base", 10000.0)), float(g("rope.freq_base_swa", 10000.0))
            self.base = [local_base if self.window[i] > 0 else base for i in range(self.n_layer)]
            factor = float(g("rope.scaling.factor", 1.0) or 1.0)
            linear = g("rope.scaling.type") == "linear" and factor > 0
            self.freq_scale = [1.0 if self.window[i] > 0 or not linear else 1.0 / factor for i in range(self.n_layer)]
            self.scale = 1.0 / math.sqrt(self.head_dim)
            self.rope_factors = None
            self.key = {}
            for t in r.tensors:
                a = dequantize(t.data, t.tensor_type)
                a = np.asarray(a, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])
                if not a.flags.writeable or np.shares_memory(a, t.data):
                    a = a.copy()  # F32 tensors come back as views of the read-only map
                if t.name == "rope_freqs.weight":
                    self.rope_factors = torch.from_numpy(a).double()
                    continue
                key = t.name.replace(".", "_")
                self.register_parameter(key, torch.nn.Parameter(torch.from_numpy(a)))
                self.key[t.name] = key
            self.tied = "output.weight" not in self.key
            self.n_vocab = self.W("token_embd.weight").shape[0]
            self.qtypes = sorted({t.tensor_type.name for t in r.tensors if t.tensor_type != GGMLQuantizationType.F32})
            del r

        def W(self, name):
            k = self.key.get(name)
            return None if k is None else getattr(self, k)

        def cos_sin(self, n, i):  # computed in every forward: no state for torch.compile to guard on
            half = self.n_rot // 2
            inv = self.base[i] ** (-2.0 * torch.arange(half, dtype=torch.float64) / self.n_rot)
            if self.rope_factors is not None:
                inv = inv / self.rope_factors[:half]
            ang = torch.arange(n, dtype=torch.float64)[:, None] * self.freq_scale[i] * inv[None, :]
            return torch.cos(ang)[:, None, :].float(), torch.sin(ang)[:, None, :].float()

        def rope(self, x, cs):  # x [B, T, heads, hd]
            c, s = cs
            half = self.n_rot // 2
            rot, rest = x[..., : self.n_rot], x[..., self.n_rot :]
            if self.neox:
                a, b = rot[..., :half], rot[..., half:]
                out = torch.cat([a * c - b * s, a * s + b * c], dim=-1)
            else:
                a, b = rot[..., 0::2], rot[..., 1::2]
                out = torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)
            return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out

        def norm(self, x, w):
            return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

        def forward(self, tokens, targets):  # [B, T] each -> mean cross-entropy
            W = self.W
            B, n = tokens.shape
            x = F.embedding(tokens, W("token_embd.weight"))
            if self.gemma:
                x = x * float(np.float32(math.sqrt(self.n_embd)))
            rope_cs = {}
            for i in range(self.n_layer):
                p = f"blk.{i}."
                ck = (self.base[i], self.freq_scale[i])
                if ck not in rope_cs:
                    rope_cs[ck] = self.cos_sin(n, i)
                cur = self.norm(x, W(p + "attn_norm.weight"))
                q = F.linear(cur, W(p + "attn_q.weight"), W(p + "attn_q.bias")).view(B, n, self.n_head, self.head_dim)
                k = F.linear(cur, W(p + "attn_k.weight"), W(p + "attn_k.bias")).view(B, n, self.n_head_kv, self.head_dim)
                v = F.linear(cur, W(p + "attn_v.weight"), W(p + "attn_v.bias")).view(B, n, self.n_head_kv, self.head_dim)
                if W(p + "attn_q_norm.weight") is not None:
                    q = self.norm(q, W(p + "attn_q_norm.weight"))
                    k = self.norm(k, W(p + "attn_k_norm.weight"))
                q, k = self.rope(q, rope_cs[ck]).transpose(1, 2), self.rope(k, rope_cs[ck]).transpose(1, 2)
                v = v.transpose(1, 2)
                group = self.n_head // self.n_head_kv
                if group > 1:
                    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
                if 0 < self.window[i] < n:
                    ii, jj = torch.arange(n)[:, None], torch.arange(n)[None, :]
                    mask = (jj <= ii) & (ii - jj < self.window[i])
                    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
                else:
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
                proj = F.linear(o.transpose(1, 2).reshape(B, n, -1), W(p + "attn_output.weight"))
                if W(p + "post_attention_norm.weight") is not None:
                    proj = self.norm(proj, W(p + "post_attention_norm.weight"))
                x = x + proj
                cur = self.norm(x, W(p + "ffn_norm.weight"))
                gate = F.linear(cur, W(p + "ffn_gate.weight"))
                up = F.linear(cur, W(p + "ffn_up.weight"))
                act = F.gelu(gate, approximate="tanh") if self.gemma else F.silu(gate)
                f = F.linear(act * up, W(p + "ffn_down.weight"))
                if W(p + "post_ffw_norm.weight") is not None:
                    f = self.norm(f, W(p + "post_ffw_norm.weight"))
                x = x + f
            xo = self.norm(x, W("output_norm.weight"))
            logits = F.linear(xo, W("token_embd.weight") if self.tied else W("output.weight"))
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))

    t0 = time.perf_counter()
    model = Decoder(spec["model"])
    load_s = time.perf_counter() - t0
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    notes = []
    try:
        opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0, fused=True)
        notes.append("AdamW fused")
    except (RuntimeError, ValueError) as e:
        opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)
        notes.append(f"AdamW default (fused refused: {str(e).splitlines()[0][:80]})")
    def matmuls(fn):  # --matmul bf16: the same model, its matmuls in BF16 (autocast)
        if spec["matmul"] != "bf16":
            return fn

        def autocast_fn(tok, tgt):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn(tok, tgt)
        return autocast_fn

    loss_fn = matmuls(torch.compile(model) if spec["compile"] else model)
    seqs = spec["sequences"]
    B = spec["batch"]

    def step(s, fn):
        part = seqs[s * B:(s + 1) * B]
        if spec["batched"]:
            tok = torch.tensor([p[0] for p in part])
            tgt = torch.tensor([p[1] for p in part])
            loss = fn(tok, tgt)
            loss.backward()
            total = loss.item()
        else:  # gradient accumulation over the batch, as flashlm does
            total = 0.0
            for tk, tg in part:
                loss = fn(torch.tensor([tk]), torch.tensor([tg]))
                (loss / B).backward()
                total += loss.item() / B
        t_opt = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        opt_times.append(time.perf_counter() - t_opt)
        return total

    losses, times, opt_times = [], [], []
    for s in range(spec["steps"] + 1):
        t = time.perf_counter()
        if s == 0 and spec["compile"]:
            try:
                losses.append(step(s, loss_fn))
                notes.append("torch.compile")
            except Exception as e:  # noqa: BLE001 - any compile failure falls back to eager
                print(f"torch.compile failed, eager instead: {type(e).__name__}: {str(e)[:300]}",
                      file=sys.stderr, flush=True)
                notes.append("torch.compile failed: eager")
                spec["compile"] = False
                loss_fn = matmuls(model)
                opt.zero_grad(set_to_none=True)
                losses.append(step(s, loss_fn))
        else:
            losses.append(step(s, loss_fn))
        times.append(time.perf_counter() - t)
        print(f"torch step {s + 1}/{spec['steps'] + 1}: loss {losses[-1]:.4f}, {times[-1]:.2f} s "
              f"(clip + AdamW {opt_times[-1]:.2f} s)",
              file=sys.stderr, flush=True)
    print(json.dumps({"torch": torch.__version__, "arch": model.arch, "n_params": n_params, "losses": losses,
                      "times": times, "opt_times": opt_times, "load_s": load_s, "base_rss_mib": base_rss, "qtypes": model.qtypes,
                      "threads": torch.get_num_threads(), "notes": notes}))


def median_run(runs):
    """The run of median tokens/s, with every run's tokens/s attached."""
    r = dict(sorted(runs, key=lambda x: x["tok_s"])[(len(runs) - 1) // 2])
    r["all_tok_s"] = [x["tok_s"] for x in runs]
    return r


def run_torch(args, seqs):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"model": args.model, "threads": args.threads, "lr": args.lr, "batch": args.batch,
                   "steps": args.steps, "sequences": seqs, "batched": args.torch_batched,
                   "compile": args.compile, "matmul": args.matmul}, f)
        spec = f.name
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # no pool of compile workers left beside the steps
    cmd = [args.torch_python, os.path.abspath(__file__), "--torch-worker", spec]
    print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
    try:
        with tempfile.TemporaryFile(mode="w+") as out_f:
            p = subprocess.Popen(cmd, stdout=out_f, env=env, text=True)  # stderr: the worker's progress
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            out_f.seek(0)
            out = out_f.read()
    finally:
        os.unlink(spec)
    if p.returncode != 0:
        sys.exit(f"the torch worker failed ({p.returncode}); it needs torch, numpy and gguf "
                 f"(pip install torch==2.15.0 numpy gguf) in {args.torch_python}")
    r = json.loads(out.strip().splitlines()[-1])
    timed = sum(r["times"][1:])
    r.update(step_s=timed / args.steps, tok_s=args.batch * args.ctx * args.steps / timed,
             rss_mib=ru.ru_maxrss / 1024.0, first_loss=r["losses"][0])
    return r


# ---- tables ----

def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def header(args, title):
    return [f"### {title}: {os.path.basename(args.model)}, ctx {args.ctx}, {args.threads} threads "
            f"({datetime.date.today().isoformat()})", "",
            f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; 1-minute load average {args.load_before} "
            f"before the run, {loadavg()} after (PyTorch's OpenMP threads slow down many times over when other "
            f"processes hold the cores, so compare only on an idle machine)."]


def runs(r):
    return "; runs: " + ", ".join(f"{x:.1f}" for x in r["all_tok_s"]) + " tok/s" if len(r["all_tok_s"]) > 1 else ""


def markdown_compare(args, fl, tr, n_pieces):
    mode = "one [B, SEQ] forward" if args.torch_batched else "B sequences accumulated"
    compiled = "torch.compile" if "torch.compile" in tr["notes"] else "eager"
    out = header(args, "Training step, flashlm vs PyTorch")
    reps = f", median of {args.repeat} runs each (alternating order)" if args.repeat > 1 else ""
    out += ["", f"Batch {args.batch} x {args.ctx} tokens per step, {args.steps} timed steps after one warm-up{reps} "
            f"(flashlm: its final, checkpoint-writing step dropped). flashlm `--checkpointing {args.checkpointing}`, "
            f"matmuls `--matmul {args.matmul}`; PyTorch {tr['torch']} CPU float32 "
            f"{'+ autocast bf16 ' if args.matmul == 'bf16' else ''}{compiled}, {mode}, {', '.join(tr['notes'])}, "
            f"{tr['threads']} threads. {tr['n_params'] / 1e6:.1f}M parameters, all trained; "
            f"the GGUF's {'/'.join(tr['qtypes'])} tensors dequantized to F32 on both sides. Both read the same "
            f"token ids (`flashlm tokenize`{', in ' + str(n_pieces) + ' pieces' if n_pieces > 1 else ''}).",
            "", f"flashlm: `{fl['cmd']}`",
            f"PyTorch: `{args.torch_python} bench/train_throughput.py --torch-worker SPEC` "
            f"(from `python bench/train_throughput.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`)",
            "",
            "| engine | step 1 loss | s/step | tok/s | peak RSS | note |",
            "|---|---:|---:|---:|---:|---|",
            f"| flashlm | {fl['first_loss']:.4f} | {fl['step_s']:.2f} | {fl['tok_s']:.1f} | "
            f"{fl['rss_mib']:.0f} MiB | act {fl['act_mib']} MiB; its last line said {fl['tok_s_printed']:.0f} tok/s "
            f"(its warm-up step included){runs(fl)} |",
            f"| PyTorch | {tr['first_loss']:.4f} | {tr['step_s']:.2f} | {tr['tok_s']:.1f} | "
            f"{tr['rss_mib']:.0f} MiB | {tr['base_rss_mib']:.0f} MiB before the model; clip + AdamW "
            f"{sum(tr['opt_times'][1:]) / args.steps:.2f} s/step{runs(tr)} |",
            "", f"flashlm / PyTorch tokens/s: {fl['tok_s'] / tr['tok_s']:.2f}x; step 1 loss difference "
            f"{abs(fl['first_loss'] - tr['first_loss']):.4f}."]
    return "\n".join(out) + "\n"


def markdown_sweep(args, rows):
    out = header(args, "flashlm gradient checkpointing")
    out += ["", f"Batch 1 x {args.ctx} tokens, {args.steps} timed step(s) after one warm-up (the final, "
            "checkpoint-writing step dropped). act: flashlm's own count of the peak activation bytes a step holds.",
            "", "Command: `" + rows[0][1]["cmd"].replace("--checkpointing none", "--checkpointing MODE") + "`",
            "", "| --checkpointing | s/step | tok/s | act | peak RSS |", "|---|---:|---:|---:|---:|"]
    for mode, r in rows:
        out.append(f"| {mode} | {r['step_s']:.2f} | {r['tok_s']:.1f} | {r['act_mib']} MiB | {r['rss_mib']:.0f} MiB |")
    return "\n".join(out) + "\n"


def emit(md, write_path):
    print(md)
    if write_path:
        with open(write_path, "a") as f:
            f.write("\n" + md)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--torch-worker":
        torch_worker(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("-f", "--file", default=os.path.join(ROOT, "data", "eval.txt"), help="training text")
    ap.add_argument("--ctx", type=int, default=128, help="tokens per training sequence")
    ap.add_argument("--batch", type=int, default=1, help="sequences per optimizer step")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--repeat", type=int, default=1,
                    help="runs of each engine, alternating which goes first; the table shows the median")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--valid-fraction", type=float, default=0.0,
                    help="flashlm's held-out tail (0: no held-out loss is computed)")
    ap.add_argument("--checkpointing", default="none", help="flashlm's --checkpointing for the comparison")
    ap.add_argument("--checkpointing-sweep", action="store_true",
                    help="flashlm alone: --checkpointing none, layer, every-4 at --batch 1")
    ap.add_argument("--flashlm", default=os.path.join(ROOT, "build", "flashlm"))
    ap.add_argument("--torch-python", default=sys.executable, help="python with torch, numpy and gguf")
    ap.add_argument("--compile", action="store_true", help="torch.compile the PyTorch model (eager if it fails)")
    ap.add_argument("--torch-batched", action="store_true",
                    help="PyTorch runs one [B, SEQ] forward per step instead of accumulating B sequences")
    ap.add_argument("--matmul", choices=["f32", "bf16"], default="f32",
                    help="matmul inputs on both sides: f32, or bf16 (flashlm --matmul bf16, PyTorch autocast bf16)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--write", help="append the markdown table to this file")
    args = ap.parse_args()
    args.load_before = loadavg()
    if args.steps < 1 or args.batch < 1 or args.ctx < 2 or args.repeat < 1:
        sys.exit("--steps, --batch and --repeat must be >= 1 and --ctx >= 2")

    if args.checkpointing_sweep:
        rows = []
        for mode in ("none", "layer", "every-4"):
            r = run_flashlm(args, mode, 1, args.steps + 2)
            timed = r["t"][args.steps + 1] - r["t"][1]
            r.update(step_s=timed / args.steps, tok_s=args.ctx * args.steps / timed,
                     act_mib=max(s["act_mib"] for s in r["steps"].values()))
            rows.append((mode, r))
        if args.json:
            with open(args.json, "w") as f:
                json.dump([{"mode": m, **r} for m, r in rows], f, indent=1)
        emit(markdown_sweep(args, rows), args.write)
        return 0

    with open(args.file, encoding="utf-8") as f:
        ids, n_pieces = tokenize(args.flashlm, args.model, f.read())
    seqs = sequences(ids, args.ctx, args.batch, args.steps + 1, args.valid_fraction)
    fls, trs = [], []
    for rep in range(args.repeat):  # alternating order: a slow spell of the machine hits both
        for engine in (("flashlm", "torch") if rep % 2 == 0 else ("torch", "flashlm")):
            if engine == "flashlm":
                fls.append(flashlm_throughput(args))
            else:
                trs.append(run_torch(args, seqs))
    fl, tr = median_run(fls), median_run(trs)
    if fls[0]["n_tokens"] != len(ids):
        print(f"note: flashlm counted {fls[0]['n_tokens']} tokens, the pieces gave {len(ids)}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"flashlm": fls, "torch": trs, "tokens": len(ids)}, f, indent=1)
    emit(markdown_compare(args, fl, tr, n_pieces), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
