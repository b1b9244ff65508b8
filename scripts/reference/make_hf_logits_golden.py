#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for a Hugging Face model directory
(models/hf/<name>/, made by scripts/setup.sh with scripts/hf_weights_from_gguf.py), in
tests/golden/logits/hf-<name>.json, the format of make_logits_golden.py.

The token ids and positions are those of the GGUF's llama.cpp golden
(tests/golden/logits/<gguf-stem>.json), its cases of at most 256 tokens, so no tokenizer
is involved; transformers
evaluates each case in float32 (eager attention). As a check that the directory is the
GGUF's model, the script prints how far transformers' log-probabilities are from
llama.cpp's on the GGUF (its weights are the same values before BF16 rounding).

Usage: /tmp/stenv/bin/python scripts/reference/make_hf_logits_golden.py models/hf/NAME GGUF_GOLDEN_STEM
(needs torch and transformers; the versions are recorded in the golden)"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[2]
TOP_K = 64


def main():
    model_dir, stem = sys.argv[1], sys.argv[2]
    ref = json.loads((ROOT / "tests/golden/logits" / f"{stem}.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(ROOT / model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cases, worst, diffs = [], 0.0, []
    for c in ref["cases"]:
        if len(c["tokens"]) > 256:
            continue  # the short cases only: the golden test also runs under the sanitizers
        ids = torch.tensor([c["tokens"]])
        with torch.no_grad():
            logits = model(ids).logits[0].double().numpy()
        out = {k: c[k] for k in ("name", "tokens", "positions") if k in c}
        out["argmax"], out["logsumexp"], out["top"] = [], [], []
        for pi, p in enumerate(c["positions"]):
            row = logits[p]
            lse = float(np.log(np.exp(row - row.max()).sum()) + row.max())
            top = np.argsort(-row)[:TOP_K]
            out["argmax"].append(int(top[0]))
            out["logsumexp"].append(lse)
            out["top"].append([[int(i), float(row[i])] for i in top])
            for i, l in c["top"][pi]:  # llama.cpp on the GGUF, same position
                d = abs((row[i] - lse) - (l - c["logsumexp"][pi]))
                diffs.append(d)
                worst = max(worst, d)
        cases.append(out)
    sha = hashlib.sha256((ROOT / model_dir / "model.safetensors").read_bytes()).hexdigest()
    golden = {
        "model": model_dir, "n_vocab": int(model.config.vocab_size), "reference":
        f"transformers {transformers.__version__}, torch {torch.__version__}, float32, eager attention",
        "model_safetensors_sha256": sha, "made_by": "scripts/reference/make_hf_logits_golden.py",
        "against_llama_cpp_on_gguf": {"golden": stem, "max_abs_logprob_diff": worst,
                                      "mean_abs_logprob_diff": float(np.mean(diffs))},
        "cases": cases,
    }
    name = Path(model_dir).name
    dst = ROOT / "tests/golden/logits" / f"hf-{name}.json"
    dst.write_text(json.dumps(golden) + "\n")
    print(f"{dst}: {len(cases)} cases; transformers vs llama.cpp on the GGUF: max {worst:.4f} mean {np.mean(diffs):.4f}")


if __name__ == "__main__":
    main()
