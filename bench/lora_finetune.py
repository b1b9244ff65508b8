#!/usr/bin/env python3
"""LoRA fine-tuning on a real model, end to end, in one run:

1. data/eval.txt (the KJV) is cut into a training head (90%) and a held-out tail.
2. Throughput and memory: `flashlm finetune --train all` and `--train lora` for
   --speed-steps steps each (same model, sequences, batch, threads): the tok/s flashlm
   reports after its last step (its whole run, the first step included, on both sides)
   and the peak RSS it prints.
3. Quality: `flashlm finetune --train lora --lora-out A.gguf` for --steps steps on the
   head; then the perplexity of the held-out tail (llama.cpp's method, --ctx-size 256)
   of the base and of base + adapter, in flashlm (`perplexity --lora A.gguf`) and in
   llama.cpp (llama-cpp-python with lora_path: the adapter file loads there as written).

Usage: .venv/bin/python bench/lora_finetune.py [-m MODEL] [--steps 30] [--speed-steps 3]
       [-t 2] [--ref-python /opt/flashlm-ref/bin/python] [--write docs/TRAINING.md]
The llama.cpp side needs llama-cpp-python (scripts/reference/README.md's environment);
without it that column says so.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from factory_common import ROOT, cpu_name, run

LLAMA_PPL = r"""
import json, math, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import common
model, text_path, lora, n_ctx, n_chunks = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
llm = common.open_llama(model, n_ctx=n_ctx, lora_path=lora or None)
text = open(text_path, "rb").read()
text = text[:-1] if text.endswith(b"\n") else text
tokens = llm.tokenize(text, add_bos=True, special=False)
n_chunks = min(n_chunks, len(tokens) // n_ctx)
first, nll, count = n_ctx // 2, 0.0, 0
for i in range(n_chunks):
    chunk = list(tokens[i * n_ctx:(i + 1) * n_ctx])
    chunk[0] = llm.token_bos()
    logits = common.eval_logits(llm, chunk).astype(np.float64)
    for j in range(first, n_ctx - 1):
        row = logits[j]
        m = row.max()
        nll -= row[chunk[j + 1]] - m - math.log(np.exp(row - m).sum())
        count += 1
print(json.dumps({"ppl": math.exp(nll / count), "chunks": n_chunks, "version": common.reference_version()}))
"""


def finetune(flashlm, model, text, out_args, ctx, batch, steps, threads, train, extra=()):
    t0 = time.time()
    r = run(flashlm, "finetune", "-m", model, "-f", text, *out_args, "--ctx", ctx, "--batch", batch, "--steps", steps,
            "-t", threads, "--train", train, "--valid-fraction", "0.05", "--no-checkpoint", *extra)
    log = r.stderr
    tps = [float(x) for x in re.findall(r"\| ([0-9.]+) tok/s", log)]
    rss = float(re.search(r"peak RSS ([0-9.]+) MiB", log).group(1))
    held = re.search(r"held-out loss ([0-9.]+) -> ([0-9.]+)", log)
    return {"tok_s": tps[-1], "rss_mib": rss, "wall_s": time.time() - t0,
            "held_before": float(held.group(1)), "held_after": float(held.group(2))}


def flashlm_ppl(flashlm, model, text, threads, chunks, lora=None):
    args = [flashlm, "perplexity", "-m", model, "-f", text, "-c", 256, "--chunks", chunks, "-t", threads]
    if lora:
        args += ["--lora", lora]
    return float(re.search(r"PPL = ([0-9.]+)", run(*args).stdout).group(1))


def llama_ppl(ref_python, model, text, chunks, lora=None):
    r = subprocess.run([ref_python, "-c", LLAMA_PPL, str(ROOT / "scripts" / "reference"), str(model), str(text),
                        str(lora or ""), "256", str(chunks)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"
    return json.loads(r.stdout.strip().splitlines()[-1]), None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--speed-steps", type=int, default=3)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--rank", default="8")
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--ref-python", default="/opt/flashlm-ref/bin/python")
    ap.add_argument("--write", help="append the table to this markdown file")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    text = (ROOT / "data" / "eval.txt").read_bytes()
    cut = text.rfind(b"\n", 0, int(len(text) * 0.9)) + 1
    head, tail = work / "train.txt", work / "heldout.txt"
    head.write_bytes(text[:cut])
    tail.write_bytes(text[cut:])
    common = (a.flashlm, a.model, head)

    speed = {}
    for train in ("all", "lora"):
        outs = ["-o", work / f"speed-{train}.gguf"] if train == "all" else ["--lora-out", work / "speed.lora.gguf"]
        speed[train] = finetune(*common, outs, a.ctx, a.batch, a.speed_steps, a.threads, train,
                                ["--lora-rank", a.rank] if train == "lora" else [])
        print(f"--train {train}: {speed[train]['tok_s']:.1f} tok/s, peak RSS {speed[train]['rss_mib']:.0f} MiB")

    adapter = work / "kjv.lora.gguf"
    q = finetune(*common, ["--lora-out", adapter], a.ctx, a.batch, a.steps, a.threads, "lora",
                 ["--lora-rank", a.rank, "--lr", a.lr, "--warmup", "3"])
    print(f"LoRA {a.steps} steps: held-out loss {q['held_before']:.4f} -> {q['held_after']:.4f} in {q['wall_s']:.0f} s")
    ppl = {"flashlm": (flashlm_ppl(a.flashlm, a.model, tail, a.threads, a.chunks),
                       flashlm_ppl(a.flashlm, a.model, tail, a.threads, a.chunks, adapter))}
    base_ref, err = llama_ppl(a.ref_python, a.model, tail, a.chunks)
    lora_ref, err2 = llama_ppl(a.ref_python, a.model, tail, a.chunks, adapter)
    ref_version = base_ref["version"] if base_ref else None
    if base_ref and lora_ref:
        ppl["llama.cpp"] = (base_ref["ppl"], lora_ref["ppl"])
    print(json.dumps({"ppl": ppl, "llama_error": err or err2}))

    date = datetime.date.today().isoformat()
    lines = [
        f"\n### LoRA on {Path(a.model).name} ({cpu_name()}, {a.threads} threads, {date})\n",
        f"`bench/lora_finetune.py --steps {a.steps}`: rank {a.rank} (alpha 16) on all seven matrix kinds, "
        f"--ctx {a.ctx} --batch {a.batch}, the KJV's first 90% for training, the last 10% held out.\n",
        "| --train | tok/s (whole run) | peak RSS |",
        "|---|---|---|",
    ]
    for train in ("all", "lora"):
        lines.append(f"| {train} | {speed[train]['tok_s']:.1f} | {speed[train]['rss_mib']:.0f} MiB |")
    lines += [
        "",
        f"After {a.steps} LoRA steps ({q['wall_s'] / 60:.1f} min): held-out loss {q['held_before']:.4f} -> "
        f"{q['held_after']:.4f}.\n",
        f"| held-out perplexity (ctx 256, {a.chunks} chunks) | base | base + adapter |",
        "|---|---|---|",
    ]
    for name, (b, l) in ppl.items():
        label = f"{name} ({ref_version})" if name == "llama.cpp" else name
        lines.append(f"| {label} | {b:.4f} | {l:.4f} |")
    if "llama.cpp" not in ppl:
        lines.append(f"| llama.cpp | not measured: {err or err2} | |")
    table = "\n".join(lines) + "\n"
    print(table)
    if a.write:
        with open(a.write, "a") as f:
            f.write(table)


if __name__ == "__main__":
    main()
