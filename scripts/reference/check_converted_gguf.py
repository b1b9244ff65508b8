#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) on a GGUF written by `flashlm convert`, against
transformers' golden for the Hugging Face directory it came from
(tests/golden/logits/hf-<name>.json): the converted file must load in llama.cpp and give
the directory's logits (log-probabilities over the golden's top-64, top-1 agreement).
It also checks that llama.cpp's tokenizer on the file gives the ids of the `tokenizers`
library golden tests/golden/tokenizer/hf_<model>.json when one is named.

Usage: /opt/flashlm-ref/bin/python scripts/reference/check_converted_gguf.py FILE.gguf hf-NAME [hf_smollm2]
Prints the figures; exits 1 below 0.88 top-1 agreement or above a 0.2 mean difference."""
import json
import sys
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parents[2]


def main():
    path, golden = sys.argv[1], sys.argv[2]
    g = json.loads((ROOT / "tests/golden/logits" / f"{golden}.json").read_text())
    llm = Llama(model_path=path, n_ctx=1024, n_batch=1024, logits_all=True, n_threads=2, verbose=False,
                type_k=0, type_v=0, flash_attn=False)
    worst, diffs, agree, n = 0.0, [], 0, 0
    for c in g["cases"]:
        llm.reset()
        llm.eval(c["tokens"])
        logits = np.array(llm.scores[: len(c["tokens"])], dtype=np.float64)
        for pi, p in enumerate(c["positions"]):
            row = logits[p]
            lse = np.log(np.exp(row - row.max()).sum()) + row.max()
            agree += int(np.argmax(row) == c["argmax"][pi])
            n += 1
            for i, l in c["top"][pi]:
                d = abs((row[i] - lse) - (l - c["logsumexp"][pi]))
                diffs.append(d)
                worst = max(worst, d)
    print(f"{path}: llama.cpp vs transformers ({golden}): positions {n}, top-1 {agree / n:.3f}, "
          f"max {worst:.4f}, mean {np.mean(diffs):.4f}")
    bad = agree / n < 0.88 or np.mean(diffs) > 0.2
    if len(sys.argv) > 3:
        tg = json.loads((ROOT / "tests/golden/tokenizer" / f"{sys.argv[3]}.json").read_text())
        cases = tg["cases"]
        same = 0
        for case in cases:
            text = bytes(case["text"]) if isinstance(case["text"], list) else case["text"].encode()
            want = case["ids_add_parse"]
            got = llm.tokenize(text, add_bos=True, special=True)
            same += int(got == want)
        print(f"tokenizer: llama.cpp on the file equals the tokenizers golden on {same} of {len(cases)} strings "
              "(the GGUF keys carry llama.cpp's rules, so a few may differ; reported, not failed)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
