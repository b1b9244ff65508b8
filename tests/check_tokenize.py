#!/usr/bin/env python3
"""`flashlm tokenize` against the reference tokenizer goldens (llama.cpp via
llama-cpp-python, scripts/reference/make_tokenizer_golden.py, for a GGUF; Hugging Face
tokenizers, scripts/reference/make_hf_tokenizer_golden.py, for a models/hf/ directory):
the first 40 golden strings that can be passed on a command line (valid UTF-8, no NUL)
must give exactly the reference ids, with special tokens added and parsed.
Usage: check_tokenize.py FLASHLM GOLDEN MODEL (a GGUF file or a tokenizer directory)"""
import json, os, subprocess, sys

flashlm, golden_path, model = sys.argv[1:4]
if not os.path.exists(model):
    print(f"SKIPPED LOUDLY: {model} is missing — run scripts/setup.sh")
    sys.exit(77)
g = json.load(open(golden_path))
checked = failed = 0
for case in g["cases"]:
    raw = bytes(case["text"])
    if b"\0" in raw or not raw:
        continue
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        continue
    out = subprocess.run([flashlm, "tokenize", "-m", model, "-p", text], capture_output=True)
    checked += 1
    got = json.loads(out.stdout) if out.returncode == 0 else None
    if got != case["ids_add_parse"]:
        failed += 1
        print(f"MISMATCH for {text!r}: flashlm {got} reference {case['ids_add_parse']}")
    if checked >= 40:
        break
print(f"{checked} strings checked, {failed} mismatches")
sys.exit(1 if failed or checked == 0 else 0)
