#!/usr/bin/env python3
"""Plots the moefy trade-off: decode speed ratio (MoE / dense) against the perplexity
ratio (MoE / dense), one point per setting, both models, from the measurements in
docs/moefy_measurements.csv (see docs/MOEFY.md for how they were taken).

Needs matplotlib (not in the reference venv), e.g.:
  python3 -m venv /opt/flashlm-plot && /opt/flashlm-plot/bin/pip install matplotlib
  /opt/flashlm-plot/bin/python scripts/plot_moefy.py [CSV] [PNG]
"""
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEED = 1.3  # the goal: >= 1.3x dense decode speed ...
TARGET_PPL = 1.03   # ... with <= 3% higher perplexity


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "moefy_measurements.csv"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "moefy_frontier.png"
    rows = list(csv.DictReader(src.open()))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    # model -> marker, colour, label offset (SmolLM2 labels below, Gemma 3 above: they overlap)
    markers = {"SmolLM2-135M Q4_1": ("o", "tab:blue", (5, -11)), "Gemma 3 270M Q4_K_M": ("s", "tab:orange", (5, 5))}
    for model, (marker, color, offset) in markers.items():
        pts = [r for r in rows if r["model"] == model and r["ppl_ratio"] and r["speed_ratio"]]
        xs = [float(r["ppl_ratio"]) for r in pts]
        ys = [float(r["speed_ratio"]) for r in pts]
        ax.scatter(xs, ys, marker=marker, color=color, label=model, zorder=3)
        for r, x, y in zip(pts, xs, ys):
            ax.annotate(r["setting"], (x, y), textcoords="offset points", xytext=offset, fontsize=8, color=color)
    ax.set_xscale("log")
    ax.axvline(TARGET_PPL, color="grey", linestyle="--", linewidth=1)
    ax.axhline(TARGET_SPEED, color="grey", linestyle="--", linewidth=1)
    ax.axhline(1.0, color="lightgrey", linewidth=1)
    ax.fill_between([0.8, TARGET_PPL], TARGET_SPEED, 3.0, color="green", alpha=0.08, label="goal: >=1.3x, <=3% ppl")
    ys_all = [float(r["speed_ratio"]) for r in rows if r["speed_ratio"]]
    ax.set_ylim(min(0.7, min(ys_all) - 0.05), max(1.5, max(ys_all) + 0.1))
    ax.set_xlim(0.8, max(2.0, max(float(r["ppl_ratio"]) for r in rows if r["ppl_ratio"]) * 2))
    ax.set_xlabel("perplexity ratio MoE / dense on data/eval.txt (log scale)")
    ax.set_ylabel("decode speed ratio MoE / dense (tg64, 1 thread)")
    ax.set_title("flashlm moefy without fine-tuning: speed vs perplexity")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=120)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
