"""What the Flash factory's benchmarks share: running flashlm, naming the machine, and
measuring a model's quality against its base (KL / top-1 / perplexity on held-out text
with `perplexity --kl-base`, task accuracy with `flashlm eval`)."""
from __future__ import annotations

import csv
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ROOT / "data" / "eval.txt"
TASK = "kjv-last-word"


def run(*args) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{r.stderr[-3000:]}")
    return r


def cpu_name() -> str:
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                platform.machine())


def quality(flashlm: str, model: Path, kl: Path, threads: int, limit: int) -> dict:
    """KL / top-1 / perplexity against the base whose `--kl-save` file is kl, and task accuracy."""
    out = run(flashlm, "perplexity", "-m", model, "-f", HELD_OUT, "--kl-base", kl, "-t", threads).stdout
    ev = run(flashlm, "eval", "-m", model, "--task", TASK, "--limit", limit, "-t", threads).stdout
    acc = re.search(r"^acc = ([0-9.]+) \+/- ([0-9.]+)", ev, re.M)
    return {"kl": float(re.search(r"mean ([0-9.e+-]+), p90", out).group(1)),
            "top1": float(re.search(r"top-1 agreement with base: ([0-9.]+)%", out).group(1)),
            "ppl": float(re.search(r"PPL = ([0-9.]+)", out).group(1)),
            "acc": float(acc.group(1)), "acc_se": float(acc.group(2)),
            "mib": model.stat().st_size / 2**20}


def quality_row(q: dict) -> str:
    """The markdown cells: size MiB | mean KL | top-1 % | PPL | accuracy."""
    return (f"{q['mib']:.1f} | {q['kl']:.4f} | {q['top1']:.2f} | {q['ppl']:.4f} | "
            f"{q['acc']:.3f} ± {q['acc_se']:.3f}")


def progress_rows(stderr: str) -> list[dict]:
    """A distillation's progress lines: step, training loss, held-out KL (when measured)."""
    rows = []
    first = re.search(r"held-out KL ([0-9.]+) -> ", stderr)  # before the first step
    if first:
        rows.append({"step": 0, "loss": "", "held_out_kl": float(first.group(1))})
    for line in re.split(r"[\r\n]+", stderr):
        m = re.match(r"step (\d+)/\d+ \| loss ([0-9.]+)(?: \| held-out KL ([0-9.]+))?", line.strip())
        if m:
            rows.append({"step": int(m.group(1)), "loss": float(m.group(2)),
                         "held_out_kl": float(m.group(3)) if m.group(3) else ""})
    return rows


def write_curve(stderr: str, path: Path) -> None:
    """The progress lines as CSV (step, loss, held_out_kl), for scripts/plot_training_curves.py."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "loss", "held_out_kl"])
        w.writeheader()
        w.writerows(progress_rows(stderr))
