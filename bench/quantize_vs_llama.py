#!/usr/bin/env python3
"""flashlm quantize against llama.cpp's llama-quantize, from the same F16 base, same run.

For each model: the shipped file is turned into an F16 base (`flashlm quantize --type
F16`; the shipped files were 4-bit once, so the base is their dequantized form). Then,
per type, both quantizers make a file from that base with their default choices per
tensor (llama-quantize's mixes, which flashlm's quantize follows; no importance matrix)
and the script reports:

  * whether the two files' tensors are byte-identical (gguf-py reads both),
  * quantize wall time of each (same thread count),
  * file size, decode tok/s in flashlm (`flashlm bench -n 64`),
  * against the base, from `flashlm perplexity --kl-base` on the same text: mean and p99 KL
    divergence, top-1 agreement, perplexity ratio;
  * with a llama-perplexity binary, llama.cpp's own KL divergence of its file on its own
    engine (full-vocabulary KL; flashlm's stores the base's top 256 per position).

Usage:
  LLAMA_QUANTIZE=/path/llama-quantize [LLAMA_PERPLEXITY=/path/llama-perplexity] \\
    .venv/bin/python bench/quantize_vs_llama.py [-t 2] [--chunks 8] [--write docs/QUANTIZATION.md]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0"]


def run(*args) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{r.stderr[-3000:]}")
    return r


def timed(*args) -> float:
    t0 = time.perf_counter()
    run(*args)
    return time.perf_counter() - t0


def identical(a: Path, b: Path) -> bool:
    ta = {t.name: t for t in GGUFReader(a).tensors}
    tb = {t.name: t for t in GGUFReader(b).tensors}
    if set(ta) != set(tb):
        return False
    return all(ta[n].tensor_type == tb[n].tensor_type and
               np.array_equal(np.asarray(ta[n].data).view(np.uint8), np.asarray(tb[n].data).view(np.uint8)) for n in ta)


def kl_figures(flashlm: str, model: Path, text: Path, kl: Path, threads: int) -> dict:
    out = run(flashlm, "perplexity", "-m", model, "-f", text, "--kl-base", kl, "-t", threads).stdout
    m = re.search(r"mean ([0-9.e+-]+), p90 ([0-9.e+-]+), p99 ([0-9.e+-]+)", out)
    top1 = re.search(r"top-1 agreement with base: ([0-9.]+)%", out)
    ratio = re.search(r"ratio = ([0-9.]+)", out)
    return {"kl": float(m.group(1)), "kl99": float(m.group(3)), "top1": float(top1.group(1)), "ppl_ratio": float(ratio.group(1))}


def decode_tps(flashlm: str, model: Path, threads: int) -> float:
    out = run(flashlm, "bench", "-m", model, "-t", threads, "-p", "0", "-n", "64", "-r", "3", "-o", "json").stdout
    import json
    return json.loads(out)[0]["t_s"]


def llama_kl(llama_ppl: str, base: Path, model: Path, text: Path, chunks: int, threads: int, work: Path) -> float | None:
    if not llama_ppl:
        return None
    kld = work / "llama-base.kld"
    if not kld.exists():
        run(llama_ppl, "-m", base, "-f", text, "-c", 512, "--chunks", chunks, "-t", threads, "--kl-divergence-base", kld)
    out = run(llama_ppl, "-m", model, "-f", text, "-c", 512, "--chunks", chunks, "-t", threads,
              "--kl-divergence-base", kld, "--kl-divergence")
    m = re.search(r"Mean\s+KLD:\s+([0-9.]+)", out.stdout + out.stderr)
    return float(m.group(1)) if m else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=8, help="perplexity chunks of 512 tokens")
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--text", default=str(ROOT / "data" / "eval.txt"))
    ap.add_argument("--write", help="append the markdown tables to this file")
    args = ap.parse_args()
    llama_q = os.environ.get("LLAMA_QUANTIZE", "")
    llama_ppl = os.environ.get("LLAMA_PERPLEXITY", "")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    lines = [f"\nMachine: {cpu}, {os.cpu_count()} logical CPUs, {args.threads} threads; "
             f"{datetime.date.today()}. Text: data/eval.txt, {args.chunks} chunks of 512 (second halves scored). "
             f"Command: `bench/quantize_vs_llama.py -t {args.threads} --chunks {args.chunks}`"
             + (f" with LLAMA_QUANTIZE={llama_q}" if llama_q else " (no llama-quantize given)") + ".\n"]
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        for name in MODELS:
            src = ROOT / "models" / name
            base = work / f"{src.stem}.F16.gguf"
            run(args.flashlm, "quantize", "-m", src, "-o", base, "--type", "F16")
            kl = work / "base.kl"
            run(args.flashlm, "perplexity", "-m", base, "-f", args.text, "-c", 512, "--chunks", args.chunks,
                "--kl-save", kl, "-t", args.threads)
            lines += [f"\n**{src.stem}** (base: {base.stat().st_size / 2**20:.1f} MiB F16, "
                      f"decode {decode_tps(args.flashlm, base, args.threads):.1f} tok/s)\n",
                      "| type | size MiB | flashlm quantize s | llama-quantize s | same bytes | decode tok/s | mean KL | p99 KL | top-1 % | PPL ratio | llama.cpp's KL (its engine) |",
                      "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
            for t in TYPES:
                ours = work / f"fl-{t}.gguf"
                t_ours = timed(args.flashlm, "quantize", "-m", base, "-o", ours, "--type", t, "-t", args.threads)
                t_ll, same, ll_kl = "-", "-", None
                if llama_q:
                    theirs = work / f"ll-{t}.gguf"
                    t_ll = f"{timed(llama_q, base, theirs, t, args.threads):.2f}"
                    same = "yes" if identical(ours, theirs) else "**no**"
                    ll_kl = llama_kl(llama_ppl, base, theirs, Path(args.text), args.chunks, args.threads, work)
                    theirs.unlink()
                k = kl_figures(args.flashlm, ours, Path(args.text), kl, args.threads)
                lines.append(f"| {t} | {ours.stat().st_size / 2**20:.1f} | {t_ours:.2f} | {t_ll} | {same} | "
                             f"{decode_tps(args.flashlm, ours, args.threads):.1f} | {k['kl']:.5f} | {k['kl99']:.4f} | "
                             f"{k['top1']:.2f} | {k['ppl_ratio']:.4f} | {'-' if ll_kl is None else f'{ll_kl:.5f}'} |")
                print(lines[-1], flush=True)
                ours.unlink()
            (work / "llama-base.kld").unlink(missing_ok=True)
            base.unlink()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
