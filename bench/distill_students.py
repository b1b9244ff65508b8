#!/usr/bin/env python3
"""Distillation of the students the Flash factory makes, before and after, in one run:

  moefied: `flashlm moefy --experts 8 --top-k 4` of SmolLM2-135M-Instruct, then
           `flashlm distill --teacher BASE -m MOE --train all --qat same` (the experts
           keep their types, so decode speed is the conversion's) with a snapshot of the
           student every --moe-snapshot-every steps; perplexity on data/eval.txt (10
           chunks of 512) of the start, every snapshot and the end, each at the wall
           minutes the run had taken when it was written (the frontier), and decode tg64
           at 1 thread (`flashlm bench -p 0 -n 64 -r 3 -t 1`, dense and MoE alternated,
           two rounds);
  pruned:  `flashlm prune --ffn-keep 0.75` of the F16 base, then `flashlm distill
           --teacher BASE -m PRUNED --train all`; KL / top-1 / perplexity against the base
           on data/eval.txt (`perplexity --kl-base`, 16 chunks) and the kjv-last-word task
           (first 200 items).

Training text: the pruned student and the moefied one with --moe-text calibration read
data/factory-calibration.txt (Numbers, Deuteronomy: also moefy's and prune's
calibration), sequences of 128 tokens, 4 per step, a 5-step warm-up then cosine decay
from --lr. --moe-text long (the default) reads a larger text made here by
scripts/make_calibration_text.sh: Leviticus to Deuteronomy, Joshua to Malachi, Mark to
Revelation (3.6 MB, about 900k tokens: no sequence repeats in two hours; none of it is
Genesis, the held-out text, nor Exodus and Matthew, the tasks'), with --moe-ctx,
--moe-batch, --moe-lr and a 20-step warm-up.

Usage:
  .venv/bin/python bench/distill_students.py [--moe-steps 1300] [--moe-snapshot-every 65]
      [--moe-text long|calibration] [--moe-ctx 256] [--moe-batch 2] [--moe-lr 2e-4]
      [--prune-steps 50] [--lr 1e-4] [--only moe|prune] [--work DIR]
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import time
from pathlib import Path

from factory_common import HELD_OUT, ROOT, TASK, cpu_name, quality, quality_row, run, write_curve

BASE = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CALIB = ROOT / "data" / "factory-calibration.txt"


def distill(flashlm: str, student: Path, out: Path, steps: int, lr: str, *extra, text: Path = CALIB, ctx: int = 128,
            batch: int = 4, warmup: int = 5, curve: Path | None = None) -> tuple[float, float, float]:
    t0 = time.time()
    r = run(flashlm, "distill", "--teacher", BASE, "-m", student, "-f", text, "-o", out, "--train", "all",
            "--ctx", ctx, "--batch", batch, "--steps", steps, "--lr", lr, "--warmup", warmup, "--valid-fraction", 0.05,
            "--eval-every", 10 if steps <= 200 else 50, "--no-checkpoint", "-t", 2, *extra)
    kl = re.search(r"held-out KL ([0-9.]+) -> ([0-9.]+)", r.stderr)
    if curve is not None:
        write_curve(r.stderr, curve)
    return float(kl.group(1)), float(kl.group(2)), (time.time() - t0) / 60


def ppl(flashlm: str, model: Path, chunks: int) -> float:
    out = run(flashlm, "perplexity", "-m", model, "-f", HELD_OUT, "-c", 512, "--chunks", chunks, "-t", 2).stdout
    return float(re.search(r"PPL = ([0-9.]+)", out).group(1))


def tg64(flashlm: str, model: Path) -> float:
    out = run(flashlm, "bench", "-m", model, "-p", 0, "-n", 64, "-r", 3, "-t", 1).stdout
    return float(re.search(r"tg64 \| +([0-9.]+)", out).group(1))


def long_text(work: Path) -> Path:
    """Leviticus-Deuteronomy, Joshua-Malachi, Mark-Revelation (KJV), one verse per line."""
    out = work / "distill-long.txt"
    if not out.exists():
        parts = []
        for i, rng in enumerate(("le1:1-de34:12", "jos1:1-mal4:6", "mr1:1-re22:21")):
            part = work / f"distill-long-{i}.txt"
            run(ROOT / "scripts" / "make_calibration_text.sh", part, rng)
            parts.append(part.read_text())
        out.write_text("".join(parts))
    return out


def moe(args, work: Path) -> None:
    f = args.flashlm
    m0, m1 = work / "e8k4.gguf", work / "e8k4-kd.gguf"
    run(f, "moefy", "-m", BASE, "-o", m0, "--experts", 8, "--top-k", 4, "-f", CALIB, "-t", 2)
    p_dense, p0 = ppl(f, BASE, 10), ppl(f, m0, 10)
    for old in work.glob("e8k4-kd.step*.gguf"):
        old.unlink()
    text = long_text(work) if args.moe_text == "long" else CALIB
    shape = dict(text=text, ctx=args.moe_ctx, batch=args.moe_batch, warmup=20) if args.moe_text == "long" else {}
    t_start = time.time()
    kl0, kl1, minutes = distill(f, m0, m1, args.moe_steps, args.moe_lr if args.moe_text == "long" else args.lr,
                                "--qat", "same", "--snapshot-every", args.moe_snapshot_every, **shape,
                                curve=Path(args.moe_curve))
    # The frontier: each snapshot at the wall minutes the run had taken when it was written.
    points = [(0.0, 0, p0)]
    for snap in sorted(work.glob("e8k4-kd.step*.gguf"), key=lambda q: int(re.search(r"step(\d+)", q.name).group(1))):
        step = int(re.search(r"step(\d+)", snap.name).group(1))
        points.append(((snap.stat().st_mtime - t_start) / 60, step, ppl(f, snap, 10)))
    points.append((minutes, args.moe_steps, ppl(f, m1, 10)))
    speed = {m: [] for m in (BASE, m0, m1)}
    for _ in range(2):
        for m in speed:
            speed[m].append(tg64(f, m))
    d = sum(speed[BASE]) / 2
    tokens = (args.moe_ctx * args.moe_batch) if args.moe_text == "long" else 512
    print(f"\nmoefied E8 K4, distilled {args.moe_steps} steps of {tokens} tokens on {text.name} ({minutes:.1f} min), "
          f"held-out KL {kl0:.4f} -> {kl1:.4f}\n")
    print("| model | PPL (10 x 512) | PPL / dense | tg64 t/s (2 rounds) | speed / dense |\n|---|---:|---:|---:|---:|")
    for name, m, p in [("dense", BASE, p_dense), ("E8 K4, 0 min", m0, p0), (f"E8 K4, {minutes:.0f} min", m1, points[-1][2])]:
        s = speed[m]
        print(f"| {name} | {p:.4f} | {p / p_dense:.2f}x | {s[0]:.1f}, {s[1]:.1f} | {sum(s) / 2 / d:.2f}x |")
    print("\nFrontier (the snapshots decode as fast as the end: same tensor types):\n")
    print("| minutes | step | tokens | PPL | PPL / dense |\n|---:|---:|---:|---:|---:|")
    for mins, step, p in points:
        print(f"| {mins:.1f} | {step} | {step * tokens} | {p:.4f} | {p / p_dense:.2f}x |")


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
    ap.add_argument("--moe-steps", type=int, default=1300)
    ap.add_argument("--moe-snapshot-every", type=int, default=65)
    ap.add_argument("--moe-text", choices=["long", "calibration"], default="long")
    ap.add_argument("--moe-ctx", type=int, default=256)
    ap.add_argument("--moe-batch", type=int, default=2)
    ap.add_argument("--moe-lr", default="2e-4")
    ap.add_argument("--moe-curve", default=str(ROOT / "docs" / "distill_moe_curve.csv"),
                    help="the MoE distillation's loss and held-out KL per step (scripts/plot_training_curves.py)")
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
