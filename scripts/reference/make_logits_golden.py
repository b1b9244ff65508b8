#!/usr/bin/env python3
"""Records reference logits from llama.cpp (via llama-cpp-python) into
tests/golden/logits/<model-stem>.json.

For every model (the two real ones under models/ and the synthetic ones under
tests/golden/synthetic/) a few prompts are evaluated from an empty cache in
ONE batch with all logits kept, and for selected positions we store the
argmax id, logsumexp of the whole row and the top-64 (id, logit) pairs.
F32 K/V cache, flash attention off, 2 threads.

The same for a base model with a LoRA adapter applied by llama.cpp (the adapters
of make_lora_adapters.py, run that first): tests/golden/logits/<adapter-stem>.json,
with "lora" naming the adapter.

Usage: /opt/flashlm-ref/bin/python scripts/reference/make_logits_golden.py
       [--only STEM ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TOP_K = 64

SHORT_TEXT = "The quick brown fox jumps over the lazy dog near the riverbank."
CHAT_USER = "What is the capital of France? Answer in one sentence."
CODE_TEXT = (
    "def fibonacci(n):\n"
    "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
    "\n"
    "print([fibonacci(i) for i in range(10)])\n"
)
LONG_INTRO = (
    "Travel notes, collected over one long summer. The roads were dusty, the trains "
    "were late, and every town had a story that its people were eager to tell.\n\n"
)
CITIES = ["Avonford", "Brackenridge", "Coldwater", "Dunmore", "Elmstead", "Fairhaven",
          "Glenrock", "Hollowmere", "Ivybridge", "Juniper Falls", "Kingsbarrow", "Larkspur"]
GOODS = ["wool", "apples", "copper pots", "honey", "linen", "cheese", "timber", "salt"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEATHER = ["rain", "fog", "bright sunshine", "a cold wind", "thunder", "light snow"]


def long_text(n_entries: int) -> str:
    """Deterministic, varied English prose (no two sentences identical)."""
    parts = [LONG_INTRO]
    for i in range(n_entries):
        city = CITIES[i % len(CITIES)]
        good = GOODS[(i * 3) % len(GOODS)]
        day = DAYS[(i * 5) % len(DAYS)]
        weather = WEATHER[(i * 7) % len(WEATHER)]
        parts.append(
            f"Entry {i + 1}. In {city} the market opens every {day}, and traders sell "
            f"{good} for {3 + (i * 11) % 40} coins a measure. We arrived in {weather}; "
            f"the innkeeper said the bridge there is {120 + i * 17} years old.\n"
        )
    return "".join(parts)


def render_chat(llm, user: str) -> tuple[str, str]:
    """Formats one user turn (plus generation prompt) in the model's chat
    format: its GGUF Jinja template when it has one, else llama.cpp's
    built-in template of that family. Returns (text, how)."""
    template = llm.metadata.get("tokenizer.chat_template")
    if template is None:
        return builtin_chat(llm, "gemma" if "gemma" in llm.metadata.get("general.architecture", "") else "chatml", user)

    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        undefined=jinja2.StrictUndefined)

    def raise_exception(msg):
        raise jinja2.TemplateError(msg)

    bos = llm.detokenize([llm.token_bos()], special=True).decode()
    eos = llm.detokenize([llm.token_eos()], special=True).decode()
    text = env.from_string(template).render(
        messages=[{"role": "user", "content": user}], add_generation_prompt=True,
        bos_token=bos, eos_token=eos, raise_exception=raise_exception)
    return text, "gguf tokenizer.chat_template (jinja2)"


def builtin_chat(llm, name: str, user: str) -> tuple[str, str]:
    import ctypes

    import llama_cpp

    msgs = (llama_cpp.llama_chat_message * 1)(
        llama_cpp.llama_chat_message(b"user", user.encode()))
    buf = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_chat_apply_template(name.encode(), msgs, 1, True, buf, len(buf))
    if n <= 0 or n > len(buf):
        raise RuntimeError(f"llama_chat_apply_template({name}) failed: {n}")
    return buf.raw[:n].decode(), f"llama.cpp built-in chat template '{name}' (no template in the GGUF)"


def tokenize(llm, text: str, special: bool) -> list[int]:
    # add_bos=True means "add special tokens as the model's metadata says",
    # like llama.cpp's common_tokenize(ctx, text, /*add_special=*/true).
    ids = llm.tokenize(text.encode(), add_bos=True, special=special)
    bos = llm.token_bos()
    if len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]  # the chat template already wrote BOS
    return ids


def real_cases(llm) -> list[dict]:
    cases = [
        {"name": "short_sentence", "text": SHORT_TEXT, "special": False},
        {"name": "chat", "special": True},
        {"name": "code", "text": CODE_TEXT, "special": False},
        {"name": "long_800", "text": long_text(16), "special": False},
    ]
    cases[1]["text"], cases[1]["chat_format"] = render_chat(llm, CHAT_USER)
    for c in cases:
        c["tokens"] = tokenize(llm, c["text"], c.pop("special"))
        n = len(c["tokens"])
        if c["name"] == "long_800":
            # Gemma 3's local layers see the last 512 positions only; 511/512
            # straddle the window edge, later ones see a truncated past.
            c["positions"] = [0, 255, 511, 512, 513, 600, 700, n - 1]
        else:
            c["positions"] = sorted({0, n // 2, n - 1})
    return cases


def lcg_ids(n: int, n_vocab: int, seed: int) -> list[int]:
    x = seed
    out = []
    for _ in range(n):
        x = (1103515245 * x + 12345) % (1 << 31)
        out.append(x % n_vocab)
    return out


def synthetic_cases(llm) -> list[dict]:
    n_vocab = llm.n_vocab()
    text = "the cat and the dog went to the hall, and what of it?\n\nthe end"
    cases = [
        {"name": "ids_8", "tokens": lcg_ids(8, n_vocab, 1)},
        {"name": "ids_40", "tokens": lcg_ids(40, n_vocab, 2)},
        {"name": "ids_200", "tokens": lcg_ids(200, n_vocab, 3)},
        {"name": "text", "text": text, "tokens": llm.tokenize(text.encode(), add_bos=False, special=False)},
    ]
    arch = llm.metadata.get("general.architecture", "")
    window = int(llm.metadata.get(f"{arch}.attention.sliding_window", 0))
    for c in cases:
        n = len(c["tokens"])
        pos = {0, 1, n // 2, n - 2, n - 1}
        if window:
            # Sliding-window model: also both sides of the window edge (position
            # window-1 still sees position 0, window is the first that does not)
            # and quarter points, all clipped to the case length.
            pos |= {p for p in (window - 1, window, window + 1, n // 4, 3 * n // 4) if p < n}
        c["positions"] = sorted(pos)
    return cases


def record(llm, case: dict) -> dict:
    logits = common.eval_logits(llm, case["tokens"])
    out = {"name": case["name"]}
    for key in ("text", "chat_format"):
        if key in case:
            out[key] = case[key]
    out["tokens"] = [int(t) for t in case["tokens"]]
    out["positions"] = case["positions"]
    out["argmax"] = [int(np.argmax(logits[p])) for p in case["positions"]]
    out["logsumexp"] = [round(common.logsumexp(logits[p]), 6) for p in case["positions"]]
    out["top"] = [common.top_k(logits[p], TOP_K) for p in case["positions"]]
    # Smallest gap between consecutive top-64 logits: how close to a tie the
    # ranking is, so tests can pick a tolerance that keeps the order stable.
    gaps = [float(np.min(-np.diff(np.sort(logits[p])[::-1][:TOP_K]))) for p in case["positions"]]
    out["min_top_gap"] = [common.f32(g) for g in gaps]
    return out


def make(model: Path, synthetic: bool, lora: Path | None = None) -> None:
    n_ctx = 256 if synthetic else 1024  # synthetic models are "trained" to 256
    llm = common.open_llama(model, n_ctx=n_ctx, lora_path=lora)
    cases = synthetic_cases(llm) if synthetic else real_cases(llm)
    for c in cases:
        assert len(c["tokens"]) <= n_ctx, (c["name"], len(c["tokens"]))
        print(f"  {model.stem}/{c['name']}: {len(c['tokens'])} tokens, positions {c['positions']}")
    obj = {
        "model": common.rel(model),
        "model_sha256": common.sha256_file(model),
        "reference": common.reference_version(),
        "script": "scripts/reference/make_logits_golden.py",
        "kv_type": common.KV_TYPE_NAME,
        "flash_attn": False,
        "n_ctx": n_ctx,
        "n_threads": common.N_THREADS,
        "n_vocab": llm.n_vocab(),
        "add_bos": bool(llm._model.add_bos_token()) if hasattr(llm._model, "add_bos_token") else None,
        "bos_id": int(llm.token_bos()),
        "cases": [record(llm, c) for c in cases],
    }
    if lora is not None:
        obj["lora"] = [{"path": common.rel(lora), "sha256": common.sha256_file(lora), "scale": 1.0}]
        # How far the adapter moves the logits (the bounds must be well below it).
        base = common.open_llama(model, n_ctx=n_ctx)
        moved = max(float(np.max(np.abs(common.eval_logits(base, c["tokens"]) - common.eval_logits(llm, c["tokens"]))))
                    for c in cases)
        print(f"  the adapter moves the logits by up to {moved:.3f}")
    stem = lora.stem if lora is not None else model.stem
    common.write_json(common.GOLDEN_DIR / "logits" / f"{stem}.json", obj)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="model stems to regenerate (default: all)")
    args = ap.parse_args()
    models = [(m, False) for m in common.REAL_MODELS]
    # "moefied" files have no llama.cpp architecture; their reference is the dense
    # model's golden (see make_synthetic_moe_models.py).
    models += [(m, True) for m in sorted(common.SYNTHETIC_DIR.glob("*.gguf")) if "moefied" not in m.stem]
    for model, synthetic in models:
        if args.only and model.stem not in args.only:
            continue
        if not model.exists():
            sys.exit(f"missing {model} (run scripts/fetch_models.sh / make_synthetic_models.py)")
        print(f"{model.stem}:")
        make(model, synthetic)
    for lora in sorted((common.GOLDEN_DIR / "lora").glob("*.lora.gguf")):
        stem = lora.name[: -len(".lora.gguf")]
        if args.only and lora.stem not in args.only:
            continue
        model = next(m for m, _ in models if m.stem == stem)
        print(f"{lora.stem}:")
        make(model, model.parent == common.SYNTHETIC_DIR, lora)


if __name__ == "__main__":
    main()
