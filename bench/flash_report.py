#!/usr/bin/env python3
"""The Flash report: a base model, its Flash form (`flashlm flash`) and the rival a user
would pick instead, side by side in one run on one machine and thread count.

Rows:
  base          the F16 base in flashlm
  Flash         the pipeline's output in flashlm
  rival         llama.cpp's own tools: llama-imatrix on the calibration text, then
                llama-quantize Q4_K_M with that imatrix, served by llama-server
  rival file    the same Q4_K_M file in flashlm (engine and model effects apart)

For each: time to first token and inter-token latency at one client (p50/p99) and
aggregate tokens/s at 8 concurrent clients, both through the OpenAI API with the real
`openai` client (bench/serve_load.py's load generator, greedy, end-of-generation ignored
so every request generates --max-tokens); the server's peak RSS (VmHWM) and the file size;
perplexity, mean KL and top-1 agreement against the base on held-out text and task
accuracy (measured by flashlm on the file, the same for both engines' rows of one file;
llama-perplexity's PPL of the rival file is shown as a cross-check); tokens/s per core;
and $ per million generated tokens = price per core-hour x threads / (tokens/s x 3600) x 1e6.

With --work (the pipeline's work directory), a per-step table: decode tokens/s (`flashlm
bench -p 0 -n 64`) and the same quality figures after each step, so each step's cost
shows. The Pareto plot (accuracy against tokens/s at 8 clients, marker area = peak RSS)
needs matplotlib in the python running this script.

Usage (after scripts/setup.sh, a llama.cpp build named by --llama-cpp or LLAMA_CPP_DIR
holding llama-imatrix, llama-quantize, llama-server and llama-perplexity):
  build/flashlm quantize -m models/SmolLM2-135M-Instruct.Q4_1.gguf -o /tmp/base-f16.gguf --type F16
  build/flashlm flash -m /tmp/base-f16.gguf -o /tmp/flash.gguf -f data/factory-calibration.txt \\
      --eval-file data/eval.txt --recipe balanced
  .venv/bin/python bench/flash_report.py --base /tmp/base-f16.gguf --flash /tmp/flash.gguf \\
      --work /tmp/flash.gguf.work -t 2 [--price-core-hour 0.05] [--write docs/FLASH.md]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from factory_common import HELD_OUT, ROOT, TASK, quality, run  # noqa: E402
from serve_load import Flashlm, LlamaCpp, cpu_name, eos_token_id, run_level, summarize  # noqa: E402

CALIB = ROOT / "data" / "factory-calibration.txt"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def serve(engine_cls, model: Path, args) -> dict:
    """C=1 then C=8 through one server; its peak RSS read before it stops."""
    eng = engine_cls(model, args.threads, 8, args.ctx, args)
    eng.start()
    try:
        one = summarize(eng.name, asyncio.run(run_level(eng, 1, args.requests_one, args.max_tokens)))
        eight = summarize(eng.name, asyncio.run(run_level(eng, 8, 16, args.max_tokens)))
        rss = peak_rss_mib(eng.proc.pid)
    finally:
        eng.stop()
    return {"one": one, "eight": eight, "rss_mib": rss}


def rival_file(args, work: Path) -> tuple[Path, str]:
    """llama.cpp's Q4_K_M of the base with its own imatrix, and llama-perplexity's PPL of it."""
    d = Path(args.llama_cpp)
    imat, out = work / "rival.imatrix.gguf", work / "rival-Q4_K_M.gguf"
    if not out.exists():
        run(d / "llama-imatrix", "-m", args.base, "-f", args.calib, "-o", imat, "--chunks", args.imatrix_chunks,
            "-t", args.threads)
        run(d / "llama-quantize", "--imatrix", imat, args.base, out, "Q4_K_M", args.threads)
    r = run(d / "llama-perplexity", "-m", out, "-f", HELD_OUT, "-c", 512, "--chunks", args.chunks,
            "-t", args.threads)
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", r.stdout + r.stderr)
    return out, m.group(1) if m else "?"


def decode_tps(flashlm: str, model: Path, threads: int) -> float:
    out = run(flashlm, "bench", "-m", model, "-p", 0, "-n", 64, "-r", 3, "-t", threads).stdout
    return float(re.search(r"tg64 \| +([0-9.]+)", out).group(1))


def dollars_per_mtok(tok_s: float, threads: int, price: float) -> float:
    return price * threads / (tok_s * 3600.0) * 1e6 if tok_s > 0 else float("nan")


def plot(rows: list[dict], path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "**No Pareto plot: matplotlib is not installed in this python.**"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.scatter(r["serve"]["eight"]["tok_s"], 100 * r["q"]["acc"], s=r["serve"]["rss_mib"], alpha=0.5)
        ax.annotate(r["name"], (r["serve"]["eight"]["tok_s"], 100 * r["q"]["acc"]), fontsize=8)
    ax.set_xlabel("tokens/s, 8 clients (OpenAI API)")
    ax.set_ylabel(f"{TASK} accuracy %")
    ax.set_title("Flash report: accuracy against throughput (marker area = peak RSS)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return f"![Pareto]({path.name})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, type=Path, help="the F16 base model")
    ap.add_argument("--flash", required=True, type=Path, help="flashlm flash's output")
    ap.add_argument("--work", type=Path, help="the pipeline's work directory (per-step table)")
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP_DIR", ""),
                    help="llama.cpp build's bin directory (default $LLAMA_CPP_DIR)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--calib", type=Path, default=CALIB)
    ap.add_argument("--chunks", type=int, default=16, help="held-out chunks of 512 tokens")
    ap.add_argument("--limit", type=int, default=200, help=f"{TASK} items")
    ap.add_argument("--imatrix-chunks", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--requests-one", type=int, default=8, help="requests at one client")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--price-core-hour", type=float, default=0.05,
                    help="$ per core-hour for the cost column (default 0.05, about an on-demand cloud vCPU)")
    ap.add_argument("--flashlm", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/flashlm-flash-report"))
    ap.add_argument("--write", help="append the report to this markdown file (its plot beside it)")
    args = ap.parse_args()
    d = Path(args.llama_cpp) if args.llama_cpp else None
    if d is None or not all((d / b).exists() for b in ("llama-imatrix", "llama-quantize", "llama-server",
                                                         "llama-perplexity")):
        sys.exit("name a llama.cpp build's bin directory (llama-imatrix, llama-quantize, llama-server, "
                 "llama-perplexity) with --llama-cpp DIR or LLAMA_CPP_DIR")
    args.llama_server = str(d / "llama-server")
    args.llama_python = ""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    f, T = args.flashlm, args.threads
    kl = args.out_dir / "base.kl"
    run(f, "perplexity", "-m", args.base, "-f", HELD_OUT, "-c", 512, "--chunks", args.chunks,
        "--kl-save", kl, "-t", T)
    rival, rival_llama_ppl = rival_file(args, args.out_dir)

    def q(model: Path) -> dict:
        return quality(f, model, kl, T, args.limit)

    rows = []
    for name, engine, model in [("base (F16, flashlm)", Flashlm, args.base), ("Flash (flashlm)", Flashlm, args.flash),
                                ("rival Q4_K_M+imatrix (llama-server)", LlamaCpp, rival),
                                ("rival Q4_K_M+imatrix (flashlm)", Flashlm, rival)]:
        args.eos_id = eos_token_id(model)
        rows.append({"name": name, "model": str(model), "serve": serve(engine, model, args), "q": q(model)})
    steps = []
    if args.work:
        models = sorted(p for p in args.work.glob("[0-9][0-9]-*.gguf")
                        if not p.name.endswith((".probe.gguf",)) and "imatrix" not in p.name)
        for m in [args.base] + models:
            steps.append({"step": "base" if m == args.base else m.stem, "tg64": decode_tps(f, m, T), "q": q(m)})
    minutes = (time.time() - t_start) / 60

    base, flash, rv = rows[0], rows[1], rows[2]
    price = args.price_core_hour
    out = [f"## Flash report: {args.base.name} ({datetime.date.today().isoformat()})", "",
           f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {T} threads for every engine. "
           f"Report run time {minutes:.0f} minutes. Command: `python bench/flash_report.py "
           f"{' '.join(sys.argv[1:])}`; rival built by llama.cpp's own llama-imatrix ({args.imatrix_chunks} chunks of "
           f"{args.calib.name}) and llama-quantize Q4_K_M. Held-out text {HELD_OUT.name} ({args.chunks} x 512), "
           f"task {TASK} (first {args.limit} items). Cost: ${price}/core-hour x {T} cores / (tokens/s at 8 clients x "
           "3600) x 1e6.", "",
           "| row | file MiB | peak RSS | TTFT p50/p99 (1 client) | ITL p50/p99 | tok/s 1 client | tok/s 8 clients | "
           "tok/s/core | $/Mtok | PPL | KL | top-1 % | acc |",
           "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s1, s8, qq = r["serve"]["one"], r["serve"]["eight"], r["q"]
        out.append(f"| {r['name']} | {qq['mib']:.1f} | {r['serve']['rss_mib']:.0f} MiB | "
                   f"{s1['ttft_p50_ms']:.0f}/{s1['ttft_p99_ms']:.0f} ms | {s1['itl_p50_ms']:.1f}/{s1['itl_p99_ms']:.1f} ms | "
                   f"{s1['tok_s']:.1f} | {s8['tok_s']:.1f} | {s8['tok_s'] / T:.1f} | "
                   f"{dollars_per_mtok(s8['tok_s'], T, price):.3f} | {qq['ppl']:.4f} | {qq['kl']:.4f} | "
                   f"{qq['top1']:.2f} | {qq['acc']:.3f} ± {qq['acc_se']:.3f} |")
    out += ["", f"llama-perplexity on the rival file: PPL {rival_llama_ppl} (flashlm: {rv['q']['ppl']:.4f}).", ""]
    speed = flash["serve"]["one"]["tok_s"] / base["serve"]["one"]["tok_s"]
    mem = flash["serve"]["rss_mib"] / base["serve"]["rss_mib"]
    acc = 100 * (flash["q"]["acc"] - base["q"]["acc"])
    out += ["Targets (issue 15):",
            f"- Flash against its base: decode {speed:.2f}x (target >= 2.5x), peak RSS {mem:.2f} of the base's "
            f"(target <= 0.33), accuracy {acc:+.1f} points (target >= -3).",
            f"- Flash against the rival (llama-server): tokens/s at 8 clients "
            f"{flash['serve']['eight']['tok_s'] / rv['serve']['eight']['tok_s']:.2f}x, peak RSS "
            f"{flash['serve']['rss_mib'] / rv['serve']['rss_mib']:.2f}x, accuracy "
            f"{100 * (flash['q']['acc'] - rv['q']['acc']):+.1f} points, PPL {flash['q']['ppl']:.4f} against "
            f"{rv['q']['ppl']:.4f}.", ""]
    if steps:
        out += ["Per step (each step's output; decode `flashlm bench -p 0 -n 64 -r 3`):", "",
                "| after | tg64 t/s | PPL | KL | acc |", "|---|---:|---:|---:|---:|"]
        out += [f"| {s['step']} | {s['tg64']:.1f} | {s['q']['ppl']:.4f} | {s['q']['kl']:.4f} | "
                f"{s['q']['acc']:.3f} ± {s['q']['acc_se']:.3f} |" for s in steps]
        recipe = args.work / "recipe.toml"
        if recipe.exists():
            out += ["", "Recipe:", "", "```toml", recipe.read_text().rstrip(), "```"]
    png = (Path(args.write).parent if args.write else args.out_dir) / f"flash_{args.base.stem}.png"
    out += ["", plot(rows, png), ""]
    md = "\n".join(out)
    print(md)
    (args.out_dir / "report.json").write_text(json.dumps({"rows": rows, "steps": steps}, indent=1))
    if args.write:
        with open(args.write, "a") as fh:
            fh.write("\n" + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
