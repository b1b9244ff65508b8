#!/usr/bin/env python3
"""What structured pruning (flashlm prune) buys and costs, before any retraining.

For each setting the F16 base is pruned (calibration: data/factory-calibration.txt, the
first --calib-chunks chunks of 512), then the pruned model and its unpruned parent are
quantized the same way (--type, default Q8_0) and compared:
  - decode and prefill tok/s (`flashlm bench -p 128 -n 64`), runs alternating parent /
    candidate --reps times, medians reported (the machine is shared and noisy);
  - mean KL / top-1 agreement / perplexity against the F16 base (`flashlm perplexity
    --kl-base`, data/eval.txt, --chunks chunks of 512);
  - task accuracy (`flashlm eval`, kjv-last-word, the first --limit items);
  - with LLAMA_PERPLEXITY set, llama.cpp's perplexity of the pruned F16 file on the first
    2 chunks, beside flashlm's on the same file and chunks (does llama.cpp read it?).

Usage:
  [LLAMA_PERPLEXITY=/opt/llama/build/bin/llama-perplexity] python3 bench/prune_frontier.py
      --flashlm build/flashlm --base /tmp/smol-f16.gguf [-t 2] [--reps 5]
      --setting "ffn1024=--ffn 1024" --setting "drop6=--drop-layers 6" ...
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from pathlib import Path

from factory_common import run

ROOT = Path(__file__).resolve().parent.parent
TASK = "kjv-last-word"


def quality(flashlm: str, model: Path, kl: Path, args) -> dict:
    out = run(flashlm, "perplexity", "-m", model, "-f", ROOT / "data" / "eval.txt", "--kl-base", kl, "-c", 512,
              "--chunks", args.chunks, "-t", args.threads).stdout
    ev = run(flashlm, "eval", "-m", model, "--task", TASK, "--limit", args.limit, "-t", args.threads).stdout
    acc = re.search(r"^acc = ([0-9.]+) \+/- ([0-9.]+)", ev, re.M)
    return {"kl": float(re.search(r"mean ([0-9.e+-]+), p90", out).group(1)),
            "top1": float(re.search(r"top-1 agreement with base: ([0-9.]+)%", out).group(1)),
            "ppl": float(re.search(r"PPL = ([0-9.]+)", out).group(1)),
            "acc": float(acc.group(1)), "acc_se": float(acc.group(2))}


def bench(flashlm: str, model: Path, threads: str) -> tuple[float, float]:
    rows = json.loads(run(flashlm, "bench", "-m", model, "-t", threads, "-p", 128, "-n", 64, "-r", 1,
                          "-o", "json").stdout)
    return rows[0]["t_s"], rows[1]["t_s"]  # prefill, decode


def two_chunk_ppl(flashlm: str, model: Path) -> str:
    """flashlm's and (with LLAMA_PERPLEXITY) llama.cpp's perplexity of a file on 2 chunks."""
    text = ROOT / "data" / "eval.txt"
    ours = float(re.search(r"PPL = ([0-9.]+)", run(flashlm, "perplexity", "-m", model, "-f", text, "-c", 512,
                                                    "--chunks", 2, "-t", 2).stdout).group(1))
    exe = os.environ.get("LLAMA_PERPLEXITY")
    if not exe:
        return f"{ours:.2f} / -"
    r = run(exe, "-m", model, "-f", text, "-c", 512, "--chunks", 2, "-t", 2)
    theirs = float(re.search(r"Final estimate: PPL = ([0-9.]+)", r.stdout + r.stderr).group(1))
    return f"{ours:.2f} / {theirs:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--base", required=True, help="the F16 base")
    ap.add_argument("--setting", action="append", required=True, help="NAME=flashlm prune flags")
    ap.add_argument("--type", default="Q8_0", help="the quantization both parent and candidate get")
    ap.add_argument("-t", "--threads", default="2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--chunks", default="6")
    ap.add_argument("--calib-chunks", default="16")
    ap.add_argument("--limit", default="200")
    ap.add_argument("--work", default=tempfile.gettempdir())
    ap.add_argument("--reuse", action="store_true", help="keep pruned files already in --work")
    args = ap.parse_args()
    fl, base, work = args.flashlm, Path(args.base), Path(args.work)
    stem = base.stem
    kl = work / f"{stem}.prune-base.kl"
    run(fl, "perplexity", "-m", base, "-f", ROOT / "data" / "eval.txt", "-c", 512, "--chunks", args.chunks,
        "--kl-save", kl, "-t", args.threads)
    parent = work / f"{stem}.{args.type}.gguf"
    run(fl, "quantize", "-m", base, "-o", parent, "--type", args.type)
    rows = [("parent", base, parent, "")]
    for s in args.setting:
        name, flags = s.split("=", 1)
        pruned = work / f"{stem}.prune-{name}.gguf"
        if not (args.reuse and pruned.exists()):
            run(fl, "prune", "-m", base, "-o", pruned, "-f", ROOT / "data" / "factory-calibration.txt", "--chunks",
                args.calib_chunks, "-t", args.threads, *flags.split())
        q = work / f"{stem}.prune-{name}.{args.type}.gguf"
        run(fl, "quantize", "-m", pruned, "-o", q, "--type", args.type)
        rows.append((name, pruned, q, flags))

    print(f"base {base}, both sides {args.type}, -t {args.threads}, medians of {args.reps} alternating runs; "
          f"KL: data/eval.txt {args.chunks} x 512; task {TASK} first {args.limit}")
    print("| setting | flags | size MiB | prefill tok/s | decode tok/s | prefill x | decode x | mean KL | top-1 % | "
          "PPL | acc | PPL flashlm / llama.cpp (F16 file, 2 chunks) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f16, q, flags in rows:
        pp, tg, parent_pp, parent_tg = [], [], [], []
        for _ in range(args.reps):
            if name != "parent":  # alternate parent and candidate
                a, b = bench(fl, parent, args.threads)
                parent_pp.append(a)
                parent_tg.append(b)
            a, b = bench(fl, q, args.threads)
            pp.append(a)
            tg.append(b)
        if name == "parent":
            parent_pp, parent_tg = list(pp), list(tg)
        m = quality(fl, q, kl, args)
        lp = two_chunk_ppl(fl, f16)
        mpp, mtg = statistics.median(pp), statistics.median(tg)
        rpp, rtg = statistics.median(parent_pp), statistics.median(parent_tg)
        print(f"| {name} | `{flags}` | {q.stat().st_size / 2**20:.1f} | {mpp:.1f} | {mtg:.1f} | {mpp / rpp:.2f} | "
              f"{mtg / rtg:.2f} | {m['kl']:.4f} | {m['top1']:.1f} | {m['ppl']:.2f} | {m['acc']:.3f} +/- "
              f"{m['acc_se']:.3f} | {lp} |", flush=True)


if __name__ == "__main__":
    main()
