#!/usr/bin/env python3
"""Builds the two evaluation tasks of `flashlm eval` from public-domain text: the King
James Version from Debian's `bible-kjv` package (the same source as data/eval.txt, but
books other than Genesis, so no task text is in the perplexity text).

  data/tasks/kjv-next-verse.jsonl  Exodus: two verses of context; which of four verses
                                   comes next (the true one and three from chapters at
                                   least five away). 400 items.
  data/tasks/kjv-last-word.jsonl   Matthew: the previous verse and a verse without its
                                   last word; which of four words ends it (the true one
                                   and three of the 40 most frequent verse-final words).
                                   400 items.

Each line: {"context": str, "choices": [str, ...], "gold": int}. A choice is scored as a
continuation after one space (lm-evaluation-harness's target delimiter). Items are drawn
with a fixed seed, and the files' sha256 are checked, so every machine evaluates the same
items (a different bible-kjv version is an error, like scripts/make_eval_text.sh).

Usage: scripts/make_tasks.py [OUT_DIR]   (default data/tasks; needs `bible` from bible-kjv)
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "kjv-next-verse.jsonl": "304693f46d991b7663ac1f8b58288b2e2fc4e7abb37f279b53054af0f892f3f7",
    "kjv-last-word.jsonl": "7b0c5659e160190f03bf553382beb543d16bdc2ac6932ed98d3c40f8de51cfcc",
}
N_ITEMS = 400


def verses(spec: str) -> list[tuple[int, str]]:
    """(chapter, text) per verse, in order."""
    out = subprocess.run(["bible", "-f", spec], capture_output=True, text=True, check=True,
                         env={**os.environ, "LC_ALL": "C"}).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^[1-3]?[A-Za-z]+(\d+):\d+ (.*)$", line)
        if m:
            rows.append((int(m.group(1)), m.group(2).strip()))
    return rows


def next_verse(rng: random.Random) -> list[dict]:
    vs = verses("exo1:1-exo40:38")
    items = []
    starts = sorted(rng.sample(range(2, len(vs)), N_ITEMS))
    for i in starts:
        chapter, true_next = vs[i]
        far = [t for c, t in vs if abs(c - chapter) >= 5 and t != true_next]
        choices = [true_next] + rng.sample(far, 3)
        rng.shuffle(choices)
        items.append({"context": vs[i - 2][1] + " " + vs[i - 1][1], "choices": choices,
                      "gold": choices.index(true_next)})
    return items


def last_word(rng: random.Random) -> list[dict]:
    vs = [t for _, t in verses("mat1:1-mat28:20")]
    # Verses that end in a plain word (then punctuation): context, word.
    split = {}
    for i, t in enumerate(vs):
        m = re.match(r"^(.*\S)\s+([A-Za-z]+)[.,;:?!]*$", t)
        if m and i > 0 and len(m.group(2)) >= 3:
            split[i] = (m.group(1), m.group(2))
    # Distractors from the 40 most frequent verse-final words: plausible endings, so the
    # task is not solved by spotting the one fitting word.
    counts: dict[str, int] = {}
    for _, w in split.values():
        counts[w] = counts.get(w, 0) + 1
    common = sorted(counts, key=lambda w: (-counts[w], w))[:40]
    items = []
    for i in sorted(rng.sample(sorted(split), N_ITEMS)):
        ctx, word = split[i]
        choices = [word] + rng.sample([w for w in common if w.lower() != word.lower()], 3)
        rng.shuffle(choices)
        items.append({"context": vs[i - 1] + " " + ctx, "choices": choices, "gold": choices.index(word)})
    return items


def main() -> None:
    if shutil.which("bible") is None:
        sys.exit("error: 'bible' not found; install it with: apt-get install -y bible-kjv")
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "tasks"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, build, seed in (("kjv-next-verse.jsonl", next_verse, 1), ("kjv-last-word.jsonl", last_word, 2)):
        text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in build(random.Random(seed)))
        digest = hashlib.sha256(text.encode()).hexdigest()
        if EXPECTED[name] is not None and digest != EXPECTED[name]:
            sys.exit(f"error: {name}: sha256 {digest}, expected {EXPECTED[name]} (different bible-kjv version?)")
        (out_dir / name).write_text(text)
        print(f"wrote {out_dir / name} ({len(text)} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
