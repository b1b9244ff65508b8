#!/usr/bin/env python3
"""Runs `flashlm perplexity` with the golden's settings and checks the result is within
TOLERANCE (relative) of the reference perplexity (llama.cpp via llama-cpp-python, made by
scripts/reference/make_ppl_golden.py). Usage: check_ppl.py FLASHLM GOLDEN_JSON"""
import json, os, re, subprocess, sys

TOLERANCE = 0.01
flashlm, golden_path = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
g = json.load(open(golden_path))
model = os.path.join(root, g["model"])
text = os.path.join(root, g["text"])
for path in (model, text):
    if not os.path.exists(path):
        print(f"SKIPPED LOUDLY: {path} is missing — run scripts/setup.sh")
        sys.exit(77)
cmd = [flashlm, "perplexity", "-m", model, "-f", text, "-c", str(g["n_ctx"]), "--chunks", str(g["n_chunks"]), "-t", "2"]
out = subprocess.run(cmd, capture_output=True, text=True)
sys.stderr.write(out.stderr)
if out.returncode != 0:
    print(f"FAIL: exit {out.returncode}")
    sys.exit(1)
m = re.search(r"^PPL = ([0-9.]+)$", out.stdout.strip().splitlines()[-1])
if not m:
    print("FAIL: last line is not 'PPL = <value>':", out.stdout)
    sys.exit(1)
ppl, ref = float(m.group(1)), float(g["ppl"])
rel = abs(ppl - ref) / ref
print(f"flashlm PPL = {ppl:.4f}, reference ({g['reference']}) PPL = {ref:.4f}, relative difference {rel * 100:.3f}%")
sys.exit(0 if rel <= TOLERANCE else 1)
