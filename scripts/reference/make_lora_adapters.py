#!/usr/bin/env python3
"""Writes the LoRA adapters the LoRA logits goldens use, in llama.cpp's LoRA GGUF
(general.type "adapter", adapter.type "lora", adapter.lora.alpha; per adapted
matrix "<name>.lora_a" with ne = [n_in, rank] and "<name>.lora_b" with
ne = [rank, n_out]), with the `gguf` package only (nothing of flashlm).

The values are closed-form (sines of the indices), so the files are the same
bytes on every run. Each adapter's size is chosen to move the logits well
beyond the comparison bounds (make_logits_golden.py prints the move).

Usage: /opt/flashlm-ref/bin/python scripts/reference/make_lora_adapters.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

LORA_DIR = common.GOLDEN_DIR / "lora"

# (base model, adapter file stem, rank, alpha, targets, layers (None: all), dtype, size of B)
ADAPTERS = [
    (common.SYNTHETIC_DIR / "tiny-llama-f32.gguf", "tiny-llama-f32.lora", 4, 8.0,
     ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"], None, np.float32, 0.05),
    (common.SYNTHETIC_DIR / "tiny-gemma3-f32.gguf", "tiny-gemma3-f32.lora", 2, 4.0,
     ["attn_v", "attn_output", "ffn_gate"], None, np.float16, 0.05),
    (common.REAL_MODELS[0], "SmolLM2-135M-Instruct.Q4_1.lora", 2, 4.0,
     ["attn_k", "attn_output", "ffn_up"], range(0, 30, 3), np.float16, 0.3),
]


def wave(shape: tuple[int, int], seed: float, amplitude: float) -> np.ndarray:
    r = np.arange(shape[0], dtype=np.float64)[:, None]
    c = np.arange(shape[1], dtype=np.float64)[None, :]
    return (amplitude * np.sin(0.731 * r + 0.377 * c + seed)).astype(np.float32)


def make(base: Path, stem: str, rank: int, alpha: float, targets, layers, dtype, b_amp: float) -> Path:
    reader = gguf.GGUFReader(str(base))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    shapes = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in reader.tensors if len(t.shape) >= 2}
    n_layer = int(reader.fields[f"{arch}.block_count"].parts[-1][0])
    out = LORA_DIR / f"{stem}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for il in (layers if layers is not None else range(n_layer)):
        for k, target in enumerate(targets):
            name = f"blk.{il}.{target}.weight"
            n_in, n_out = shapes[name]  # GGUF ne order: ne0 = n_in
            seed = 1.7 * il + 0.9 * k
            a = wave((rank, n_in), seed, 1.0 / np.sqrt(n_in))   # ne = [n_in, rank]
            b = wave((n_out, rank), seed + 0.5, b_amp)          # ne = [rank, n_out]
            w.add_tensor(f"{name}.lora_a", a.astype(dtype))
            w.add_tensor(f"{name}.lora_b", b.astype(dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {common.rel(out)} ({out.stat().st_size} bytes)")
    return out


def main() -> None:
    for spec in ADAPTERS:
        if not spec[0].exists():
            sys.exit(f"missing {spec[0]} (run scripts/fetch_models.sh)")
        make(*spec)


if __name__ == "__main__":
    main()
