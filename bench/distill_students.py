#!/usr/bin/env python3
"""Distillation of the students the Flash factory makes, before and after, in one run:

  moefied: `flashlm moefy --experts 8 --top-k 4` of SmolLM2-135M-Instruct, then
           `flashlm distill --teacher BASE -m MOE --train all --qat same` (the experts
           keep their types, so decode speed is the conversion's); perplexity on
           data/eval.txt (10 chunks of 512) and decode tg64 at 1 thread (`flashlm bench
           -p 0 -n 64 -r 3 -t 1`, dense and MoE alternated, two rounds);
  pruned:  `flashlm prune --ffn-keep 0.75` of the F16 base, then `flashlm distill
           --teacher BASE -m PRUNED --train all`; KL / top-1 / perplexity against the base
           on data/eval.txt (`perplexity --kl-base`, 16 chunks) and the kjv-last-word task
           (first 200 items).

Training text: data/factory-calibration.txt (also moefy's and prune's calibration),
sequences of 128 tokens, 4 per step, a 5-step warm-up then cosine decay from --lr.

Usage:
  .venv/bin/python bench/distill_students.py [--moe-steps 70] [--prune-steps 50] [--lr 1e-4]
      [--only moe|prune] [--work DIR]
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import time
from pathlib import Path

from factory_common import HELD_OUT, ROOT, TASK, cpu_name, quality, quality_row, run

BASE = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CALIB = ROOT / "data" / "factory-calibration.txt"


def distill(flashlm: str, student: Path, out: Path, steps: int, lr: str, *extra) -> tuple[float, float, float]:
    t0 = time.time()
    r = run(flashlm, "distill", "--teacher", BASE, "-m", student, "-f", CALIB, "-o", out, "--train", "all",
            "--ctx", 128, "--batch", 4, "--steps", steps, "--lr", lr, "--warmup", 5, "--valid-fraction", 0.05,
            "--eval-every", 10, "--no-checkpoint", "-t", 2, *extra)
    kl = re.search(r"held-out KL ([0-9.]+) -> ([0-9.]+)", r.stderr)
    return float(kl.group(1)), float(kl.group(2)), (time.time() - t0) / 60


def ppl(flashlm: str, model: Path, chunks: int) -> float:
    out = run(flashlm, "perplexity", "-m", model, "-f", HELD_OUT, "-c", 512, "--chunks", chunks, "-t", 2).stdout
    return float(re.search(r"PPL = ([0-9.]+)", out).group(1))


def tg64(flashlm: str, model: Path) -> float:
    out = run(flashlm, "bench", "-m", model, "-p", 0, "-n", 64, "-r", 3, "-t", 1).stdout
    return float(re.search(r"tg64 \| +([0-9.]+)", out).group(1))


def moe(args, work: Path) -> None:
    f = args.flashlm
    m0, m1 = work / "e8k4.gguf", work / "e8k4-kd.gguf"
    run(f, "moefy", "-m", BASE, "-o", m0, "--experts", 8, "--top-k", 4, "-f", CALIB, "-t", 2)
    p_dense, p0 = ppl(f, BASE, 10), ppl(f, m0, 10)
    kl0, kl1, minutes = distill(f, m0, m1, args.moe_steps, args.lr, "--qat", "same")
    p1 = ppl(f, m1, 10)
    speed = {m: [] for m in (BASE, m0, m1)}
    for _ in range(2):
        for m in speed:
            speed[m].append(tg64(f, m))
    d = sum(speed[BASE]) / 2
    print(f"\nmoefied E8 K4, distilled {args.moe_steps} steps ({minutes:.1f} min), held-out KL {kl0:.4f} -> {kl1:.4f}\n")
    print("| model | PPL (10 x 512) | PPL / dense | tg64 t/s (2 rounds) | speed / dense |\n|---|---:|---:|---:|---:|")
    for name, m, p in [("dense", BASE, p_dense), ("E8 K4, 0 min", m0, p0), (f"E8 K4, {minutes:.0f} min", m1, p1)]:
        s = speed[m]
        print(f"| {name} | {p:.4f} | {p / p_dense:.2f}x | {s[0]:.1f}, {s[1]:.1f} | {sum(s) / 2 / d:.2f}x |")


def prune(args, work: Path) -> None:
    f = args.flashlm
    kl = work / "base.kl"
    run(f, "perplexity", "-m", BASE, "-f", HELD_OUT, "-c", 512, "--chunks", 16, "--kl-save", kl, "-t", 2)
    f16, p0, p1 = work / "base-f16.gguf", work / "pruned.gguf", work / "pruned-kd.gguf"
    run(f, "quantize", "-m", BASE, "-o", f16, "--type", "F16")
    run(f, "prune", "-m", f16, "-o", p0, "-f", CALIB, "--ffn-keep", 0.75, "--chunks", 20, "-t", 2)
    before = quality_row(quality(f, p0, kl, 2, 200))
    kl0, kl1, minutes = distill(f, p0, p1, args.prune_steps, args.lr)
    after = quality_row(quality(f, p1, kl, 2, 200))
    print(f"\npruned FFN 75%, distilled {args.prune_steps} steps ({minutes:.1f} min), held-out KL {kl0:.4f} -> {kl1:.4f}\n")
    print(f"| model | size MiB | mean KL | top-1 % | PPL | acc ({TASK}) |\n|---|---:|---:|---:|---:|---:|")
    print(f"| pruned | {before} |")
    print(f"| pruned + distilled | {after} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moe-steps", type=int, default=70)
    ap.add_argument("--prune-steps", type=int, default=50)
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--only", choices=["moe", "prune"])
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--work", default="/tmp/flashlm-distill-students")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; {datetime.date.today()}. Base/teacher: {BASE.name}.")
    if args.only in (None, "moe"):
        moe(args, work)
    if args.only in (None, "prune"):
        prune(args, work)


if __name__ == "__main__":
    main()
