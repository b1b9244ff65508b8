#!/usr/bin/env python3
"""Writes tests/golden/embeddings/decoder_smollm2.json: sentence embeddings of a decoder
model (SmolLM2-135M-Instruct Q4_1) as llama.cpp computes them, through llama-cpp-python
(the reference; nothing of flashlm): Llama(embedding=True, pooling_type=MEAN or LAST),
the final-norm hidden states pooled over the sequence, then L2-normalised (embed's
normalize=True, as llama-server's default). For each sentence: the token ids llama.cpp
embedded (its tokenizer, BOS added) and the vector for both poolings.

Run: /opt/flashlm-ref/bin/python scripts/reference/make_decoder_embedding_golden.py
(llama-cpp-python 0.3.x; the version used is recorded in the file).
"""
from __future__ import annotations

import json

import llama_cpp
import numpy as np

from common import GOLDEN_DIR, GGML_TYPE_F32, N_THREADS, REAL_MODELS, sha256_file

SENTENCES = [
    "The cat sat on the mat.",
    "A kitten rested on the rug.",
    "Quarterly revenue rose by four percent.",
    "How do I reset my password?",
    "Paris is the capital of France.",
    "The mitochondria is the powerhouse of the cell.",
    "hello",
    "In the beginning God created the heaven and the earth.",
]


def main() -> None:
    model = REAL_MODELS[0]
    out = {"generator": "scripts/reference/make_decoder_embedding_golden.py",
           "reference": f"llama-cpp-python {llama_cpp.__version__}",
           "model": model.name, "model_sha256": sha256_file(model),
           "normalize": "l2", "kv_type": "f32", "sentences": []}
    per = {s: {"text": s} for s in SENTENCES}
    for name, ptype in (("mean", llama_cpp.LLAMA_POOLING_TYPE_MEAN), ("last", llama_cpp.LLAMA_POOLING_TYPE_LAST)):
        llm = llama_cpp.Llama(model_path=str(model), embedding=True, pooling_type=ptype, n_ctx=512, n_batch=512,
                              n_ubatch=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, n_gpu_layers=0,
                              type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False, verbose=False)
        for s in SENTENCES:
            ids = llm.tokenize(s.encode("utf-8"), add_bos=True, special=True)
            v = np.asarray(llm.embed(s, normalize=True), dtype=np.float64)
            assert v.ndim == 1, v.shape
            per[s]["tokens"] = ids
            per[s][name] = [float(x) for x in v]
        del llm
    out["sentences"] = [per[s] for s in SENTENCES]
    path = GOLDEN_DIR / "embeddings" / "decoder_smollm2.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}: {len(SENTENCES)} sentences, dim {len(out['sentences'][0]['mean'])}")


if __name__ == "__main__":
    main()
