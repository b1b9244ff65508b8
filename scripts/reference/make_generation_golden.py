#!/usr/bin/env python3
"""Greedy generations from llama.cpp (llama-cpp-python) for the real models, with the
margin between the best and second-best logit at every step.

A greedy continuation is only reproducible up to the first near-tie: past it, rounding
differences between two correct engines may pick the other token. The test
(src/engine/generate_golden_test.cpp) therefore checks flashlm's greedy tokens against
these up to the first step whose margin is below its threshold.

Writes tests/golden/generate/<model-stem>.json:
  {"model", "reference", "script", "cases": [{"name", "prompt_tokens", "tokens", "margins"}]}
Run: /opt/flashlm-ref/bin/python scripts/reference/make_generation_golden.py
"""
import json

import llama_cpp
import numpy as np

from common import GOLDEN_DIR, REAL_MODELS, REPO_ROOT, N_THREADS, reference_version

N_GEN = 24
PROMPTS = {
    "story": "Once upon a time, in a small village by the sea,",
    "facts": "The three primary colors are",
    "code": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
}


def main() -> None:
    out_dir = GOLDEN_DIR / "generate"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in REAL_MODELS:
        m = llama_cpp.Llama(str(path), n_ctx=512, n_batch=512, n_threads=N_THREADS, logits_all=True,
                            verbose=False, type_k=0, type_v=0, flash_attn=False)
        cases = []
        for name, text in PROMPTS.items():
            prompt = m.tokenize(text.encode(), add_bos=True, special=True)
            m.reset()
            m.eval(prompt)
            tokens, margins = [], []
            for _ in range(N_GEN):
                logits = np.array(m.scores[m.n_tokens - 1], dtype=np.float64)
                order = np.argsort(-logits, kind="stable")
                tok = int(order[0])
                tokens.append(tok)
                margins.append(float(logits[order[0]] - logits[order[1]]))
                if tok == m.token_eos():
                    break
                m.eval([tok])
            cases.append({"name": name, "text": text, "prompt_tokens": prompt, "tokens": tokens, "margins": margins})
        doc = {"model": str(path.relative_to(REPO_ROOT)), "reference": reference_version(),
               "script": "scripts/reference/make_generation_golden.py", "kv_type": "f32", "cases": cases}
        (out_dir / f"{path.stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(path.stem, [(c["name"], len(c["tokens"]), round(min(c["margins"]), 3)) for c in cases])


if __name__ == "__main__":
    main()
