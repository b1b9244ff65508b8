#!/usr/bin/env python3
"""Golden files for Hugging Face tokenizer.json BPE loading (src/tokenizer/tokenizer_json.h),
from Hugging Face `tokenizers` itself.

For each real model, the tokenizer.json that transformers' GGUF -> Hugging Face
conversion makes of it (scripts/hf_tokenizer_from_gguf.py, run by setup into
models/hf/<model>/) is loaded with `tokenizers.Tokenizer.from_file`, and every string
of the existing llama.cpp goldens (tests/golden/tokenizer/{smollm2,gemma3}.json, made by
make_tokenizer_golden.py) is encoded four ways:

  ids_add_parse      encode(text, add_special_tokens=True)    (the post-processor's tokens)
  ids_noadd_parse    encode(text, add_special_tokens=False)
  ids_add_noparse    the same with encode_special_tokens = True (special added tokens
  ids_noadd_noparse  are then plain text, as flashlm's parse_special = false)

and the ids_add_parse ids decoded back (decode(ids, skip_special_tokens=True/False):
detok_hidden / detok_rendered, as byte lists); plus the bos/eos/pad/unk ids transformers'
AutoTokenizer gives the directory (tokenizer_config.json included). Strings that are not valid UTF-8 cannot
be passed to tokenizers and are left out (the llama.cpp goldens hold none today).

The file records the tokenizer.json's sha256, the tool versions, and for each encoding
how many strings Hugging Face tokenizes differently from llama.cpp's golden for the
same model (information, not a failure: the converted tokenizer.json need not say
everything the GGUF says, e.g. SmolLM2's digit splitting).

Run:  .venv/bin/python scripts/reference/make_hf_tokenizer_golden.py   (any venv with
tokenizers and transformers as pinned in tests/server/requirements.txt)
Writes tests/golden/tokenizer/hf_smollm2.json and hf_gemma3.json.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tokenizers  # noqa: E402

from common import GOLDEN_DIR, REPO_ROOT, sha256_file  # noqa: E402

MODELS = [
    # (models/hf directory, llama.cpp golden, output)
    ("SmolLM2-135M-Instruct", "smollm2.json", "hf_smollm2.json"),
    ("gemma-3-270m", "gemma3.json", "hf_gemma3.json"),
]
KEYS = ["ids_add_parse", "ids_noadd_parse", "ids_add_noparse", "ids_noadd_noparse"]


def versions():
    out = {"tokenizers": tokenizers.__version__}
    for name in ("transformers", "gguf"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            from importlib.metadata import version

            out[name] = version(name)
    return out


def golden(hf_dir, llama_golden):
    path = os.path.join(hf_dir, "tokenizer.json")
    tok = tokenizers.Tokenizer.from_file(path)
    ref = json.load(open(llama_golden))
    cases, differ, skipped = [], {k: 0 for k in KEYS}, 0
    for rc in ref["cases"]:
        raw = bytes(rc["text"])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped += 1
            continue
        case = {"text": list(raw)}
        for parse in (True, False):
            tok.encode_special_tokens = not parse
            for add in (True, False):
                key = "ids_%s_%s" % ("add" if add else "noadd", "parse" if parse else "noparse")
                case[key] = tok.encode(text, add_special_tokens=add).ids
        tok.encode_special_tokens = False
        ids = case["ids_add_parse"]
        case["detok_hidden"] = list(tok.decode(ids, skip_special_tokens=True).encode("utf-8"))
        case["detok_rendered"] = list(tok.decode(ids, skip_special_tokens=False).encode("utf-8"))
        for k in KEYS:
            if case[k] != rc[k]:
                differ[k] += 1
        cases.append(case)
    # The special ids transformers gives the directory (tokenizer.json plus its
    # tokenizer_config.json).
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(hf_dir)
    special_ids = {k: getattr(auto, k + "_token_id") for k in ("bos", "eos", "pad", "unk")}
    return {
        "tokenizer_json": os.path.relpath(path, REPO_ROOT),
        "tokenizer_json_sha256": sha256_file(path),
        "made_by": "scripts/hf_tokenizer_from_gguf.py from models/" + ref["model"],
        "reference": "Hugging Face tokenizers (Tokenizer.from_file)",
        "versions": versions(),
        "n_vocab": tok.get_vocab_size(with_added_tokens=True),
        "special_ids": special_ids,
        "llama_cpp_golden": os.path.basename(llama_golden),
        "differs_from_llama_cpp": differ,
        "skipped_not_utf8": skipped,
        "cases": cases,
    }


def main():
    out_dir = GOLDEN_DIR / "tokenizer"
    for model_dir, ref_name, out_name in MODELS:
        hf_dir = REPO_ROOT / "models" / "hf" / model_dir
        if not (hf_dir / "tokenizer.json").exists():
            print("missing (run scripts/setup.sh), skipped:", hf_dir, file=sys.stderr)
            continue
        g = golden(str(hf_dir), str(out_dir / ref_name))
        with open(out_dir / out_name, "w") as f:
            json.dump(g, f, separators=(",", ":"))
        print("wrote", out_name, len(g["cases"]), "cases; differs from llama.cpp:", g["differs_from_llama_cpp"])


if __name__ == "__main__":
    main()
