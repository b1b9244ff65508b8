#!/usr/bin/env python3
"""Reference perplexity of the real models on data/eval.txt, computed the way
llama.cpp's `llama-perplexity` tool does (tools/perplexity/perplexity.cpp,
function perplexity()), over logits from llama-cpp-python:

  * text = the file's bytes, minus ONE trailing '\\n' (what `-f FILE` does);
  * tokens = tokenize(text, add_special=true, parse_special=false), i.e. BOS
    prepended iff the model's metadata says add_bos;
  * n_chunk = min(N_CHUNKS, len(tokens) // n_ctx); chunk i is
    tokens[i*n_ctx : (i+1)*n_ctx], evaluated from an empty KV cache in one
    batch, with its first token replaced by BOS when add_bos is true;
  * with first = n_ctx/2, positions j = first .. n_ctx-2 of the chunk are
    scored: nll += -log_softmax(logits[j])[chunk[j+1]] (n_ctx-1-first = 255
    tokens per chunk for n_ctx=512);
  * ppl = exp(sum nll / count).

Writes tests/golden/ppl/<model-stem>.json.
Usage: scripts/make_eval_text.sh &&
       /opt/flashlm-ref/bin/python scripts/reference/make_ppl_golden.py
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

N_CTX = 512
# Small enough that flashlm reproduces each in well under a minute on 2 cores.
N_CHUNKS = {
    "SmolLM2-135M-Instruct.Q4_1": 8,
    "gemma-3-270m-q4_k_m": 4,
}
EVAL_TEXT = common.REPO_ROOT / "data" / "eval.txt"


def log_softmax_at(row: np.ndarray, tok: int) -> float:
    r = row.astype(np.float64)
    m = float(r.max())
    return float(r[tok]) - m - math.log(float(np.exp(r - m).sum()))


def make(model: Path, text_bytes: bytes, n_chunks_wanted: int) -> None:
    llm = common.open_llama(model, n_ctx=N_CTX)
    add_bos = bool(llm._model.add_bos_token())
    bos = int(llm.token_bos())
    text = text_bytes[:-1] if text_bytes.endswith(b"\n") else text_bytes
    tokens = llm.tokenize(text, add_bos=True, special=False)
    if len(tokens) < 2 * N_CTX:
        sys.exit(f"{model.stem}: only {len(tokens)} tokens")
    n_chunks = min(n_chunks_wanted, len(tokens) // N_CTX)
    first = N_CTX // 2

    nll_per_chunk = []
    ppl_running = []
    nll_total, count = 0.0, 0
    for i in range(n_chunks):
        chunk = list(tokens[i * N_CTX:(i + 1) * N_CTX])
        if add_bos:
            chunk[0] = bos
        logits = common.eval_logits(llm, chunk)
        nll = 0.0
        for j in range(first, N_CTX - 1):
            nll -= log_softmax_at(logits[j], chunk[j + 1])
        nll_per_chunk.append(nll)
        nll_total += nll
        count += N_CTX - 1 - first
        ppl_running.append(math.exp(nll_total / count))
        print(f"  [{i + 1}] {ppl_running[-1]:.4f}")

    obj = {
        "model": common.rel(model),
        "model_sha256": common.sha256_file(model),
        "text": common.rel(EVAL_TEXT),
        "text_sha256": common.sha256_file(EVAL_TEXT),
        "text_trailing_newline_stripped": text is not text_bytes,
        "reference": common.reference_version(),
        "script": "scripts/reference/make_ppl_golden.py",
        "method": "llama.cpp perplexity: BOS-replaced chunks of n_ctx, score positions "
                  "[n_ctx/2, n_ctx-2] predicting the next token; ppl = exp(sum nll / count)",
        "kv_type": common.KV_TYPE_NAME,
        "flash_attn": False,
        "add_bos": add_bos,
        "bos_id": bos,
        "n_ctx": N_CTX,
        "n_chunks": n_chunks,
        "first": first,
        "tokens_scored_per_chunk": N_CTX - 1 - first,
        "n_text_tokens": len(tokens),
        "ppl": ppl_running[-1],
        "nll_per_chunk": nll_per_chunk,
        "ppl_running": ppl_running,
        # Token ids of the evaluated span (before the BOS replacement), so a
        # tokenizer mismatch can be told apart from a model mismatch.
        "tokens": [int(t) for t in tokens[:n_chunks * N_CTX]],
    }
    common.write_json(common.GOLDEN_DIR / "ppl" / f"{model.stem}.json", obj)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="model stems to regenerate (default: all)")
    args = ap.parse_args()
    if not EVAL_TEXT.exists():
        sys.exit(f"missing {EVAL_TEXT}: run scripts/make_eval_text.sh")
    text_bytes = EVAL_TEXT.read_bytes()
    for model in common.REAL_MODELS:
        if args.only and model.stem not in args.only:
            continue
        if not model.exists():
            sys.exit(f"missing {model} (run scripts/fetch_models.sh)")
        print(f"{model.stem}:")
        make(model, text_bytes, N_CHUNKS[model.stem])


if __name__ == "__main__":
    main()
