#!/usr/bin/env python3
"""`flashlm embed` end to end on all-MiniLM-L6-v2: one JSON array of 384 floats per
input, unit length (the model's Normalize module), the same vectors from -p and from -f
at any batch size, and related sentences closer than unrelated ones.
Usage: check_embed.py FLASHLM_BIN MODEL_DIR (exit 77: model missing)."""
import json
import math
import os
import subprocess
import sys
import tempfile

bin_, model = sys.argv[1], sys.argv[2]
if not os.path.exists(os.path.join(model, "model.safetensors")):
    print(f"SKIPPED: embedding model missing (scripts/fetch_models.sh installs it): {model}")
    sys.exit(77)
texts = ["A cat sat on the mat.", "A kitten rested on the rug.", "Quarterly revenue rose by 4%."]


def embed(*args):
    r = subprocess.run([bin_, "embed", "-m", model, "-t", "2", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "inputs/s" in r.stderr, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


by_prompt = embed(*[x for t in texts for x in ("-p", t)])
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write("\n".join(texts) + "\n")
try:
    by_file = embed("-f", f.name, "-b", "1")
finally:
    os.unlink(f.name)
assert len(by_prompt) == 3 and all(len(v) == 384 for v in by_prompt), [len(v) for v in by_prompt]
assert by_file == by_prompt, "batch 1 from a file differs from one batch of prompts"
for v in by_prompt:
    assert abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-5
cos = lambda a, b: sum(x * y for x, y in zip(a, b))
assert cos(by_prompt[0], by_prompt[1]) > cos(by_prompt[0], by_prompt[2]) + 0.2, (
    cos(by_prompt[0], by_prompt[1]), cos(by_prompt[0], by_prompt[2]))
print("ok: 3 inputs, 384 dims, unit length, batch-invariant; cos(cat, kitten) = %.3f > cos(cat, revenue) = %.3f"
      % (cos(by_prompt[0], by_prompt[1]), cos(by_prompt[0], by_prompt[2])))
