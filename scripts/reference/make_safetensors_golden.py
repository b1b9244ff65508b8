#!/usr/bin/env python3
"""Writes the safetensors files the reader's tests open, with Hugging Face's own
`safetensors` package (and torch for BF16), nothing of flashlm:

  tests/golden/safetensors/small.safetensors   F32, F16 and BF16 tensors of several shapes,
                                               an I64 and a zero-size tensor, __metadata__
  tests/golden/safetensors/sharded/            the same tensors split over two shards with
                                               model.safetensors.index.json, as
                                               huggingface_hub's split_torch_state_dict_into_shards
                                               and save_torch_model lay them out
  tests/golden/safetensors/small.json          each tensor's dtype, shape and values as
                                               float64 (what a reader must give back)

The values are closed-form (sines of the index), so the files are the same bytes on
every run.

Usage: python3 -m venv /tmp/st && /tmp/st/bin/pip install torch safetensors==0.8.0
       /tmp/st/bin/python scripts/reference/make_safetensors_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "golden" / "safetensors"


def values(shape, dtype, phase):
    n = 1
    for d in shape:
        n *= d
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 0.37 + phase) * 3.0
    return x.reshape(shape).to(dtype)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tensors = {
        "model.embed_tokens.weight": values((7, 5), torch.float32, 0.0),
        "model.layers.0.self_attn.q_proj.weight": values((4, 5), torch.float16, 0.5),
        "model.layers.0.mlp.up_proj.weight": values((3, 5), torch.bfloat16, 1.0),
        "model.norm.weight": values((5,), torch.float32, 1.5),
        "model.layers.0.input_layernorm.weight": values((5,), torch.bfloat16, 2.0),
        "position_ids": torch.arange(6, dtype=torch.int64).reshape(1, 6),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }
    meta = {"format": "pt", "source": "make_safetensors_golden.py"}
    save_file(tensors, OUT / "small.safetensors", metadata=meta)
    expect = {name: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                     "values": t.to(torch.float64).flatten().tolist()} for name, t in tensors.items()}
    (OUT / "small.json").write_text(json.dumps({"metadata": meta, "tensors": expect}, indent=1) + "\n")

    # Two shards and their index, as Hugging Face's sharded checkpoints are written.
    shard_dir = OUT / "sharded"
    shard_dir.mkdir(exist_ok=True)
    names = sorted(tensors)
    parts = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    total = 0
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        save_file({n: tensors[n] for n in part}, shard_dir / fname, metadata={"format": "pt"})
        for n in part:
            weight_map[n] = fname
            total += tensors[n].numel() * tensors[n].element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (shard_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {OUT}/small.safetensors, small.json and sharded/ ({len(parts)} shards)")


if __name__ == "__main__":
    main()
