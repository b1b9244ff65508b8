#!/usr/bin/env python3
"""flashlm imatrix against llama-imatrix: collects the importance matrix of the synthetic
tiny-llama model on tests/golden/quant/imatrix-text.txt (64-token chunks, 8 of them) in
both file forms, and compares them with llama-imatrix's output of the same run
(tests/golden/quant/tiny-llama.imatrix.{gguf,dat}, scripts/reference/make_imatrix_golden.py)
read by gguf-py: the same entries, metadata and token counts, and sums of squares equal
to float rounding (relative 1e-2 at most, 1e-3 in the median; the two engines' matmuls
round differently).

Usage: check_imatrix.py FLASHLM_BIN
"""
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGUFReader

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "quant"
MODEL = ROOT / "tests" / "golden" / "synthetic" / "tiny-llama-f32.gguf"


def read_gguf(path):
    r = GGUFReader(str(path))
    meta = {k: r.fields[k].contents() for k in ("general.type", "imatrix.chunk_count", "imatrix.chunk_size")}
    return meta, {t.name: np.array(t.data, dtype=np.float64).ravel() for t in r.tensors}


def read_dat(path):
    b = Path(path).read_bytes()
    (n,), at, out = struct.unpack_from("<i", b), 4, {}
    for _ in range(n):
        (ln,) = struct.unpack_from("<i", b, at)
        name = b[at + 4:at + 4 + ln].decode()
        ncall, nval = struct.unpack_from("<ii", b, at + 4 + ln)
        vals = np.frombuffer(b, dtype="<f4", count=nval, offset=at + 12 + ln).astype(np.float64)
        out[name] = vals / ncall
        at += 12 + ln + 4 * nval
    return out


def close(a, b, what):
    rel = np.abs(a - b) / (np.abs(b) + 1e-6 * np.abs(b).max())
    assert rel.max() < 1e-2 and np.median(rel) < 1e-3, f"{what}: max rel {rel.max():.3g}, median {np.median(rel):.3g}"
    return rel.max()


def main():
    flashlm = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        for fmt in ("gguf", "dat"):
            subprocess.run([flashlm, "imatrix", "-m", str(MODEL), "-f", str(GOLDEN / "imatrix-text.txt"), "-c", "64",
                            "--chunks", "8", "-o", f"{d}/m.{fmt}", "--output-format", fmt], check=True)
        meta, got = read_gguf(f"{d}/m.gguf")
        want_meta, want = read_gguf(GOLDEN / "tiny-llama.imatrix.gguf")
        assert meta == want_meta, (meta, want_meta)
        assert set(got) == set(want), set(got) ^ set(want)
        worst = 0.0
        for name, w in want.items():
            if name.endswith(".counts"):
                assert np.array_equal(got[name], w), (name, got[name], w)
            else:
                worst = max(worst, close(got[name], w, name))
        got_dat, want_dat = read_dat(f"{d}/m.dat"), read_dat(GOLDEN / "tiny-llama.imatrix.dat")
        assert set(got_dat) == set(want_dat)
        for name in want_dat:
            worst = max(worst, close(got_dat[name], want_dat[name], name + " (dat)"))
    print(f"imatrix ok: {len(want) // 2} matrices match llama-imatrix, max relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
