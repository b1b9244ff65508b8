#!/usr/bin/env python3
"""Embedding throughput: `flashlm embed` against sentence-transformers on the CPU, same
model directory (all-MiniLM-L6-v2 by default), same texts, same threads, same batch
sizes, in one run, alternating.

flashlm side: `flashlm embed -m DIR -f TEXTS -b B -t T`; the figure is the one it prints
on stderr: inputs/s over tokenizing and the encoder passes (loading before and printing
after are not timed).

sentence-transformers side: a child process in the Python given by --st-python (a venv
with sentence-transformers and torch; scripts/reference/make_embedding_golden.py names the
versions), torch.set_num_threads(T), SentenceTransformer(DIR, device="cpu"), one warm-up
encode of the texts, then encode(texts, batch_size=B) timed (it tokenizes, pads per
batch after sorting the texts by length, runs the model, pools and normalises).

Both sides embed the same texts (default: the 200 sentences of the golden corpus,
tests/golden/embeddings/sentences.txt; two of them are cut to 256 tokens on both sides).
-r R runs each side R times per batch size, alternating; the table gives the median and
the best. The load average is recorded: only figures from an otherwise idle machine
compare.

  bench/embed_throughput.py --st-python /path/to/venv/bin/python [-t 2] [-r 3] [--batches 1,32]
"""
import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ST_CHILD = r"""
import sys, time, torch
from sentence_transformers import SentenceTransformer
model_dir, texts_path, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
texts = open(texts_path, encoding="utf-8").read().split("\n")
texts = [t for t in texts if t != ""] if texts[-1] == "" else texts
m = SentenceTransformer(model_dir, device="cpu")
m.encode(texts, batch_size=batch)
t0 = time.perf_counter()
m.encode(texts, batch_size=batch)
dt = time.perf_counter() - t0
import sentence_transformers
print(f"{len(texts) / dt:.3f} {torch.__version__} {sentence_transformers.__version__}")
"""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_flashlm(bin_, model, texts, threads, batch):
    r = subprocess.run([bin_, "embed", "-m", model, "-f", texts, "-b", str(batch), "-t", str(threads)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"\(([0-9.]+) inputs/s\)", r.stderr)
    if not m:
        sys.exit("flashlm embed printed no inputs/s:\n" + r.stderr)
    return float(m.group(1))


def run_st(py, model, texts, threads, batch):
    r = subprocess.run([py, "-c", ST_CHILD, model, texts, str(threads), str(batch)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("sentence-transformers child failed:\n" + r.stderr[-3000:])
    rate, torch_v, st_v = r.stdout.strip().split("\n")[-1].split()
    return float(rate), torch_v, st_v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "flashlm"))
    ap.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    ap.add_argument("--texts", default=str(ROOT / "tests" / "golden" / "embeddings" / "sentences.txt"))
    ap.add_argument("--st-python", required=True, help="python with sentence-transformers and torch")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("--batches", default="1,32")
    a = ap.parse_args()

    rows = []
    versions = ("?", "?")
    for b in [int(x) for x in a.batches.split(",")]:
        fl, st = [], []
        for _ in range(a.repeats):
            fl.append(run_flashlm(a.bin, a.model, a.texts, a.threads, b))
            rate, tv, sv = run_st(a.st_python, a.model, a.texts, a.threads, b)
            st.append(rate)
            versions = (tv, sv)
        rows.append((b, fl, st))
        print(f"batch {b}: flashlm {fl}  sentence-transformers {st}", file=sys.stderr)

    n = sum(1 for _ in open(a.texts, encoding="utf-8"))
    print(f"\nEmbedding throughput, {Path(a.model).name}, {n} texts ({Path(a.texts).name}), {a.threads} threads, "
          f"{datetime.date.today()}, {cpu_model()}, load average before: {os.getloadavg()[0]:.2f}")
    print(f"sentence-transformers {versions[1]}, torch {versions[0]}; median (best) of {a.repeats} alternating runs\n")
    print("| batch | flashlm inputs/s | sentence-transformers inputs/s | ratio |")
    print("|---:|---:|---:|---:|")
    for b, fl, st in rows:
        mf, ms = statistics.median(fl), statistics.median(st)
        print(f"| {b} | {mf:.1f} ({max(fl):.1f}) | {ms:.1f} ({max(st):.1f}) | {mf / ms:.2f}x |")


if __name__ == "__main__":
    main()
