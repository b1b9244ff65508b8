#!/usr/bin/env python3
"""Quantization-aware training with distillation against post-training quantization, on
one model, in one run on one machine.

The base (teacher) is the shipped SmolLM2-135M-Instruct file. Rows, each measured the same
way:
  - base: the file itself;
  - PTQ: `flashlm quantize --type TYPE` of the base (llama-quantize's choice of types);
  - PTQ + imatrix: the same with an importance matrix from the calibration text;
  - QAT + KD: `flashlm distill --teacher BASE -m BASE --qat TYPE` for --steps optimizer
    steps on the calibration text (Numbers and Deuteronomy: data/factory-calibration.txt),
    written in TYPE with the same types per tensor as the PTQ row.
Measured: file size, mean KL / top-1 agreement / perplexity against the base on held-out
text (data/eval.txt, Genesis: `flashlm perplexity --kl-base`), task accuracy
(`flashlm eval`, kjv-last-word, the first --limit items). The distillation's progress
(training loss and held-out KL per step) goes to a CSV that
scripts/plot_training_curves.py draws.

Usage:
  .venv/bin/python bench/distill_qat.py [-t 2] [--type Q4_0] [--steps 60] [--lr 5e-5]
      [--chunks 16] [--limit 200] [--curve docs/distill_qat_curve.csv] [--work DIR]
"""
from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

from factory_common import HELD_OUT, ROOT, TASK, cpu_name, quality, quality_row, run, write_curve

BASE = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CALIB = ROOT / "data" / "factory-calibration.txt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--type", default="Q4_0")
    ap.add_argument("--steps", type=int, default=60, help="distillation steps of 4 x 128 tokens")
    ap.add_argument("--lr", default="5e-5")
    ap.add_argument("--chunks", type=int, default=16, help="held-out KL chunks of 512 tokens")
    ap.add_argument("--limit", type=int, default=200, help="task items")
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--curve", default=str(ROOT / "docs" / "distill_qat_curve.csv"))
    ap.add_argument("--work", default="/tmp/flashlm-distill-qat")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {args.threads} threads; {datetime.date.today()}. "
          f"Base/teacher: {BASE.name}. Held-out: {HELD_OUT.name}, {args.chunks} chunks of 512; task {TASK}, "
          f"first {args.limit} items. Calibration/training text: {CALIB.name}.\n", flush=True)
    kl = work / "base.kl"
    run(args.flashlm, "perplexity", "-m", BASE, "-f", HELD_OUT, "-c", 512, "--chunks", args.chunks, "--kl-save", kl,
        "-t", args.threads)
    imatrix = work / "imatrix.gguf"
    run(args.flashlm, "imatrix", "-m", BASE, "-f", CALIB, "-c", 512, "--chunks", 40, "-o", imatrix,
        "-t", args.threads)
    t = args.type
    ptq, ptq_im, qat = work / f"ptq-{t}.gguf", work / f"ptq-im-{t}.gguf", work / f"qat-kd-{t}.gguf"
    run(args.flashlm, "quantize", "-m", BASE, "-o", ptq, "--type", t, "-t", args.threads)
    run(args.flashlm, "quantize", "-m", BASE, "-o", ptq_im, "--type", t, "--imatrix", imatrix, "-t", args.threads)
    t0 = time.time()
    kd = run(args.flashlm, "distill", "--teacher", BASE, "-m", BASE, "-f", CALIB, "-o", qat, "--qat", t,
             "--ctx", 128, "--batch", 4, "--steps", args.steps, "--lr", args.lr, "--valid-fraction", 0.05,
             "--eval-every", 10, "--no-checkpoint", "-t", args.threads)
    minutes = (time.time() - t0) / 60
    write_curve(kd.stderr, Path(args.curve))
    print(f"distillation: {args.steps} steps of 4 x 128 tokens, lr {args.lr}, {minutes:.1f} min; "
          f"curve in {args.curve}\n")
    print(f"| model | size MiB | mean KL | top-1 % | PPL | acc ({TASK}) |\n|---|---:|---:|---:|---:|---:|")
    for name, path in [("base", BASE), (f"PTQ {t}", ptq), (f"PTQ {t} + imatrix", ptq_im),
                       (f"QAT + KD {t} ({args.steps} steps)", qat)]:
        print(f"| {name} | {quality_row(quality(args.flashlm, path, kl, args.threads, args.limit))} |", flush=True)


if __name__ == "__main__":
    main()
