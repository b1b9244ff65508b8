#!/usr/bin/env python3
"""Plots the quantization frontier measured by bench/quant_frontier.py: per model, file
size against mean KL divergence to the F16 base (log scale) and against task accuracy,
one point per type, with and without an importance matrix.

Needs matplotlib (not in the test venv), e.g.:
  python3 -m venv /opt/flashlm-plot && /opt/flashlm-plot/bin/pip install matplotlib
  /opt/flashlm-plot/bin/python scripts/plot_quant_frontier.py [CSV] [PNG]
"""
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "quant_frontier.csv"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "quant_frontier.png"
    rows = list(csv.DictReader(src.open()))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(2, len(models), figsize=(6 * len(models), 8), squeeze=False)
    for col, model in enumerate(models):
        mine = [r for r in rows if r["model"] == model]
        base = next(r for r in mine if r["type"] == "F16")
        for im, marker, colour, label in (("no", "o", "tab:blue", "no imatrix"), ("yes", "^", "tab:red", "imatrix")):
            pts = sorted((r for r in mine if r["imatrix"] == im and r["type"] != "F16"), key=lambda r: float(r["size_mib"]))
            xs = [float(r["size_mib"]) for r in pts]
            axes[0][col].plot(xs, [max(float(r["kl"]), 1e-4) for r in pts], marker=marker, color=colour, label=label)
            axes[1][col].plot(xs, [float(r["acc"]) for r in pts], marker=marker, color=colour, label=label)
            for r in pts:
                axes[0][col].annotate(r["type"], (float(r["size_mib"]), max(float(r["kl"]), 1e-4)), fontsize=7,
                                      xytext=(4, 4 if im == "no" else -10), textcoords="offset points")
        axes[1][col].axhline(float(base["acc"]), color="gray", linestyle="--", label="F16 base")
        axes[1][col].axhline(0.98 * float(base["acc"]), color="gray", linestyle=":", label="98% of base")
        axes[0][col].set_yscale("log")
        axes[0][col].set_title(f"{model}: size vs KL to the F16 base")
        axes[0][col].set_ylabel("mean KL divergence (log)")
        axes[1][col].set_title(f"{model}: size vs task accuracy (kjv-last-word)")
        axes[1][col].set_ylabel("accuracy")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xlabel("file size (MiB)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
