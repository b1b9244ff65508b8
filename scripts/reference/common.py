"""Shared helpers for the reference golden scripts.

Everything here runs on llama-cpp-python (the reference implementation), never
on flashlm, so the goldens stay independent of the code they check.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
SYNTHETIC_DIR = GOLDEN_DIR / "synthetic"

REAL_MODELS = [
    REPO_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf",
    REPO_ROOT / "models" / "gemma-3-270m-q4_k_m.gguf",
]

# ggml_type values (ggml.h); F32 K/V keeps f16 rounding out of the reference.
GGML_TYPE_F32 = 0
KV_TYPE_NAME = "f32"
N_THREADS = 2
SEED = 1234


def reference_version() -> str:
    import llama_cpp

    return f"llama-cpp-python {llama_cpp.__version__}"


def rel(path: Path) -> str:
    return str(Path(path).resolve().relative_to(REPO_ROOT))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_llama(model_path: Path, n_ctx: int, n_batch: int | None = None, lora_path: Path | None = None):
    """Loads a model the way every golden is made: CPU only, F32 K/V cache,
    flash attention off, all logits kept, one batch per evaluation; with
    lora_path, that LoRA adapter applied at scale 1."""
    import llama_cpp

    n_batch = n_batch or n_ctx
    kwargs: dict[str, Any] = dict(
        model_path=str(model_path),
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=n_batch,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        n_gpu_layers=0,
        seed=SEED,
        logits_all=True,
        type_k=GGML_TYPE_F32,
        type_v=GGML_TYPE_F32,
        flash_attn=False,
        verbose=False,
    )
    if lora_path is not None:
        kwargs["lora_path"] = str(lora_path)
    return llama_cpp.Llama(**kwargs)


def eval_logits(llm, tokens: Sequence[int]) -> np.ndarray:
    """Evaluates `tokens` from an empty KV cache in one llama_decode call and
    returns the [n_tokens, n_vocab] float32 logits."""
    if len(tokens) > llm.n_batch:
        raise ValueError(f"{len(tokens)} tokens exceed n_batch {llm.n_batch}")
    llm.reset()
    llm._ctx.kv_cache_clear()  # eval() only drops cells past n_tokens; be explicit
    llm.eval(list(tokens))
    scores = np.array(llm.scores[: len(tokens)], dtype=np.float32, copy=True)
    if not np.all(np.isfinite(scores)):
        raise RuntimeError("reference produced non-finite logits")
    return scores


def logsumexp(row: np.ndarray) -> float:
    r = row.astype(np.float64)
    m = float(r.max())
    return m + math.log(float(np.exp(r - m).sum()))


def f32(x: float) -> float:
    """Shortest decimal that round-trips the float32 value (compact JSON)."""
    return float(repr(np.float32(x)).replace("np.float32(", "").rstrip(")"))


def top_k(row: np.ndarray, k: int) -> list[list[Any]]:
    # Stable sort on (-logit, id) so ties are listed in id order.
    order = np.lexsort((np.arange(row.size), -row.astype(np.float64)))[:k]
    return [[int(i), f32(row[i])] for i in order]


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=1, separators=(",", ": "))
    # Put lists of plain numbers on one line (tokens, [id, logit] pairs);
    # the round-trip check guards against touching a string's contents.
    text = re.sub(r"\[\s*(-?[0-9][-0-9.eE+,\s]*?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    if json.loads(text) != obj:
        raise RuntimeError("compact JSON formatting changed the data")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    print(f"wrote {rel(path)} ({path.stat().st_size} bytes)")
