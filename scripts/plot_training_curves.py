#!/usr/bin/env python3
"""Plots a training run's curve as bench/distill_qat.py records it (CSV: step, loss,
held_out_kl): the training loss per step and the held-out figure where it was measured.

Needs matplotlib (not in the test venv), e.g.:
  python3 -m venv /opt/flashlm-plot && /opt/flashlm-plot/bin/pip install matplotlib
  /opt/flashlm-plot/bin/python scripts/plot_training_curves.py CSV PNG [TITLE]
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else src
    rows = list(csv.DictReader(open(src)))
    trained = [r for r in rows if r["loss"]]  # step 0 has only the held-out figure
    steps = [int(r["step"]) for r in trained]
    loss = [float(r["loss"]) for r in trained]
    held = [(int(r["step"]), float(r["held_out_kl"])) for r in rows if r["held_out_kl"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, color="tab:blue", alpha=0.6, label="training loss (per step)")
    if held:
        ax.plot([s for s, _ in held], [v for _, v in held], "o-", color="tab:red", label="held-out KL (T = 1)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("nats per token")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
