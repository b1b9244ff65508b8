#!/usr/bin/env python3
"""The quality/size frontier of flashlm's quantizations, with and without an importance
matrix, against the F16 base, in one run on one machine.

Per model: the shipped file is turned into an F16 base (`flashlm quantize --type F16`;
the shipped files were 4-bit once). An imatrix is collected on the factory calibration
text (data/factory-calibration.txt: Numbers and Deuteronomy, disjoint from the KL text
and the tasks) with `flashlm imatrix`. Then for each type (llama-quantize's mixes) the
file is made without an imatrix and, for the types an imatrix changes, with it, and the
script reports: size, bits per weight, size as a fraction of F32, decode tok/s
(`flashlm bench -n 32`), mean KL / top-1 agreement / perplexity against the base
(`flashlm perplexity --kl-base`, data/eval.txt, Genesis), and task accuracy
(`flashlm eval`, kjv-last-word acc, the first --limit items) with its share of the
base's. With LLAMA_QUANTIZE set, each imatrix file is also made by llama-quantize from
the same imatrix and compared byte for byte ("same bytes").

It ends with the smallest file that keeps >= 98% of the base's task accuracy. Writes the
rows to a CSV (default docs/quant_frontier.csv; scripts/plot_quant_frontier.py plots it)
and prints markdown tables.

Usage:
  [LLAMA_QUANTIZE=/path/llama-quantize] .venv/bin/python bench/quant_frontier.py [-t 2]
      [--chunks 4] [--limit 200] [--models smollm2,gemma] [--csv docs/quant_frontier.csv]
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import tempfile
from pathlib import Path

from factory_common import run

from gguf import GGUFReader

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma": "gemma-3-270m-q4_k_m.gguf"}
TYPES = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"]
IMATRIX_TYPES = {"Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K"}  # Q8_0 ignores it; the rest change little
TASK = "kjv-last-word"


def n_params(path: Path) -> int:
    return sum(int(t.n_elements) for t in GGUFReader(path).tensors)


def same_tensors(a: Path, b: Path) -> bool:
    ta = {t.name: t for t in GGUFReader(a).tensors}
    tb = {t.name: t for t in GGUFReader(b).tensors}
    return set(ta) == set(tb) and all(
        ta[n].tensor_type == tb[n].tensor_type and bytes(ta[n].data.view("u1")) == bytes(tb[n].data.view("u1")) for n in ta)


def measure(flashlm: str, model: Path, kl: Path, args) -> dict:
    out = run(flashlm, "perplexity", "-m", model, "-f", ROOT / "data" / "eval.txt", "--kl-base", kl,
              "-t", args.threads).stdout
    kl_mean = float(re.search(r"mean ([0-9.e+-]+), p90", out).group(1))
    top1 = float(re.search(r"top-1 agreement with base: ([0-9.]+)%", out).group(1))
    ppl = float(re.search(r"PPL = ([0-9.]+)", out).group(1))
    bench = json.loads(run(flashlm, "bench", "-m", model, "-t", args.threads, "-p", "0", "-n", "32", "-r", "2",
                           "-o", "json").stdout)[0]["t_s"]
    ev = run(flashlm, "eval", "-m", model, "--task", TASK, "--limit", args.limit, "-t", args.threads).stdout
    m = re.search(r"^acc = ([0-9.]+) \+/- ([0-9.]+)", ev, re.M)
    return {"kl": kl_mean, "top1": top1, "ppl": ppl, "decode": bench, "acc": float(m.group(1)),
            "acc_se": float(m.group(2))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=4, help="KL chunks of 512 tokens")
    ap.add_argument("--limit", type=int, default=200, help="task items")
    ap.add_argument("--models", default="smollm2,gemma")
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--csv", default=str(ROOT / "docs" / "quant_frontier.csv"))
    args = ap.parse_args()
    llama_q = os.environ.get("LLAMA_QUANTIZE", "")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine())
    print(f"Machine: {cpu}, {os.cpu_count()} logical CPUs, {args.threads} threads; {datetime.date.today()}. "
          f"KL: data/eval.txt, {args.chunks} chunks of 512; task {TASK}, first {args.limit} items; imatrix: "
          f"data/factory-calibration.txt, 40 chunks of 512.\n", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        for key in args.models.split(","):
            src = ROOT / "models" / MODELS[key]
            base = work / "base-F16.gguf"
            run(args.flashlm, "quantize", "-m", src, "-o", base, "--type", "F16")
            f32_bytes = 4 * n_params(base)
            kl = work / "base.kl"
            run(args.flashlm, "perplexity", "-m", base, "-f", ROOT / "data" / "eval.txt", "-c", 512, "--chunks",
                args.chunks, "--kl-save", kl, "-t", args.threads)
            imatrix = work / "imatrix.gguf"
            run(args.flashlm, "imatrix", "-m", base, "-f", ROOT / "data" / "factory-calibration.txt", "-c", 512,
                "--chunks", 40, "-o", imatrix, "-t", args.threads)
            print(f"\n**{src.stem}** (F32 size {f32_bytes / 2**20:.1f} MiB)\n\n"
                  "| type | imatrix | size MiB | bits/weight | of F32 | decode tok/s | mean KL | top-1 % | PPL | "
                  f"acc ({TASK}) | of base acc | same bytes as llama-quantize |\n"
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
            base_acc = None
            for t in TYPES:
                for with_im in ([False, True] if t in IMATRIX_TYPES else [False]):
                    out = work / f"{t}{'-im' if with_im else ''}.gguf"
                    if t == "F16":
                        out = base
                    else:
                        run(args.flashlm, "quantize", "-m", base, "-o", out, "--type", t, "-t", args.threads,
                            *(["--imatrix", imatrix] if with_im else []))
                    same = "-"
                    if llama_q and t != "F16":
                        theirs = work / "llama.gguf"
                        run(llama_q, *(["--imatrix", imatrix] if with_im else []), base, theirs, t, args.threads)
                        same = "yes" if same_tensors(out, theirs) else "**no**"
                        theirs.unlink()
                    r = measure(args.flashlm, out, kl, args)
                    if t == "F16":
                        base_acc = r["acc"]
                    size = out.stat().st_size
                    row = {"model": src.stem, "type": t, "imatrix": "yes" if with_im else "no", "size_mib": size / 2**20,
                           "bpw": 8 * size / n_params(base), "of_f32": size / f32_bytes, **r,
                           "of_base_acc": r["acc"] / base_acc, "same_bytes": same}
                    rows.append(row)
                    print(f"| {t} | {row['imatrix']} | {row['size_mib']:.1f} | {row['bpw']:.2f} | {row['of_f32']:.3f} | "
                          f"{r['decode']:.1f} | {r['kl']:.4f} | {r['top1']:.1f} | {r['ppl']:.3f} | "
                          f"{r['acc']:.3f} ± {r['acc_se']:.3f} | {row['of_base_acc']:.3f} | {same} |", flush=True)
                    if out != base:
                        out.unlink()
            keep = [r for r in rows if r["model"] == src.stem and r["of_base_acc"] >= 0.98]
            best = min(keep, key=lambda r: r["size_mib"])
            print(f"\nSmallest file with >= 98% of the base's accuracy: {best['type']}"
                  f"{' (imatrix)' if best['imatrix'] == 'yes' else ''}, {best['size_mib']:.1f} MiB = "
                  f"{best['of_f32']:.3f} of F32 (1/{1 / best['of_f32']:.1f}), accuracy {best['acc']:.3f} "
                  f"({best['of_base_acc']:.3f} of base)", flush=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
